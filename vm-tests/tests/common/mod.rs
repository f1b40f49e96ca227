//! Helpers shared by the scenario tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use vm_tests::console::Console;
use vm_tests::disk::{self, GIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, PROMPT};
use vm_tests::logs;
use vm_tests::probe_capture;
use vm_tests::qemu::{Guest, GuestBuilder};

/// Test-only passphrase of LUKS containers (documented in fixtures/README.md).
pub const PASSPHRASE: &str = "luksify-test-passphrase";

pub const T: Duration = Duration::from_secs(120);

/// Runs a command in the guest; panics with its output unless it exits 0.
pub fn sh(c: &mut Console, cmd: &str) -> String {
    let out = c.exec(cmd, T).unwrap();
    assert_eq!(
        out.code,
        0,
        "`{cmd}` failed in the guest:\n{}{}",
        out.stdout_str(),
        out.stderr_str()
    );
    out.stdout_str()
}

pub fn capture(c: &mut Console, state: &str) -> PathBuf {
    let dir = logs::target_dir().join("vm-fixtures").join(state);
    probe_capture::capture(c, &dir).unwrap();
    if std::env::var_os("LUKSIFY_UPDATE_FIXTURES").is_some_and(|v| v == "1") {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(state);
        let _ = std::fs::remove_dir_all(&committed);
        std::fs::create_dir_all(&committed).unwrap();
        luksify::sys::process::Cmd::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.display()))
            .arg(&committed)
            .run()
            .unwrap();
    }
    dir
}

pub fn json(dir: &Path, file: &str, key: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
    v["report"][0][key]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no {key}"))
        .clone()
}

pub fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {row}"))
}

pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

pub fn assert_lvm_reports_ok(dir: &Path) {
    let codes = probe_capture::exit_codes(dir).unwrap();
    for name in ["pvs.json", "vgs.json", "lvs.json", "mountinfo"] {
        assert!(
            codes.contains(&(name.to_string(), 0)),
            "{name} failed: {codes:?}"
        );
    }
}

/// Boots the live environment with a new empty 1 GiB target (vda) and a
/// 1 GiB spare (vdb) in `images`.
pub fn boot_live(name: &str, images: &Path) -> Guest {
    let target = images.join("target.img");
    let spare = images.join("spare.img");
    disk::create_sparse(&target, GIB).unwrap();
    disk::create_sparse(&spare, GIB).unwrap();
    boot_live_on(name, images)
}

/// Boots the live environment on the existing target and spare in `images`,
/// up to the marker-protocol shell.
pub fn boot_live_on(name: &str, images: &Path) -> Guest {
    let kernel = GuestKernel::debian_current().unwrap();
    let live = live_env::build(&kernel, &[]).unwrap();
    let mut g = GuestBuilder::new(name)
        .kernel(&live.kernel)
        .initrd(&live.initrd)
        .append(&live.append)
        .disk_with_serial(images.join("target.img"), "target")
        .disk_with_serial(images.join("spare.img"), "spare")
        .start()
        .unwrap();
    let c = g.console();
    c.wait_for("luksify-live: ready", T).unwrap();
    c.init_shell(PROMPT, T).unwrap();
    g
}

/// The seed layout on vda: DOS label, 200 MiB /boot, the rest a PV of `vg`
/// with LVs root (500 MiB ext4) and swap (64 MiB); both mounted.
pub fn build_seed(c: &mut Console, vg: &str) {
    sh(
        c,
        r"printf 'label: dos\n,200MiB,83\n,,8e\n' | sfdisk --quiet /dev/vda",
    );
    sh(c, "mkfs.ext4 -q -L boot /dev/vda1");
    sh(c, &format!("pvcreate /dev/vda2 && vgcreate {vg} /dev/vda2"));
    sh(
        c,
        &format!("lvcreate -y -L 500m -n root {vg} && lvcreate -y -L 64m -n swap {vg}"),
    );
    sh(
        c,
        &format!("mkfs.ext4 -q -L root /dev/{vg}/root && mkswap -L swap /dev/{vg}/swap"),
    );
    sh(
        c,
        &format!(
            "mkdir -p /mnt/target && mount /dev/{vg}/root /mnt/target && mkdir -p /mnt/target/boot /mnt/target/etc \
             && mount /dev/vda1 /mnt/target/boot && echo seed > /mnt/target/etc/hostname \
             && echo 'kernel stand-in' > /mnt/target/boot/vmlinuz-test \
             && dd if=/dev/urandom of=/mnt/target/data.bin bs=1M count=16 2>/dev/null && sync"
        ),
    );
}

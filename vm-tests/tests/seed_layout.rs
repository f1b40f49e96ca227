//! Builds the seed layout (/boot partition + a VG with root and swap LVs) on
//! real LVM inside the live guest and captures what luksify's probe reads in
//! three states: the seed layout, a pvmove to the spare disk interrupted
//! part-way, and the old PV turned into an empty open LUKS container.
//!
//! Captures land in target/vm-fixtures/<state>/; with
//! `LUKSIFY_UPDATE_FIXTURES=1` they also replace vm-tests/fixtures/<state>/.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use vm_tests::console::Console;
use vm_tests::disk::{self, GIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, PROMPT};
use vm_tests::logs;
use vm_tests::probe_capture;
use vm_tests::qemu::{Guest, GuestBuilder};

/// Test-only passphrase of the LUKS container (documented in fixtures/README.md).
const PASSPHRASE: &str = "luksify-test-passphrase";

const T: Duration = Duration::from_secs(120);

/// Runs a command in the guest; panics with its output unless it exits 0.
fn sh(c: &mut Console, cmd: &str) -> String {
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

fn capture(c: &mut Console, state: &str) -> PathBuf {
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

fn json(dir: &Path, file: &str, key: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
    v["report"][0][key]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no {key}"))
        .clone()
}

fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {row}"))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn assert_lvm_reports_ok(dir: &Path) {
    let codes = probe_capture::exit_codes(dir).unwrap();
    for name in ["pvs.json", "vgs.json", "lvs.json", "mountinfo"] {
        assert!(
            codes.contains(&(name.to_string(), 0)),
            "{name} failed: {codes:?}"
        );
    }
}

/// Boots the live environment with a 1 GiB target (vda) and a 1 GiB spare (vdb).
fn boot_live(name: &str, images: &Path) -> Guest {
    let kernel = GuestKernel::debian_current().unwrap();
    let live = live_env::build(&kernel, &[]).unwrap();
    let target = images.join("target.img");
    let spare = images.join("spare.img");
    disk::create_sparse(&target, GIB).unwrap();
    disk::create_sparse(&spare, GIB).unwrap();
    let mut g = GuestBuilder::new(name)
        .kernel(&live.kernel)
        .initrd(&live.initrd)
        .append(&live.append)
        .disk_with_serial(&target, "target")
        .disk_with_serial(&spare, "spare")
        .start()
        .unwrap();
    let c = g.console();
    c.wait_for("luksify-live: ready", T).unwrap();
    c.init_shell(PROMPT, T).unwrap();
    g
}

/// The seed layout on vda: DOS label, 200 MiB /boot, the rest a PV of `vg`
/// with LVs root (500 MiB ext4) and swap (64 MiB); both mounted.
fn build_seed(c: &mut Console, vg: &str) {
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

/// A VG name with a dash: device-mapper doubles it (`vg--sys-root`).
#[test]
fn seed_layout_with_dashed_vg_name() {
    let images = tempfile::tempdir().unwrap();
    let mut g = boot_live("seed-layout-vg-sys", images.path());
    let c = g.console();
    build_seed(c, "vg-sys");
    let dir = capture(c, "seed-layout-vg-sys");
    assert_lvm_reports_ok(&dir);
    let lvs = json(&dir, "lvs.json", "seg");
    assert!(
        lvs.iter().any(|r| field(r, "lv_name") == "root"
            && field(r, "lv_dm_path") == "/dev/mapper/vg--sys-root"),
        "{lvs:?}"
    );
    let names: Vec<String> = ["dm-0", "dm-1"]
        .iter()
        .map(|d| {
            read(&dir, &format!("sys/block/{d}/dm/name"))
                .trim()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"vg--sys-root".to_string()), "{names:?}");
    g.poweroff(T).unwrap();
}

#[test]
fn seed_layout_pvmove_and_luks_captures() {
    let t0 = Instant::now();

    let images = tempfile::tempdir().unwrap();
    let mut g = boot_live("seed-layout", images.path());
    let c = g.console();
    let booted = t0.elapsed();

    build_seed(c, "vg0");
    let seed = capture(c, "seed-layout");
    let made = t0.elapsed();

    assert_lvm_reports_ok(&seed);
    let lvs = json(&seed, "lvs.json", "seg");
    let size_of = |name: &str| {
        lvs.iter()
            .find(|r| field(r, "lv_name") == name && field(r, "vg_name") == "vg0")
            .map(|r| field(r, "lv_size").to_string())
    };
    assert_eq!(size_of("root").as_deref(), Some("524288000"), "{lvs:?}");
    assert_eq!(size_of("swap").as_deref(), Some("67108864"), "{lvs:?}");
    let pvs = json(&seed, "pvs.json", "pv");
    assert!(
        pvs.iter()
            .any(|r| field(r, "pv_name") == "/dev/vda2" && field(r, "vg_name") == "vg0"),
        "{pvs:?}"
    );
    assert!(read(&seed, "blkid/vda1").contains("LABEL=boot\n"));
    assert!(read(&seed, "blkid/vda2").contains("TYPE=LVM2_member\n"));
    assert_eq!(read(&seed, "sys/block/vda/vda1/start").trim(), "2048");
    assert_eq!(read(&seed, "sys/block/vda/serial").trim(), "target");
    assert!(read(&seed, "mountinfo").contains(" /mnt/target/boot "));

    // Part of a pvmove: the spare joins the VG, the move starts, and its
    // poller is killed once the pvmove LV exists. The kernel finishes the
    // segment in flight; nothing moves the rest, so [pvmove0] stays.
    sh(c, "pvcreate /dev/vdb && vgextend vg0 /dev/vdb");
    c.run_ok(
        "pvmove -i 1 /dev/vda2 /dev/vdb >/tmp/pvmove.log 2>&1 </dev/null & echo $! > /tmp/pvmove.pid",
        T,
    )
    .unwrap();
    let deadline = Instant::now() + T;
    loop {
        let lvs = sh(c, "lvm lvs -a --noheadings -o lv_name vg0");
        if lvs.contains("[pvmove0]") {
            break;
        }
        assert!(Instant::now() < deadline, "pvmove0 never appeared: {lvs}");
        std::thread::sleep(Duration::from_millis(200));
    }
    sh(c, "kill -9 $(cat /tmp/pvmove.pid); sleep 1");
    let moving = capture(c, "pvmove-in-progress");
    assert_lvm_reports_ok(&moving);
    let lvs = json(&moving, "lvs.json", "seg");
    assert!(
        lvs.iter().any(|r| field(r, "lv_name") == "[pvmove0]"),
        "{lvs:?}"
    );
    let pvs = json(&moving, "pvs.json", "pv");
    for pv in ["/dev/vda2", "/dev/vdb"] {
        assert!(
            pvs.iter()
                .any(|r| field(r, "pv_name") == pv && field(r, "vg_name") == "vg0"),
            "{pv} not in vg0: {pvs:?}"
        );
    }

    // Spare-return's first half: finish the move, free the old PV, and make
    // it an empty LUKS container, opened as luks-<uuid>.
    sh(c, "pvmove -i 1");
    let left = sh(c, "lvm lvs -a --noheadings -o lv_name vg0");
    assert!(!left.contains("pvmove"), "pvmove did not finish: {left}");
    sh(c, "vgreduce vg0 /dev/vda2 && pvremove /dev/vda2");
    sh(
        c,
        &format!(
            "printf '%s' '{PASSPHRASE}' | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --iter-time 100 \
             --batch-mode --key-file=- /dev/vda2"
        ),
    );
    sh(
        c,
        &format!(
            "u=$(cryptsetup luksUUID /dev/vda2) && printf '%s' '{PASSPHRASE}' | \
             cryptsetup open --key-file=- /dev/vda2 luks-$u"
        ),
    );
    let luks = capture(c, "luks-empty");
    assert_lvm_reports_ok(&luks);
    assert!(read(&luks, "blkid/vda2").contains("TYPE=crypto_LUKS\n"));
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2").trim().to_string();
    let crypt_dm = std::fs::read_dir(luks.join("sys/block"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("dm/uuid")).is_ok_and(|u| u.starts_with("CRYPT-LUKS2-"))
        })
        .expect("an open LUKS2 mapping in /sys/block");
    assert_eq!(
        std::fs::read_to_string(crypt_dm.join("dm/name"))
            .unwrap()
            .trim(),
        format!("luks-{uuid}")
    );
    assert_eq!(
        std::fs::read_to_string(crypt_dm.join("slaves.ls"))
            .unwrap()
            .trim(),
        "vda2"
    );
    let pvs = json(&luks, "pvs.json", "pv");
    let in_vg: Vec<&str> = pvs
        .iter()
        .filter(|r| field(r, "vg_name") == "vg0")
        .map(|r| field(r, "pv_name"))
        .collect();
    assert_eq!(in_vg, ["/dev/vdb"], "{pvs:?}");

    g.poweroff(T).unwrap();
    eprintln!(
        "timings: shell {booted:?}, seed layout captured {made:?}, all {:?} ({:?})",
        t0.elapsed(),
        g.accel
    );
}

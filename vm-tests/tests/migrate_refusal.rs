//! Issue 5's "refusal leaves no trace": with a spare too small for the VG,
//! `luksify migrate --yes` exits 3 with its reason before writing anything,
//! and both disk images are byte-for-byte unchanged.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::store_secret;
use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, PROMPT};
use vm_tests::luksify_bin;
use vm_tests::qemu::GuestBuilder;
use vm_tests::target_disk;

#[test]
fn too_small_spare_is_refused_without_a_write() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = target_disk::build(&kernel).unwrap();
    let luksify = luksify_bin::release().unwrap();
    let live = live_env::build(&kernel, &[luksify]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.img");
    let spare = dir.path().join("spare.img");
    disk.copy_to(&target).unwrap();
    disk::create_sparse(&spare, 256 * MIB).unwrap();
    let before = [sum(&target), sum(&spare)];

    let mut g = GuestBuilder::new("migrate-refusal")
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
    // Activating the VG writes nothing to the disks; the probe needs the LVs.
    sh(c, "vgchange -ay vg0");
    store_secret(c, "/root/pass", PASSPHRASE, T);
    let out = c
        .exec(
            "luksify migrate --yes --spare /dev/vdb --strategy spare-return \
             --header-backup /root/vg0.luks-header --passphrase-stdin \
             --pbkdf pbkdf2 --iter-time 100 < /root/pass",
            Duration::from_secs(300),
        )
        .unwrap();
    let text = format!("{}{}", out.stdout_str(), out.stderr_str());
    assert_eq!(out.code, 3, "expected a refusal (exit 3):\n{text}");
    assert!(
        text.contains("/dev/vdb"),
        "the message names the spare:\n{text}"
    );
    assert!(!text.contains("[1/"), "a step started:\n{text}");
    let header = c.exec("test -e /root/vg0.luks-header", T).unwrap();
    assert_ne!(header.code, 0, "a header backup was written");
    sh(c, "vgchange -an vg0");
    g.poweroff(T).unwrap();
    drop(g);

    let after = [sum(&target), sum(&spare)];
    assert_eq!(before, after, "a refused migration changed a disk image");
    eprintln!("refusal scenario: {:.1?}\n{text}", t0.elapsed());
}

fn sum(path: &std::path::Path) -> String {
    disk::sha256_file(path).unwrap()
}

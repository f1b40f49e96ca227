//! Issue 5's "refusal leaves no trace": with a spare too small for the VG,
//! `luksify migrate --yes` exits 3 with its reason before writing anything,
//! and both disk images are byte-for-byte unchanged.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::{Scenario, store_secret};
use vm_tests::disk;

#[test]
fn too_small_spare_is_refused_without_a_write() {
    let t0 = Instant::now();
    let s = Scenario::new(|_| 256);
    let before = [sum(&s.target), sum(&s.spare)];
    let mut g = s.boot_live("migrate-refusal");
    let c = g.console();
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

    let after = [sum(&s.target), sum(&s.spare)];
    assert_eq!(before, after, "a refused migration changed a disk image");
    eprintln!("refusal scenario: {:.1?}\n{text}", t0.elapsed());
}

fn sum(path: &std::path::Path) -> String {
    disk::sha256_file(path).unwrap()
}

//! The VM target disk boots unencrypted through SeaBIOS → GRUB → kernel →
//! initramfs-tools → boot-check, before any migration: the baseline the
//! migration scenarios compare against.

mod common;

use std::time::{Duration, Instant};

use vm_tests::guest_kernel::GuestKernel;
use vm_tests::qemu::GuestBuilder;
use vm_tests::target_disk;

#[test]
fn target_disk_boots_unencrypted_through_grub() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = target_disk::build(&kernel).unwrap();
    let built = t0.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("target.img");
    disk.copy_to(&img).unwrap();

    let mut g = GuestBuilder::new("target-boot-plain")
        .disk_with_serial(&img, "target")
        .start()
        .unwrap();
    let c = g.console();
    let report = c
        .wait_for("BOOTCHECK: end", Duration::from_secs(240))
        .unwrap();
    let text = String::from_utf8_lossy(&report.before).replace('\r', "");
    g.wait_exit(Duration::from_secs(60)).unwrap();
    eprintln!(
        "target disk ready in {:.1?}; boot to report {:.1?}",
        built,
        t0.elapsed() - built
    );
    assert!(
        text.contains("BOOTCHECK: root /dev/mapper/vg0-root"),
        "{text}"
    );
    assert!(text.contains("BOOTCHECK: sums ok"), "{text}");
    assert!(text.contains("BOOTCHECK: swap /dev/"), "{text}");
    assert!(!text.contains(" crypt "), "{text}");
}

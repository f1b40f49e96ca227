//! The VM target disk boots unencrypted through SeaBIOS → GRUB → kernel →
//! initramfs-tools → boot-check, before any migration: the baseline the
//! migration scenarios compare against.

mod common;

use std::time::{Duration, Instant};

use vm_tests::guest_kernel::GuestKernel;
use vm_tests::target_disk;
use vm_tests::unlock_boot::boot_unencrypted;

#[test]
fn target_disk_boots_unencrypted_through_grub() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = target_disk::build(&kernel).unwrap();
    let built = t0.elapsed();
    let report = boot_unencrypted("target-boot-plain", &disk, Duration::from_secs(240)).unwrap();
    eprintln!(
        "target disk ready in {:.1?}; boot to report {:.1?}",
        built,
        t0.elapsed() - built
    );
    report.verify_unencrypted().unwrap();
}

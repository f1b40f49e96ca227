//! Issue 6 item 2, the spare-keep strategy on the initramfs-tools target
//! (with cryptsetup-initramfs): the live guest runs `luksify plan` (the
//! spare's partitions, the fstab diff, grub-install shown) and `luksify
//! migrate --yes --strategy spare-keep`. The data ends on the spare, which
//! luksify partitions like the original (DOS: /boot, then the LUKS
//! container), gives a copy of /boot under a new filesystem UUID, the
//! target's fstab retargeted to it, and GRUB from the target's own
//! grub-install. Then the SPARE boots alone (the original detached) through
//! its own GRUB, cryptsetup-initramfs asks for the passphrase, and
//! boot-check finds the file tree intact, root on dm-crypt and swap on.
//!
//! Then both disks boot together, the spare first: the two /boot
//! filesystems never collide (different UUIDs), the spare's GRUB and
//! initramfs unlock as before.
//!
//! What the original disk keeps: its MBR, the gap after it and /boot byte
//! for byte (luksify only ever mounts the original /boot read-only without
//! journal replay); its PV partition left the VG and lost its LVM label.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::Scenario;
use migrate_common::spare_keep::{head_sum, plan_and_migrate};
use vm_tests::qemu::GuestBuilder;
use vm_tests::target_disk::BOOT_MIB;
use vm_tests::unlock_boot;

#[test]
fn spare_keep_boots_from_the_spare_alone() {
    let t0 = Instant::now();
    // The spare holds /boot (as large as the original's) and the container.
    let s = Scenario::new(|root_mib| root_mib + BOOT_MIB + 512);
    let ready = t0.elapsed();
    let m = plan_and_migrate(&s, "migrate-spare-keep");
    let uuid = &m.uuid;

    // The original is detached: the spare boots alone through its own GRUB.
    let t_boot = Instant::now();
    let report =
        unlock_boot::boot_and_unlock("migrate-spare-keep-boot", &s.spare, PASSPHRASE).unwrap();
    let alone = t_boot.elapsed();
    report.verify_migrated(Some(uuid)).unwrap();

    // Both disks attached, the spare first in the boot order: the two
    // /boot filesystems have different UUIDs, so the spare's GRUB loads the
    // spare's kernel and initramfs, which unlock as before.
    let t_both = Instant::now();
    let mut g = GuestBuilder::new("migrate-spare-keep-both")
        .disk_with_serial(&s.spare, "spare")
        .disk_with_serial(&s.target, "target")
        .start()
        .unwrap();
    g.console()
        .send_secret_after(
            unlock_boot::UNLOCK_PROMPT,
            PASSPHRASE.as_bytes(),
            Duration::from_secs(300),
        )
        .unwrap();
    let both = unlock_boot::wait_report(&mut g).unwrap();
    drop(g);
    eprintln!(
        "timings: artefacts {ready:.1?}, migrate {:.1?}, boot from the spare alone+unlock+check {alone:.1?}, with both disks {:.1?}, total {:.1?}",
        m.migrate_time,
        t_both.elapsed(),
        t0.elapsed()
    );
    both.verify_migrated(Some(uuid)).unwrap();
    assert!(
        both.text.contains("BOOTCHECK-LSBLK: vdb"),
        "the original disk was not attached:\n{}",
        both.text
    );
    assert_eq!(
        head_sum(&s.target, m.boot_end),
        m.before,
        "booting with the original attached changed its MBR, gap or /boot"
    );
}

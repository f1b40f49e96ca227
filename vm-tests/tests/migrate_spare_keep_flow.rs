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

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use migrate_common::{Scenario, migrate_yes_with, store_secret};
use vm_tests::qemu::GuestBuilder;
use vm_tests::target_disk::BOOT_MIB;
use vm_tests::unlock_boot;

/// sha256 of the first `bytes` of `image`: the original disk's MBR, the gap
/// after it and its /boot partition.
fn head_sum(image: &Path, bytes: u64) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {bytes} '{}' | sha256sum", image.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn spare_keep_boots_from_the_spare_alone() {
    let t0 = Instant::now();
    // The spare holds /boot (as large as the original's) and the container.
    let s = Scenario::new(|root_mib| root_mib + BOOT_MIB + 512);
    let boot_end = (1 + BOOT_MIB) << 20;
    let before = head_sum(&s.target, boot_end);
    let ready = t0.elapsed();
    let mut g = s.boot_live("migrate-spare-keep");
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    let old_boot_uuid = sh(c, "blkid -s UUID -o value /dev/vda1").trim().to_string();

    // `plan` shows the spare's layout, the boot steps and fstab's diff.
    let plan = sh(
        c,
        "luksify plan --spare /dev/vdb --strategy spare-keep --header-backup /root/vg0.luks-header 2>&1",
    );
    assert!(
        plan.contains(&format!(
            "Partition /dev/vdb (dos): /boot /dev/vdb1 ({BOOT_MIB} MiB), LUKS container /dev/vdb2"
        )),
        "{plan}"
    );
    assert!(plan.contains("--- a/etc/fstab"), "{plan}");
    assert!(plan.contains(&format!("-UUID={old_boot_uuid}")), "{plan}");
    assert!(
        plan.contains("grub-install --target=i386-pc /dev/vdb"),
        "{plan}"
    );

    store_secret(c, "/root/pass", PASSPHRASE, T);
    let (text, migrate_time) = migrate_yes_with(c, "spare-keep", Duration::from_secs(1800));
    sh(c, "rm /root/pass");
    assert!(
        !text.contains("needs other boot changes than the plan showed"),
        "{text}"
    );
    assert!(
        text.contains("copied the files of /dev/vda1 into /dev/vdb1"),
        "{text}"
    );
    assert!(text.contains("GRUB installed on /dev/vdb"), "{text}");
    // The live guest has no udev, so no by-id name to give grub-pc's
    // debconf: the person is told to choose the disk after the first boot.
    assert!(
        text.contains("run `dpkg-reconfigure grub-pc` and choose that disk"),
        "{text}"
    );
    let uuid = sh(c, "cryptsetup luksUUID /dev/vdb2").trim().to_string();
    let new_boot_uuid = sh(c, "blkid -s UUID -o value /dev/vdb1").trim().to_string();
    assert_ne!(new_boot_uuid, old_boot_uuid);
    assert_eq!(
        sh(c, "blkid -s UUID -o value /dev/vda1").trim(),
        old_boot_uuid
    );
    // The target mounts the new /boot from now on.
    let fstab = sh(
        c,
        "mkdir -p /mnt/r && mount -o ro /dev/vg0/root /mnt/r && cat /mnt/r/etc/fstab && umount /mnt/r",
    );
    assert!(
        fstab
            .lines()
            .any(|l| l.starts_with(&format!("UUID={new_boot_uuid} ")) && l.contains(" /boot ")),
        "{fstab}"
    );
    // The original's PV partition left the VG and carries no LVM label.
    let pvs = sh(c, "lvm pvs --noheadings -o pv_name,vg_name");
    assert!(!pvs.contains("/dev/vda2"), "{pvs}");
    let sig = c.exec("blkid -p /dev/vda2", T).unwrap();
    assert!(
        !sig.stdout_str().contains("LVM2_member"),
        "{}",
        sig.stdout_str()
    );
    g.poweroff(T).unwrap();
    drop(g);
    assert_eq!(
        head_sum(&s.target, boot_end),
        before,
        "the original disk's MBR, gap and /boot changed"
    );

    // The original is detached: the spare boots alone through its own GRUB.
    let t_boot = Instant::now();
    let report =
        unlock_boot::boot_and_unlock("migrate-spare-keep-boot", &s.spare, PASSPHRASE).unwrap();
    let alone = t_boot.elapsed();
    report.verify_migrated(Some(&uuid)).unwrap();

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
        "timings: artefacts {ready:.1?}, migrate {migrate_time:.1?}, boot from the spare alone+unlock+check {alone:.1?}, with both disks {:.1?}, total {:.1?}",
        t_both.elapsed(),
        t0.elapsed()
    );
    both.verify_migrated(Some(&uuid)).unwrap();
    assert!(
        both.text.contains("BOOTCHECK-LSBLK: vdb"),
        "the original disk was not attached:\n{}",
        both.text
    );
    assert_eq!(
        head_sum(&s.target, boot_end),
        before,
        "booting with the original attached changed its MBR, gap or /boot"
    );
}

//! spare-keep's migration in the live guest, shared by the scenarios on the
//! DOS and the GPT target: `luksify plan` shows the spare laid out like the
//! original (its table kind), `luksify migrate --yes --strategy spare-keep`
//! runs, and what it must leave is checked: a new /boot on the spare named
//! by fstab, the original /boot's UUID unchanged, the original PV out of the
//! VG without its LVM label, the original's bytes up to the end of its
//! /boot unchanged.

use std::path::Path;
use std::time::Duration;

use vm_tests::target_disk::{BOOT_MIB, Variant};

use super::{Scenario, migrate_yes_with, store_secret};
use crate::common::{PASSPHRASE, T, sh};

/// sha256 of the first `bytes` of `image`: the original disk's label, what
/// precedes /boot and /boot itself.
pub fn head_sum(image: &Path, bytes: u64) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {bytes} '{}' | sha256sum", image.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a spare-keep migration left, for the boots that follow.
pub struct Migrated {
    /// The container's LUKS UUID.
    pub uuid: String,
    /// Bytes of the original disk that must never change, and their sum
    /// before the migration.
    pub boot_end: u64,
    pub before: String,
    /// `sfdisk --dump` of the spare after the migration.
    pub spare_table: String,
    pub migrate_time: Duration,
}

/// The partition table kind a variant's disk has, and the partitions
/// spare-keep gives the spare for it: /boot and the container.
fn spare_layout(variant: Variant) -> (&'static str, u32, u32) {
    match variant {
        Variant::Gpt => ("gpt", 2, 3),
        _ => ("dos", 1, 2),
    }
}

/// Boots the live guest `name` on the scenario's disks, plans and migrates
/// with spare-keep onto /dev/vdb, checks the result in the guest and the
/// original image's head on the host, and powers the guest off.
pub fn plan_and_migrate(s: &Scenario, name: &str) -> Migrated {
    let (label, spare_boot, spare_container) = spare_layout(s.variant);
    let (orig_boot, orig_pv) = s.variant.partitions();
    let boot_end = s.variant.boot_end_bytes();
    let before = head_sum(&s.target, boot_end);
    let mut g = s.boot_live(name);
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    let old_boot_uuid = sh(c, &format!("blkid -s UUID -o value /dev/vda{orig_boot}"))
        .trim()
        .to_string();

    // `plan` shows the spare's layout, the boot steps and fstab's diff.
    let plan = sh(
        c,
        "luksify plan --spare /dev/vdb --strategy spare-keep --header-backup /root/vg0.luks-header 2>&1",
    );
    let bios = if label == "gpt" {
        "a 1 MiB BIOS boot partition /dev/vdb1 for GRUB's core, "
    } else {
        ""
    };
    assert!(
        plan.contains(&format!(
            "Partition /dev/vdb ({label}): {bios}/boot /dev/vdb{spare_boot} ({BOOT_MIB} MiB), LUKS container /dev/vdb{spare_container}"
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
        text.contains(&format!(
            "copied the files of /dev/vda{orig_boot} into /dev/vdb{spare_boot}"
        )),
        "{text}"
    );
    assert!(text.contains("GRUB installed on /dev/vdb"), "{text}");
    // The live guest has no udev, so no by-id name to give grub-pc's
    // debconf: the person is told to choose the disk after the first boot.
    assert!(
        text.contains("run `dpkg-reconfigure grub-pc` and choose that disk"),
        "{text}"
    );
    let uuid = sh(c, &format!("cryptsetup luksUUID /dev/vdb{spare_container}"))
        .trim()
        .to_string();
    let new_boot_uuid = sh(c, &format!("blkid -s UUID -o value /dev/vdb{spare_boot}"))
        .trim()
        .to_string();
    assert_ne!(new_boot_uuid, old_boot_uuid);
    assert_eq!(
        sh(c, &format!("blkid -s UUID -o value /dev/vda{orig_boot}")).trim(),
        old_boot_uuid
    );
    let spare_table = sh(c, "sfdisk --dump /dev/vdb");
    assert!(
        spare_table.contains(&format!("label: {label}")),
        "{spare_table}"
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
    let pv = format!("/dev/vda{orig_pv}");
    let pvs = sh(c, "lvm pvs --noheadings -o pv_name,vg_name");
    assert!(!pvs.contains(&pv), "{pvs}");
    let sig = c.exec(&format!("blkid -p {pv}"), T).unwrap();
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
        "the original disk's label, the space before /boot or /boot changed"
    );
    Migrated {
        uuid,
        boot_end,
        before,
        spare_table,
        migrate_time,
    }
}

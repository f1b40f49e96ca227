//! spare-keep when the ORIGINAL disk has a GPT label (`Variant::Gpt`: vda1
//! a 1 MiB BIOS boot partition, vda2 /boot, vda3 the PV, GRUB for i386-pc).
//! luksify gives the spare the original's table kind: GPT with its own BIOS
//! boot partition for GRUB's core, /boot as the 2nd partition and the LUKS
//! container as the 3rd, and the target's grub-install --target=i386-pc
//! writes the protective MBR's boot code and the core. Then the SPARE boots
//! alone through SeaBIOS and its own GRUB, cryptsetup-initramfs asks for the
//! passphrase, and boot-check finds the file tree intact, root on dm-crypt
//! and swap on. (First the GPT original boots unencrypted through its own
//! GRUB, to show the fixture is a bootable GPT install.) The original's bytes up to the end of its /boot (protective
//! MBR, primary GPT, BIOS boot partition, /boot) are unchanged.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::Scenario;
use migrate_common::spare_keep::plan_and_migrate;
use vm_tests::target_disk::{BOOT_MIB, Variant};
use vm_tests::unlock_boot::{self, boot_unencrypted};

/// GPT's BIOS boot partition type, as `sfdisk --dump` prints it.
const BIOS_BOOT: &str = "type=21686148-6449-6E6F-744E-656564454649";

/// A number field (`start=`, `size=`) of an `sfdisk --dump` line.
fn field(line: &str, name: &str) -> Option<u64> {
    line.split(',')
        .flat_map(|f| f.split(':'))
        .find_map(|f| f.trim().strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
#[ignore = "long: runs with cargo xtask test --all-vm"]
fn spare_keep_from_a_gpt_disk_boots_from_the_spare_alone() {
    let t0 = Instant::now();
    // /boot as large as the original's, GPT's 2 MiB and the container.
    let s = Scenario::of_variant(Variant::Gpt, |root_mib| root_mib + BOOT_MIB + 512);
    let ready = t0.elapsed();
    // The GPT original itself boots through SeaBIOS and its GRUB (the
    // protective MBR's boot code, the core in vda1): the baseline.
    let t_plain = Instant::now();
    let plain =
        boot_unencrypted("target-gpt-boot-plain", &s.disk, Duration::from_secs(240)).unwrap();
    plain.verify_unencrypted().unwrap();
    assert!(
        plain.text.contains("BOOTCHECK-LSBLK: `-vda3"),
        "{}",
        plain.text
    );
    let plain_time = t_plain.elapsed();
    let m = plan_and_migrate(&s, "migrate-spare-keep-gpt");
    // The spare's table: the BIOS boot partition first, then /boot, then
    // the container.
    let part = |n: u32| {
        m.spare_table
            .lines()
            .find(|l| l.starts_with(&format!("/dev/vdb{n} ")))
            .unwrap_or_else(|| panic!("no /dev/vdb{n}:\n{}", m.spare_table))
    };
    assert!(part(1).contains(BIOS_BOOT), "{}", m.spare_table);
    // 1 MiB, in 512-byte sectors.
    assert_eq!(field(part(1), "size"), Some(2048), "{}", m.spare_table);
    for n in [2, 3] {
        assert!(!part(n).contains(BIOS_BOOT), "{}", m.spare_table);
    }

    // The original is detached: the spare boots alone through its own GRUB.
    let t_boot = Instant::now();
    let report =
        unlock_boot::boot_and_unlock("migrate-spare-keep-gpt-boot", &s.spare, PASSPHRASE).unwrap();
    eprintln!(
        "timings: artefacts {ready:.1?}, unencrypted boot of the original {plain_time:.1?}, migrate {:.1?}, boot from the spare alone+unlock+check {:.1?}, total {:.1?}",
        m.migrate_time,
        t_boot.elapsed(),
        t0.elapsed()
    );
    report.verify_migrated(Some(&m.uuid)).unwrap();
}

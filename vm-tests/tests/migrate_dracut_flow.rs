//! Issue 6 item 1, the dracut target: a debootstrapped Debian 12 whose
//! initramfs generator is dracut (no initramfs-tools, no systemd: dracut's
//! scripted init). It first boots unencrypted through its GRUB; then the
//! live guest runs `luksify migrate --yes` (spare-return), which writes
//! crypttab, the dracut kernel parameters through GRUB's defaults and
//! regenerates the image with the target's own dracut in a chroot. The
//! target disk boots alone through GRUB, dracut's crypt module asks for the
//! passphrase on the serial console, and boot-check finds the file tree
//! intact, root on dm-crypt and swap working.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::{Scenario, migrate_yes, store_secret};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::qemu::GuestBuilder;
use vm_tests::target_disk::{self, Variant};

/// dracut's scripted crypt module leaves the prompt to cryptsetup ("Enter
/// passphrase for DEVICE: "); with systemd in the image it would be
/// systemd-cryptsetup's "Please enter passphrase for disk ...".
const PROMPT_RE: &str = r"(?:Enter passphrase for|Please enter passphrase for disk) [^\r\n]*: ";

fn boot_report_checks(text: &str) {
    assert!(
        text.contains("BOOTCHECK: root /dev/mapper/vg0-root"),
        "{text}"
    );
    assert!(text.contains("BOOTCHECK: sums ok"), "{text}");
    assert!(text.contains("BOOTCHECK: swap /dev/"), "{text}");
}

// The dracut scenario (its target's build included, ~13 min on a fresh
// machine) would take `.ci/run` past its 60 minutes: `cargo xtask test
// --all-vm` runs it.
#[test]
#[ignore = "long: runs with cargo xtask test --all-vm"]
fn dracut_target_boots_unencrypted_through_grub() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = target_disk::build_variant(&kernel, Variant::Dracut).unwrap();
    let built = t0.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("target.img");
    disk.copy_to(&img).unwrap();
    let mut g = GuestBuilder::new("dracut-target-boot-plain")
        .disk_with_serial(&img, "target")
        .start()
        .unwrap();
    let c = g.console();
    let report = c
        .wait_for("BOOTCHECK: end", Duration::from_secs(360))
        .unwrap();
    let text = String::from_utf8_lossy(&report.before).replace('\r', "");
    g.wait_exit(Duration::from_secs(60)).unwrap();
    eprintln!(
        "dracut target disk ready in {:.1?}; boot to report {:.1?}",
        built,
        t0.elapsed() - built
    );
    // dracut's own banner: the image GRUB loaded is dracut's.
    assert!(text.contains("dracut"), "{text}");
    boot_report_checks(&text);
    assert!(!text.contains(" crypt "), "{text}");
}

#[test]
#[ignore = "long: runs with cargo xtask test --all-vm"]
fn dracut_target_spare_return_boots_and_unlocks() {
    let t0 = Instant::now();
    let s = Scenario::of_variant(Variant::Dracut, |root_mib| root_mib + 512);
    let ready = t0.elapsed();
    let mut g = s.boot_live("migrate-dracut-flow");
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    store_secret(c, "/root/pass", PASSPHRASE, T);
    let (text, migrate_time) = migrate_yes(c, Duration::from_secs(1200));
    assert!(
        !text.contains("needs other boot changes than the plan showed"),
        "{text}"
    );
    sh(c, "rm /root/pass");
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2").trim().to_string();
    g.poweroff(T).unwrap();
    drop(g);

    // The spare is detached: the target boots alone through its own GRUB.
    let t_boot = Instant::now();
    let mut g = GuestBuilder::new("migrate-dracut-flow-boot")
        .disk_with_serial(&s.target, "target")
        .start()
        .unwrap();
    let c = g.console();
    c.send_secret_after(PROMPT_RE, PASSPHRASE.as_bytes(), Duration::from_secs(420))
        .unwrap();
    let report = c
        .wait_for("BOOTCHECK: end", Duration::from_secs(300))
        .unwrap();
    let text = String::from_utf8_lossy(&report.before).replace('\r', "");
    g.wait_exit(Duration::from_secs(60)).unwrap();
    eprintln!(
        "timings: artefacts {ready:.1?}, migrate {migrate_time:.1?}, boot+unlock+check {:.1?}, total {:.1?}",
        t_boot.elapsed(),
        t0.elapsed()
    );
    boot_report_checks(&text);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("BOOTCHECK-DM: luks-{uuid}: "))
                && l.contains(" crypt aes-xts-plain64 ")),
        "root's PV is not the LUKS container {uuid}:\n{text}"
    );
    assert!(!text.contains(PASSPHRASE));
}

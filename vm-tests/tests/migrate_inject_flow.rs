//! Issue 5's seed flow proper: a target WITHOUT cryptsetup-initramfs (only
//! cryptsetup-bin), so its own initramfs-tools cannot unlock LUKS and
//! `luksify migrate` adds the unlock to the image itself. The live guest
//! runs `luksify migrate --yes` (spare-return, passphrase on stdin); then
//! the target disk boots alone through GRUB, luksify's hook asks for the
//! passphrase, a wrong one is rejected and the prompt comes back (issue 6
//! item 3), the right one unlocks, and boot-check finds the file tree
//! intact, root on dm-crypt and swap working. Then the target installs a
//! second kernel package (issue 6 item 4; from the live guest, `dpkg -i` in
//! a chroot of the unlocked target): its postinst runs the target's own
//! update-initramfs, which builds the new kernel's image with the hook
//! luksify installed, and update-grub, which makes it GRUB's default; the
//! target boots that kernel through GRUB and unlocks again.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::{Scenario, Unlock, kernel_update_boots, migrate_yes, store_secret};
use vm_tests::qemu::GuestBuilder;
use vm_tests::target_disk::Variant;
use vm_tests::unlock_boot::{luksify_prompt, refused_then_unlocked};

#[test]
fn inject_flow_without_cryptsetup_initramfs_boots_after_a_wrong_passphrase() {
    let t0 = Instant::now();
    let s = Scenario::of_variant(Variant::NoCryptsetupInitramfs, |root_mib| root_mib + 512);
    let ready = t0.elapsed();

    let mut g = s.boot_live("migrate-inject-flow");
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    store_secret(c, "/root/pass", PASSPHRASE, T);
    let (text, migrate_time) = migrate_yes(c, Duration::from_secs(1800));
    // luksify's engine did the initramfs, not the target's update-initramfs.
    assert!(
        text.contains("Add the LUKS unlock to the initramfs"),
        "{text}"
    );
    assert!(
        text.contains("the original is kept as /boot/initrd.img-"),
        "{text}"
    );
    assert!(text.contains("`luksify initrd verify` passes"), "{text}");
    assert!(
        text.contains("wrote /etc/initramfs-tools/hooks/luksify"),
        "{text}"
    );
    // The closing advice names the prompt the person will really see.
    assert!(
        text.contains("it asks:  Passphrase to unlock luks-"),
        "{text}"
    );
    assert!(
        !text.contains("needs other boot changes than the plan showed"),
        "{text}"
    );
    sh(c, "rm /root/pass");
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2").trim().to_string();
    // The original image is kept beside the new one; a second look with the
    // engine agrees the new one unlocks.
    sh(c, "mkdir -p /mnt/boot && mount /dev/vda1 /mnt/boot");
    let boot = sh(c, "ls /mnt/boot");
    assert!(boot.contains(".luksify-backup"), "{boot}");
    let verify = sh(
        c,
        &format!(
            "for i in /mnt/boot/initrd.img-*[0-9a-z]; do case $i in *.luksify-backup) ;; *) luksify initrd verify \"$i\" --luks-uuid {uuid} --vg vg0 || exit 1;; esac; done"
        ),
    );
    assert!(verify.contains("can unlock LUKS UUID"), "{verify}");
    sh(c, "umount /mnt/boot");
    g.poweroff(T).unwrap();
    drop(g);

    // The spare is detached: the target boots alone through its own GRUB.
    let t_boot = Instant::now();
    let mut g = GuestBuilder::new("migrate-inject-flow-boot")
        .disk_with_serial(&s.target, "target")
        .start()
        .unwrap();
    let c = g.console();
    refused_then_unlocked(c, PASSPHRASE).unwrap();
    let report = c
        .wait_for("BOOTCHECK: end", Duration::from_secs(240))
        .unwrap();
    let text = String::from_utf8_lossy(&report.before).replace('\r', "");
    g.wait_exit(Duration::from_secs(60)).unwrap();
    eprintln!(
        "timings: artefacts {ready:.1?}, migrate {migrate_time:.1?}, boot+wrong+right passphrase+check {:.1?}, total {:.1?}",
        t_boot.elapsed(),
        t0.elapsed()
    );
    assert!(
        !text.contains("did not unlock"),
        "the right passphrase was rejected:\n{text}"
    );
    assert!(
        text.contains("BOOTCHECK: root /dev/mapper/vg0-root"),
        "{text}"
    );
    assert!(text.contains("BOOTCHECK: sums ok"), "{text}");
    assert!(text.contains("BOOTCHECK: swap /dev/"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("BOOTCHECK-DM: ")
            && l.contains(&uuid)
            && l.contains(" crypt aes-xts-plain64 ")),
        "root's PV is not the LUKS container {uuid}:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("BOOTCHECK-LSBLK: ") && l.contains(" crypt")),
        "{text}"
    );
    assert!(!text.contains(PASSPHRASE));
    assert!(!text.contains("not-the-passphrase"));
    drop(g);

    // A kernel update: the target installs a second kernel package.
    let report = kernel_update_boots(
        &s,
        "migrate-inject-flow",
        &uuid,
        Unlock::Luksify,
        &luksify_prompt(1),
        t0,
    );
    assert!(!report.text.contains("did not unlock"), "{}", report.text);
}

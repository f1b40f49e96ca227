//! Issue 6 item 6, the seed's own situation: CentOS 5's layout
//! (VolGroup00/LogVol00 root, LogVol01 swap, a separate ext3 /boot with a
//! GRUB legacy grub.conf) and a mkinitrd initrd whose /init is a nash script
//! with `mkblkdevs` (`vm_tests::legacy_target`: Debian pieces in that shape,
//! nash a documented stand-in). The target first boots unencrypted; then
//! `luksify migrate --yes` (spare-return) in the live guest detects GRUB
//! legacy and mkinitrd/nash, adds the unlock to /boot/initrd-KVER.img after
//! the init's `mkblkdevs` (original kept), leaves grub.conf as it is (nash
//! takes no kernel parameters) and verifies the image with its own reader.
//! Then the disk boots alone through GRUB legacy in its MBR (GRUB 0.97 from
//! Debian's grub-legacy, installed by its own `setup (hd0)`), whose default
//! stanza's kernel command line the kernel reports; the unlock finds the container by its LUKS UUID without udev, a wrong
//! passphrase is refused and asked again, the right one unlocks, and
//! boot-check finds the file tree intact, root on VolGroup00 inside the
//! container and the swap LV working.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::{migrate_yes, store_secret};
use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::legacy_target::{self, LegacyBoot, ROOT_LV, SWAP_LV, VG};
use vm_tests::live_env::{self, PROMPT};
use vm_tests::luksify_bin;
use vm_tests::qemu::{Guest, GuestBuilder};
use vm_tests::unlock_boot::refused_then_unlocked;

/// Boots `target` alone: SeaBIOS → GRUB legacy in the MBR → the default
/// stanza's kernel (boot-check reports the command line it got).
fn boot_through_grub(name: &str, target: &std::path::Path) -> Guest {
    let mut g = GuestBuilder::new(name)
        .disk_with_serial(target, "target")
        .start()
        .unwrap();
    g.console()
        .wait_for("Linux version", Duration::from_secs(300))
        .unwrap();
    g
}

/// boot-check's report, once the guest powered off.
fn report(g: &mut Guest) -> String {
    let m = g
        .console()
        .wait_for("BOOTCHECK: end", Duration::from_secs(300))
        .unwrap();
    g.wait_exit(Duration::from_secs(60)).unwrap();
    String::from_utf8_lossy(&m.before).replace('\r', "")
}

#[test]
fn legacy_layout_with_nash_boots_after_a_wrong_passphrase() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = legacy_target::build(&kernel).unwrap();
    let luksify = luksify_bin::release().unwrap();
    let live = live_env::build(&kernel, &[luksify]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.img");
    let spare = dir.path().join("spare.img");
    disk.copy_to(&target).unwrap();
    disk::create_sparse(&spare, (disk.root_mib + 512) * MIB).unwrap();
    let ready = t0.elapsed();
    let kver = &disk.kver;
    let root_dev = format!("/dev/mapper/{VG}-{ROOT_LV}");

    // Unencrypted, as installed: GRUB legacy boots its default stanza.
    let t_plain = Instant::now();
    let before = LegacyBoot::read(&target).unwrap();
    assert_eq!(before.stanza.kernel, format!("/vmlinuz-{kver}"));
    assert_eq!(
        before.stanza.initrd.as_deref(),
        Some(format!("/initrd-{kver}.img").as_str())
    );
    let mut g = boot_through_grub("migrate-legacy-flow-plain", &target);
    g.console()
        .wait_for("Scanning logical volumes", Duration::from_secs(300))
        .unwrap();
    let text = report(&mut g);
    // GRUB legacy booted its default stanza.
    assert!(
        text.contains(&format!("BOOTCHECK: cmdline {}", before.stanza.args)),
        "{text}"
    );
    assert!(
        text.contains(&format!("BOOTCHECK: root {root_dev}")),
        "{text}"
    );
    assert!(text.contains("BOOTCHECK: sums ok"), "{text}");
    assert!(text.contains("BOOTCHECK: swap /dev/"), "{text}");
    assert!(!text.contains(" crypt"), "{text}");
    drop(g);
    let plain_time = t_plain.elapsed();

    let mut g = GuestBuilder::new("migrate-legacy-flow")
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
    sh(c, &format!("vgchange -ay {VG}"));
    // What luksify sees: GRUB legacy and mkinitrd/nash.
    let probe = sh(c, "luksify probe");
    eprintln!("luksify probe:\n{probe}");
    assert!(
        probe.contains("initramfs: nash, boot: grub-legacy"),
        "{probe}"
    );
    // The room check's figure, read with the live system's (busybox) stat.
    let free = regex::Regex::new(r"/boot: (\d+) MiB free").unwrap();
    let mib: u64 = free
        .captures(&probe)
        .unwrap_or_else(|| panic!("the probe names /boot's free space:\n{probe}"))[1]
        .parse()
        .unwrap();
    assert!(
        mib > 100 && mib < vm_tests::target_disk::BOOT_MIB,
        "{probe}"
    );
    store_secret(c, "/root/pass", PASSPHRASE, T);
    let (text, migrate_time) = migrate_yes(c, Duration::from_secs(1800));
    for expected in [
        "Add the LUKS unlock to the initramfs",
        &format!("/boot/initrd-{kver}.img: added cryptsetup"),
        &format!("the original is kept as /boot/initrd-{kver}.img.luksify-backup"),
        "luksify's own reader checks it",
        "`luksify initrd verify` passes",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("needs other boot changes than the plan showed"),
        "{text}"
    );
    sh(c, "rm /root/pass");
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2").trim().to_string();
    sh(c, "mkdir -p /mnt/boot && mount /dev/vda1 /mnt/boot");
    let verify = sh(
        c,
        &format!("luksify initrd verify /mnt/boot/initrd-{kver}.img --luks-uuid {uuid} --vg {VG}"),
    );
    assert!(verify.contains("can unlock LUKS UUID"), "{verify}");
    // The unlock sits after the mkblkdevs that follows the drivers.
    let init = sh(
        c,
        &format!(
            "mkdir /tmp/i && cd /tmp/i && zcat /mnt/boot/initrd-{kver}.img | cpio -i init 2>/dev/null; cat init"
        ),
    );
    let (head, tail) = init
        .split_once("# luksify: unlock")
        .unwrap_or_else(|| panic!("no unlock in /init:\n{init}"));
    assert!(head.contains("insmod /lib/virtio_blk.ko"), "{init}");
    assert!(head.trim_end().ends_with("mkblkdevs"), "{init}");
    assert!(tail.contains("/bin/sh /sbin/luksify-unlock"), "{init}");
    sh(c, "cd / && umount /mnt/boot");
    g.poweroff(T).unwrap();
    drop(g);

    // What GRUB legacy reads from the migrated disk.
    let after = LegacyBoot::read(&target).unwrap();
    eprintln!("grub.conf after the migration:\n{}", after.grub_conf);
    // nash takes no kernel parameters: the stanza luksify left is the
    // installed one, whose initrd is now the one with the unlock.
    assert_eq!(after.stanza, before.stanza);
    assert!(
        after
            .stanza
            .args
            .starts_with(&format!("ro root=/dev/{VG}/{ROOT_LV} ")),
        "{:?}",
        after.stanza
    );
    assert_ne!(
        std::fs::read(&after.initrd).unwrap(),
        std::fs::read(&before.initrd).unwrap(),
        "the initrd the stanza names was not changed"
    );

    let t_boot = Instant::now();
    let mut g = boot_through_grub("migrate-legacy-flow-boot", &target);
    let c = g.console();
    refused_then_unlocked(c, PASSPHRASE).unwrap();
    let text = report(&mut g);
    eprintln!(
        "timings: artefacts {ready:.1?}, unencrypted boot {plain_time:.1?}, migrate {migrate_time:.1?}, boot+wrong+right passphrase+check {:.1?}, total {:.1?}",
        t_boot.elapsed(),
        t0.elapsed()
    );
    assert!(
        !text.contains("did not unlock /dev"),
        "the right passphrase was rejected:\n{text}"
    );
    assert!(
        text.contains(&format!("BOOTCHECK: cmdline {}", after.stanza.args)),
        "{text}"
    );
    assert!(
        text.contains(&format!("BOOTCHECK: root {root_dev}")),
        "{text}"
    );
    assert!(text.contains("BOOTCHECK: sums ok"), "{text}");
    assert!(
        text.contains("BOOTCHECK: swap /dev/"),
        "swap {SWAP_LV} did not come on:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("BOOTCHECK-DM: luks-{uuid}: "))
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
}

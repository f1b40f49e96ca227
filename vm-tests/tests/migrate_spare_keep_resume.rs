//! spare-keep cut by a power loss in its boot steps: QEMU is killed while
//! the target's update-initramfs runs (after the new /boot was made, filled
//! and named in fstab). After the reboot the person opens the container and
//! activates the VG, `luksify plan` resumes without a second mkfs or copy,
//! `luksify migrate` finishes, and the spare boots alone and unlocks.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::{Scenario, migrate_yes_with, store_secret};
use vm_tests::target_disk::BOOT_MIB;
use vm_tests::unlock_boot;

#[test]
#[ignore = "long: runs with cargo xtask test --all-vm"]
fn spare_keep_cut_during_the_initramfs_step_resumes_after_reboot() {
    let t0 = Instant::now();
    let s = Scenario::new(|root_mib| root_mib + BOOT_MIB + 512);
    let mut g = s.boot_live("migrate-spare-keep-resume");
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    store_secret(c, "/root/pass", PASSPHRASE, T);
    // luksify in the background; QEMU is killed 15 s into the initramfs step
    // (its progress line `[N/M] Rebuild…`, not the plan printed before it).
    let seen = c
        .run_ok(
            "luksify migrate --yes --spare /dev/vdb --strategy spare-keep \
             --header-backup /root/vg0.luks-header --passphrase-stdin \
             --pbkdf pbkdf2 --iter-time 100 < /root/pass > /root/m1.log 2>&1 & pid=$!; \
             until grep -q '^\\[[0-9]*/[0-9]*\\] Rebuild the initramfs' /root/m1.log; do kill -0 $pid || break; sleep 1; done; \
             sleep 15; kill -0 $pid && cat /root/m1.log",
            Duration::from_secs(1200),
        )
        .unwrap();
    assert!(seen.contains("wrote /etc/fstab"), "{seen}");
    assert!(!seen.contains("steps done"), "{seen}");
    g.kill_9().unwrap();
    drop(g);
    let crashed = t0.elapsed();

    let mut g = s.boot_live("migrate-spare-keep-resume-reboot");
    let c = g.console();
    store_secret(c, "/root/pass", PASSPHRASE, T);
    // What the person does after the reboot: open the container, activate.
    let uuid = sh(c, "cryptsetup luksUUID /dev/vdb2").trim().to_string();
    sh(
        c,
        &format!("cryptsetup open /dev/vdb2 luks-{uuid} < /root/pass && vgchange -ay vg0"),
    );
    // The probe mounts the target's root read-only without journal replay;
    // what it sees of a root cut off mid-write (diagnostics for the log).
    let diag = c
        .exec(
            "blkid -p /dev/vg0/root; mkdir -p /x; mount -t ext4 -o ro,noload /dev/vg0/root /x; echo mount=$?;              ls /x/etc/fstab; umount /x; dmesg | tail -n 8",
            T,
        )
        .unwrap();
    eprintln!(
        "after the power cut:\n{}{}",
        diag.stdout_str(),
        diag.stderr_str()
    );
    let mut plan_out = c
        .exec(
            "luksify plan --spare /dev/vdb --strategy spare-keep --header-backup /root/vg0.luks-header 2>&1",
            T,
        )
        .unwrap();
    if plan_out.code != 0 {
        // Seen once (of two runs): the first `luksify plan` after the reboot
        // refused "no root filesystem was found" although vg0 was active: the
        // root's journal needed recovery and the probe reads without replaying
        // it. The refusal must say so and name the command; the test then does
        // what it says, as a person would.
        eprintln!("plan before fsck:\n{}", plan_out.stdout_str());
        assert!(
            plan_out.stdout_str().contains("needs recovery")
                && plan_out.stdout_str().contains("e2fsck -p /dev/"),
            "a plan refused after the power loss must name the root's journal and e2fsck -p:\n{}",
            plan_out.stdout_str()
        );
        let fsck = c.exec("e2fsck -p /dev/vg0/root", T).unwrap();
        eprintln!(
            "e2fsck: {}\n{}{}",
            fsck.code,
            fsck.stdout_str(),
            fsck.stderr_str()
        );
        plan_out = c
            .exec(
                "luksify plan --spare /dev/vdb --strategy spare-keep --header-backup /root/vg0.luks-header 2>&1",
                T,
            )
            .unwrap();
    }
    let plan = plan_out.stdout_str();
    assert_eq!(plan_out.code, 0, "{plan}");
    assert!(plan.contains("resuming:"), "{plan}");
    assert!(!plan.contains("Make the new /boot filesystem"), "{plan}");
    assert!(
        plan.contains("Copy /boot to /dev/vdb1 and mount it as the target's /boot"),
        "{plan}"
    );
    let (text, migrate_time) = migrate_yes_with(c, "spare-keep", Duration::from_secs(1800));
    sh(c, "rm /root/pass");
    assert!(
        text.contains("already holds the complete copy of /boot"),
        "{text}"
    );
    assert!(
        text.contains("/etc/fstab already mounts /boot by UUID="),
        "{text}"
    );
    assert!(text.contains("GRUB installed on /dev/vdb"), "{text}");
    g.poweroff(T).unwrap();
    drop(g);

    let t_boot = Instant::now();
    let report =
        unlock_boot::boot_and_unlock("migrate-spare-keep-resume-boot", &s.spare, PASSPHRASE)
            .unwrap();
    eprintln!(
        "timings: killed at {crashed:.1?}, resumed migrate {migrate_time:.1?}, boot from the spare+unlock+check {:.1?}, total {:.1?}",
        t_boot.elapsed(),
        t0.elapsed()
    );
    report.verify_migrated(Some(&uuid)).unwrap();
}

//! Issue 5's seed flow on a target that has cryptsetup-initramfs: the live
//! guest runs `luksify migrate --yes` (spare-return, passphrase on stdin);
//! then the target disk boots alone through GRUB, asks for the passphrase on
//! the serial console, unlocks, and boot-check finds the file tree intact,
//! root on dm-crypt and swap working. At the prompt a wrong passphrase is
//! typed first (issue 6): it is rejected and the prompt comes back. Then a
//! kernel update (issue 6 item 4): the target installs a second kernel
//! package, whose postinst builds its image with cryptsetup-initramfs and
//! the crypttab luksify wrote; GRUB boots it and it unlocks.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::{Scenario, Unlock, kernel_update_boots, migrate_yes, store_secret};
use vm_tests::unlock_boot::{self, UNLOCK_PROMPT};

/// Typed once at the unlock prompt before the right one.
const WRONG_PASSPHRASE: &str = "not-the-passphrase";

#[test]
fn seed_flow_spare_return_boots_and_unlocks() {
    let t0 = Instant::now();
    let s = Scenario::new(|root_mib| root_mib + 512);
    let ready = t0.elapsed();
    let mut g = s.boot_live("migrate-seed-flow");
    let c = g.console();
    // What a person does on a live CD that does not auto-activate LVM.
    sh(c, "vgchange -ay vg0");
    // The passphrase reaches luksify on stdin, never in argv.
    store_secret(c, "/root/pass", PASSPHRASE, T);
    // A heartbeat on the console while luksify runs: should the migration
    // ever hang, the log tells a frozen guest from a stuck device-mapper.
    sh(
        c,
        "( while sleep 30; do echo \"[heartbeat $(cut -d' ' -f1 /proc/uptime)] load $(cut -d' ' -f1-3 /proc/loadavg); $(dmsetup status 2>&1 | tr '\\n' ';')\"; done ) \
         </dev/null >/dev/ttyS0 2>&1 & echo $! > /run/heartbeat.pid",
    );
    // Idle it takes 2-3 minutes; a hang must fail well inside CI's limit.
    let (text, migrate_time) = migrate_yes(c, Duration::from_secs(900));
    sh(c, "kill $(cat /run/heartbeat.pid)");
    // The boot changes the probe's view predicted are the ones applied.
    assert!(
        !text.contains("needs other boot changes than the plan showed"),
        "{text}"
    );
    sh(c, "rm /root/pass");
    let header = sh(c, "cryptsetup luksDump /root/vg0.luks-header | head -3");
    assert!(header.contains("LUKS header information"), "{header}");
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2").trim().to_string();
    let spare_sig = c.exec("blkid -p /dev/vdb", T).unwrap();
    assert_ne!(spare_sig.code, 0, "the spare still carries a signature");
    g.poweroff(T).unwrap();
    drop(g);

    // The spare is detached: the target boots alone through its own GRUB.
    let t_boot = Instant::now();
    let mut g = unlock_boot::boot_target("migrate-seed-flow-boot", &s.target, None).unwrap();
    let c = g.console();
    // Issue 6, wrong passphrase at boot: rejected, and the prompt comes back.
    c.send_secret_after(
        UNLOCK_PROMPT,
        WRONG_PASSPHRASE.as_bytes(),
        Duration::from_secs(300),
    )
    .unwrap();
    // The console wraps cryptsetup's long message.
    c.wait_for(
        r"cryptsetup\s+failed, bad password",
        Duration::from_secs(120),
    )
    .unwrap();
    c.send_secret_after(
        UNLOCK_PROMPT,
        PASSPHRASE.as_bytes(),
        Duration::from_secs(120),
    )
    .unwrap();
    let report = unlock_boot::wait_report(&mut g).unwrap();
    eprintln!(
        "timings: artefacts {ready:.1?}, migrate {migrate_time:.1?}, boot+unlock+check {:.1?}, total {:.1?}",
        t_boot.elapsed(),
        t0.elapsed()
    );
    report.verify_migrated(Some(&uuid)).unwrap();
    let text = report.text;
    assert!(!text.contains(PASSPHRASE));
    assert!(!text.contains(WRONG_PASSPHRASE));
    drop(g);

    kernel_update_boots(
        &s,
        "migrate-seed-flow",
        &uuid,
        Unlock::CryptsetupInitramfs,
        UNLOCK_PROMPT,
        t0,
    );
}

//! Issue 7's guided conversation, once for real: in the live guest a person
//! runs `luksify migrate` with no choice on the command line and answers every
//! question over the serial console (spare, strategy, backup place, the
//! passphrase twice without echo, the recovery passphrase, the VG's name to
//! confirm); the run goes to its end; then the target boots alone through
//! GRUB and unlocks with the passphrase typed at its prompt.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::Scenario;
use vm_tests::unlock_boot;
use vm_tests::wizard_driver::{self, Answers};

#[test]
fn wizard_over_the_serial_console_migrates_and_the_target_unlocks() {
    let t0 = Instant::now();
    let s = Scenario::new(|root_mib| root_mib + 512);
    let ready = t0.elapsed();
    let mut g = s.boot_live("wizard-serial");
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    let t_migrate = Instant::now();
    let out = wizard_driver::migrate(
        c,
        // Only the test speed-ups: every choice is asked.
        "--pbkdf pbkdf2 --iter-time 100",
        &Answers {
            spare: "1".into(),
            strategy: "1".into(),
            header_backup: "/root/vg0.luks-header".into(),
            passphrase: PASSPHRASE.into(),
            recovery: true,
            vg: "vg0".into(),
        },
        Duration::from_secs(1800),
    )
    .unwrap();
    let migrate_time = t_migrate.elapsed();
    eprintln!("luksify migrate ({migrate_time:.1?}):\n{}", out.transcript);
    assert_eq!(out.code, 0, "luksify migrate failed:\n{}", out.transcript);
    let t = &out.transcript;
    // What was found, the offered spare, the plan, the run, what to do next.
    for want in [
        "holds the root filesystem (vg0/root)",
        "1) /dev/vdb",
        "1) spare-return: move the data to /dev/vdb",
        "Recovery passphrase. Write it down now",
        "[1/",
        "All ",
        "Done. Volume group vg0 now lives inside the LUKS container on /dev/vda2",
        "/dev/vdb is empty again: you may shut down and detach it.",
        "Please unlock disk ",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    let header = sh(c, "cryptsetup luksDump /root/vg0.luks-header");
    assert!(header.contains("LUKS header information"), "{header}");
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2").trim().to_string();
    // The recovery passphrase the wizard showed opens the container too
    // (typed at cryptsetup's own no-echo prompt).
    let recovery = out.recovery.clone().expect("no recovery passphrase shown");
    c.send_line("cryptsetup open --test-passphrase /dev/vda2; printf '@@%s@@\\n' \"RECOVERY:$?\"")
        .unwrap();
    c.send_secret_after("Enter passphrase for [^:]+: ", recovery.as_bytes(), T)
        .unwrap();
    c.wait_for("@@RECOVERY:0@@", T).unwrap();
    let spare_sig = c.exec("blkid -p /dev/vdb", T).unwrap();
    assert_ne!(spare_sig.code, 0, "the spare still carries a signature");
    let live_log = c.log_path().to_path_buf();
    g.poweroff(T).unwrap();
    drop(g);
    // Echo was on at the shell, as for a person: the passphrase still never
    // reached the screen.
    wizard_driver::assert_not_in_log(&live_log, PASSPHRASE).unwrap();

    // The spare is detached: the target boots alone through its own GRUB.
    let t_boot = Instant::now();
    let report = unlock_boot::boot_and_unlock("wizard-serial-boot", &s.target, PASSPHRASE).unwrap();
    eprintln!(
        "timings: artefacts {ready:.1?}, wizard+migrate {migrate_time:.1?}, boot+unlock+check {:.1?}, total {:.1?}",
        t_boot.elapsed(),
        t0.elapsed()
    );
    report.verify_migrated(Some(&uuid)).unwrap();
    assert!(!report.text.contains(PASSPHRASE));
}

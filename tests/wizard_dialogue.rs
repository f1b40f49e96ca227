//! The guided `luksify migrate`, driven through a pseudo-terminal as a person
//! would answer it, against the real seed snapshot (modified per test) in
//! dry-run mode.

use std::path::{Path, PathBuf};
use std::process::Command;

use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_luksify");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/seed-layout.snapshot.json"
);

fn fixture() -> Value {
    serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap()
}

fn save(dir: &Path, snap: &Value) -> PathBuf {
    let p = dir.join("snapshot.json");
    std::fs::write(&p, serde_json::to_vec(snap).unwrap()).unwrap();
    p
}

/// The seed snapshot plus: a 300 MiB disk (too small), a large disk the live
/// system runs from, and a large disk carrying an old partition table.
fn crowded() -> Value {
    let mut s = fixture();
    let spare = s["disks"][1].clone();
    let disks = s["disks"].as_array_mut().unwrap();
    let mut small = spare.clone();
    small["path"] = json!("/dev/vdc");
    small["size"] = json!(300u64 << 20);
    let mut live = spare.clone();
    live["path"] = json!("/dev/sdz");
    live["size"] = json!(8u64 << 30);
    live["model"] = json!("Live USB");
    let mut used = spare.clone();
    used["path"] = json!("/dev/vdd");
    used["size"] = json!(2u64 << 30);
    used["partition_table"] = json!({"kind": "dos", "uuid": "deadbeef"});
    used["partitions"] = json!([{
        "path": "/dev/vdd1", "number": 1, "start": 1048576, "size": 1u64 << 30,
        "type_id": "0x83", "part_uuid": "deadbeef-01",
        "signature": {"kind": "ext4", "uuid": "0b9c0f7e-0000-4000-8000-000000000001", "label": null, "version": "1.0"}
    }]);
    disks.extend([small, live, used]);
    s["live_system_disks"] = json!(["/dev/sdz"]);
    s
}

fn spawn(args: &[&str], snapshot: &Path, colour: bool) -> PtySession {
    spawn_on(args, snapshot, colour, "xterm")
}

fn spawn_on(args: &[&str], snapshot: &Path, colour: bool, term: &str) -> PtySession {
    let mut c = Command::new(BIN);
    c.arg("migrate")
        .arg("--dry-run")
        .arg("--snapshot")
        .arg(snapshot)
        .args(args)
        .env("TERM", term);
    if colour {
        c.env_remove("NO_COLOR");
    } else {
        c.env("NO_COLOR", "1");
    }
    spawn_command(c, Some(10_000)).expect("spawning luksify in a pty")
}

fn exit_code(p: &PtySession) -> i32 {
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("luksify did not exit normally: {other:?}"),
    }
}

fn passphrase_twice(p: &mut PtySession, secret: &str) {
    p.exp_string("Passphrase:").unwrap();
    p.send_line(secret).unwrap();
    p.exp_string("Type it again:").unwrap();
    p.send_line(secret).unwrap();
}

#[test]
fn spare_keep_with_every_question_answered() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &crowded());
    let mut p = spawn(&[], &snap, false);

    // What was found.
    p.exp_string("/dev/vda").unwrap();
    p.exp_string("serial target  via virtio  <- holds the root filesystem (vg0/root)")
        .unwrap();
    p.exp_string("root               500 MiB  ext4  <- root filesystem")
        .unwrap();
    p.exp_string("The live system runs from /dev/sdz").unwrap();
    p.exp_string("it needs at least 565 MiB").unwrap();

    // Spare: ineligible disks are explained, not offered.
    p.exp_string("not offered: /dev/vda (it holds volume group vg0 (/dev/vda2), the installed system's /boot (/dev/vda1))").unwrap();
    p.exp_string("not offered: /dev/vdc (too small: 300 MiB")
        .unwrap();
    p.exp_string("not offered: /dev/sdz (the live system runs from it)")
        .unwrap();
    p.exp_string("1) /dev/vdb").unwrap();
    p.exp_string("2) /dev/vdd").unwrap();
    p.exp_string(
        "carries a dos partition table with 1 partition(s), ext4 on /dev/vdd1; it would be wiped",
    )
    .unwrap();
    p.exp_string("Spare disk (1-2 or its path)").unwrap();
    p.send_line("/dev/vdc").unwrap();
    p.exp_string("/dev/vdc is not offered: too small").unwrap();
    p.exp_string("Spare disk").unwrap();
    p.send_line("2").unwrap();
    p.exp_string("Destroy everything on /dev/vdd?").unwrap();
    p.send_line("n").unwrap();
    p.exp_string("Spare disk").unwrap();
    p.send_line("1").unwrap();

    // Strategy, with bytes and the assumed speed.
    p.exp_string("times assume a read speed of 100 MiB/s, assumed: nothing was measured")
        .unwrap();
    p.exp_string("spare-return: move the data to /dev/vdb")
        .unwrap();
    p.exp_string("moves 1.1 GiB (about 22 s)").unwrap();
    p.exp_string("spare-keep: encrypt /dev/vdb").unwrap();
    p.exp_string("moves 564 MiB (about 11 s)").unwrap();
    p.exp_string("Strategy (1, 2 or its name)").unwrap();
    p.send_line("2").unwrap();

    // Backup place: a disk being changed is refused.
    p.exp_string("Header backup file").unwrap();
    p.send_line("/mnt/target/boot/vg0.hdr").unwrap();
    p.exp_string("Refused: the backup path /mnt/target/boot/vg0.hdr is on /dev/vda1")
        .unwrap();
    p.exp_string("Header backup file").unwrap();
    p.send_line("/root/keys/vg0.hdr").unwrap();
    p.exp_string("is in the live system's memory").unwrap();

    // Passphrase: empty rejected, short warned, mismatch restarts.
    p.exp_string("Passphrase:").unwrap();
    p.send_line("").unwrap();
    p.exp_string("An empty passphrase would protect nothing")
        .unwrap();
    p.exp_string("Passphrase:").unwrap();
    p.send_line("hunter2").unwrap();
    p.exp_string("Warning: that is only 7 characters").unwrap();
    p.exp_string("Keep this short passphrase?").unwrap();
    p.send_line("n").unwrap();
    p.exp_string("Passphrase:").unwrap();
    p.send_line("correct horse battery").unwrap();
    p.exp_string("Type it again:").unwrap();
    p.send_line("correct horse batterY").unwrap();
    p.exp_string("The two entries differ; start again.")
        .unwrap();
    passphrase_twice(&mut p, "correct horse battery");

    // Recovery passphrase: shown once, its last group typed back.
    p.exp_string("Add a generated recovery passphrase to write down?")
        .unwrap();
    p.send_line("y").unwrap();
    let (_, recovery) = p.exp_regex("([0-9a-z]{5}-){7}[0-9a-z]{5}").unwrap();
    let last = recovery.rsplit('-').next().unwrap().to_string();
    p.exp_string("last group").unwrap();
    p.send_line("zzzzzz").unwrap();
    p.exp_string("That is not the last group").unwrap();
    p.exp_string("last group").unwrap();
    p.send_line(&last).unwrap();

    // The plan, then confirmation by the VG's name.
    p.exp_string("Plan: encrypt volume group vg0 (spare-keep strategy)")
        .unwrap();
    p.exp_string("A second keyslot will hold the recovery passphrase")
        .unwrap();
    p.exp_string("type the volume group name (vg0)").unwrap();
    p.send_line("vg0").unwrap();
    p.exp_string("the plan above was not executed and nothing was written")
        .unwrap();
    let tail = p.exp_eof().unwrap();
    assert!(
        tail.contains(
            "luksify migrate --spare /dev/vdb --strategy spare-keep --header-backup /root/keys/vg0.hdr --recovery-passphrase"
        ),
        "{tail}"
    );
    assert!(!tail.contains("correct horse"), "{tail}");
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn spare_return_then_wrong_confirmation_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &fixture());
    let key = dir.path().join("key");
    std::fs::write(&key, "a long enough passphrase").unwrap();
    let backup = dir.path().join("out/vg0.hdr");
    let mut p = spawn(
        &[
            "--spare",
            "/dev/vdb",
            "--header-backup",
            backup.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--no-recovery-passphrase",
            "--read-speed",
            "50",
        ],
        &snap,
        false,
    );
    p.exp_string("times assume a read speed of 50 MiB/s, as given")
        .unwrap();
    p.exp_string("moves 1.1 GiB (about 45 s)").unwrap();
    p.exp_string("Strategy (1, 2 or its name)").unwrap();
    p.send_line("3").unwrap();
    p.exp_string("Answer 1 (spare-return) or 2 (spare-keep).")
        .unwrap();
    p.send_line("spare-return").unwrap();
    p.exp_string("Plan: encrypt volume group vg0 (spare-return strategy)")
        .unwrap();
    p.exp_string("Rehearsal: type the volume group name (vg0)")
        .unwrap();
    p.send_line("yes").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(
        rest.contains("the confirmation \"yes\" does not match the volume group name \"vg0\"; nothing was written"),
        "{rest}"
    );
    assert!(!rest.contains("Dry run: the plan above"), "{rest}");
    assert_eq!(exit_code(&p), 1);
    assert!(!backup.parent().unwrap().exists());
}

#[test]
fn ctrl_c_at_a_question_exits_having_written_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &fixture());
    let mut p = spawn(&[], &snap, false);
    p.exp_string("Spare disk (1-1 or its path)").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted at a question; nothing was written")
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 130);
}

#[test]
fn ctrl_c_at_the_passphrase_prompt_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &fixture());
    let backup = dir.path().join("out/vg0.hdr");
    let mut p = spawn(
        &[
            "--spare",
            "/dev/vdb",
            "--strategy",
            "spare-keep",
            "--header-backup",
            backup.to_str().unwrap(),
        ],
        &snap,
        false,
    );
    p.exp_string("Passphrase:").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted at a question; nothing was written")
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 130);
    assert!(!backup.parent().unwrap().exists());
}

#[test]
fn no_colour_with_no_color_and_colour_without() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &fixture());
    let sgr = regex_lite_sgr;
    let mut plain = spawn(&[], &snap, false);
    let before = plain.exp_string("Spare disk").unwrap();
    plain.send_control('c').unwrap();
    let after = plain.exp_eof().unwrap();
    assert!(!sgr(&before) && !sgr(&after), "{before}{after}");

    let mut coloured = spawn(&[], &snap, true);
    let before = coloured.exp_string("Spare disk").unwrap();
    let prompt = coloured.exp_string("path)").unwrap();
    coloured.send_control('c').unwrap();
    coloured.exp_eof().unwrap();
    assert!(sgr(&format!("{before}{prompt}")), "{before}{prompt}");

    // A serial console's terminal type gets plain prompts even without NO_COLOR.
    let mut serial = spawn_on(&[], &snap, true, "vt220");
    let before = serial
        .exp_string("Spare disk (1-1 or its path) [1]:")
        .unwrap();
    serial.send_control('c').unwrap();
    let after = serial.exp_eof().unwrap();
    assert!(!sgr(&before) && !sgr(&after), "{before}{after}");
}

/// An ANSI colour/attribute sequence (`ESC [ ... m`).
fn regex_lite_sgr(s: &str) -> bool {
    s.split('\x1b').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let end = r.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            end.is_some_and(|i| r[i..].starts_with('m'))
        })
    })
}

fn run_yes(snap: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["migrate", "--dry-run", "--yes", "--snapshot"])
        .arg(snap)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn yes_names_each_missing_flag_and_never_guesses_a_disk() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &fixture());
    let key = dir.path().join("key");
    std::fs::write(&key, "a long enough passphrase").unwrap();
    let key = key.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        // One disk is eligible, and still it is not picked.
        (&[], "pass --spare DEVICE"),
        (
            &["--spare", "/dev/vdb"],
            "pass --strategy spare-return|spare-keep",
        ),
        (
            &["--spare", "/dev/vdb", "--strategy", "spare-keep"],
            "pass --header-backup PATH",
        ),
        (
            &[
                "--spare",
                "/dev/vdb",
                "--strategy",
                "spare-keep",
                "--header-backup",
                "/root/k/vg0.hdr",
            ],
            "pass --passphrase-stdin or --key-file FILE",
        ),
    ];
    for (args, flag) in cases {
        let (code, stdout, stderr) = run_yes(&snap, args);
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stdout.contains("Plan:"), "{args:?}: {stdout}");
    }
    let (code, stdout, stderr) = run_yes(
        &snap,
        &[
            "--spare",
            "/dev/vdb",
            "--strategy",
            "spare-keep",
            "--header-backup",
            "/root/k/vg0.hdr",
            "--key-file",
            key,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Plan: encrypt volume group vg0 (spare-keep strategy)"));
    assert!(stdout.contains("nothing was written"));
}

#[test]
fn yes_refuses_a_backup_on_a_changed_disk() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &fixture());
    let (code, _, stderr) = run_yes(
        &snap,
        &[
            "--spare",
            "/dev/vdb",
            "--strategy",
            "spare-return",
            "--header-backup",
            "/mnt/target/boot/vg0.hdr",
        ],
    );
    assert_eq!(code, 3);
    assert!(
        stderr.contains("the backup path /mnt/target/boot/vg0.hdr is on /dev/vda1"),
        "{stderr}"
    );
}

#[test]
fn no_eligible_spare_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fixture();
    s["disks"][1]["size"] = json!(100u64 << 20);
    let snap = save(dir.path(), &s);
    let mut p = spawn(&[], &snap, false);
    p.exp_string("not offered: /dev/vdb (too small: 100 MiB")
        .unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(
        rest.contains("no disk here can serve as the spare"),
        "{rest}"
    );
    assert_eq!(exit_code(&p), 1);
}

#[test]
fn with_spare_keep_chosen_a_spare_without_room_for_boot_is_not_offered() {
    // 700 MiB holds the data as a PV (spare-return) but not beside the LUKS
    // header and a 200 MiB /boot: with --strategy spare-keep the wizard says
    // so instead of offering it and then refusing the plan.
    let dir = tempfile::tempdir().unwrap();
    let mut s = fixture();
    s["disks"][1]["size"] = json!(700u64 << 20);
    let snap = save(dir.path(), &s);
    let mut p = spawn(&["--strategy", "spare-keep"], &snap, false);
    let (_, line) = p.exp_regex(r"it needs at least \d+ MiB").unwrap();
    let min: u64 = line
        .trim_start_matches("it needs at least ")
        .trim_end_matches(" MiB")
        .parse()
        .unwrap();
    assert!(min > 565 + 16 + 200, "spare-keep's minimum, {line}");
    p.exp_string(&format!(
        "not offered: /dev/vdb (too small for spare-keep: 700 MiB, which needs at least {min} MiB"
    ))
    .unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(
        rest.contains("no disk here can serve as the spare"),
        "{rest}"
    );
    assert_eq!(exit_code(&p), 1);

    // Without a strategy it is offered: spare-return fits.
    let mut p = spawn(&[], &snap, false);
    p.exp_string("it needs at least 565 MiB").unwrap();
    p.exp_string("1) /dev/vdb").unwrap();
    p.exp_string("Spare disk").unwrap();
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 130);
}

#[test]
fn snapshot_needs_dry_run() {
    let out = Command::new(BIN)
        .args(["migrate", "--snapshot", FIXTURE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dry-run"));
}

#[test]
fn wipe_accepted_short_passphrase_kept_recovery_declined() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &crowded());
    let mut p = spawn(
        &[
            "--strategy",
            "spare-keep",
            "--header-backup",
            "/root/k/vg0.hdr",
        ],
        &snap,
        false,
    );
    p.exp_string("Spare disk (1-2 or its path)").unwrap();
    p.send_line("/dev/vdd").unwrap();
    p.exp_string("/dev/vdd carries a dos partition table")
        .unwrap();
    p.exp_string("Destroy everything on /dev/vdd?").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("Passphrase:").unwrap();
    p.send_line("ten chars!").unwrap();
    p.exp_string("Warning: that is only 10 characters").unwrap();
    p.exp_string("Keep this short passphrase?").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("Type it again:").unwrap();
    p.send_line("ten chars!").unwrap();
    p.exp_string("Add a generated recovery passphrase to write down?")
        .unwrap();
    p.send_line("n").unwrap();
    let plan = p.exp_string("type the volume group name (vg0)").unwrap();
    assert!(
        plan.contains("Wipe the old signatures on /dev/vdd"),
        "{plan}"
    );
    assert!(!plan.contains("second keyslot"), "{plan}");
    p.send_line("vg0").unwrap();
    let tail = p.exp_eof().unwrap();
    assert!(
        tail.contains(
            "luksify migrate --spare /dev/vdd --strategy spare-keep --header-backup /root/k/vg0.hdr --wipe-spare\r\n"
        ),
        "{tail}"
    );
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn a_strategy_the_disks_cannot_take_is_explained_and_not_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fixture();
    // Every extent of vg0 in use: the original partition minus a LUKS2
    // header can no longer hold them, a 2 GiB spare (data, LUKS2 header and
    // spare-keep's copy of /boot) still can.
    s["disks"][1]["size"] = json!(2u64 << 30);
    s["lvm"]["lvs"][0]["segments"][0]["size_pe"] = json!(189);
    s["lvm"]["lvs"][0]["size"] = json!(189u64 * (4 << 20));
    s["lvm"]["vgs"][0]["free_count"] = json!(0);
    let snap = save(dir.path(), &s);
    let mut p = spawn(&["--spare", "/dev/vdb"], &snap, false);
    p.exp_string("1) spare-return").unwrap();
    p.exp_string("not possible here: the LUKS container on /dev/vda2 would hold")
        .unwrap();
    p.exp_string("2) spare-keep").unwrap();
    p.exp_string("Strategy (1, 2 or its name) [2]").unwrap();
    p.send_line("1").unwrap();
    p.exp_string("spare-return is not possible here (see above).")
        .unwrap();
    p.send_line("").unwrap();
    p.exp_string("Header backup file").unwrap();
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 130);
}

#[test]
fn ctrl_c_at_a_yes_no_question_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let snap = save(dir.path(), &crowded());
    let mut p = spawn(&[], &snap, false);
    p.exp_string("Spare disk (1-2 or its path)").unwrap();
    p.send_line("2").unwrap();
    p.exp_string("Destroy everything on /dev/vdd?").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted at a question; nothing was written")
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 130);
}

#[test]
fn an_interrupted_migration_is_resumed_with_its_recorded_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fixture();
    // The state right after step 1 (the VG marked) of a spare-return run.
    s["lvm"]["vgs"][0]["tags"] = json!(["luksify:spare-return", "luksify:orig-part=1296fe93-02"]);
    let snap = save(dir.path(), &s);
    let key = dir.path().join("key");
    std::fs::write(&key, "a long enough passphrase").unwrap();
    let mut p = spawn(
        &[
            "--header-backup",
            "/root/k/vg0.hdr",
            "--key-file",
            key.to_str().unwrap(),
            "--no-recovery-passphrase",
        ],
        &snap,
        false,
    );
    p.exp_string("an earlier run was interrupted, and this one resumes it")
        .unwrap();
    p.exp_string("The spare disk the interrupted run used")
        .unwrap();
    p.send_line("/dev/vdx").unwrap();
    p.exp_string("Refused: spare device /dev/vdx does not exist")
        .unwrap();
    p.exp_string("The spare disk the interrupted run used")
        .unwrap();
    p.send_line("/dev/vdb").unwrap();
    let plan = p.exp_string("type the volume group name (vg0)").unwrap();
    assert!(!plan.contains("Strategy (1, 2"), "{plan}");
    assert!(
        plan.contains("Plan: encrypt volume group vg0 (spare-return strategy)"),
        "{plan}"
    );
    assert!(!plan.contains("Mark volume group vg0"), "{plan}");
    assert!(
        plan.contains("Make /dev/vdb an LVM physical volume"),
        "{plan}"
    );
    p.send_line("vg0").unwrap();
    let tail = p.exp_eof().unwrap();
    assert!(
        tail.contains("--spare /dev/vdb --strategy spare-return"),
        "{tail}"
    );
    assert_eq!(exit_code(&p), 0);
}

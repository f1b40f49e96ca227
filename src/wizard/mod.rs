//! The guided `luksify migrate`: shows what was found, asks for each missing
//! choice (or, with --yes, names the flag that is missing), shows the plan,
//! asks for the volume group's name as confirmation, then runs it, or with
//! --dry-run stops there. Nothing is written before the confirmation.

pub mod ask;
pub mod eligible;
pub mod estimate;
pub mod found;
pub mod next;
pub mod passphrase;

/// The snapshot captured from a real guest, for the unit tests.
#[cfg(test)]
pub(crate) fn seed_fixture() -> crate::probe::Snapshot {
    serde_json::from_str(include_str!(
        "../../tests/fixtures/seed-layout.snapshot.json"
    ))
    .unwrap()
}

use anyhow::{Result, bail};

use crate::app::{Refused, exit, load_snapshot, probe_machine};
use crate::cli::MigrateArgs;
use crate::exec::runner::Runner;
use crate::exec::{Executor, render};
use crate::plan::layout::TAG_PREFIX;
use crate::plan::{self, Action, Choices, Plan, Refusal, Strategy};
use crate::probe::Snapshot;
use crate::sys::secret::Passphrase;
use ask::{Asker, Interrupted};

/// Exit code after Ctrl-C at a question, as a shell reports SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

pub fn run(a: &MigrateArgs) -> Result<i32> {
    match converse(a) {
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("\nluksify: {e}");
            Ok(EXIT_INTERRUPTED)
        }
        r => r,
    }
}

fn converse(a: &MigrateArgs) -> Result<i32> {
    let snap = match &a.snapshot {
        Some(p) => load_snapshot(p)?,
        None => probe_machine()?,
    };
    let ask = Asker::new(a.yes);
    ask::questions_interruptible(true);
    let mut choices = a.choices.to_choices();
    let Some(target) = &snap.target else {
        // The planner explains why no root was found.
        plan::plan(&snap, &choices).map_err(Refused)?;
        bail!("no installed system was found");
    };
    let vg = choices.vg.clone().unwrap_or_else(|| {
        target
            .root_lv
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    if a.dry_run {
        println!("Dry run: luksify asks everything and shows the plan, but writes nothing.\n");
    }
    print!("{}", found::text(&snap, &vg));
    let resuming = snap
        .vg(&vg)
        .is_some_and(|v| v.tags.iter().any(|t| t.starts_with(TAG_PREFIX)));
    if resuming {
        println!(
            "\nVolume group {vg} is marked as being migrated: an earlier run was interrupted, and this one resumes it."
        );
    }

    choose_spare(&ask, &snap, &vg, resuming, &mut choices)?;
    if !resuming {
        choose_strategy(&ask, a, &snap, &vg, &mut choices)?;
    }
    // Only a fresh migration on this machine writes a new header backup here.
    let check_existing = a.snapshot.is_none() && !resuming;
    choose_backup(&ask, &snap, &vg, check_existing, &mut choices)?;
    let mut plan = plan::plan(&snap, &choices).map_err(Refused)?;
    // A resumed run's strategy comes from the VG's mark; name it for the rehearsal's command.
    choices.strategy = Some(plan.strategy);
    if let Err(e) = Runner::check_supported(&plan) {
        if !a.dry_run {
            return Err(e);
        }
        println!("\nWarning: the real run would stop here: {e:#}");
    }

    let passphrase = if needs(&plan, |a| {
        matches!(a, Action::LuksFormat { .. } | Action::LuksOpen { .. })
    }) {
        Some(read_passphrase(&ask, a)?)
    } else {
        None
    };
    let recovery = if needs(&plan, |a| matches!(a, Action::LuksFormat { .. })) {
        offer_recovery(&ask, a)?
    } else {
        None
    };
    if recovery.is_some() {
        plan.notes.push(
            "A second keyslot will hold the recovery passphrase you wrote down; it is written to the disk together with the first, so one never exists without the other.".into(),
        );
    }

    println!();
    print!("{}", render::text(&plan));
    confirm(&ask, a, &plan)?;

    if a.dry_run {
        let how = if a.snapshot.is_some() {
            "boot the machine this snapshot came from into a live system and run"
        } else {
            "run"
        };
        println!(
            "\nDry run: the plan above was not executed and nothing was written.\nTo carry it out, {how}:\n  {}",
            equivalent_command(&choices, recovery.is_some())
        );
        return Ok(exit::OK);
    }
    ask::questions_interruptible(false);
    let header_backup = choices.header_backup.clone().unwrap_or_default();
    if let Some(dir) = std::path::Path::new(&header_backup).parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating {} for the backups: {e}", dir.display()))?;
    }
    let generator = target.initramfs_generator.clone();
    let backups_in_ram = next::in_ram(&snap, &header_backup);
    let has_recovery = recovery.is_some();
    Runner::new(snap.clone(), choices, passphrase)
        .with_recovery(recovery)
        .execute(&plan)?;
    print!(
        "{}",
        next::text(&next::Outcome {
            plan: &plan,
            generator: generator.as_deref(),
            header_backup: &header_backup,
            backups_in_ram,
            recovery: has_recovery,
        })
    );
    Ok(exit::OK)
}

fn needs(plan: &Plan, f: impl Fn(&Action) -> bool) -> bool {
    plan.steps.iter().any(|s| f(&s.action))
}

fn choose_spare(
    ask: &Asker,
    snap: &Snapshot,
    vg: &str,
    resuming: bool,
    choices: &mut Choices,
) -> Result<()> {
    if choices.spare.is_some() {
        return Ok(());
    }
    let what = "a spare disk to hold the data while the original is encrypted";
    if !ask.may_ask() {
        return Err(ask.missing(what, "--spare DEVICE"));
    }
    if resuming {
        // The spare may already be part of the VG, so the fresh-start
        // eligibility rules do not apply; the planner judges the answer.
        loop {
            let spare = ask.line("The spare disk the interrupted run used", None)?;
            let trial = Choices {
                spare: Some(spare.clone()),
                ..choices.clone()
            };
            match plan::plan(snap, &trial) {
                Err(
                    r @ (Refusal::SpareNotFound { .. }
                    | Refusal::SpareIsOriginal { .. }
                    | Refusal::SpareInUse { .. }
                    | Refusal::LiveSystemDisk { .. }),
                ) => println!("Refused: {r}"),
                _ => {
                    choices.spare = Some(spare);
                    return Ok(());
                }
            }
        }
    }
    let cands = eligible::spare_candidates(snap, vg, choices);
    let offered: Vec<&eligible::Candidate> = cands.iter().filter(|c| c.why_not.is_none()).collect();
    println!(
        "\nThe spare disk holds the data while it moves; it needs at least {} MiB.",
        eligible::min_spare_mib(snap, vg, choices)
    );
    for c in cands.iter().filter(|c| c.why_not.is_some()) {
        println!(
            "  not offered: {} ({})",
            c.path,
            c.why_not.as_deref().unwrap_or_default()
        );
    }
    if offered.is_empty() {
        bail!(
            "no disk here can serve as the spare. Attach an empty disk of at least {} MiB that the installed system does not use, and run luksify again. Nothing was written",
            eligible::min_spare_mib(snap, vg, choices)
        );
    }
    for (i, c) in offered.iter().enumerate() {
        let d = snap.disk_of(&c.path);
        println!(
            "  {}) {}  {}  {}{}",
            i + 1,
            c.path,
            d.map(|d| found::size(d.size)).unwrap_or_default(),
            d.and_then(|d| d.model.clone()).unwrap_or_default(),
            c.carries
                .as_ref()
                .map(|x| format!("  (carries {x}; it would be wiped)"))
                .unwrap_or_default()
        );
    }
    loop {
        let answer = ask.line(
            &format!("Spare disk (1-{} or its path)", offered.len()),
            (offered.len() == 1).then_some("1"),
        )?;
        let pick = answer
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| offered.get(i))
            .or_else(|| offered.iter().find(|c| c.path == answer));
        let Some(c) = pick else {
            match cands.iter().find(|c| c.path == answer) {
                Some(c) => println!(
                    "{} is not offered: {}.",
                    c.path,
                    c.why_not.as_deref().unwrap_or_default()
                ),
                None => println!("{answer:?} is not one of the offered disks."),
            }
            continue;
        };
        if let Some(x) = &c.carries
            && !choices.wipe_spare
        {
            println!("{} carries {x}. All of it will be destroyed.", c.path);
            if !ask.yes_no(&format!("Destroy everything on {}?", c.path), false)? {
                continue;
            }
            choices.wipe_spare = true;
        }
        choices.spare = Some(c.path.clone());
        return Ok(());
    }
}

fn choose_strategy(
    ask: &Asker,
    a: &MigrateArgs,
    snap: &Snapshot,
    vg: &str,
    choices: &mut Choices,
) -> Result<()> {
    let (speed, how) = read_speed(a, snap, vg);
    let spare = choices.spare.clone().unwrap_or_default();
    let mut options = Vec::new();
    println!("\nTwo ways to get there (times assume {how}):");
    for (i, s) in [Strategy::SpareReturn, Strategy::SpareKeep]
        .into_iter()
        .enumerate()
    {
        let trial = Choices {
            strategy: Some(s),
            header_backup: None,
            ..choices.clone()
        };
        let bytes = estimate::bytes_moved(snap, vg, s);
        let cost = format!(
            "moves {} ({})",
            found::size(bytes),
            estimate::human(estimate::duration(bytes, speed))
        );
        let what = match s {
            Strategy::SpareReturn => format!(
                "move the data to {spare}, encrypt its current partition, move it back; {cost}. At the end {spare} is empty and can be detached."
            ),
            Strategy::SpareKeep => format!(
                "encrypt {spare} and move the data onto it once; {cost}. The data stays on {spare}, which also gets a copy of /boot and GRUB and boots on its own; the old partition is freed, the old disk's /boot and GRUB are left as they were."
            ),
        };
        println!("  {}) {}: {what}", i + 1, s.name());
        match plan::plan(snap, &trial) {
            Ok(_) => options.push(s),
            Err(r) => {
                println!("     not possible here: {r}");
                if choices.strategy == Some(s) {
                    return Err(Refused(r).into());
                }
                if s == Strategy::SpareKeep && options.is_empty() {
                    return Err(Refused(r).into());
                }
            }
        }
    }
    if choices.strategy.is_some() {
        return Ok(());
    }
    if !ask.may_ask() {
        return Err(ask.missing("a strategy", "--strategy spare-return|spare-keep"));
    }
    loop {
        let answer = ask.line(
            "Strategy (1, 2 or its name)",
            (options.len() == 1).then_some(match options[0] {
                Strategy::SpareReturn => "1",
                Strategy::SpareKeep => "2",
            }),
        )?;
        let s = match answer.as_str() {
            "1" | "spare-return" => Strategy::SpareReturn,
            "2" | "spare-keep" => Strategy::SpareKeep,
            _ => {
                println!("Answer 1 (spare-return) or 2 (spare-keep).");
                continue;
            }
        };
        if !options.contains(&s) {
            println!("{} is not possible here (see above).", s.name());
            continue;
        }
        choices.strategy = Some(s);
        return Ok(());
    }
}

/// Bytes per second for the estimates, and how it was obtained.
fn read_speed(a: &MigrateArgs, snap: &Snapshot, vg: &str) -> (f64, String) {
    let mib = f64::from(1u32 << 20);
    if let Some(s) = a.read_speed {
        return (
            f64::from(s) * mib,
            format!("a read speed of {s} MiB/s, as given"),
        );
    }
    let assumed = (
        f64::from(estimate::ASSUMED_READ_MIB_S) * mib,
        format!(
            "a read speed of {} MiB/s, assumed: nothing was measured",
            estimate::ASSUMED_READ_MIB_S
        ),
    );
    if a.snapshot.is_some() {
        return assumed;
    }
    let Some(pv) = snap.pvs_of(vg).next() else {
        return assumed;
    };
    let spinner = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!(
            "measuring the read speed of {} (reading only)",
            pv.path
        ));
        s.enable_steady_tick(std::time::Duration::from_millis(200));
        s
    });
    let sample = estimate::sample_read_speed(std::path::Path::new(&pv.path));
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    match sample {
        Ok(bps) => (
            bps,
            format!(
                "a read speed of {:.0} MiB/s, just measured on {}",
                bps / mib,
                pv.path
            ),
        ),
        Err(_) => assumed,
    }
}

/// A header backup is never written over another file; finding that out
/// at step 4 of a migration would be too late.
fn existing_file(path: &str, check: bool) -> Option<String> {
    (check && std::path::Path::new(path).exists()).then(|| {
        format!("{path} already exists; luksify never overwrites a file with a header backup. Move it away or choose another name")
    })
}

fn choose_backup(
    ask: &Asker,
    snap: &Snapshot,
    vg: &str,
    check_existing: bool,
    choices: &mut Choices,
) -> Result<()> {
    if let Some(path) = &choices.header_backup {
        if let Some(why) = existing_file(path, check_existing) {
            bail!("{why} (--header-backup). Nothing was written");
        }
        return Ok(());
    }
    if !ask.may_ask() {
        return Err(ask.missing(
            "a place for the LUKS header and VG metadata backups, on a disk that is not being changed",
            "--header-backup PATH",
        ));
    }
    println!(
        "\nluksify saves a backup of the LUKS header (the file that makes the passphrase work) and of the VG metadata.\nGive a file path on a disk this migration does not change: a USB stick, or the live system's memory (copy it off before rebooting)."
    );
    let default = format!("/root/luksify-backup/{vg}.luksheader");
    loop {
        let path = ask.line("Header backup file", Some(&default))?;
        if !path.starts_with('/') {
            println!("Give an absolute path (starting with /).");
            continue;
        }
        if let Some(why) = existing_file(&path, check_existing) {
            println!("{why}.");
            continue;
        }
        let trial = Choices {
            header_backup: Some(path.clone()),
            ..choices.clone()
        };
        match plan::plan(snap, &trial) {
            Err(r @ Refusal::BackupOnChangedDisk { .. }) => {
                println!("Refused: {r}");
                continue;
            }
            Err(r) => return Err(Refused(r).into()),
            Ok(_) => {
                if next::in_ram(snap, &path) {
                    println!(
                        "{path} is in the live system's memory: copy it off before rebooting (luksify reminds you at the end)."
                    );
                }
                choices.header_backup = Some(path);
                return Ok(());
            }
        }
    }
}

fn read_passphrase(ask: &Asker, a: &MigrateArgs) -> Result<Passphrase> {
    if a.passphrase_stdin {
        return Passphrase::read_line(std::io::stdin().lock());
    }
    if let Some(f) = &a.key_file {
        return Passphrase::read_key_file(f);
    }
    if !ask.may_ask() {
        return Err(ask.missing(
            "the passphrase for the new LUKS container",
            "--passphrase-stdin or --key-file FILE",
        ));
    }
    println!(
        "\nChoose the passphrase you will type at every boot. Nothing is echoed; it goes to libcryptsetup only."
    );
    loop {
        let first = ask.secret("Passphrase")?;
        match passphrase::judge(&first) {
            passphrase::Verdict::Empty => {
                println!("An empty passphrase would protect nothing; type one.");
                continue;
            }
            passphrase::Verdict::Short(n) => {
                println!(
                    "Warning: that is only {n} characters. A passphrase of {} or more (several words) resists guessing far better.",
                    passphrase::MIN_CHARS
                );
                if !ask.yes_no("Keep this short passphrase?", false)? {
                    continue;
                }
            }
            passphrase::Verdict::Fine => {}
        }
        let again = ask.secret("Type it again")?;
        if *again != *first {
            println!("The two entries differ; start again.");
            continue;
        }
        return Ok(Passphrase::from_bytes(first.as_bytes().to_vec()));
    }
}

fn offer_recovery(ask: &Asker, a: &MigrateArgs) -> Result<Option<Passphrase>> {
    let wanted = if a.recovery_passphrase {
        true
    } else if a.no_recovery_passphrase || !ask.may_ask() {
        false
    } else {
        println!(
            "\nA recovery passphrase is a second, generated key to the same container, for the day the first is forgotten."
        );
        ask.yes_no("Add a generated recovery passphrase to write down?", true)?
    };
    if !wanted {
        return Ok(None);
    }
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        bail!(
            "the recovery passphrase is shown only on a terminal, and standard output is not one; run without --recovery-passphrase or from a terminal"
        );
    }
    let r = passphrase::generate_recovery()?;
    println!(
        "\nRecovery passphrase. Write it down now, exactly; it is shown only this once:\n\n    {}\n",
        &*r
    );
    if ask.may_ask() {
        loop {
            let typed = ask.line(
                "Type its last group of 5 characters to show it is written down",
                None,
            )?;
            if typed == passphrase::last_group(&r) {
                break;
            }
            println!("That is not the last group; look again at what you wrote down.");
        }
    }
    Ok(Some(Passphrase::from_bytes(r.as_bytes().to_vec())))
}

fn confirm(ask: &Asker, a: &MigrateArgs, plan: &Plan) -> Result<()> {
    if a.yes {
        return Ok(());
    }
    if !ask.may_ask() {
        return Err(ask.missing("confirmation", "--yes"));
    }
    let prompt = if a.dry_run {
        format!(
            "Rehearsal: type the volume group name ({}) as you would to start",
            plan.vg
        )
    } else {
        format!(
            "This rewrites the disks listed above. Type the volume group name ({}) to start",
            plan.vg
        )
    };
    let typed = ask.line(&prompt, None)?;
    if typed != plan.vg {
        bail!(
            "the confirmation {typed:?} does not match the volume group name {:?}; nothing was written",
            plan.vg
        );
    }
    Ok(())
}

/// How a value is spelled on the command line.
fn value_name<T: clap::ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// The flags that answer every question just asked, for the real run.
fn equivalent_command(c: &Choices, recovery: bool) -> String {
    let mut s = String::from("luksify migrate");
    if let Some(v) = &c.vg {
        s.push_str(&format!(" --vg {v}"));
    }
    if let Some(sp) = &c.spare {
        s.push_str(&format!(" --spare {sp}"));
    }
    if let Some(st) = c.strategy {
        s.push_str(&format!(" --strategy {}", st.name()));
    }
    if let Some(h) = &c.header_backup {
        s.push_str(&format!(
            " --header-backup {}",
            crate::sys::process::shell_quote(h)
        ));
    }
    let d = crate::plan::LuksOptions::default();
    if c.luks.cipher != d.cipher {
        s.push_str(&format!(" --cipher {}", c.luks.cipher));
    }
    if c.luks.key_size_bits != d.key_size_bits {
        s.push_str(&format!(" --key-size {}", c.luks.key_size_bits));
    }
    if c.luks.version != d.version {
        s.push_str(&format!(" --luks-version {}", value_name(c.luks.version)));
    }
    if c.luks.pbkdf != d.pbkdf {
        s.push_str(&format!(" --pbkdf {}", value_name(c.luks.pbkdf)));
    }
    if let Some(ms) = c.luks.iter_time_ms {
        s.push_str(&format!(" --iter-time {ms}"));
    }
    if let Some(m) = &c.mapper_name {
        s.push_str(&format!(" --mapper-name {m}"));
    }
    if c.wipe_spare {
        s.push_str(" --wipe-spare");
    }
    if recovery {
        s.push_str(" --recovery-passphrase");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_backup_file_is_refused_only_when_checking() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let p = f.path().to_str().unwrap();
        assert!(existing_file(p, true).unwrap().contains("already exists"));
        assert_eq!(existing_file(p, false), None);
        assert_eq!(existing_file("/nonexistent/luksify/x.hdr", true), None);
    }

    #[test]
    fn the_rehearsal_prints_the_flags_for_the_real_run() {
        let c = Choices {
            spare: Some("/dev/sdb".into()),
            strategy: Some(Strategy::SpareReturn),
            header_backup: Some("/media/my stick/vg0.hdr".into()),
            wipe_spare: true,
            ..Choices::default()
        };
        assert_eq!(
            equivalent_command(&c, false),
            "luksify migrate --spare /dev/sdb --strategy spare-return --header-backup '/media/my stick/vg0.hdr' --wipe-spare"
        );
        let mut c = c;
        c.luks.pbkdf = crate::plan::Pbkdf::Pbkdf2;
        c.luks.iter_time_ms = Some(100);
        c.luks.version = crate::plan::LuksVersion::Luks1;
        assert!(equivalent_command(&c, true).ends_with(
            "--luks-version luks1 --pbkdf pbkdf2 --iter-time 100 --wipe-spare --recovery-passphrase"
        ));
    }
}

//! What each subcommand does, between the parsed command line and the library.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, MigrateArgs, PlanArgs, ProbeArgs, StatusArgs};
use crate::exec::{DryRun, Executor};
use crate::plan::{self, Refusal};
use crate::probe::collect::collect;
use crate::probe::source::{RealSource, Recorder, Recording, Replay};
use crate::probe::{self as probe_mod, Snapshot};

/// Exit codes a script can rely on.
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const REFUSED: i32 = 3;
    pub const VERIFY_FAILED: i32 = 4;
}

/// A refusal reaches `main` as this error, so it maps to its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("refusing: {0}")]
pub struct Refused(pub Refusal);

pub fn run(cli: Cli) -> Result<i32> {
    crate::sys::process::set_verbose(cli.verbose);
    match cli.command {
        Command::Probe(a) => probe(a),
        Command::Plan(a) => plan_cmd(a),
        Command::Migrate(a) => migrate(a),
        Command::Status(a) => status(a),
        Command::Boot(c) => crate::boot::cli::run(c),
        Command::Initrd(c) => crate::initrd::cli::run(c),
    }
}

pub fn load_snapshot(path: &Path) -> Result<Snapshot> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading snapshot {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a luksify snapshot (make one with `luksify probe --json`)",
            path.display()
        )
    })
}

/// Probes this machine, looking inside the target.
pub fn probe_machine() -> Result<Snapshot> {
    collect(&mut RealSource, true).context("probing this machine")
}

fn probe(a: ProbeArgs) -> Result<i32> {
    let snap = if let Some(r) = &a.replay {
        collect(&mut Replay(Recording::load(r)?), !a.no_target)?
    } else if let Some(path) = &a.record {
        let mut rec = Recorder {
            inner: RealSource,
            recording: Recording::default(),
        };
        let snap = collect(&mut rec, !a.no_target).context("probing this machine")?;
        let json = serde_json::to_vec_pretty(&rec.recording)?;
        crate::sys::atomic_file::write_atomic(path, &json, 0o644)
            .with_context(|| format!("saving the recording to {}", path.display()))?;
        snap
    } else {
        collect(&mut RealSource, !a.no_target).context("probing this machine")?
    };
    print_json_or(a.json, &snap, || probe_mod::describe::text(&snap))
}

/// Prints `value` as JSON, or the person's rendering of it.
fn print_json_or<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", text())?;
    }
    Ok(exit::OK)
}

fn plan_cmd(a: PlanArgs) -> Result<i32> {
    let snap = match &a.snapshot {
        Some(p) => load_snapshot(p)?,
        None => probe_machine()?,
    };
    let plan = plan::plan(&snap, &a.choices.to_choices()).map_err(Refused)?;
    DryRun {
        out: std::io::stdout().lock(),
        json: a.json,
    }
    .execute(&plan)?;
    Ok(exit::OK)
}

fn migrate(a: MigrateArgs) -> Result<i32> {
    crate::exec::migrate::run(&a)
}

fn status(a: StatusArgs) -> Result<i32> {
    let snap = match &a.snapshot {
        Some(p) => load_snapshot(p)?,
        None => {
            let quick = collect(&mut RealSource, false).context("probing this machine")?;
            // Planning the rest of a migration needs the target's root LV,
            // which only the slower probe of the target finds.
            if quick.lvm.vgs.iter().any(|v| {
                v.tags
                    .iter()
                    .any(|t| t.starts_with(plan::layout::TAG_PREFIX))
            }) {
                collect(&mut RealSource, true).context("probing this machine and its target")?
            } else {
                quick
            }
        }
    };
    let st = plan::status::of(&snap);
    print_json_or(a.json, &st, || plan::status::text(&st))
}

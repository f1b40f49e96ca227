//! `luksify migrate`: probe, plan, confirm, get the passphrase, run.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};

use super::Executor;
use super::render;
use super::runner::Runner;
use crate::app::{Refused, exit, probe_machine};
use crate::cli::MigrateArgs;
use crate::plan::{self, Action, Plan};
use crate::sys::secret::Passphrase;

pub fn run(a: &MigrateArgs) -> Result<i32> {
    let choices = a.choices.to_choices();
    let snap = probe_machine()?;
    let plan = plan::plan(&snap, &choices).map_err(Refused)?;
    let needs_backup_path = plan.steps.iter().any(|s| {
        matches!(
            s.action,
            Action::LuksHeaderBackup { path: None, .. }
                | Action::VgMetadataBackup { path: None, .. }
        )
    });
    if needs_backup_path {
        bail!(Refused(plan::Refusal::MissingChoice {
            what: "a place for the LUKS header and VG metadata backups, on a disk that is not being changed".into(),
            flag: "--header-backup PATH".into(),
        }));
    }
    print!("{}", render::text(&plan));
    Runner::check_supported(&plan)?;
    if !a.yes {
        confirm(&plan)?;
    }
    let passphrase = if needs_passphrase(&plan) {
        Some(read_passphrase(a)?)
    } else {
        None
    };
    let mut runner = Runner::new(snap, choices, passphrase);
    runner.execute(&plan)?;
    println!("{}", next_steps(&plan));
    Ok(exit::OK)
}

fn needs_passphrase(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| {
        matches!(
            s.action,
            Action::LuksFormat { .. } | Action::LuksOpen { .. }
        )
    })
}

/// Typing the VG's name, not y/n, so a reflex cannot start the migration.
fn confirm(plan: &Plan) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "standard input is not a terminal, so luksify cannot ask for confirmation; pass --yes to run without asking"
        );
    }
    let typed: String = dialoguer::Input::new()
        .with_prompt(format!(
            "This rewrites the disks listed above. Type the volume group name ({}) to start",
            plan.vg
        ))
        .allow_empty(true)
        .interact_text()
        .context("reading the confirmation")?;
    if typed.trim() != plan.vg {
        bail!(
            "confirmation did not match {:?}; nothing was changed",
            plan.vg
        );
    }
    Ok(())
}

fn read_passphrase(a: &MigrateArgs) -> Result<Passphrase> {
    if a.passphrase_stdin {
        return Passphrase::read_line(std::io::stdin().lock());
    }
    if let Some(f) = &a.key_file {
        return Passphrase::read_key_file(f);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to ask for the passphrase on; pass --passphrase-stdin or --key-file FILE"
        );
    }
    let p = dialoguer::Password::new()
        .with_prompt("Passphrase for the new LUKS container")
        .with_confirmation("Type it again", "The two entries differ")
        .interact()
        .context("reading the passphrase")?;
    if p.is_empty() {
        bail!("an empty passphrase would protect nothing");
    }
    Ok(Passphrase::from_bytes(p.into_bytes()))
}

fn next_steps(plan: &Plan) -> String {
    let mut s = format!(
        "\nDone. {} now lives inside the LUKS container {} (UUID {}).\n",
        plan.vg, plan.container, plan.luks_uuid
    );
    if plan.strategy == plan::Strategy::SpareReturn {
        s.push_str(&format!(
            "{} is empty again: you may detach it.\n",
            plan.spare
        ));
    }
    s.push_str(
        "Reboot into the installed system; it will ask for the passphrase before mounting root.\n",
    );
    s
}

//! `luksify migrate`: the guided conversation in [`crate::wizard`] asks for
//! whatever the flags leave open, then runs the plan (or, with --dry-run,
//! only shows it).

use anyhow::Result;

use crate::cli::MigrateArgs;

pub fn run(a: &MigrateArgs) -> Result<i32> {
    crate::wizard::run(a)
}

//! Runs a Plan: rendered for a dry run, or executed for real.

mod boot_drift;
pub mod boot_fs;
pub mod checks;
pub mod dracut_target;
pub mod inject_target;
pub mod migrate;
pub mod mounts;
pub mod persist_unlock;
mod pvmove;
pub mod render;
pub mod runner;
pub mod spare_boot;

use std::io::Write;

use anyhow::Result;

use crate::plan::Plan;

/// Something that carries out a plan: printing it, or doing it.
pub trait Executor {
    fn execute(&mut self, plan: &Plan) -> Result<()>;
}

/// The dry run: writes what the plan would do.
pub struct DryRun<W: Write> {
    pub out: W,
    pub json: bool,
}

impl<W: Write> Executor for DryRun<W> {
    fn execute(&mut self, plan: &Plan) -> Result<()> {
        if self.json {
            serde_json::to_writer_pretty(&mut self.out, plan)?;
            writeln!(self.out)?;
        } else {
            write!(self.out, "{}", render::text(plan))?;
        }
        Ok(())
    }
}

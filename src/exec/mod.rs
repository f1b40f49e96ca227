//! Runs a Plan: rendered for a dry run, or executed for real.

pub mod checks;
pub mod migrate;
pub mod render;
pub mod runner;

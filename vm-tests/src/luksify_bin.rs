//! The luksify binary a scenario puts into the live environment: a release
//! build of the workspace's current source (release because debug builds
//! of the crypto are slow under TCG).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Builds `luksify` in release mode (incremental when nothing changed) and
/// returns its path.
pub fn release() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = std::process::Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "luksify",
            "--bin",
            "luksify",
        ])
        .status()
        .context("running cargo build --release for luksify")?;
    if !status.success() {
        bail!("building luksify in release mode failed ({status})");
    }
    let bin = crate::logs::target_dir().join("release").join("luksify");
    if !bin.is_file() {
        bail!("cargo built luksify but {} is missing", bin.display());
    }
    Ok(bin)
}

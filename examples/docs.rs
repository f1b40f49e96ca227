//! Writes the man page and shell completions for `luksify` into the directory
//! given as the only argument. `cargo xtask docs` runs it; it is an example of
//! this crate rather than code in xtask so that xtask builds without
//! libcryptsetup's headers, which `cargo xtask test` is what installs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;

fn main() -> Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: docs OUTPUT_DIR")?
        .into();
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("creating {}", completions.display()))?;
    let cmd = luksify::cli::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let man = out.join("luksify.1");
    std::fs::write(&man, page).with_context(|| format!("writing {}", man.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "luksify", &completions)
            .with_context(|| format!("writing the {shell} completion"))?;
    }
    println!("wrote {}", out.display());
    Ok(())
}

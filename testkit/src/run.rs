use std::ffi::OsStr;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs a program to completion and returns its stdout; a non-zero exit is an
/// error carrying the command line and the tail of stderr.
pub fn run<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_env(program, args, &[])
}

pub(crate) fn run_env<I, S>(program: &str, args: I, env: &[(&str, &str)]) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let line = std::iter::once(program.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new(program)
        .args(&args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("starting `{line}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tail = |s: &str| {
            let l: Vec<&str> = s.lines().collect();
            l[l.len().saturating_sub(15)..].join("\n")
        };
        bail!(
            "`{line}` failed ({}):\n{}\n{}",
            out.status,
            tail(&stdout),
            tail(&stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

//! Project tasks: `cargo xtask test`, `cargo xtask demo`, `cargo xtask docs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "luksify project tasks")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the system packages the tests need, build, lint and run every test.
    Test {
        /// Skip installing system packages (they are already there).
        #[arg(long)]
        no_install: bool,
        /// Also run the long VM scenarios left out of CI's time budget (dracut target, kernel update).
        #[arg(long)]
        all_vm: bool,
    },
    /// Encrypt a Debian 12 VM with luksify on your own terminal (its serial console), then boot
    /// it and unlock it with your passphrase (QEMU: about 7 min, some 10 more the first time).
    Demo {
        /// Answer the questions automatically and check the unlocked boot (for CI).
        #[arg(long)]
        non_interactive: bool,
    },
    /// Generate the man page and shell completions into target/docs.
    Docs,
    /// Install the system packages only.
    Deps,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// The union of xtask/apt/*.txt, each a list of Debian packages.
fn wanted_packages() -> Result<Vec<String>> {
    let mut pkgs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root().join("xtask/apt"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(&f)?.lines() {
            let p = line.split('#').next().unwrap_or("").trim();
            if !p.is_empty() && !pkgs.iter().any(|x| x == p) {
                pkgs.push(p.to_string());
            }
        }
    }
    Ok(pkgs)
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn install_deps() -> Result<()> {
    let missing: Vec<String> = wanted_packages()?
        .into_iter()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    // apt-get needs root; elsewhere go through sudo.
    let apt = |args: &[&str]| {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let mut c = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-E", "apt-get"]);
            c
        };
        c.args(args);
        c
    };
    run(&mut apt(&["update", "-q"]))?;
    run(apt(&[])
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn test(no_install: bool, all_vm: bool) -> Result<()> {
    if !no_install {
        install_deps()?;
    }
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    if all_vm {
        run(cargo().args(["test", "-p", "vm-tests", "--", "--ignored"]))?;
    }
    Ok(())
}

/// The VM demo is a program of vm-tests: it links luksify, which needs
/// libcryptsetup's headers, so it is built only after `install_deps`.
fn demo(non_interactive: bool) -> Result<()> {
    install_deps()?;
    let mut c = cargo();
    c.args(["run", "--quiet", "-p", "vm-tests", "--bin", "demo", "--"]);
    if non_interactive {
        c.arg("--non-interactive");
    }
    run(&mut c)
}

fn docs() -> Result<()> {
    install_deps()?;
    run(cargo()
        .args(["run", "--quiet", "--example", "docs", "--"])
        .arg(root().join("target/docs")))
}

fn main() -> Result<()> {
    match Args::parse().task {
        Task::Test { no_install, all_vm } => test(no_install, all_vm),
        Task::Demo { non_interactive } => demo(non_interactive),
        Task::Docs => docs(),
        Task::Deps => install_deps(),
    }
}

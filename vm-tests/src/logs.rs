//! Where console logs go: `<workspace target dir>/vm-logs/<name>-<n>.log`,
//! one new file per guest started, kept for diagnosing failures.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The workspace's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target"),
    }
}

/// Claims the first free `<name>-<n>.log` (n from 1) atomically.
pub fn next_log_path(name: &str) -> Result<PathBuf> {
    let dir = target_dir().join("vm-logs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for n in 1.. {
        let p = dir.join(format!("{name}-{n}.log"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", p.display())),
        }
    }
    unreachable!()
}

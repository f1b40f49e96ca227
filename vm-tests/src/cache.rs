//! The artefact cache outside the repository. Every entry is a directory
//! named by its inputs and appears only complete: it is built under a
//! temporary name next to its final place and renamed when done, so an
//! interrupted build is never mistaken for a finished one.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// `${LUKSIFY_CACHE:-$HOME/.cache/luksify}`.
pub fn root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LUKSIFY_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).context(
        "neither LUKSIFY_CACHE nor HOME is set; set LUKSIFY_CACHE to a directory for VM artefacts",
    )?;
    Ok(PathBuf::from(home).join(".cache").join("luksify"))
}

/// Returns `<cache>/<kind>/<key>`, building it with `build` (which fills the
/// empty directory it is given) if it does not exist yet.
pub fn entry(kind: &str, key: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let parent = root()?.join(kind);
    let done = parent.join(key);
    if done.is_dir() {
        return Ok(done);
    }
    // Tests in one binary run in parallel; let one of them build, the others
    // find the result. (Separate processes still race safely via rename.)
    let _claim = Claim::wait_for(&done);
    if done.is_dir() {
        return Ok(done);
    }
    fs::create_dir_all(&parent)
        .with_context(|| format!("creating cache directory {}", parent.display()))?;
    remove_stale_builds(&parent, key);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{key}-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    build(tmp.path()).with_context(|| format!("building cache entry {}", done.display()))?;
    let tmp = tmp.keep();
    match fs::rename(&tmp, &done) {
        Ok(()) => Ok(done),
        // Someone else finished the same entry first; theirs is as good as ours.
        Err(_) if done.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(done)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e).with_context(|| {
                format!(
                    "moving finished cache entry into place at {}",
                    done.display()
                )
            })
        }
    }
}

/// Entries being built by a thread of this process.
static BUILDING: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
static BUILT: Condvar = Condvar::new();

/// The right to build one entry. Per entry, not one lock for all: a build
/// may need other entries (the target disk needs the live environment), and
/// a single non-reentrant lock deadlocked that on a cold cache.
struct Claim(PathBuf);

impl Claim {
    fn wait_for(done: &Path) -> Claim {
        let mut set = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        while set.contains(done) {
            set = BUILT.wait(set).unwrap_or_else(|e| e.into_inner());
        }
        set.insert(done.to_path_buf());
        Claim(done.to_path_buf())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        BUILDING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
        BUILT.notify_all();
    }
}

/// Removes temporary build directories of `key` left by a process that was
/// killed more than an hour ago (a kernel tree is 400 MB).
fn remove_stale_builds(parent: &Path, key: &str) {
    let prefix = format!(".tmp-{key}-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
        if stale && e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A short hex digest of some inputs, for cache keys.
pub fn key_of(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex(&h.finalize()[..10])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a string safe as one path component (Debian versions carry `:`).
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_built_once_and_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: this test is the only one in the crate touching LUKSIFY_CACHE.
        unsafe { std::env::set_var("LUKSIFY_CACHE", dir.path()) };
        // Leftovers of killed builds: one old enough to be abandoned, one
        // that may belong to a build still running elsewhere.
        let old = dir.path().join("k/.tmp-x-old");
        let young = dir.path().join("k/.tmp-x-young");
        fs::create_dir_all(&old).unwrap();
        fs::create_dir_all(&young).unwrap();
        luksify::sys::process::Cmd::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(&old)
            .run()
            .unwrap();
        let failed = entry("k", "x", |_| anyhow::bail!("interrupted"));
        assert!(!old.exists() && young.exists());
        fs::remove_dir(&young).unwrap();
        assert!(failed.is_err());
        assert!(
            !dir.path().join("k/x").exists(),
            "a failed build must not leave an entry"
        );
        let mut builds = 0;
        for _ in 0..2 {
            let p = entry("k", "x", |d| {
                builds += 1;
                fs::write(d.join("f"), "ok")?;
                Ok(())
            })
            .unwrap();
            assert_eq!(fs::read_to_string(p.join("f")).unwrap(), "ok");
        }
        assert_eq!(builds, 1);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("k")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary directories are cleaned up");

        // A build that needs another entry (the target disk needs the live
        // environment), both missing: finishes instead of deadlocking.
        let outer = entry("n", "outer", |d| {
            let inner = entry("n", "inner", |d| Ok(fs::write(d.join("f"), "in")?))?;
            fs::copy(inner.join("f"), d.join("f"))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(fs::read_to_string(outer.join("f")).unwrap(), "in");
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key_of(&[b"ab", b"c"]), key_of(&[b"a", b"bc"]));
        assert_eq!(sanitize("1:2.3+b1/x"), "1_2.3+b1_x");
    }
}

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::mounts;

/// `${LUKSIFY_CACHE:-$HOME/.cache/luksify}`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("LUKSIFY_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/luksify")
}

/// FNV-1a, 64 bit: stable across Rust releases (unlike `DefaultHasher`), and
/// the keys are ours, so collision resistance against an adversary is moot.
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Returns `CACHE/NAME-HASH(key)`, building it first with `build` if it does
/// not exist yet. `build` gets an empty directory to fill; only when it
/// returns Ok is that directory renamed into place, so a crashed or failed
/// build is never mistaken for a finished one. Builders of the same key wait
/// for each other on a lock file; the loser then finds the finished result.
pub fn cached_dir(
    name: &str,
    key: &str,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    cached_dir_in(&cache_root(), name, key, build)
}

fn cached_dir_in(
    root: &Path,
    name: &str,
    key: &str,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let id = format!("{name}-{:016x}", fnv1a(key.as_bytes()));
    let done = root.join(&id);
    if done.is_dir() {
        return Ok(done);
    }
    fs::create_dir_all(root.join(".locks"))
        .with_context(|| format!("creating the cache directory {}", root.display()))?;
    let lock_path = root.join(".locks").join(format!("{id}.lock"));
    let lock = File::create(&lock_path)
        .with_context(|| format!("opening lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    if done.is_dir() {
        return Ok(done);
    }
    // Holding the lock, any temporary directory of this id is left over from
    // an interrupted build: clear it (unmounting whatever it left mounted).
    let tmp = root.join(format!(".tmp-{id}"));
    remove_tree(&tmp)?;
    fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    fs::write(tmp.join(".key"), key)?;
    let started = std::time::Instant::now();
    eprintln!("testkit: building {} (cache miss)", done.display());
    let result = build(&tmp);
    // Whatever the builder did, nothing may stay mounted below the tree.
    mounts::unmount_below(&tmp)?;
    result.with_context(|| format!("building test artefact {id} in {}", tmp.display()))?;
    fs::rename(&tmp, &done)
        .with_context(|| format!("renaming {} to {}", tmp.display(), done.display()))?;
    eprintln!(
        "testkit: built {} in {:.1}s",
        done.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(done)
}

/// Removes a directory tree after making sure no mount point lies below it:
/// `remove_dir_all` would otherwise descend into a bind-mounted /dev or /proc.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    mounts::unmount_below(path)?;
    fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn racing_builders_build_once() {
        let t = tempfile::tempdir().unwrap();
        let builds = AtomicUsize::new(0);
        let dirs: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        cached_dir_in(t.path(), "thing", "k1", |d| {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            fs::write(d.join("payload"), b"x")?;
                            Ok(())
                        })
                        .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(dirs.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(fs::read(dirs[0].join("payload")).unwrap(), b"x");
        // Another key is another directory.
        let other = cached_dir_in(t.path(), "thing", "k2", |_| Ok(())).unwrap();
        assert_ne!(other, dirs[0]);
    }

    #[test]
    fn failed_or_interrupted_builds_are_never_reused() {
        let t = tempfile::tempdir().unwrap();
        let e = cached_dir_in(t.path(), "thing", "k", |d| {
            fs::write(d.join("half"), b"")?;
            anyhow::bail!("mirror unreachable")
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("mirror unreachable"), "{e:#}");
        // A crashed process leaves its temporary directory behind like this.
        let d = cached_dir_in(t.path(), "thing", "k", |d| {
            assert!(!d.join("half").exists(), "starts from an empty directory");
            fs::write(d.join("whole"), b"")?;
            Ok(())
        })
        .unwrap();
        assert!(d.join("whole").exists());
        assert!(!d.join("half").exists());
        let leftovers: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    /// A build that fails (or dies) with something mounted inside its tree
    /// must neither leave the mount behind nor let a later clean-up delete
    /// through it.
    #[test]
    fn mounts_left_by_a_failed_build_are_undone() {
        use nix::mount::{MsFlags, mount};
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), b"keep").unwrap();
        let e = cached_dir_in(t.path(), "m", "k", |d| {
            let target = d.join("bound");
            fs::create_dir(&target)?;
            mount(
                Some(outside.path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            anyhow::bail!("postinst failed")
        });
        assert!(e.is_err());
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let tp = t.path().canonicalize().unwrap();
        assert!(!info.contains(tp.to_str().unwrap()), "still mounted");
        cached_dir_in(t.path(), "m", "k", |_| Ok(())).unwrap();
        assert_eq!(fs::read(outside.path().join("precious")).unwrap(), b"keep");
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

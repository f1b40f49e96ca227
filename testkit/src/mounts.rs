use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = match dir.canonicalize() {
        Ok(d) => d,
        Err(_) => return Ok(Vec::new()),
    };
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|m| m.starts_with(&dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found.dedup();
    Ok(found)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn unmount_below(dir: &Path) -> Result<()> {
    for m in mounts_below(dir)? {
        if umount2(&m, MntFlags::empty()).is_err() {
            umount2(&m, MntFlags::MNT_DETACH)
                .with_context(|| format!("unmounting {}", m.display()))?;
        }
    }
    let left = mounts_below(dir)?;
    if !left.is_empty() {
        bail!("could not unmount {:?}; remove them by hand", left);
    }
    Ok(())
}

/// /proc, /sys and the apt archive cache mounted into a chroot for as long as
/// this value lives; dropping it unmounts them, also when a build fails.
pub(crate) struct ChrootMounts {
    root: PathBuf,
}

impl ChrootMounts {
    pub(crate) fn new(root: &Path, apt_archives: Option<&Path>) -> Result<Self> {
        let guard = ChrootMounts {
            root: root.to_path_buf(),
        };
        let none: Option<&str> = None;
        let target = root.join("proc");
        mount(Some("proc"), &target, Some("proc"), MsFlags::empty(), none)
            .with_context(|| format!("mounting proc on {}", target.display()))?;
        let target = root.join("sys");
        mount(
            Some("sysfs"),
            &target,
            Some("sysfs"),
            MsFlags::MS_RDONLY,
            none,
        )
        .with_context(|| format!("mounting sysfs on {}", target.display()))?;
        if let Some(archives) = apt_archives {
            let target = root.join("var/cache/apt/archives");
            std::fs::create_dir_all(&target)?;
            mount(Some(archives), &target, none, MsFlags::MS_BIND, none)
                .with_context(|| format!("bind-mounting {}", archives.display()))?;
        }
        Ok(guard)
    }
}

impl Drop for ChrootMounts {
    fn drop(&mut self) {
        if let Err(e) = unmount_below(&self.root) {
            eprintln!("testkit: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(super::unescape(r"/a\040b"), "/a b");
        assert_eq!(super::unescape("/plain"), "/plain");
    }
}

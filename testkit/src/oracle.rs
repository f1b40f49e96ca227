use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use crate::cache::remove_tree;
use crate::debian::{Flavour, chroot_env, debian_root};
use crate::run::run;

/// A file placed in the initramfs-tools root's /tmp for one oracle call,
/// removed again when dropped.
struct Scratch {
    path: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = remove_tree(&self.path);
        let _ = fs::remove_file(&self.path);
    }
}

fn scratch(root: &Path, what: &str) -> Scratch {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    Scratch {
        path: root.join(format!("tmp/testkit-{}-{n}-{what}", std::process::id())),
    }
}

fn inside(root: &Path, p: &Path) -> String {
    format!(
        "/{}",
        p.strip_prefix(root).expect("scratch is in root").display()
    )
}

/// Places `image` inside `root` (a hard link when possible, else a copy).
fn place(root: &Path, image: &Path) -> Result<Scratch> {
    let s = scratch(root, "image");
    if fs::hard_link(image, &s.path).is_err() {
        fs::copy(image, &s.path)
            .with_context(|| format!("copying {} into {}", image.display(), root.display()))?;
    }
    Ok(s)
}

/// Debian's `lsinitramfs` (with `-l` when `long`), run in the initramfs-tools
/// root: an independent reader of any image, one output line per entry.
pub fn lsinitramfs(image: &Path, long: bool) -> Result<Vec<String>> {
    let root = debian_root(Flavour::InitramfsTools)?;
    let img = place(&root, image)?;
    let mut argv = vec!["lsinitramfs".to_string()];
    if long {
        argv.push("-l".into());
    }
    argv.push(inside(&root, &img.path));
    let out = chroot_env(&root, argv, &[("LC_ALL", "C")])?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Debian's `unmkinitramfs` into `dest` (created; must not exist). As Debian
/// does, an image with an early segment unpacks to dest/early[N]/ and
/// dest/main/, one without to dest/ directly.
pub fn unmkinitramfs(image: &Path, dest: &Path) -> Result<()> {
    let root = debian_root(Flavour::InitramfsTools)?;
    let img = place(&root, image)?;
    let out = scratch(&root, "out");
    chroot_env(
        &root,
        [
            "unmkinitramfs".to_string(),
            inside(&root, &img.path),
            inside(&root, &out.path),
        ],
        &[("LC_ALL", "C")],
    )?;
    if fs::rename(&out.path, dest).is_err() {
        run(
            "cp",
            ["-a".as_ref(), out.path.as_os_str(), dest.as_os_str()],
        )?;
    }
    Ok(())
}

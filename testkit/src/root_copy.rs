//! A private, writable copy of a cached Debian root to run its own tools in,
//! as luksify's migration runs them in the mounted target.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::debian::{Flavour, debian_root};
use crate::mounts::ChrootMounts;
use crate::run::run;

/// A copy of the `Flavour`'s root with /proc and /sys mounted in it; on drop
/// everything mounted below it is unmounted and the copy removed.
pub struct RootCopy {
    // Field order is drop order: unmount before the directory goes.
    mounts: Option<ChrootMounts>,
    dir: tempfile::TempDir,
}

impl RootCopy {
    pub fn new(flavour: Flavour) -> Result<RootCopy> {
        let root = debian_root(flavour)?;
        // In the cache's file system, where --reflink may make the copy cheap.
        let dir = tempfile::Builder::new()
            .prefix("testkit-root-")
            .tempdir_in(crate::cache_root())?;
        copy_tree(&root, &dir.path().join("root"))?;
        Ok(RootCopy { mounts: None, dir })
    }

    /// The copy, e.g. to edit before `mount`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Mounts /proc and /sys into the copy (once), for chrooted programs.
    pub fn mount(&mut self) -> Result<()> {
        if self.mounts.is_none() {
            self.mounts = Some(ChrootMounts::new(&self.path(), None)?);
        }
        Ok(())
    }
}

/// `cp -a` of the tree `from` to the new path `to`, sharing blocks where the
/// file system can.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    run(
        "cp",
        [
            "-a".as_ref(),
            "--reflink=auto".as_ref(),
            from.as_os_str(),
            to.as_os_str(),
        ],
    )?;
    Ok(())
}

//! After luksify added the unlock to a target's images itself (no
//! cryptsetup-initramfs), the target's own update-initramfs would build the
//! next image (a kernel update) without it, and that kernel could not boot.
//! So the target gets an initramfs-tools hook that adds the same unlock to
//! every image it builds, with the configuration the injected images carry.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::boot::target_fs;
use crate::initrd::flavour::{UNLOCK_SCRIPT, initramfs_tools};
use crate::sys::atomic_file;

pub const HOOK: &str = include_str!("../../initramfs/initramfs-tools-hook");

/// Where each file goes in the target, its content's source and its mode.
pub fn files(unlock_conf: &str) -> Vec<(&'static str, String, u32)> {
    vec![
        ("/etc/luksify/unlock.conf", unlock_conf.to_string(), 0o644),
        (
            "/etc/luksify/luksify-unlock",
            UNLOCK_SCRIPT.to_string(),
            0o755,
        ),
        (
            "/etc/initramfs-tools/hooks/luksify",
            HOOK.to_string(),
            0o755,
        ),
        (
            "/etc/initramfs-tools/scripts/local-top/luksify",
            initramfs_tools::HOOK.to_string(),
            0o755,
        ),
    ]
}

/// Writes [`files`] into the target mounted at `root` (each atomically,
/// through the target's own symlinks); returns the paths written. Writing
/// them again is harmless.
pub fn install(root: &Path, unlock_conf: &str) -> Result<Vec<&'static str>> {
    let mut written = Vec::new();
    for (path, content, mode) in files(unlock_conf) {
        let host = target_fs::host(root, &target_fs::resolve(root, Path::new(path)));
        if let Some(dir) = host.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        atomic_file::write_atomic(&host, content.as_bytes(), mode)
            .with_context(|| format!("writing the target's {path}"))?;
        written.push(path);
    }
    Ok(written)
}

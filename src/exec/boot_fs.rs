//! The target's mounted /boot at the initramfs step: its free room, and the
//! refusal when the step would not fit (the plan checked the same from the
//! probe; this is the mounted file system's word).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Bytes an unprivileged writer may still use on `dir`'s file system.
pub fn free_bytes(dir: &Path) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir)
        .with_context(|| format!("reading the free space of {}", dir.display()))?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// The step's refusal of a /boot (`dir`) that is `detail` short of room.
pub fn refuse_short(dir: &Path, detail: Option<String>) -> Result<()> {
    if let Some(detail) = detail {
        bail!(
            "{} {detail}; nothing in it was changed. Make room in the target's /boot (remove kernels it no longer needs, e.g. `chroot ROOT apt-get purge linux-image-OLD`), then run `luksify migrate` again: it resumes here",
            dir.display(),
        );
    }
    Ok(())
}

/// `p` with `suffix` appended to its file name: where an image's backup
/// (`BACKUP_SUFFIX`) or its next version (`NEW_SUFFIX`) lives.
pub fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut name = p.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    p.with_file_name(name)
}

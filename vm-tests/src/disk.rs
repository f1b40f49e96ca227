//! Disk image files: sparse creation and content digests.

use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{Context, Result, bail};
use luksify::sys::process::Cmd;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Creates (or truncates to empty and regrows) a sparse image of `size` bytes.
pub fn create_sparse(path: &Path, size: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating disk image {}", path.display()))?;
    f.set_len(size)
        .with_context(|| format!("sizing disk image {} to {size} bytes", path.display()))
}

/// Copies an image keeping its holes (and sharing blocks where the
/// filesystem can), e.g. a cached prepared disk into a test's own copy.
pub fn copy_sparse(src: &Path, dst: &Path) -> Result<()> {
    Cmd::new("cp")
        .args(["--sparse=always", "--reflink=auto"])
        .arg(src)
        .arg(dst)
        .run()
        .with_context(|| format!("copying disk image {} to {}", src.display(), dst.display()))?;
    Ok(())
}

/// Hex sha256 of a whole file. Uses coreutils' sha256sum: the sha2 crate
/// unoptimized (tests build in debug) manages only tens of MB/s, too slow
/// for gigabyte images.
pub fn sha256_file(path: &Path) -> Result<String> {
    let out = Cmd::new("sha256sum")
        .arg("-b")
        .arg(path)
        .run()
        .with_context(|| format!("hashing disk image {}", path.display()))?
        .stdout_str();
    let hex = out.split_whitespace().next().unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("sha256sum printed {out:?} for {}", path.display());
    }
    Ok(hex.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_image_has_size_but_no_blocks_and_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.img");
        create_sparse(&p, 64 * MIB).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.len(), 64 * MIB);
        assert!(
            m.blocks() < 64,
            "image should be sparse, has {} blocks",
            m.blocks()
        );
        let copy = dir.path().join("copy.img");
        copy_sparse(&p, &copy).unwrap();
        let m = std::fs::metadata(&copy).unwrap();
        assert_eq!(m.len(), 64 * MIB);
        assert!(
            m.blocks() < 64,
            "copy should stay sparse, has {} blocks",
            m.blocks()
        );
        assert_eq!(sha256_file(&copy).unwrap(), sha256_file(&p).unwrap());
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

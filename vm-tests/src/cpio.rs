//! Packs a directory into a gzip-compressed newc cpio archive, the format the
//! kernel unpacks as an initramfs. Test tooling uses GNU cpio here; luksify's
//! own archive engine lives in src/initrd.

use std::path::Path;

use anyhow::{Context, Result};
use luksify::sys::process::Cmd;

/// Writes `dir`'s contents (not `dir` itself) to `out`, owned by root,
/// sorted so parents precede their children.
pub fn pack_dir_gzip(dir: &Path, out: &Path) -> Result<()> {
    Cmd::new("bash")
        .args([
            "-c",
            r#"set -euo pipefail
cd "$1"
find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -n -6 > "$2""#,
            "bash",
        ])
        .arg(dir)
        .arg(out)
        .run()
        .with_context(|| format!("packing {} into {}", dir.display(), out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_lists_files_with_root_ownership() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/hostname"), "live\n").unwrap();
        let out = dir.path().join("x.cpio.gz");
        pack_dir_gzip(&tree, &out).unwrap();
        let listing = Cmd::new("sh")
            .args(["-c", r#"gzip -dc "$1" | cpio -t -v --quiet"#, "sh"])
            .arg(&out)
            .run()
            .unwrap()
            .stdout_str();
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 2, "{listing}");
        assert!(
            lines[0].ends_with(" etc") && lines[1].ends_with(" etc/hostname"),
            "{listing}"
        );
        assert!(lines.iter().all(|l| l.contains(" root ")), "{listing}");
    }
}

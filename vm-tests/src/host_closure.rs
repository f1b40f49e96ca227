//! Host programs with their shared libraries, placed into an [`ImageTree`]
//! at the same canonical paths they have on the host. Test tooling only: the
//! library list comes from `ldd`, which runs the host's dynamic loader.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use luksify::sys::process::Cmd;

use crate::image_tree::ImageTree;

/// Top-level directories that merged-/usr hosts make symlinks; the image gets
/// the same links so both spellings of a path work inside it.
const MERGED_DIRS: &[&str] = &["bin", "sbin", "lib", "lib64"];

/// Directories searched for programs named without a path.
const PROGRAM_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Copies the host's merged-/usr symlinks (`/bin -> usr/bin`, ...).
pub fn add_usr_merge_links(tree: &mut ImageTree) -> Result<()> {
    for d in MERGED_DIRS {
        let host = Path::new("/").join(d);
        if let Ok(target) = fs::read_link(&host) {
            tree.add_symlink(d, target)?;
        }
    }
    Ok(())
}

/// Finds a program on the host by name.
pub fn find_program(name: &str) -> Result<PathBuf> {
    PROGRAM_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .with_context(|| {
            format!("program `{name}` is not installed on this host (see xtask/apt/vm.txt)")
        })
}

/// Where a host path lives once its directories' symlinks are resolved, the
/// file name itself kept (so `mkfs.ext4` stays a link to `mke2fs`).
fn canonical_dest(host: &Path) -> Result<PathBuf> {
    let parent = host.parent().context("path without a parent")?;
    let name = host.file_name().context("path without a file name")?;
    let parent =
        fs::canonicalize(parent).with_context(|| format!("resolving {}", parent.display()))?;
    Ok(parent.join(name))
}

/// Adds a host program at its canonical path, symlinks along the way kept as
/// symlinks, plus every library it loads.
pub fn add_program(tree: &mut ImageTree, host: &Path) -> Result<()> {
    let dest = add_following_links(tree, host)?;
    add_libraries_of(tree, &dest)
}

/// Adds a host program at a chosen place in the image, plus its libraries.
pub fn add_program_as(tree: &mut ImageTree, host: &Path, dest: &Path) -> Result<()> {
    tree.add_file(dest, host)?;
    add_libraries_of(tree, host)
}

/// Adds `host` (and, if it is a symlink, the chain it points along); returns
/// the real file it ends at.
fn add_following_links(tree: &mut ImageTree, host: &Path) -> Result<PathBuf> {
    let mut cur = host.to_path_buf();
    for _ in 0..16 {
        let dest = canonical_dest(&cur)?;
        match fs::read_link(&cur) {
            Ok(target) => {
                tree.add_symlink(&dest, &target)?;
                cur = dest.parent().unwrap_or(Path::new("/")).join(target);
            }
            Err(_) => {
                tree.add_file(&dest, &cur)?;
                return Ok(cur);
            }
        }
    }
    bail!("too many symlinks starting at {}", host.display())
}

fn add_libraries_of(tree: &mut ImageTree, program: &Path) -> Result<()> {
    let out = Cmd::new("ldd").arg(program).output()?;
    let text = out.stdout_str();
    // Static binaries make ldd exit 1 with "not a dynamic executable".
    if !out.success()
        && (text.contains("not a dynamic executable")
            || out.stderr.contains("not a dynamic executable"))
    {
        return Ok(());
    }
    if !out.success() {
        bail!("ldd {} failed: {}", program.display(), out.stderr.trim());
    }
    for lib in parse_ldd(&text).with_context(|| format!("libraries of {}", program.display()))? {
        let dest = canonical_dest(&lib)?;
        if !tree.contains(&dest) {
            tree.add_file(&dest, &lib)?;
        }
    }
    Ok(())
}

/// The library paths in ldd's output; an unresolved library is an error.
pub fn parse_ldd(text: &str) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.contains("=> not found") {
            bail!("missing library: {line}");
        }
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_parsed() {
        let text = "\tlinux-vdso.so.1 (0x00007ffc)\n\
                    \tlibpopt.so.0 => /lib/x86_64-linux-gnu/libpopt.so.0 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libpopt.so.0"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
    }

    #[test]
    fn real_program_brings_its_loader_and_libc() {
        let mut t = ImageTree::new();
        add_program(&mut t, &find_program("sfdisk").unwrap()).unwrap();
        let paths: Vec<String> = t.paths().map(|p| p.display().to_string()).collect();
        assert!(paths.iter().any(|p| p.ends_with("/sfdisk")), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("libc.so.6")), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("ld-linux")), "{paths:?}");
    }
}

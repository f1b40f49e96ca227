//! A file tree described in memory before it is written anywhere: what an
//! initramfs will contain. Its digest covers every path, mode and byte, so it
//! serves as the cache key of whatever is built from it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::cache;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Content copied from a host file.
    File {
        src: PathBuf,
        mode: u32,
    },
    Bytes {
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        target: PathBuf,
    },
    Dir,
}

/// Paths are relative to the tree's root (no leading `/`).
#[derive(Debug, Clone, Default)]
pub struct ImageTree {
    nodes: BTreeMap<PathBuf, Node>,
}

fn relative(dest: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => bail!("image path {} must not contain `..`", dest.display()),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("empty image path");
    }
    Ok(out)
}

impl ImageTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn contains(&self, dest: impl AsRef<Path>) -> bool {
        relative(dest.as_ref()).is_ok_and(|p| self.nodes.contains_key(&p))
    }

    pub fn get(&self, dest: impl AsRef<Path>) -> Option<&Node> {
        self.nodes.get(&relative(dest.as_ref()).ok()?)
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.nodes.keys().map(|p| p.as_path())
    }

    /// Copies a host file (following symlinks), keeping its permission bits.
    pub fn add_file(&mut self, dest: impl AsRef<Path>, src: impl AsRef<Path>) -> Result<()> {
        let src = src.as_ref();
        let meta = fs::metadata(src).with_context(|| format!("reading {}", src.display()))?;
        if !meta.is_file() {
            bail!("{} is not a regular file", src.display());
        }
        self.insert(
            dest.as_ref(),
            Node::File {
                src: src.to_path_buf(),
                mode: meta.permissions().mode() & 0o7777,
            },
        )
    }

    pub fn add_bytes(
        &mut self,
        dest: impl AsRef<Path>,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<()> {
        self.insert(
            dest.as_ref(),
            Node::Bytes {
                data: data.into(),
                mode,
            },
        )
    }

    pub fn add_symlink(&mut self, dest: impl AsRef<Path>, target: impl AsRef<Path>) -> Result<()> {
        self.insert(
            dest.as_ref(),
            Node::Symlink {
                target: target.as_ref().to_path_buf(),
            },
        )
    }

    pub fn add_dir(&mut self, dest: impl AsRef<Path>) -> Result<()> {
        self.insert(dest.as_ref(), Node::Dir)
    }

    /// Later additions replace earlier ones at the same path.
    fn insert(&mut self, dest: &Path, node: Node) -> Result<()> {
        self.nodes.insert(relative(dest)?, node);
        Ok(())
    }

    /// The nodes of `self` that `base` lacks or has differently: what must
    /// be laid over `base` to get `self`'s content.
    pub fn without(&self, base: &ImageTree) -> ImageTree {
        ImageTree {
            nodes: self
                .nodes
                .iter()
                .filter(|(p, n)| base.nodes.get(*p) != Some(n))
                .map(|(p, n)| (p.clone(), n.clone()))
                .collect(),
        }
    }

    /// A digest of everything the tree would contain.
    pub fn digest(&self) -> Result<String> {
        let mut h = Sha256::new();
        for (path, node) in &self.nodes {
            h.update(path.as_os_str().as_encoded_bytes());
            h.update([0]);
            match node {
                Node::File { src, mode } => {
                    // Host files are identified by path, size and mtime: a
                    // package upgrade changes them, and hashing every byte
                    // costs seconds in unoptimized test builds.
                    let m =
                        fs::metadata(src).with_context(|| format!("reading {}", src.display()))?;
                    h.update(format!(
                        "F{mode:o}\0{}\0{}\0{}.{}\0",
                        src.display(),
                        m.len(),
                        m.mtime(),
                        m.mtime_nsec()
                    ));
                }
                Node::Bytes { data, mode } => {
                    h.update(format!("B{mode:o}\0"));
                    h.update(data);
                }
                Node::Symlink { target } => {
                    h.update("L\0");
                    h.update(target.as_os_str().as_encoded_bytes());
                }
                Node::Dir => h.update("D"),
            }
            h.update([0xff]);
        }
        Ok(cache::hex(&h.finalize()[..12]))
    }

    /// Writes the tree under `root` (which must exist).
    pub fn write_to(&self, root: &Path) -> Result<()> {
        for (path, node) in &self.nodes {
            let dest = root.join(path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            match node {
                Node::File { src, mode } => {
                    fs::copy(src, &dest).with_context(|| {
                        format!("copying {} to {}", src.display(), dest.display())
                    })?;
                    fs::set_permissions(&dest, fs::Permissions::from_mode(*mode))?;
                }
                Node::Bytes { data, mode } => {
                    fs::write(&dest, data)
                        .with_context(|| format!("writing {}", dest.display()))?;
                    fs::set_permissions(&dest, fs::Permissions::from_mode(*mode))?;
                }
                Node::Symlink { target } => symlink(target, &dest)
                    .with_context(|| format!("creating symlink {}", dest.display()))?,
                Node::Dir => fs::create_dir_all(&dest)
                    .with_context(|| format!("creating {}", dest.display()))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_follows_content_and_written_tree_matches() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::write(&src, "one").unwrap();
        let mut t = ImageTree::new();
        t.add_file("/usr/bin/tool", &src).unwrap();
        t.add_symlink("bin", "usr/bin").unwrap();
        t.add_bytes("etc/x.conf", "a=1\n", 0o644).unwrap();
        t.add_dir("run").unwrap();
        let d1 = t.digest().unwrap();
        fs::write(&src, "three").unwrap();
        assert_ne!(d1, t.digest().unwrap(), "digest must see a changed file");

        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        t.write_to(&out).unwrap();
        assert_eq!(fs::read_to_string(out.join("bin/tool")).unwrap(), "three");
        assert_eq!(
            fs::read_link(out.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert_eq!(fs::read_to_string(out.join("etc/x.conf")).unwrap(), "a=1\n");
        assert!(out.join("run").is_dir());
    }

    #[test]
    fn overlay_keeps_only_what_the_base_lacks() {
        let mut base = ImageTree::new();
        base.add_bytes("etc/a", "1", 0o644).unwrap();
        base.add_bytes("etc/b", "1", 0o644).unwrap();
        let mut mine = base.clone();
        mine.add_bytes("etc/b", "2", 0o644).unwrap();
        mine.add_dir("new").unwrap();
        let over = mine.without(&base);
        let over: Vec<&Path> = over.paths().collect();
        assert_eq!(over, [Path::new("etc/b"), Path::new("new")]);
    }

    #[test]
    fn parent_escapes_are_refused() {
        let mut t = ImageTree::new();
        assert!(t.add_dir("../etc").is_err());
        assert!(t.add_dir("/").is_err());
    }
}

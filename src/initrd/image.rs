//! The in-memory model of an initramfs and its edit API. Edits are recorded as
//! changes keyed by normalized path and applied only when writing (write.rs);
//! nothing here touches the filesystem.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;

use anyhow::Context;

use super::cpio::entry::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use super::cpio::{Entry, Kind};
use super::error::ArchiveError;
use super::path::{self, normalize, normalize_archive_name};
use super::segment::{ReadOptions, Segment, read_segments};

/// Where an entry of the original image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub segment: usize,
    pub entry: usize,
}

/// A file, directory or symlink made in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Full mode including the file type bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// Unique in the whole image.
    pub ino: u32,
    /// File content or symlink target.
    pub data: Vec<u8>,
}

impl NewEntry {
    pub fn kind(&self) -> Kind {
        Kind::of_mode(self.mode)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(NewEntry),
    Remove,
}

/// What a path currently is, looking at changes first, then the image.
#[derive(Debug, Clone, Copy)]
pub enum Node<'a> {
    Original {
        loc: Loc,
        entry: &'a Entry,
        data: &'a [u8],
    },
    New(&'a NewEntry),
}

impl<'a> Node<'a> {
    pub fn mode(&self) -> u32 {
        match self {
            Node::Original { entry, .. } => entry.header.mode,
            Node::New(n) => n.mode,
        }
    }
    pub fn kind(&self) -> Kind {
        Kind::of_mode(self.mode())
    }
    /// File content or symlink target. For a hard link that is not the last of
    /// its set this is empty, as in the archive.
    pub fn data(&self) -> &'a [u8] {
        match self {
            Node::Original { data, .. } => data,
            Node::New(n) => &n.data,
        }
    }
    pub fn uid(&self) -> u32 {
        match self {
            Node::Original { entry, .. } => entry.header.uid,
            Node::New(n) => n.uid,
        }
    }
    pub fn gid(&self) -> u32 {
        match self {
            Node::Original { entry, .. } => entry.header.gid,
            Node::New(n) => n.gid,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Image {
    raw: Vec<u8>,
    leading_zeros: u64,
    segments: Vec<Segment>,
    /// Normalized name -> the entry the kernel ends up with (the last one).
    index: HashMap<Vec<u8>, Loc>,
    changes: BTreeMap<Vec<u8>, Change>,
    used_inos: HashSet<u32>,
    next_ino: u32,
}

/// Reads a whole file into a buffer sized from its length, reserved fallibly: an
/// image larger than memory is an error to report, not an abort.
fn read_file(p: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(p)?;
    let len = f.metadata()?.len();
    let mut raw = Vec::new();
    raw.try_reserve_exact(usize::try_from(len).unwrap_or(0).saturating_add(1))
        .map_err(std::io::Error::other)?;
    f.read_to_end(&mut raw)?;
    Ok(raw)
}

/// Symlink hops allowed while resolving a path, as the kernel's MAXSYMLINKS.
const MAX_HOPS: usize = 40;

impl Image {
    pub fn parse(raw: Vec<u8>) -> Result<Image, ArchiveError> {
        Image::parse_with(raw, &ReadOptions::default())
    }

    pub fn parse_with(raw: Vec<u8>, opts: &ReadOptions) -> Result<Image, ArchiveError> {
        let (leading_zeros, segments) = read_segments(&raw, opts)?;
        let mut index = HashMap::new();
        let mut used_inos = HashSet::new();
        for (si, seg) in segments.iter().enumerate() {
            for (ei, e) in seg.entries.iter().enumerate() {
                if e.is_trailer() {
                    continue;
                }
                used_inos.insert(e.header.ino);
                let key = normalize_archive_name(&e.name);
                if !key.is_empty() {
                    index.insert(
                        key,
                        Loc {
                            segment: si,
                            entry: ei,
                        },
                    );
                }
            }
        }
        let next_ino = used_inos
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .wrapping_add(1)
            .max(1);
        Ok(Image {
            raw,
            leading_zeros,
            segments,
            index,
            changes: BTreeMap::new(),
            used_inos,
            next_ino,
        })
    }

    /// Reads and parses an image file.
    pub fn open(p: &Path) -> anyhow::Result<Image> {
        Image::open_with(p, &ReadOptions::default())
    }

    pub fn open_with(p: &Path, opts: &ReadOptions) -> anyhow::Result<Image> {
        let raw = read_file(p).with_context(|| format!("reading initramfs {}", p.display()))?;
        Image::parse_with(raw, opts)
            .with_context(|| format!("{} is not a readable initramfs", p.display()))
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn leading_zeros(&self) -> u64 {
        self.leading_zeros
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segment that holds the system (the last compressed one, or the last one).
    pub fn main_segment(&self) -> usize {
        self.segments
            .iter()
            .rposition(|s| s.compression != super::compression::Compression::None)
            .unwrap_or(self.segments.len() - 1)
    }

    pub fn changes(&self) -> &BTreeMap<Vec<u8>, Change> {
        &self.changes
    }

    pub fn is_modified(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The entry of the original image at a normalized name (ignoring changes).
    pub fn original(&self, name: &[u8]) -> Option<Loc> {
        self.index.get(name).copied()
    }

    /// Normalized names of the original image's entries.
    pub fn original_names(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.index.keys()
    }

    pub fn entry(&self, loc: Loc) -> &Entry {
        &self.segments[loc.segment].entries[loc.entry]
    }

    /// What is at exactly this normalized name, without following symlinks.
    pub fn node_at(&self, name: &[u8]) -> Option<Node<'_>> {
        match self.changes.get(name) {
            Some(Change::Put(n)) => return Some(Node::New(n)),
            Some(Change::Remove) => return None,
            None => {}
        }
        let loc = *self.index.get(name)?;
        let seg = &self.segments[loc.segment];
        let entry = &seg.entries[loc.entry];
        Some(Node::Original {
            loc,
            entry,
            data: seg.entry_data(entry),
        })
    }

    /// Normalizes `p` and follows symlinks in its parent directories, as the kernel
    /// would when creating it (the last component is not followed). Symlinks are
    /// resolved inside the image: ".." stops at its root.
    pub fn resolve(&self, p: &str) -> Result<Vec<u8>, ArchiveError> {
        let norm = normalize(p)?;
        let mut todo: VecDeque<Vec<u8>> = path::components(&norm).map(<[u8]>::to_vec).collect();
        let mut done: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            if c == b".." {
                done.pop();
                continue;
            }
            if todo.is_empty() {
                done.push(c);
                break;
            }
            let mut cand = done.join(&b'/');
            if !cand.is_empty() {
                cand.push(b'/');
            }
            cand.extend_from_slice(&c);
            match self.node_at(&cand) {
                Some(n) if n.kind() == Kind::Symlink => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(ArchiveError::BadPath {
                            path: p.to_string(),
                            problem: "too many levels of symbolic links inside the image".into(),
                        });
                    }
                    let target = n.data();
                    if target.first() == Some(&b'/') {
                        done.clear();
                    }
                    for t in path::components(target).rev() {
                        todo.push_front(t.to_vec());
                    }
                }
                _ => done.push(c),
            }
        }
        if done.is_empty() {
            return Err(ArchiveError::BadPath {
                path: p.to_string(),
                problem: "resolves to the image root".into(),
            });
        }
        Ok(done.join(&b'/'))
    }

    /// What `p` is (symlinks in parent directories followed, the last one not).
    pub fn lookup(&self, p: &str) -> Result<Option<Node<'_>>, ArchiveError> {
        let name = self.resolve(p)?;
        Ok(self.node_at(&name))
    }

    fn alloc_ino(&mut self) -> u32 {
        while self.next_ino == 0 || self.used_inos.contains(&self.next_ino) {
            self.next_ino = self.next_ino.wrapping_add(1);
        }
        let ino = self.next_ino;
        self.used_inos.insert(ino);
        self.next_ino = self.next_ino.wrapping_add(1);
        ino
    }

    /// Makes sure every parent directory of the resolved name exists.
    fn ensure_parents(&mut self, name: &[u8], shown: &str) -> Result<(), ArchiveError> {
        let parent = path::parent(name).to_vec();
        if parent.is_empty() {
            return Ok(());
        }
        match self.node_at(&parent).map(|n| n.kind()) {
            Some(Kind::Dir) => Ok(()),
            Some(k) => Err(ArchiveError::BadPath {
                path: shown.to_string(),
                problem: format!(
                    "parent {:?} is a {k:?}, not a directory",
                    String::from_utf8_lossy(&parent)
                ),
            }),
            None => {
                self.ensure_parents(&parent, shown)?;
                self.put(parent, S_IFDIR | 0o755, Vec::new());
                Ok(())
            }
        }
    }

    fn put(&mut self, name: Vec<u8>, mode: u32, data: Vec<u8>) {
        let ino = self.alloc_ino();
        self.changes.insert(
            name,
            Change::Put(NewEntry {
                mode,
                uid: 0,
                gid: 0,
                mtime: 0,
                ino,
                data,
            }),
        );
    }

    fn add(&mut self, p: &str, mode: u32, data: Vec<u8>) -> Result<Vec<u8>, ArchiveError> {
        let name = self.resolve(p)?;
        if u32::try_from(data.len()).is_err() {
            return Err(ArchiveError::BadPath {
                path: p.to_string(),
                problem: "content is 4 GiB or larger, which cpio cannot hold".into(),
            });
        }
        if Kind::of_mode(mode) != Kind::Dir
            && self.node_at(&name).is_some_and(|n| n.kind() == Kind::Dir)
            && self.has_children(&name)
        {
            return Err(ArchiveError::BadPath {
                path: p.to_string(),
                problem: "is a non-empty directory in the image; remove it first".into(),
            });
        }
        self.ensure_parents(&name, p)?;
        self.put(name.clone(), mode, data);
        Ok(name)
    }

    /// Whether anything (after changes) lives below the normalized name.
    pub fn has_children(&self, name: &[u8]) -> bool {
        let mut prefix = name.to_vec();
        prefix.push(b'/');
        let below = |k: &&Vec<u8>| k.starts_with(&prefix);
        self.index
            .keys()
            .filter(below)
            .any(|k| !matches!(self.changes.get(k), Some(Change::Remove)))
            || self
                .changes
                .iter()
                .any(|(k, c)| below(&k) && matches!(c, Change::Put(_)))
    }

    /// Adds or replaces a regular file (parents created 0755, owner root).
    /// Returns the name it got after resolving symlinked parents.
    pub fn add_file(&mut self, p: &str, data: Vec<u8>, perm: u32) -> Result<Vec<u8>, ArchiveError> {
        self.add(p, S_IFREG | (perm & !S_IFMT), data)
    }

    /// Adds a directory with its parents; an existing directory gets the new mode.
    /// A symlink to a directory (`lib -> usr/lib`) is left alone, like `mkdir -p`
    /// does: replacing it would break a usr-merged image.
    pub fn add_dir(&mut self, p: &str, perm: u32) -> Result<Vec<u8>, ArchiveError> {
        let name = self.resolve(p)?;
        if self
            .node_at(&name)
            .is_some_and(|n| n.kind() == Kind::Symlink)
        {
            let inside = self.resolve(&format!("{p}/x"))?;
            let target = path::parent(&inside).to_vec();
            if self.node_at(&target).is_some_and(|n| n.kind() == Kind::Dir) {
                return Ok(target);
            }
            if !target.is_empty() && self.node_at(&target).is_none() {
                // Dangling: make the directory it points to, as unpacking through it would.
                return self.add(
                    &String::from_utf8_lossy(&target),
                    S_IFDIR | (perm & !S_IFMT),
                    Vec::new(),
                );
            }
        }
        self.add(p, S_IFDIR | (perm & !S_IFMT), Vec::new())
    }

    /// Adds or replaces a symlink.
    pub fn add_symlink(&mut self, p: &str, target: &str) -> Result<Vec<u8>, ArchiveError> {
        if target.is_empty() || target.contains('\0') || target.len() > 4095 {
            return Err(ArchiveError::BadPath {
                path: p.to_string(),
                problem: "symlink target must be 1..4095 bytes without NUL".into(),
            });
        }
        self.add(p, S_IFLNK | 0o777, target.as_bytes().to_vec())
    }

    /// Removes an entry, and everything below it if it is a directory.
    /// Returns whether anything existed there.
    pub fn remove(&mut self, p: &str) -> Result<bool, ArchiveError> {
        let name = self.resolve(p)?;
        let existed = self.node_at(&name).is_some();
        let mut prefix = name.clone();
        prefix.push(b'/');
        let below: Vec<Vec<u8>> = self
            .index
            .keys()
            .chain(self.changes.keys())
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in below.into_iter().chain([name]) {
            if self.index.contains_key(&k) {
                self.changes.insert(k, Change::Remove);
            } else {
                self.changes.remove(&k);
            }
        }
        Ok(existed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::initrd::cpio::newc::{self, CpioFormat, Header};

    pub fn header(mode: u32, ino: u32, nlink: u32) -> Header {
        Header {
            format: CpioFormat::Newc,
            ino,
            mode,
            uid: 0,
            gid: 0,
            nlink,
            mtime: 0,
            filesize: 0,
            dev_major: 0,
            dev_minor: 0,
            rdev_major: 0,
            rdev_minor: 0,
            namesize: 0,
            check: 0,
        }
    }

    /// A small newc archive: usr/, usr/lib/, lib -> usr/lib, etc/, etc/a, bin -> /usr/bin.
    pub fn sample_cpio() -> Vec<u8> {
        let mut out = Vec::new();
        newc::encode_record(&header(S_IFDIR | 0o755, 1, 2), b".", b"", &mut out);
        newc::encode_record(&header(S_IFDIR | 0o755, 2, 2), b"usr", b"", &mut out);
        newc::encode_record(&header(S_IFDIR | 0o755, 3, 2), b"usr/lib", b"", &mut out);
        newc::encode_record(&header(S_IFLNK | 0o777, 4, 1), b"lib", b"usr/lib", &mut out);
        newc::encode_record(&header(S_IFDIR | 0o755, 5, 2), b"etc", b"", &mut out);
        newc::encode_record(&header(S_IFREG | 0o644, 6, 1), b"etc/a", b"alpha", &mut out);
        newc::encode_record(
            &header(S_IFLNK | 0o777, 7, 1),
            b"bin",
            b"/usr/bin",
            &mut out,
        );
        newc::encode_record(
            &newc::trailer_header(CpioFormat::Newc),
            newc::TRAILER,
            b"",
            &mut out,
        );
        out
    }

    #[test]
    fn lookup_normalizes_and_follows_parent_symlinks() {
        let img = Image::parse(sample_cpio()).unwrap();
        assert_eq!(img.lookup("./etc/a").unwrap().unwrap().data(), b"alpha");
        assert_eq!(img.lookup("/lib").unwrap().unwrap().kind(), Kind::Symlink);
        assert!(img.lookup("etc/missing").unwrap().is_none());
        assert_eq!(img.resolve("lib/libc.so.6").unwrap(), b"usr/lib/libc.so.6");
        assert_eq!(img.resolve("bin/sh").unwrap(), b"usr/bin/sh");
        assert!(img.lookup("../etc/a").is_err());
    }

    #[test]
    fn adding_through_a_symlinked_dir_lands_in_its_target_and_makes_parents() {
        let mut img = Image::parse(sample_cpio()).unwrap();
        assert_eq!(
            img.add_file("/lib/x/y.so", b"elf".to_vec(), 0o755).unwrap(),
            b"usr/lib/x/y.so"
        );
        assert_eq!(img.lookup("usr/lib/x").unwrap().unwrap().kind(), Kind::Dir);
        assert_eq!(img.lookup("lib/x/y.so").unwrap().unwrap().data(), b"elf");
        // The symlink "lib" itself is untouched.
        assert!(!img.changes().contains_key(b"lib".as_slice()));
        // bin -> /usr/bin does not exist yet: usr/bin is created as a directory.
        img.add_file("bin/cryptsetup", b"x".to_vec(), 0o755)
            .unwrap();
        assert!(
            matches!(img.changes().get(b"usr/bin".as_slice()), Some(Change::Put(n)) if n.kind() == Kind::Dir)
        );
    }

    #[test]
    fn add_dir_on_a_symlink_to_a_directory_keeps_the_symlink() {
        let mut img = Image::parse(sample_cpio()).unwrap();
        assert_eq!(img.add_dir("lib", 0o755).unwrap(), b"usr/lib");
        assert!(img.changes().is_empty());
        // A dangling symlink to a directory gets its target made.
        assert_eq!(img.add_dir("bin", 0o755).unwrap(), b"usr/bin");
        assert_eq!(img.lookup("bin").unwrap().unwrap().kind(), Kind::Symlink);
        assert_eq!(img.lookup("usr/bin").unwrap().unwrap().kind(), Kind::Dir);
    }

    #[test]
    fn injected_inodes_collide_with_nothing() {
        let mut img = Image::parse(sample_cpio()).unwrap();
        img.add_file("a", vec![], 0o644).unwrap();
        img.add_file("b", vec![], 0o644).unwrap();
        let inos: Vec<u32> = img
            .changes()
            .values()
            .map(|c| match c {
                Change::Put(n) => n.ino,
                Change::Remove => unreachable!(),
            })
            .collect();
        assert_eq!(inos, vec![8, 9]);
    }

    #[test]
    fn file_under_a_file_is_refused() {
        let mut img = Image::parse(sample_cpio()).unwrap();
        let e = img.add_file("etc/a/b", vec![], 0o644).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn remove_is_recursive_and_forgets_pending_puts() {
        let mut img = Image::parse(sample_cpio()).unwrap();
        img.add_file("etc/new", vec![], 0o644).unwrap();
        assert!(img.remove("etc").unwrap());
        assert!(img.lookup("etc/a").unwrap().is_none());
        assert!(!img.changes().contains_key(b"etc/new".as_slice()));
        assert_eq!(
            img.changes().get(b"etc/a".as_slice()),
            Some(&Change::Remove)
        );
        assert!(!img.remove("nothing/here").unwrap());
    }
}

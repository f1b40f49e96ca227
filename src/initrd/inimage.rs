//! Reading files inside an [`Image`] the way a process in the booted
//! initramfs would see them: symlinks followed (inside the image), hard links
//! resolved to the member of their set that carries the data.

use super::cpio::Kind;
use super::image::{Image, Node};
use super::path;

/// Symlink hops allowed, as the kernel's MAXSYMLINKS.
const MAX_HOPS: usize = 40;

/// A regular file found inside the image.
#[derive(Debug, Clone)]
pub struct Found {
    /// Normalized name of the file after following symlinks.
    pub name: Vec<u8>,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// What `p` (absolute or relative, inside the image) leads to after
/// following every symlink, or None when it dangles or loops.
pub fn follow<'a>(img: &'a Image, p: &str) -> Option<(Vec<u8>, Node<'a>)> {
    let mut cur = p.to_string();
    for _ in 0..MAX_HOPS {
        let name = img.resolve(&cur).ok()?;
        let node = img.node_at(&name)?;
        if node.kind() != Kind::Symlink {
            return Some((name, node));
        }
        let target = String::from_utf8_lossy(node.data()).into_owned();
        let joined = if target.starts_with('/') {
            target
        } else {
            let parent = String::from_utf8_lossy(path::parent(&name)).into_owned();
            format!("{parent}/{target}")
        };
        cur = collapse(&joined);
    }
    None
}

/// `a/b/../c` -> `a/c`, stopping at the root. Lexical is right here: the
/// parent part was already resolved, so `..` means its real parent.
fn collapse(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// The regular file at `p`, symlinks followed.
pub fn read(img: &Image, p: &str) -> Option<Found> {
    let (name, node) = follow(img, p)?;
    if node.kind() != Kind::File {
        return None;
    }
    let data = match node {
        Node::Original { loc, entry, data } if entry.is_hard_link() && data.is_empty() => {
            // newc stores a hard-link set's data with its last member.
            let seg = &img.segments()[loc.segment];
            seg.entries
                .iter()
                .filter(|e| {
                    e.header.ino == entry.header.ino
                        && e.header.dev_major == entry.header.dev_major
                        && e.header.dev_minor == entry.header.dev_minor
                        && e.kind() == Kind::File
                })
                .map(|e| seg.entry_data(e))
                .find(|d| !d.is_empty())
                .unwrap_or_default()
                .to_vec()
        }
        n => n.data().to_vec(),
    };
    Some(Found {
        name,
        mode: node.mode(),
        data,
    })
}

/// Whether `p` exists as anything (the last symlink not followed).
pub fn exists(img: &Image, p: &str) -> bool {
    img.lookup(p).ok().flatten().is_some()
}

/// Whether `p` leads to a directory.
pub fn is_dir(img: &Image, p: &str) -> bool {
    follow(img, p).is_some_and(|(_, n)| n.kind() == Kind::Dir)
}

/// Text of the file at `p`, if it is one.
pub fn text(img: &Image, p: &str) -> Option<String> {
    read(img, p).map(|f| String::from_utf8_lossy(&f.data).into_owned())
}

/// Names (normalized, after changes) directly below the directory `p`.
pub fn children(img: &Image, p: &str) -> Vec<String> {
    let Some((dir, _)) = follow(img, p) else {
        return Vec::new();
    };
    let mut prefix = dir.clone();
    prefix.push(b'/');
    let mut out: Vec<String> = img
        .original_names()
        .chain(img.changes().keys())
        .filter_map(|k| k.strip_prefix(prefix.as_slice()))
        .filter(|rest| !rest.is_empty() && !rest.contains(&b'/'))
        .map(|rest| String::from_utf8_lossy(rest).into_owned())
        .collect();
    out.sort();
    out.dedup();
    out.retain(|c| exists(img, &format!("{}/{c}", String::from_utf8_lossy(&dir))));
    out
}

//! Oracles for initramfs tests that do not trust our own reader: GNU cpio and the
//! real compressors build and unpack archives; `Tree` snapshots what a person would
//! check of an unpacked tree (type, mode, owner, content or link target, hard links).
//! `Op` applies the same edit to an `Image` and, through the filesystem, to a
//! directory, so the expected result never comes from our code.
//!
//! Include with `#[path = "support/initrd_oracle.rs"] mod initrd_oracle;`; tests on
//! real mkinitramfs/dracut images can reuse all of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use luksify::initrd::{Compression, Image};
use luksify::sys::process::Cmd;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn sh(script: &str, args: &[&str], stdin: Vec<u8>) -> Vec<u8> {
    Cmd::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin_bytes(stdin)
        .run()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .stdout
}

pub fn cpio_create(dir: &Path, format: &str) -> Vec<u8> {
    sh(
        r#"cd "$1" && find . | LC_ALL=C sort | cpio -o --quiet -H "$2""#,
        &[dir.to_str().unwrap(), format],
        Vec::new(),
    )
}

pub fn compress_tool(c: Compression, data: Vec<u8>) -> Vec<u8> {
    let cmd = match c {
        Compression::None => return data,
        Compression::Gzip => "gzip -n -9 -c",
        Compression::Bzip2 => "bzip2 -c",
        Compression::Lzma => "lzma -c",
        Compression::Xz => "xz --check=crc32 -c",
        Compression::Lzo => "lzop -c",
        Compression::Lz4 => "lz4 -l -c",
        Compression::Zstd => "zstd -q -c",
    };
    sh(cmd, &[], data)
}

pub fn decompress_tool(c: Compression, data: Vec<u8>) -> Vec<u8> {
    let cmd = match c {
        Compression::None => return data,
        Compression::Gzip => "gzip -dc",
        Compression::Bzip2 => "bzip2 -dc",
        Compression::Lzma => "lzma -dc",
        Compression::Xz => "xz -dc",
        Compression::Lzo => "lzop -dc",
        Compression::Lz4 => "lz4 -dc",
        Compression::Zstd => "zstd -dc",
    };
    sh(cmd, &[], data)
}

/// GNU cpio unpacks one archive into `dir` the way the kernel would over an
/// existing tree (-u: later entries replace earlier ones).
pub fn extract_into(cpio: Vec<u8>, dir: &Path) {
    let out = Cmd::new("sh")
        .args([
            "-c",
            r#"cd "$1" && cpio -idmu --quiet --no-absolute-filenames"#,
            "sh",
            dir.to_str().unwrap(),
        ])
        .stdin_bytes(cpio)
        .output()
        .unwrap();
    assert!(out.success(), "cpio -i failed: {}", out.stderr);
    assert!(!out.stderr.contains("checksum error"), "{}", out.stderr);
}

/// What a person would check of every entry: type, mode, owner, content or link
/// target, and which paths share an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub content: Vec<u8>,
    pub links: Vec<String>,
}

pub struct Tree(pub BTreeMap<String, Meta>);

impl Tree {
    pub fn snapshot(root: &Path) -> Tree {
        let mut by_ino: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut out = BTreeMap::new();
        fn walk(
            root: &Path,
            dir: &Path,
            out: &mut BTreeMap<String, Meta>,
            by_ino: &mut BTreeMap<u64, Vec<String>>,
        ) {
            let mut names: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            for p in names {
                let md = fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let ft = md.file_type();
                let (kind, content) = if ft.is_symlink() {
                    (
                        "symlink",
                        fs::read_link(&p)
                            .unwrap()
                            .into_os_string()
                            .into_encoded_bytes(),
                    )
                } else if ft.is_dir() {
                    ("dir", Vec::new())
                } else if ft.is_file() {
                    if md.nlink() > 1 {
                        by_ino.entry(md.ino()).or_default().push(rel.clone());
                    }
                    ("file", fs::read(&p).unwrap())
                } else {
                    ("special", Vec::new())
                };
                out.insert(
                    rel,
                    Meta {
                        kind,
                        mode: md.mode() & 0o7777,
                        uid: md.uid(),
                        gid: md.gid(),
                        content,
                        links: Vec::new(),
                    },
                );
                if ft.is_dir() {
                    walk(root, &p, out, by_ino);
                }
            }
        }
        walk(root, root, &mut out, &mut by_ino);
        for group in by_ino.values() {
            for p in group {
                out.get_mut(p).unwrap().links = group.clone();
            }
        }
        Tree(out)
    }

    pub fn assert_same(&self, actual: &Tree) {
        let mut problems = Vec::new();
        for (k, want) in &self.0 {
            match actual.0.get(k) {
                None => problems.push(format!("missing {k}")),
                Some(got) if got != want => problems.push(format!(
                    "{k}: want {} {:o} {}:{} {} bytes links {:?}, got {} {:o} {}:{} {} bytes links {:?}",
                    want.kind,
                    want.mode,
                    want.uid,
                    want.gid,
                    want.content.len(),
                    want.links,
                    got.kind,
                    got.mode,
                    got.uid,
                    got.gid,
                    got.content.len(),
                    got.links
                )),
                _ => {}
            }
        }
        for k in actual.0.keys().filter(|k| !self.0.contains_key(*k)) {
            problems.push(format!("unexpected {k}"));
        }
        assert!(
            problems.is_empty(),
            "trees differ:\n{}",
            problems.join("\n")
        );
    }
}

/// One edit, applied to the image by our API and to a directory by the filesystem.
#[derive(Clone, Copy)]
pub enum Op {
    File(&'static str, &'static [u8], u32),
    Dir(&'static str, u32),
    Symlink(&'static str, &'static str),
    Remove(&'static str),
}

pub fn apply_to_image(img: &mut Image, ops: &[Op]) {
    for op in ops {
        match *op {
            Op::File(p, d, m) => {
                img.add_file(p, d.to_vec(), m).unwrap();
            }
            Op::Dir(p, m) => {
                img.add_dir(p, m).unwrap();
            }
            Op::Symlink(p, t) => {
                img.add_symlink(p, t).unwrap();
            }
            Op::Remove(p) => {
                img.remove(p).unwrap();
            }
        }
    }
}

pub fn apply_to_dir(dir: &Path, ops: &[Op]) {
    fn parents(dir: &Path, p: &str) {
        let mut cur = dir.to_path_buf();
        let comps: Vec<&str> = p.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            cur.push(c);
            if fs::symlink_metadata(&cur).is_err() {
                fs::create_dir(&cur).unwrap();
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
    }
    fn clear(path: &Path) {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(path).unwrap(),
            Ok(_) => fs::remove_file(path).unwrap(),
            Err(_) => {}
        }
    }
    // The image API takes "./x" and "/x" for "x"; so must the directory.
    let rel = |p: &'static str| p.trim_start_matches('/').trim_start_matches("./");
    for op in ops {
        match *op {
            Op::File(p, d, m) => {
                let p = rel(p);
                parents(dir, p);
                let f = dir.join(p);
                // A new inode, as in the image: never write through a hard link.
                clear(&f);
                fs::write(&f, d).unwrap();
                fs::set_permissions(&f, fs::Permissions::from_mode(m)).unwrap();
            }
            Op::Dir(p, m) => {
                let p = rel(p);
                parents(dir, p);
                let f = dir.join(p);
                if !f.is_dir() {
                    fs::create_dir(&f).unwrap();
                }
                fs::set_permissions(&f, fs::Permissions::from_mode(m)).unwrap();
            }
            Op::Symlink(p, t) => {
                let p = rel(p);
                parents(dir, p);
                let f = dir.join(p);
                clear(&f);
                symlink(t, &f).unwrap();
            }
            Op::Remove(p) => clear(&dir.join(rel(p))),
        }
    }
}

/// GNU cpio's listing of an uncompressed archive, in order, without the root.
pub fn gnu_names(cpio: Vec<u8>) -> Vec<String> {
    let out = sh("cpio -t --quiet", &[], cpio);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| *l != ".")
        .map(str::to_string)
        .collect()
}

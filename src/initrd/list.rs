//! `luksify initrd list`: what segments an image has and what is in them.

use std::fmt::Write as _;

use serde::Serialize;

use super::compression::Compression;
use super::cpio::{CpioFormat, Kind};
use super::image::Image;

#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub size: u64,
    pub segments: Vec<SegmentListing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentListing {
    pub index: usize,
    pub offset: u64,
    pub length: u64,
    /// Zero bytes after the segment.
    pub padding: u64,
    pub compression: Compression,
    pub format: CpioFormat,
    pub uncompressed_size: u64,
    pub entries: Vec<EntryListing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryListing {
    /// The name as stored, lossily decoded if it is not UTF-8.
    pub name: String,
    pub kind: Kind,
    /// Octal mode including the type bits, as `ls`/`stat` people read it.
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    /// Data bytes stored with this entry (0 for all but the last of a hard-link set).
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

pub fn list(image: &Image) -> Listing {
    let segments = image
        .segments()
        .iter()
        .enumerate()
        .map(|(index, s)| SegmentListing {
            index,
            offset: s.offset,
            length: s.length,
            padding: s.padding,
            compression: s.compression,
            format: s.format,
            uncompressed_size: s.uncompressed_size,
            entries: s
                .entries
                .iter()
                .filter(|e| !e.is_trailer())
                .map(|e| {
                    // Symlink targets are there whether or not the image was read
                    // with file contents; file sizes come from the headers.
                    let data = s.entry_data(e);
                    EntryListing {
                        name: e.name_lossy(),
                        kind: e.kind(),
                        mode: format!("{:o}", e.header.mode),
                        uid: e.header.uid,
                        gid: e.header.gid,
                        nlink: e.header.nlink,
                        size: e.header.filesize.into(),
                        link_target: (e.kind() == Kind::Symlink)
                            .then(|| String::from_utf8_lossy(data).into_owned()),
                    }
                })
                .collect(),
        })
        .collect();
    Listing {
        size: image.raw().len() as u64,
        segments,
    }
}

fn perms(kind: Kind, mode: u32) -> String {
    let t = match kind {
        Kind::File => '-',
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::Char => 'c',
        Kind::Block => 'b',
        Kind::Fifo => 'p',
        Kind::Socket => 's',
        Kind::Unknown => '?',
    };
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

impl Listing {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "image: {} bytes, {} segment(s)",
            self.size,
            self.segments.len()
        );
        for s in &self.segments {
            let _ = writeln!(
                out,
                "segment {}: offset {}, length {} (+{} zero padding), {}, {}, {} entries, {} bytes uncompressed",
                s.index,
                s.offset,
                s.length,
                s.padding,
                s.compression,
                s.format,
                s.entries.len(),
                s.uncompressed_size
            );
            for e in &s.entries {
                let mode = u32::from_str_radix(&e.mode, 8).unwrap_or(0);
                let _ = write!(
                    out,
                    "  {} {:>5}/{:<5} {:>10} {}",
                    perms(e.kind, mode),
                    e.uid,
                    e.gid,
                    e.size,
                    e.name.escape_debug()
                );
                if let Some(t) = &e.link_target {
                    let _ = write!(out, " -> {}", t.escape_debug());
                }
                out.push('\n');
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a listing always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initrd::image::tests::sample_cpio;

    #[test]
    fn text_and_json_show_segments_entries_and_link_targets() {
        let img = Image::parse(sample_cpio()).unwrap();
        let l = list(&img);
        assert_eq!(l.segments.len(), 1);
        assert_eq!(l.segments[0].entries.len(), 7);
        let text = l.to_text();
        assert!(text.contains("segment 0: offset 0"), "{text}");
        assert!(text.contains("lrwxrwxrwx"), "{text}");
        assert!(text.contains("lib -> usr/lib"), "{text}");
        assert!(text.contains("-rw-r--r--"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&l.to_json()).unwrap();
        assert_eq!(v["segments"][0]["compression"], "none");
        assert_eq!(v["segments"][0]["format"], "newc");
        let a = &v["segments"][0]["entries"][5];
        assert_eq!(a["name"], "etc/a");
        assert_eq!(a["mode"], "100644");
        assert_eq!(a["size"], 5);
        assert_eq!(v["segments"][0]["entries"][3]["link_target"], "usr/lib");
    }
}

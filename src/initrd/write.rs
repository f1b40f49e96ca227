//! Turning an edited [`Image`] back into bytes, two ways:
//!
//! - **overlay**: the original image, untouched, then one more compressed cpio with
//!   the added and replaced entries. The kernel unpacks segments in order and a later
//!   entry replaces an earlier one, with the rules of `init/initramfs.c` `do_name()`:
//!   a regular file over a regular file is opened with O_TRUNC and rewritten; an entry
//!   of another type is removed first (`clean_path`, rmdir for directories, which fails
//!   when they are not empty); a symlink over a symlink fails with EEXIST and keeps the
//!   old one; a directory over a directory keeps it and applies mode and owner.
//!   Removals cannot be expressed at all. When a change cannot be expressed, we rewrite.
//! - **rewrite**: entries of the main (last compressed) segment are replaced in place,
//!   new ones go before its trailer, entries of the same name in other segments are
//!   dropped unless the kernel replaces them by ours anyway (then they stay, and so
//!   their segment stays byte-identical); records are streamed into the compressor,
//!   and only the segments that changed are re-encoded; the others are copied.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use serde::Serialize;

use super::compression::{CompressOptions, Compression, Encoder};
use super::cpio::newc::{self, CpioFormat, Header};
use super::cpio::{Body, Entry, Kind};
use super::error::ArchiveError;
use super::image::{Change, Image, Loc, NewEntry};
use super::path::normalize_archive_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Overlay when that is safe, rewrite otherwise.
    #[default]
    Auto,
    Overlay,
    Rewrite,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    pub mode: WriteMode,
    /// Compression of the main segment (rewrite) or of the appended one (overlay).
    /// `None` keeps the image's own.
    pub compression: Option<Compression>,
    pub compress: CompressOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Overlay,
    Rewrite,
}

#[derive(Debug, Clone)]
pub struct Written {
    pub bytes: Vec<u8>,
    pub method: Method,
    /// Why overlay was not possible, when it was not.
    pub rewrite_reasons: Vec<String>,
}

/// Reasons the changes cannot be expressed as an overlay (empty: overlay is safe).
pub fn overlay_blockers(image: &Image) -> Vec<String> {
    let mut why = Vec::new();
    let last = image
        .segments()
        .last()
        .expect("an image has at least one segment");
    if last.compression == Compression::Lz4
        && image
            .changes()
            .values()
            .any(|c| matches!(c, Change::Put(_)))
    {
        why.push(format!(
            "the last segment (byte {}) is lz4 legacy, which has no end marker: nothing can follow it",
            last.offset
        ));
    }
    for (name, change) in image.changes() {
        let shown = String::from_utf8_lossy(name);
        let Some(loc) = image.original(name) else {
            continue;
        };
        let old = image.entry(loc);
        match change {
            Change::Remove => why.push(format!("{shown}: removing an entry needs a rewrite")),
            Change::Put(new) => {
                let children = || {
                    old.kind() == Kind::Dir && new.kind() != Kind::Dir && has_children(image, name)
                };
                if let Err(reason) = kernel_replaces(old, new.kind(), children()) {
                    why.push(format!("{shown}: {reason}"));
                }
            }
        }
    }
    why
}

/// Whether the kernel, unpacking `new` over an existing `old` of the same name,
/// ends up with `new` (see the module comment), and why not.
fn kernel_replaces(old: &Entry, new: Kind, old_has_children: bool) -> Result<(), String> {
    match (old.kind(), new) {
        (Kind::Symlink, Kind::Symlink) => {
            Err("the kernel does not replace an existing symlink with another".into())
        }
        (Kind::Dir, k) if k != Kind::Dir && old_has_children => Err(format!(
            "a non-empty directory cannot be replaced by a {k:?} (rmdir fails)"
        )),
        (Kind::File, Kind::File) if old.header.nlink > 1 => {
            Err("is hard-linked; rewriting it in place would change every link".into())
        }
        _ => Ok(()),
    }
}

/// Whether the original image has anything below `name` (what the kernel's rmdir sees).
fn has_children(image: &Image, name: &[u8]) -> bool {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    image.original_names().any(|k| k.starts_with(&prefix))
}

/// A written image in two parts: `prefix` (the original image itself, borrowed,
/// for an overlay; empty for a rewrite) followed by `tail`. Writing both to a file
/// saves an overlay from copying the whole original image once more in memory.
#[derive(Debug)]
pub struct WrittenParts<'a> {
    pub prefix: &'a [u8],
    pub tail: Vec<u8>,
    pub method: Method,
    /// Why overlay was not possible, when it was not.
    pub rewrite_reasons: Vec<String>,
}

impl WrittenParts<'_> {
    pub fn len(&self) -> usize {
        self.prefix.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        w.write_all(self.prefix)?;
        w.write_all(&self.tail)
    }
}

pub fn write(image: &Image, opts: &WriteOptions) -> Result<Written, ArchiveError> {
    let p = write_parts(image, opts)?;
    let mut bytes = Vec::with_capacity(p.len());
    bytes.extend_from_slice(p.prefix);
    bytes.extend_from_slice(&p.tail);
    Ok(Written {
        bytes,
        method: p.method,
        rewrite_reasons: p.rewrite_reasons,
    })
}

pub fn write_parts<'a>(
    image: &'a Image,
    opts: &WriteOptions,
) -> Result<WrittenParts<'a>, ArchiveError> {
    let blockers = overlay_blockers(image);
    let use_overlay = match opts.mode {
        WriteMode::Overlay if !blockers.is_empty() => {
            return Err(ArchiveError::Write(format!(
                "overlay is not safe for these changes: {}; use rewrite",
                blockers.join("; ")
            )));
        }
        WriteMode::Overlay => true,
        WriteMode::Rewrite => false,
        WriteMode::Auto => blockers.is_empty() && opts.compression.is_none(),
    };
    if use_overlay {
        Ok(WrittenParts {
            prefix: image.raw(),
            tail: overlay_tail(image, opts)?,
            method: Method::Overlay,
            rewrite_reasons: Vec::new(),
        })
    } else {
        Ok(WrittenParts {
            prefix: &[],
            tail: rewrite(image, opts)?,
            method: Method::Rewrite,
            rewrite_reasons: blockers,
        })
    }
}

fn new_header(format: CpioFormat, n: &NewEntry) -> Header {
    Header {
        format,
        ino: n.ino,
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        nlink: if n.kind() == Kind::Dir { 2 } else { 1 },
        mtime: n.mtime,
        filesize: 0,
        dev_major: 0,
        dev_minor: 0,
        rdev_major: 0,
        rdev_minor: 0,
        namesize: 0,
        check: 0,
    }
}

fn compression_failed(c: Compression) -> impl Fn(std::io::Error) -> ArchiveError {
    move |e| ArchiveError::Write(format!("{c} compression failed: {e}"))
}

/// Original bytes, zero padding to a 4-byte boundary, one new segment.
pub fn overlay(image: &Image, opts: &WriteOptions) -> Result<Vec<u8>, ArchiveError> {
    let mut out = image.raw().to_vec();
    out.extend_from_slice(&overlay_tail(image, opts)?);
    Ok(out)
}

/// What an overlay appends to the original bytes: zero padding to a 4-byte
/// boundary and one new segment (nothing when there is nothing to put).
pub fn overlay_tail(image: &Image, opts: &WriteOptions) -> Result<Vec<u8>, ArchiveError> {
    let raw_len = image.raw().len();
    let mut out = Vec::new();
    let puts: Vec<(&Vec<u8>, &NewEntry)> = image
        .changes()
        .iter()
        .filter_map(|(k, c)| match c {
            Change::Put(n) => Some((k, n)),
            Change::Remove => None,
        })
        .collect();
    if puts.is_empty() {
        return Ok(out);
    }
    let main = &image.segments()[image.main_segment()];
    let c = opts.compression.unwrap_or_else(|| {
        image
            .segments()
            .iter()
            .rev()
            .map(|s| s.compression)
            .find(|c| *c != Compression::None)
            .unwrap_or(Compression::None)
    });
    out.resize(raw_len.next_multiple_of(4) - raw_len, 0);
    let failed = compression_failed(c);
    let mut enc = Encoder::new(c, opts.compress, out).map_err(&failed)?;
    for (name, n) in puts {
        newc::write_record(&new_header(main.format, n), name, &n.data, &mut enc)
            .map_err(&failed)?;
    }
    newc::write_record(
        &newc::trailer_header(main.format),
        newc::TRAILER,
        b"",
        &mut enc,
    )
    .map_err(&failed)?;
    enc.finish().map_err(&failed)
}

/// What happens to one original entry in a rewrite.
enum Fate<'a> {
    Keep,
    Drop,
    Replace(&'a NewEntry),
    /// A surviving member of a hard-link set whose set changed.
    Relink {
        nlink: u32,
        data: &'a [u8],
    },
}

pub fn rewrite(image: &Image, opts: &WriteOptions) -> Result<Vec<u8>, ArchiveError> {
    let segs = image.segments();
    let main = image.main_segment();
    let mut fates: HashMap<(usize, usize), Fate> = HashMap::new();
    let mut appended: Vec<(&[u8], &NewEntry)> = Vec::new();

    let mut by_name: HashMap<Vec<u8>, Vec<Loc>> = HashMap::new();
    if !image.changes().is_empty() {
        for (si, s) in segs.iter().enumerate() {
            for (ei, e) in s.entries.iter().enumerate() {
                if !e.is_trailer() {
                    let key = normalize_archive_name(&e.name);
                    if image.changes().contains_key(&key) {
                        by_name.entry(key).or_default().push(Loc {
                            segment: si,
                            entry: ei,
                        });
                    }
                }
            }
        }
    }
    for (name, change) in image.changes() {
        let locs = by_name.get(name).map(Vec::as_slice).unwrap_or(&[]);
        match change {
            Change::Remove => {
                for l in locs {
                    fates.insert((l.segment, l.entry), Fate::Drop);
                }
            }
            Change::Put(n) => {
                let in_place = locs.iter().rev().find(|l| l.segment == main).copied();
                for l in locs {
                    let old = image.entry(*l);
                    // An earlier entry the kernel will replace by ours may stay, so its
                    // segment can stay byte-identical; any other is dropped.
                    let fate = if Some(*l) == in_place {
                        Fate::Replace(n)
                    } else if l.segment <= main && kernel_replaces(old, n.kind(), true).is_ok() {
                        Fate::Keep
                    } else {
                        Fate::Drop
                    };
                    fates.insert((l.segment, l.entry), fate);
                }
                if in_place.is_none() {
                    appended.push((name, n));
                }
            }
        }
    }
    relink_hard_link_sets(image, &mut fates);

    let mut out = Vec::with_capacity(image.raw().len() + image.raw().len() / 4);
    out.extend_from_slice(&image.raw()[..image.leading_zeros() as usize]);
    for (si, seg) in segs.iter().enumerate() {
        let target = if si == main {
            opts.compression.unwrap_or(seg.compression)
        } else {
            seg.compression
        };
        let touched = (0..seg.entries.len())
            .any(|ei| !matches!(fates.get(&(si, ei)), None | Some(Fate::Keep)));
        let dirty = touched || (si == main && (!appended.is_empty() || target != seg.compression));
        if dirty && !seg.contents {
            return Err(ArchiveError::Write(format!(
                "segment {si} was read without file contents (ReadOptions::contents = false), \
                 so it cannot be re-encoded; read the image whole to rewrite it"
            )));
        }
        if dirty {
            let failed = compression_failed(target);
            let mut enc = Encoder::new(target, opts.compress, out).map_err(&failed)?;
            let extra = if si == main { &appended[..] } else { &[] };
            encode_segment(image, si, &fates, extra, &mut enc).map_err(&failed)?;
            out = enc.finish().map_err(&failed)?;
        } else {
            let start = seg.offset as usize;
            out.extend_from_slice(&image.raw()[start..start + seg.length as usize]);
        }
        out.resize(out.len() + seg.padding as usize, 0);
        let next_uncompressed = segs
            .get(si + 1)
            .is_some_and(|n| n.compression == Compression::None);
        if next_uncompressed {
            out.resize(out.len().next_multiple_of(4), 0);
        }
    }
    Ok(out)
}

/// In newc the data of a hard-link set travels with its last member. When a set
/// loses members, the survivors are re-encoded: nlink = survivors, data on the last.
fn relink_hard_link_sets<'a>(image: &'a Image, fates: &mut HashMap<(usize, usize), Fate<'a>>) {
    for (si, seg) in image.segments().iter().enumerate() {
        if !(0..seg.entries.len()).any(|ei| fates.contains_key(&(si, ei))) {
            continue;
        }
        // (archive number within the segment, dev, ino) -> members; the kernel forgets
        // links at every trailer.
        let mut sets: HashMap<(usize, u32, u32, u32), Vec<usize>> = HashMap::new();
        let mut archive = 0;
        for (ei, e) in seg.entries.iter().enumerate() {
            if e.is_trailer() {
                archive += 1;
            } else if e.is_hard_link() {
                let h = &e.header;
                sets.entry((archive, h.dev_major, h.dev_minor, h.ino))
                    .or_default()
                    .push(ei);
            }
        }
        for members in sets.values() {
            let survivors: Vec<usize> = members
                .iter()
                .copied()
                .filter(|ei| matches!(fates.get(&(si, *ei)), None | Some(Fate::Keep)))
                .collect();
            if survivors.len() == members.len() || survivors.is_empty() {
                continue;
            }
            let data = members
                .iter()
                .rev()
                .map(|ei| seg.entry_data(&seg.entries[*ei]))
                .find(|d| !d.is_empty())
                .unwrap_or(&[]);
            let last = *survivors.last().unwrap();
            for ei in &survivors {
                let d: &[u8] = if *ei == last { data } else { &[] };
                fates.insert(
                    (si, *ei),
                    Fate::Relink {
                        nlink: survivors.len() as u32,
                        data: d,
                    },
                );
            }
        }
    }
}

fn encode_segment<W: Write>(
    image: &Image,
    si: usize,
    fates: &HashMap<(usize, usize), Fate>,
    appended: &[(&[u8], &NewEntry)],
    w: &mut W,
) -> std::io::Result<()> {
    let seg = &image.segments()[si];
    let last_trailer = seg.entries.iter().rposition(Entry::is_trailer);
    // Untouched records lie back to back in the decompressed segment: runs of them
    // go to the compressor as one slice instead of one call per record.
    let mut run: Option<std::ops::Range<usize>> = None;
    let flush = |run: &mut Option<std::ops::Range<usize>>, w: &mut W| match run.take() {
        Some(r) => w.write_all(&seg.data[r]),
        None => Ok(()),
    };
    for (ei, e) in seg.entries.iter().enumerate() {
        if Some(ei) == last_trailer {
            flush(&mut run, w)?;
            for (name, n) in appended {
                newc::write_record(&new_header(seg.format, n), name, &n.data, w)?;
            }
        }
        let fate = fates.get(&(si, ei));
        if let (None | Some(Fate::Keep), Body::Original { record, .. }) = (fate, &e.body) {
            match &mut run {
                Some(r) if r.end == record.start => r.end = record.end,
                _ => {
                    flush(&mut run, w)?;
                    run = Some(record.clone());
                }
            }
            continue;
        }
        flush(&mut run, w)?;
        match fate {
            None | Some(Fate::Keep) => {
                newc::write_record(&e.header, &e.name, seg.entry_data(e), w)?
            }
            Some(Fate::Drop) => {}
            Some(Fate::Replace(n)) => {
                let mut h = new_header(e.header.format, n);
                if n.kind() == Kind::Dir {
                    h.nlink = e.header.nlink.max(2);
                }
                newc::write_record(&h, &e.name, &n.data, w)?;
            }
            Some(Fate::Relink { nlink, data }) => {
                let mut h = e.header;
                h.nlink = *nlink;
                newc::write_record(&h, &e.name, data, w)?;
            }
        }
    }
    flush(&mut run, w)
}

/// Names (normalized) present in the image after changes; used by tests and verify.
pub fn effective_names(image: &Image) -> HashSet<Vec<u8>> {
    let mut names: HashSet<Vec<u8>> = HashSet::new();
    for s in image.segments() {
        for e in &s.entries {
            if !e.is_trailer() {
                let k = normalize_archive_name(&e.name);
                if !k.is_empty() {
                    names.insert(k);
                }
            }
        }
    }
    for (k, c) in image.changes() {
        match c {
            Change::Put(_) => {
                names.insert(k.clone());
            }
            Change::Remove => {
                names.remove(k);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initrd::compression::compress as pack;
    use crate::initrd::cpio::entry::{S_IFLNK, S_IFREG};
    use crate::initrd::image::tests::{header, sample_cpio};

    fn gz(data: &[u8]) -> Vec<u8> {
        pack(Compression::Gzip, data, CompressOptions::default()).unwrap()
    }

    /// early (uncompressed sample) + gzip(sample).
    fn two_segment_image() -> Vec<u8> {
        let mut img = sample_cpio();
        img.extend_from_slice(&gz(&sample_cpio()));
        img
    }

    fn opts(mode: WriteMode) -> WriteOptions {
        WriteOptions {
            mode,
            ..WriteOptions::default()
        }
    }

    #[test]
    fn no_changes_write_back_identical_bytes_both_ways() {
        let raw = two_segment_image();
        let img = Image::parse(raw.clone()).unwrap();
        assert_eq!(write(&img, &opts(WriteMode::Overlay)).unwrap().bytes, raw);
        assert_eq!(write(&img, &opts(WriteMode::Rewrite)).unwrap().bytes, raw);
    }

    #[test]
    fn overlay_keeps_the_original_as_prefix_and_adds_one_segment() {
        let raw = two_segment_image();
        let mut img = Image::parse(raw.clone()).unwrap();
        img.add_file("etc/a", b"replaced".to_vec(), 0o600).unwrap();
        img.add_file("sbin/cryptsetup", b"\x7fELF".to_vec(), 0o755)
            .unwrap();
        let w = write(&img, &opts(WriteMode::Auto)).unwrap();
        assert_eq!(w.method, Method::Overlay);
        assert_eq!(&w.bytes[..raw.len()], &raw[..]);
        let back = Image::parse(w.bytes).unwrap();
        assert_eq!(back.segments().len(), 3);
        assert_eq!(back.segments()[2].compression, Compression::Gzip);
        assert_eq!(back.segments()[2].offset % 4, 0);
        assert_eq!(back.lookup("etc/a").unwrap().unwrap().data(), b"replaced");
        assert_eq!(
            back.lookup("sbin/cryptsetup").unwrap().unwrap().mode(),
            S_IFREG | 0o755
        );
        let new = &back.segments()[2].entries;
        assert!(new.iter().all(|e| e.is_trailer() || e.header.ino > 7));
    }

    #[test]
    fn symlink_over_symlink_forces_rewrite_in_the_main_segment() {
        let raw = two_segment_image();
        let mut img = Image::parse(raw.clone()).unwrap();
        img.add_symlink("bin", "usr/sbin").unwrap();
        assert!(write(&img, &opts(WriteMode::Overlay)).is_err());
        let w = write(&img, &opts(WriteMode::Auto)).unwrap();
        assert_eq!(w.method, Method::Rewrite);
        assert!(
            w.rewrite_reasons[0].contains("symlink"),
            "{:?}",
            w.rewrite_reasons
        );
        let early = sample_cpio().len();
        let back = Image::parse(w.bytes.clone()).unwrap();
        // The early segment had its own "bin" symlink: dropped there, so it is re-encoded;
        // the kernel would otherwise keep the first one.
        let bins: Vec<_> = back
            .segments()
            .iter()
            .flat_map(|s| {
                s.entries
                    .iter()
                    .filter(|e| e.name == b"bin")
                    .map(move |e| s.entry_data(e))
            })
            .collect();
        assert_eq!(bins, vec![b"usr/sbin".as_slice()]);
        assert_eq!(back.segments()[0].entries.len(), 7);
        assert!(w.bytes.len() > early);
    }

    #[test]
    fn untouched_segments_and_entries_stay_byte_identical_in_a_rewrite() {
        let mut raw = sample_cpio();
        let early_len = raw.len();
        raw.extend_from_slice(&gz(&sample_cpio()));
        let mut img = Image::parse(raw.clone()).unwrap();
        img.add_file("usr/lib/new.so", b"so".to_vec(), 0o644)
            .unwrap();
        let w = write(&img, &opts(WriteMode::Rewrite)).unwrap();
        assert_eq!(&w.bytes[..early_len], &raw[..early_len]);
        let back = Image::parse(w.bytes).unwrap();
        let (old, new) = (&img.segments()[1], &back.segments()[1]);
        for e in old.entries.iter().filter(|e| !e.is_trailer()) {
            let n = new.entries.iter().find(|n| n.name == e.name).unwrap();
            assert_eq!(old.record_bytes(e), new.record_bytes(n));
        }
        // New entry sits before the trailer.
        let names: Vec<&[u8]> = new.entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(
            &names[names.len() - 2..],
            &[b"usr/lib/new.so".as_slice(), b"TRAILER!!!"]
        );
    }

    #[test]
    fn removing_forces_rewrite_and_removes_everywhere() {
        let mut img = Image::parse(two_segment_image()).unwrap();
        img.remove("etc").unwrap();
        let w = write(&img, &opts(WriteMode::Auto)).unwrap();
        assert_eq!(w.method, Method::Rewrite);
        let back = Image::parse(w.bytes).unwrap();
        assert!(back.lookup("etc/a").unwrap().is_none());
        assert!(back.lookup("etc").unwrap().is_none());
        assert!(back.lookup("usr/lib").unwrap().is_some());
    }

    #[test]
    fn lz4_last_segment_forces_rewrite_and_stays_lz4() {
        let raw = pack(Compression::Lz4, &sample_cpio(), CompressOptions::default()).unwrap();
        let mut img = Image::parse(raw).unwrap();
        img.add_file("x", b"y".to_vec(), 0o644).unwrap();
        let w = write(&img, &opts(WriteMode::Auto)).unwrap();
        assert_eq!(w.method, Method::Rewrite);
        let back = Image::parse(w.bytes).unwrap();
        assert_eq!(back.segments().len(), 1);
        assert_eq!(back.segments()[0].compression, Compression::Lz4);
        assert_eq!(back.lookup("x").unwrap().unwrap().data(), b"y");
    }

    #[test]
    fn compression_can_be_changed_on_rewrite() {
        let mut img = Image::parse(two_segment_image()).unwrap();
        img.add_file("x", b"y".to_vec(), 0o644).unwrap();
        let o = WriteOptions {
            compression: Some(Compression::Xz),
            ..WriteOptions::default()
        };
        let w = write(&img, &o).unwrap();
        assert_eq!(w.method, Method::Rewrite);
        let back = Image::parse(w.bytes).unwrap();
        assert_eq!(back.segments()[1].compression, Compression::Xz);
    }

    fn hard_link_cpio() -> Vec<u8> {
        let mut out = Vec::new();
        // Three links of inode 9; as GNU cpio writes newc: data on the last one only.
        newc::encode_record(&header(S_IFREG | 0o755, 9, 3), b"bin/a", b"", &mut out);
        newc::encode_record(&header(S_IFREG | 0o755, 9, 3), b"bin/b", b"", &mut out);
        newc::encode_record(
            &header(S_IFREG | 0o755, 9, 3),
            b"bin/c",
            b"busybox",
            &mut out,
        );
        newc::encode_record(&header(S_IFLNK | 0o777, 10, 1), b"sh", b"bin/a", &mut out);
        newc::encode_record(
            &newc::trailer_header(CpioFormat::Newc),
            newc::TRAILER,
            b"",
            &mut out,
        );
        out
    }

    #[test]
    fn replacing_a_hard_link_rewrites_and_moves_data_to_the_last_survivor() {
        let mut img = Image::parse(hard_link_cpio()).unwrap();
        img.add_file("bin/c", b"other".to_vec(), 0o755).unwrap();
        let w = write(&img, &opts(WriteMode::Auto)).unwrap();
        assert_eq!(w.method, Method::Rewrite);
        assert!(w.rewrite_reasons[0].contains("hard-linked"));
        let back = Image::parse(w.bytes).unwrap();
        let s = &back.segments()[0];
        let get = |n: &[u8]| s.entries.iter().find(|e| e.name == n).unwrap();
        assert_eq!(
            (get(b"bin/a").header.nlink, s.entry_data(get(b"bin/a"))),
            (2, b"".as_slice())
        );
        assert_eq!(
            (get(b"bin/b").header.nlink, s.entry_data(get(b"bin/b"))),
            (2, b"busybox".as_slice())
        );
        assert_eq!(get(b"bin/c").header.nlink, 1);
        assert_eq!(s.entry_data(get(b"bin/c")), b"other");
        assert_ne!(get(b"bin/c").header.ino, 9);
    }

    #[test]
    fn non_empty_directory_replaced_by_a_file_is_not_an_overlay() {
        let mut img = Image::parse(sample_cpio()).unwrap();
        let e = img.add_file("etc", b"x".to_vec(), 0o644).unwrap_err();
        assert!(e.to_string().contains("non-empty directory"), "{e}");
        img.remove("etc").unwrap();
        img.add_file("etc", b"x".to_vec(), 0o644).unwrap();
        let w = write(&img, &opts(WriteMode::Auto)).unwrap();
        assert_eq!(w.method, Method::Rewrite);
    }
}

//! Splitting an image into segments the way `init/initramfs.c` walks it: skip
//! zero bytes; a '0' at a 4-byte boundary starts an uncompressed cpio; anything
//! else must be a compression magic, whose decoder says where its stream ends.

use serde::Serialize;

use super::compression::{self, Compression, DecodeError};
use super::cpio::newc::{self, CpioFormat};
use super::cpio::{Body, Entry};
use super::error::ArchiveError;
use super::skim::{self, SkimError};

/// One cpio archive (or a compressed stream of them) inside the image.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Byte offset of the segment in the image.
    pub offset: u64,
    /// Bytes the segment occupies in the image (the compressed stream).
    pub length: u64,
    /// Zero bytes after it, before the next segment or the end of the image.
    pub padding: u64,
    pub compression: Compression,
    /// Format of the segment's first entry (newc or crc).
    pub format: CpioFormat,
    /// The decompressed cpio bytes; entries point into it.
    pub data: Vec<u8>,
    /// Bytes of the decompressed cpio stream (`data.len()` when read with contents).
    pub uncompressed_size: u64,
    /// Every record in order, trailers included.
    pub entries: Vec<Entry>,
    /// False when read with `ReadOptions::contents = false`: `data` then holds only
    /// headers, names and symlink targets (skim.rs), regular files read as empty,
    /// and the segment cannot be re-encoded.
    pub contents: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReadOptions {
    /// Ceiling on the decompressed size of all segments together.
    pub max_decompressed: u64,
    /// Keep the contents of the segments (the default). Without them the
    /// image still knows every entry's header, name and symlink target, which is
    /// all an overlay that only adds or replaces files needs; see skim.rs.
    pub contents: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        // Far above any real initramfs, far below what would hurt the machine.
        ReadOptions {
            max_decompressed: 4 << 30,
            contents: true,
        }
    }
}

impl Segment {
    /// The data (file content or symlink target) of one of this segment's entries.
    pub fn entry_data<'a>(&'a self, e: &'a Entry) -> &'a [u8] {
        match &e.body {
            Body::Original { data, .. } => &self.data[data.clone()],
            Body::New(d) => d,
        }
    }

    /// The exact bytes an untouched entry occupies in the archive.
    pub fn record_bytes(&self, e: &Entry) -> Option<&[u8]> {
        match &e.body {
            Body::Original { record, .. } => Some(&self.data[record.clone()]),
            Body::New(_) => None,
        }
    }
}

/// Reads every segment; returns the count of leading zero bytes and the segments.
pub fn read_segments(raw: &[u8], opts: &ReadOptions) -> Result<(u64, Vec<Segment>), ArchiveError> {
    if raw.is_empty() {
        return Err(ArchiveError::Empty);
    }
    let mut pos = skip_zeros(raw, 0);
    let leading = pos as u64;
    let mut budget = opts.max_decompressed;
    let mut segments: Vec<Segment> = Vec::new();
    while pos < raw.len() {
        let at = At {
            index: segments.len(),
            pos,
            limit: opts.max_decompressed,
        };
        let rest = &raw[pos..];
        let mut seg = if let Some(format) = CpioFormat::detect(rest) {
            if !pos.is_multiple_of(4) {
                return Err(ArchiveError::Misaligned { offset: pos as u64 });
            }
            plain_segment(rest, format, opts.contents, at, &mut budget)?
        } else if let Some(compression) = Compression::detect(rest) {
            compressed_segment(rest, compression, opts.contents, at, &mut budget)?
        } else {
            let found = rest
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(ArchiveError::BadMagic {
                offset: pos as u64,
                found: format!("bytes {found}"),
            });
        };
        let end = pos + seg.length as usize;
        pos = skip_zeros(raw, end);
        seg.padding = (pos - end) as u64;
        segments.push(seg);
    }
    if segments.is_empty() {
        return Err(ArchiveError::Empty);
    }
    Ok((leading, segments))
}

/// Which segment is being read and where, for its errors.
#[derive(Clone, Copy)]
struct At {
    index: usize,
    pos: usize,
    limit: u64,
}

impl At {
    fn cpio(self, compression: Compression, (at, problem): (usize, String)) -> ArchiveError {
        ArchiveError::Cpio {
            segment: self.index,
            offset: self.pos as u64,
            compression,
            entry_offset: at as u64,
            problem,
        }
    }

    fn too_large(self) -> ArchiveError {
        ArchiveError::TooLarge {
            segment: self.index,
            offset: self.pos as u64,
            limit: self.limit,
        }
    }

    fn decode(self, compression: Compression, e: DecodeError) -> ArchiveError {
        match e {
            DecodeError::TooLarge => self.too_large(),
            DecodeError::Corrupt(detail) => ArchiveError::Decompress {
                segment: self.index,
                offset: self.pos as u64,
                compression,
                detail,
            },
        }
    }

    fn skim(self, compression: Compression, e: SkimError) -> ArchiveError {
        match e {
            SkimError::Decode(d) => self.decode(compression, d),
            SkimError::Cpio(at, problem) => self.cpio(compression, (at, problem)),
        }
    }
}

/// Takes `n` decompressed bytes from what the image may still decompress to.
fn spend(budget: &mut u64, n: u64, at: At) -> Result<(), ArchiveError> {
    *budget = budget.checked_sub(n).ok_or_else(|| at.too_large())?;
    Ok(())
}

/// An uncompressed cpio at the start of `rest`, up to its first trailer; skimmed
/// (headers, names and symlink targets only) unless `contents`.
fn plain_segment(
    rest: &[u8],
    format: CpioFormat,
    contents: bool,
    at: At,
    budget: &mut u64,
) -> Result<Segment, ArchiveError> {
    let none = Compression::None;
    let (data, entries, consumed) = if contents {
        let (entries, consumed) = parse_archive(rest, true).map_err(|e| at.cpio(none, e))?;
        spend(budget, consumed as u64, at)?;
        (rest[..consumed].to_vec(), entries, consumed)
    } else {
        let (skeleton, entries, consumed) = skim::skim_plain(rest).map_err(|e| at.skim(none, e))?;
        spend(budget, consumed as u64, at)?;
        (skeleton, entries, consumed)
    };
    Ok(Segment {
        offset: at.pos as u64,
        length: consumed as u64,
        padding: 0,
        compression: none,
        format,
        data,
        uncompressed_size: consumed as u64,
        entries,
        contents,
    })
}

/// A compressed stream at the start of `rest`, decoded whole, or skimmed unless
/// `contents`; the decoder says where the stream ends.
fn compressed_segment(
    rest: &[u8],
    compression: Compression,
    contents: bool,
    at: At,
    budget: &mut u64,
) -> Result<Segment, ArchiveError> {
    let (data, entries, consumed, uncompressed_size) = if contents {
        let decoded = compression::decompress(compression, rest, *budget)
            .map_err(|e| at.decode(compression, e))?;
        let size = decoded.data.len() as u64;
        spend(budget, size, at)?;
        let (entries, _) =
            parse_archive(&decoded.data, false).map_err(|e| at.cpio(compression, e))?;
        (decoded.data, entries, decoded.consumed, size)
    } else {
        let s = skim::skim(compression, rest, *budget).map_err(|e| at.skim(compression, e))?;
        spend(budget, s.decoded, at)?;
        (s.skeleton, s.entries, s.consumed, s.decoded)
    };
    let format = entries
        .first()
        .map(|e| e.header.format)
        .unwrap_or(CpioFormat::Newc);
    Ok(Segment {
        offset: at.pos as u64,
        length: consumed as u64,
        padding: 0,
        compression,
        format,
        data,
        uncompressed_size,
        entries,
        contents,
    })
}

fn skip_zeros(raw: &[u8], from: usize) -> usize {
    raw[from..]
        .iter()
        .position(|&b| b != 0)
        .map_or(raw.len(), |n| from + n)
}

/// Parses cpio records from the start of `buf`. With `stop_after_trailer`, stops
/// after the first TRAILER!!! (uncompressed segments: what follows is the next
/// segment); otherwise reads to the end, allowing several archives separated by
/// zero padding as the kernel does. Errors carry the byte offset in `buf`.
pub fn parse_archive(
    buf: &[u8],
    stop_after_trailer: bool,
) -> Result<(Vec<Entry>, usize), (usize, String)> {
    let mut entries = Vec::new();
    let mut pos = 0;
    let mut after_trailer = false;
    loop {
        if after_trailer {
            if stop_after_trailer {
                break;
            }
            let next = skip_zeros(buf, pos);
            if next == buf.len() {
                pos = next;
                break;
            }
            if !next.is_multiple_of(4) {
                return Err((
                    next,
                    "data after TRAILER!!! does not start on a 4-byte boundary".into(),
                ));
            }
            if CpioFormat::detect(&buf[next..]).is_none() {
                return Err((
                    next,
                    "garbage after TRAILER!!! (not zero padding, not another cpio archive)".into(),
                ));
            }
            pos = next;
        }
        if pos >= buf.len() {
            let problem = if entries.is_empty() {
                "empty archive (no cpio header)"
            } else {
                "archive ends without TRAILER!!! (truncated)"
            };
            return Err((pos, problem.into()));
        }
        let rec = newc::parse_record(buf, pos).map_err(|p| (pos, p))?;
        let entry = Entry {
            name: buf[rec.name.clone()].to_vec(),
            header: rec.header,
            body: Body::Original {
                record: pos..rec.end,
                data: rec.data.clone(),
            },
        };
        after_trailer = entry.is_trailer();
        entries.push(entry);
        pos = rec.end;
    }
    Ok((entries, pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initrd::compression::{CompressOptions, compress};
    use crate::initrd::image::tests::sample_cpio;

    fn gz(data: &[u8]) -> Vec<u8> {
        compress(Compression::Gzip, data, CompressOptions::default()).unwrap()
    }

    #[test]
    fn early_cpio_then_compressed_segments_with_padding() {
        let cpio = sample_cpio();
        let mut img = cpio.clone();
        let main = gz(&cpio);
        let z = compress(Compression::Zstd, &cpio, CompressOptions::default()).unwrap();
        img.extend_from_slice(&main);
        img.extend_from_slice(&[0; 7]);
        img.extend_from_slice(&z);
        img.extend_from_slice(&[0; 3]);
        let (lead, segs) = read_segments(&img, &ReadOptions::default()).unwrap();
        assert_eq!(lead, 0);
        let shape: Vec<_> = segs
            .iter()
            .map(|s| (s.offset, s.length, s.padding, s.compression))
            .collect();
        let c = cpio.len() as u64;
        let m = main.len() as u64;
        assert_eq!(
            shape,
            vec![
                (0, c, 0, Compression::None),
                (c, m, 7, Compression::Gzip),
                (c + m + 7, z.len() as u64, 3, Compression::Zstd)
            ]
        );
        assert!(segs.iter().all(|s| s.entries.len() == 8));
    }

    #[test]
    fn misaligned_uncompressed_cpio_is_refused_with_its_offset() {
        let mut img = gz(&sample_cpio());
        if img.len().is_multiple_of(4) {
            img.push(0);
        }
        let at = img.len();
        img.extend_from_slice(&sample_cpio());
        let e = read_segments(&img, &ReadOptions::default()).unwrap_err();
        assert_eq!(e, ArchiveError::Misaligned { offset: at as u64 });
        assert!(e.to_string().starts_with(&format!("byte {at}:")));
    }

    #[test]
    fn garbage_after_the_last_segment_names_its_offset() {
        let mut img = sample_cpio();
        let at = img.len();
        img.extend_from_slice(b"\0\0\0\0hello");
        let e = read_segments(&img, &ReadOptions::default()).unwrap_err();
        assert!(
            matches!(e, ArchiveError::BadMagic { offset, .. } if offset == at as u64 + 4),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn truncated_compressed_segment_names_segment_and_offset() {
        let mut img = sample_cpio();
        let at = img.len();
        let main = gz(&sample_cpio());
        img.extend_from_slice(&main[..main.len() - 10]);
        let e = read_segments(&img, &ReadOptions::default()).unwrap_err();
        assert!(
            matches!(e, ArchiveError::Decompress { segment: 1, offset, compression: Compression::Gzip, .. } if offset == at as u64),
            "{e}"
        );
    }

    #[test]
    fn cpio_without_trailer_inside_a_stream_is_truncated() {
        let cpio = sample_cpio();
        let cut = &cpio[..cpio.len() - 124]; // drop the trailer record
        let e = read_segments(&gz(cut), &ReadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("without TRAILER"), "{e}");
        assert!(
            e.to_string().starts_with("segment 0 (gzip at byte 0)"),
            "{e}"
        );
    }

    #[test]
    fn garbage_after_trailer_inside_a_stream_is_an_error_zeros_are_not() {
        let mut cpio = sample_cpio();
        cpio.extend_from_slice(&[0; 512]);
        assert!(read_segments(&gz(&cpio), &ReadOptions::default()).is_ok());
        cpio.extend_from_slice(b"junkjunk");
        let e = read_segments(&gz(&cpio), &ReadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("garbage after TRAILER"), "{e}");
    }

    #[test]
    fn two_archives_in_one_stream_are_one_segment() {
        let mut cpio = sample_cpio();
        cpio.extend_from_slice(&sample_cpio());
        let (_, segs) = read_segments(&gz(&cpio), &ReadOptions::default()).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].entries.iter().filter(|e| e.is_trailer()).count(), 2);
    }

    #[test]
    fn decompressed_size_limit_is_enforced() {
        let opts = ReadOptions {
            max_decompressed: 100,
            ..ReadOptions::default()
        };
        let e = read_segments(&gz(&sample_cpio()), &opts).unwrap_err();
        assert!(
            matches!(e, ArchiveError::TooLarge { segment: 0, .. }),
            "{e}"
        );
        let e = read_segments(&sample_cpio(), &opts).unwrap_err();
        assert!(
            matches!(e, ArchiveError::TooLarge { segment: 0, .. }),
            "{e}"
        );
    }

    #[test]
    fn empty_and_all_zero_inputs() {
        assert_eq!(
            read_segments(&[], &ReadOptions::default()).unwrap_err(),
            ArchiveError::Empty
        );
        assert_eq!(
            read_segments(&[0; 16], &ReadOptions::default()).unwrap_err(),
            ArchiveError::Empty
        );
        let mut img = vec![0; 8];
        img.extend_from_slice(&sample_cpio());
        let (lead, segs) = read_segments(&img, &ReadOptions::default()).unwrap();
        assert_eq!((lead, segs[0].offset), (8, 8));
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_answer_never_a_panic() {
        let cpio = sample_cpio();
        let mut img = cpio.clone();
        img.extend_from_slice(&gz(&cpio));
        img.extend_from_slice(&[0; 5]);
        img.extend_from_slice(
            &compress(Compression::Lzo, &cpio, CompressOptions::default()).unwrap(),
        );
        let opts = ReadOptions::default();
        for n in 0..img.len() {
            let _ = read_segments(&img[..n], &opts);
        }
        for i in 0..img.len() {
            let mut bad = img.clone();
            bad[i] ^= 0x5a;
            if let Err(e) = read_segments(&bad, &opts) {
                assert!(!e.to_string().contains('\n'));
            }
        }
    }
}

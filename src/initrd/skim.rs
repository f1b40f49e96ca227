//! Reading a compressed segment without keeping file contents
//! (`ReadOptions::contents = false`).
//!
//! Deciding whether an overlay is safe, and where its files land, needs the
//! *final* state of every name the image defines: type, hard-link count, symlink
//! target, whether a directory has children. Any later record can redefine a name,
//! and nothing proves an archive is sorted past the point read, so every record
//! header must be seen: the whole stream is decoded. What need not happen is
//! keeping it: the decoder writes into one 128 KiB window that stays in cache, and
//! only headers, names and symlink targets are copied out (a few hundred kB for a
//! 140 MB image). On a real 33 MB zstd image that is ~30% less CPU than decoding
//! into a 140 MB buffer, whose fresh pages and cache misses dominate.
//!
//! The segment then holds a *skeleton*: each record's header, name and (for
//! symlinks) target, in order, with `Segment::contents` false. Uncompressed
//! segments (early microcode, firmware) are skimmed the same way from the image
//! bytes instead of being copied. Regular files read
//! as empty, so such an image can be listed and overlaid, not rewritten.

use std::io::Read;

use super::compression::{Compression, DecodeError, Decoded, decompress};
use super::cpio::newc::{self, CpioFormat, HEADER_LEN, MAX_NAME, pad4};
use super::cpio::{Body, Entry, Kind};

/// Decoder output window; symlink targets longer than what fits are refused.
const WINDOW: usize = 128 << 10;
const MAX_TARGET: usize = 64 << 10;

pub enum SkimError {
    Decode(DecodeError),
    /// Byte offset in the decompressed stream, problem.
    Cpio(usize, String),
}

pub struct Skimmed {
    pub skeleton: Vec<u8>,
    pub entries: Vec<Entry>,
    /// Compressed bytes the stream occupied.
    pub consumed: usize,
    /// Decompressed bytes seen.
    pub decoded: u64,
}

/// Decodes the stream of compression `c` at the start of `input` (at most `limit`
/// decompressed bytes) and parses its cpio records, keeping no file contents.
/// lz4 legacy and lzo, whose decoders are ours and whole-buffer, are decoded whole
/// and skimmed from memory.
pub fn skim(c: Compression, input: &[u8], limit: u64) -> Result<Skimmed, SkimError> {
    let corrupt = |e: std::io::Error| SkimError::Decode(DecodeError::Corrupt(e.to_string()));
    match c {
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(corrupt)?
                .single_frame();
            let (skeleton, entries, decoded) = walk(&mut d, limit, false)?;
            let consumed = input.len() - d.finish().len();
            Ok(Skimmed {
                skeleton,
                entries,
                consumed,
                decoded,
            })
        }
        Compression::Gzip => {
            let mut d = flate2::bufread::GzDecoder::new(input);
            let (skeleton, entries, decoded) = walk(&mut d, limit, false)?;
            let consumed = input.len() - d.into_inner().len();
            Ok(Skimmed {
                skeleton,
                entries,
                consumed,
                decoded,
            })
        }
        _ => {
            // The others are rare in the wild: decode whole, then skim the buffer.
            let Decoded { data, consumed } =
                decompress(c, input, limit).map_err(SkimError::Decode)?;
            let (skeleton, entries, decoded) = walk(&mut data.as_slice(), limit, false)?;
            Ok(Skimmed {
                skeleton,
                entries,
                consumed,
                decoded,
            })
        }
    }
}

/// A forward-only view of a decoder with a fixed window.
struct Stream<'r, R: Read> {
    r: &'r mut R,
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    /// Stream offset of buf[lo].
    pos: usize,
    eof: bool,
    total: u64,
    limit: u64,
}

impl<R: Read> Stream<'_, R> {
    fn avail(&self) -> &[u8] {
        &self.buf[self.lo..self.hi]
    }

    /// Makes at least `n` bytes available unless the stream ends first.
    fn fill(&mut self, n: usize) -> Result<bool, SkimError> {
        while self.hi - self.lo < n && !self.eof {
            if self.lo > 0 {
                self.buf.copy_within(self.lo..self.hi, 0);
                self.hi -= self.lo;
                self.lo = 0;
            }
            let k = loop {
                match self.r.read(&mut self.buf[self.hi..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    r => break r,
                }
            }
            .map_err(|e| SkimError::Decode(DecodeError::Corrupt(e.to_string())))?;
            self.total += k as u64;
            if self.total > self.limit {
                return Err(SkimError::Decode(DecodeError::TooLarge));
            }
            self.hi += k;
            self.eof = k == 0;
        }
        Ok(self.hi - self.lo >= n)
    }

    fn eat(&mut self, n: usize) {
        self.lo += n;
        self.pos += n;
    }

    /// Skips `n` bytes; false when the stream ends first.
    fn skip(&mut self, mut n: usize) -> Result<bool, SkimError> {
        loop {
            let k = n.min(self.hi - self.lo);
            self.eat(k);
            n -= k;
            if n == 0 {
                return Ok(true);
            }
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }
}

type Walked = (Vec<u8>, Vec<Entry>, u64);

/// An uncompressed cpio archive at the start of `buf`, skimmed like a stream and
/// ending after its first TRAILER!!! (what follows is the next segment). Returns
/// the skeleton, the entries and the archive's length in `buf`.
pub fn skim_plain(buf: &[u8]) -> Result<(Vec<u8>, Vec<Entry>, usize), SkimError> {
    let (skeleton, entries, end) = walk(&mut &buf[..], u64::MAX, true)?;
    Ok((skeleton, entries, end as usize))
}

/// Parses records as `segment::parse_archive` does: for a compressed stream read
/// to the end, several archives separated by zero padding allowed; with
/// `stop_after_trailer` (an uncompressed segment), up to the first trailer, and
/// the third value is then the stream offset there rather than the bytes decoded.
/// Only headers, names and symlink targets are copied into the skeleton.
fn walk<R: Read>(r: &mut R, limit: u64, stop_after_trailer: bool) -> Result<Walked, SkimError> {
    let mut s = Stream {
        r,
        buf: vec![0; WINDOW],
        lo: 0,
        hi: 0,
        pos: 0,
        eof: false,
        total: 0,
        limit,
    };
    let mut skeleton = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut after_trailer = false;
    loop {
        if after_trailer && stop_after_trailer {
            return Ok((skeleton, entries, s.pos as u64));
        }
        if after_trailer {
            // Zero padding, then the end or another archive on a 4-byte boundary.
            loop {
                if !s.fill(1)? {
                    return Ok((skeleton, entries, s.total));
                }
                let zeros = s.avail().iter().take_while(|&&b| b == 0).count();
                s.eat(zeros);
                if s.hi > s.lo {
                    break;
                }
            }
            if !s.pos.is_multiple_of(4) {
                return Err(SkimError::Cpio(
                    s.pos,
                    "data after TRAILER!!! does not start on a 4-byte boundary".into(),
                ));
            }
            s.fill(6)?;
            if CpioFormat::detect(s.avail()).is_none() {
                return Err(SkimError::Cpio(
                    s.pos,
                    "garbage after TRAILER!!! (not zero padding, not another cpio archive)".into(),
                ));
            }
        }
        let at = s.pos;
        if !s.fill(1)? {
            let problem = if entries.is_empty() {
                "empty archive (no cpio header)"
            } else {
                "archive ends without TRAILER!!! (truncated)"
            };
            return Err(SkimError::Cpio(at, problem.into()));
        }
        s.fill(HEADER_LEN)?;
        let header = newc::parse_header(s.avail()).map_err(|p| SkimError::Cpio(at, p))?;
        if header.namesize == 0 || header.namesize > MAX_NAME {
            return Err(SkimError::Cpio(
                at,
                format!(
                    "name size {} is out of range (1..={MAX_NAME})",
                    header.namesize
                ),
            ));
        }
        let head = HEADER_LEN + header.namesize as usize;
        let head_padded = head + pad4(head);
        if !s.fill(head)? {
            return Err(SkimError::Cpio(
                at,
                format!(
                    "name of {} bytes runs past the end of the archive",
                    header.namesize
                ),
            ));
        }
        let raw_name = &s.avail()[HEADER_LEN..head];
        if raw_name.last() != Some(&0) {
            return Err(SkimError::Cpio(at, "name is not NUL-terminated".into()));
        }
        let name = raw_name[..raw_name.len() - 1].to_vec();
        if name.contains(&0) {
            return Err(SkimError::Cpio(at, "name contains a NUL byte".into()));
        }
        let size = header.filesize as usize;
        let keep = Kind::of_mode(header.mode) == Kind::Symlink;
        if keep && size > MAX_TARGET {
            return Err(SkimError::Cpio(
                at,
                format!("symlink target of {size} bytes (more than {MAX_TARGET})"),
            ));
        }
        let start = skeleton.len();
        skeleton.extend_from_slice(&s.avail()[..head]);
        skeleton.resize(start + head_padded, 0);
        let short = |s: &Stream<R>| {
            SkimError::Cpio(
                at,
                format!(
                    "entry {:?} claims {size} bytes of data but the stream ends at byte {}",
                    String::from_utf8_lossy(&name),
                    s.pos + s.hi - s.lo
                ),
            )
        };
        let data_start = skeleton.len();
        let complete = if keep {
            let want = head_padded + size;
            if !s.fill(want)? {
                return Err(short(&s));
            }
            skeleton.extend_from_slice(&s.avail()[head_padded..want]);
            skeleton.resize(skeleton.len() + pad4(size), 0);
            s.eat(want);
            true
        } else {
            s.eat(head.min(s.hi - s.lo));
            s.skip(head_padded - head + size)?
        };
        if !complete {
            return Err(short(&s));
        }
        let data_end = if keep { data_start + size } else { data_start };
        // The padding after the data may be cut by the end of the stream (as
        // parse_record allows): skip what is there.
        let mut k = 0;
        while k < pad4(size) && s.fill(1)? {
            s.eat(1);
            k += 1;
        }
        let entry = Entry {
            name,
            header,
            body: Body::Original {
                record: start..skeleton.len(),
                data: data_start..data_end,
            },
        };
        after_trailer = entry.is_trailer();
        entries.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use crate::initrd::compression::{CompressOptions, Compression, compress};
    use crate::initrd::image::tests::sample_cpio;
    use crate::initrd::segment::{ReadOptions, read_segments};
    use crate::initrd::{Image, Kind, WriteMode, WriteOptions, write};

    const SKIM: ReadOptions = ReadOptions {
        max_decompressed: 4 << 30,
        contents: false,
    };

    fn image(c: Compression) -> Vec<u8> {
        // An early uncompressed archive, then a stream holding two archives with
        // zero padding between them.
        let mut two = sample_cpio();
        two.extend_from_slice(&[0; 8]);
        two.extend_from_slice(&sample_cpio());
        let mut img = sample_cpio();
        img.extend_from_slice(&compress(c, &two, CompressOptions::default()).unwrap());
        img
    }

    #[test]
    fn skimming_sees_every_header_name_and_symlink_target_of_a_full_read() {
        for c in [Compression::Zstd, Compression::Gzip, Compression::Xz] {
            let raw = image(c);
            let (_, full) = read_segments(&raw, &ReadOptions::default()).unwrap();
            let (_, skim) = read_segments(&raw, &SKIM).unwrap();
            assert_eq!(full.len(), skim.len(), "{c}");
            for (f, s) in full.iter().zip(&skim) {
                assert_eq!(
                    (f.offset, f.length, f.padding, f.compression, f.format),
                    (s.offset, s.length, s.padding, s.compression, s.format),
                    "{c}"
                );
                assert!(!s.contents, "{c}");
                assert_eq!(f.entries.len(), s.entries.len(), "{c}");
                for (fe, se) in f.entries.iter().zip(&s.entries) {
                    assert_eq!((&fe.name, &fe.header), (&se.name, &se.header), "{c}");
                    let want: &[u8] = if fe.kind() == Kind::File && !s.contents {
                        b""
                    } else {
                        f.entry_data(fe)
                    };
                    assert_eq!(s.entry_data(se), want, "{c}");
                }
            }
        }
    }

    #[test]
    fn an_overlay_from_a_skimmed_image_is_byte_identical_and_rewrite_is_refused() {
        let raw = image(Compression::Zstd);
        let edit = |mut img: Image| {
            img.add_file("lib/new.so", b"so".to_vec(), 0o644).unwrap();
            img.add_file("etc/a", b"replaced".to_vec(), 0o600).unwrap();
            img
        };
        let full = edit(Image::parse(raw.clone()).unwrap());
        let skim = edit(Image::parse_with(raw, &SKIM).unwrap());
        assert_eq!(full.changes(), skim.changes());
        let ov = WriteOptions {
            mode: WriteMode::Overlay,
            ..WriteOptions::default()
        };
        assert_eq!(
            write(&full, &ov).unwrap().bytes,
            write(&skim, &ov).unwrap().bytes
        );
        let rw = WriteOptions {
            mode: WriteMode::Rewrite,
            ..WriteOptions::default()
        };
        let e = write(&skim, &rw).unwrap_err();
        assert!(e.to_string().contains("without file contents"), "{e}");
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_answer_never_a_panic() {
        for c in [Compression::Gzip, Compression::Zstd] {
            truncations_and_flips(&image(c));
        }
    }

    fn truncations_and_flips(raw: &[u8]) {
        for n in 0..raw.len() {
            let full = read_segments(&raw[..n], &ReadOptions::default()).is_ok();
            let skim = read_segments(&raw[..n], &SKIM);
            assert_eq!(full, skim.is_ok(), "cut at {n}: {skim:?}");
        }
        for i in 0..raw.len() {
            let mut bad = raw.to_vec();
            bad[i] ^= 0x5a;
            let full = read_segments(&bad, &ReadOptions::default()).is_ok();
            match read_segments(&bad, &SKIM) {
                Err(e) => assert!(!e.to_string().contains('\n')),
                // Skimming does not look at file contents, so it may accept where
                // a full read does too; it must never accept what a full read refuses.
                Ok(_) => assert!(full, "flip at {i} accepted by skim only"),
            }
        }
    }

    #[test]
    fn the_decompressed_size_limit_holds_while_skimming() {
        let opts = ReadOptions {
            max_decompressed: 100,
            contents: false,
        };
        let raw = compress(
            Compression::Zstd,
            &sample_cpio(),
            CompressOptions::default(),
        )
        .unwrap();
        let e = read_segments(&raw, &opts).unwrap_err();
        assert!(e.to_string().contains("more than the limit"), "{e}");
    }
}

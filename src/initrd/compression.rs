//! Compression formats the kernel can unpack an initramfs from, detected by
//! the same two magic bytes `lib/decompress.c` looks at.
//!
//! Crates, and why:
//! - gzip: `flate2` (zlib-rs backend, pure Rust).
//! - bzip2: `bzip2` 0.6, whose default backend is the pure-Rust libbz2-rs-sys.
//! - xz and lzma: `liblzma` (maintained fork of xz2, bundles liblzma); its raw `Stream`
//!   gives `lzma_alone` for .lzma and multi-threaded xz encoding with CRC32 checks,
//!   which the kernel's xz decoder requires (it does not do CRC64/SHA-256).
//! - zstd: `zstd` (libzstd bindings) with `zstdmt` for multi-threaded encoding.
//! - lz4: `lz4_flex` block API; the kernel only reads the *legacy* frame, which the
//!   frame APIs of lz4 crates do not produce, so the 4-byte framing is ours (lz4_legacy.rs).
//! - lzo: `lzo1x` (safe Rust port of LZO1X, GPL-2.0 like the kernel) for blocks; the
//!   lzop container the kernel expects is ours (lzop.rs). Running `lzop` would add an
//!   external program and a pipe for one rare format.
//!
//! Every decoder stops at the end of its own stream and reports how many input
//! bytes it consumed, because the next segment starts right after it.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use serde::Serialize;

use super::{lz4_legacy, lzop};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Lzma,
    Xz,
    Lzo,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 8] = [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Lzma,
        Compression::Xz,
        Compression::Lzo,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The compression whose magic starts `buf`, as the kernel's
    /// `decompress_method()` decides it (two bytes are enough for it, so for us).
    pub fn detect(buf: &[u8]) -> Option<Compression> {
        match buf {
            [0x1f, 0x8b, ..] | [0x1f, 0x9e, ..] => Some(Compression::Gzip),
            [0x42, 0x5a, ..] => Some(Compression::Bzip2),
            [0x5d, 0x00, ..] => Some(Compression::Lzma),
            [0xfd, 0x37, ..] => Some(Compression::Xz),
            [0x89, 0x4c, ..] => Some(Compression::Lzo),
            [0x02, 0x21, ..] => Some(Compression::Lz4),
            [0x28, 0xb5, ..] => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Lzma => "lzma",
            Compression::Xz => "xz",
            Compression::Lzo => "lzo",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == s || (s == "uncompressed" && *c == Compression::None))
            .ok_or_else(|| {
                format!(
                    "unknown compression {s:?}; use none, gzip, bzip2, lzma, xz, lzo, lz4 or zstd"
                )
            })
    }
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Corrupt(String),
    TooLarge,
}

/// A decoded stream and the number of input bytes it occupied.
pub struct Decoded {
    pub data: Vec<u8>,
    pub consumed: usize,
}

/// Decodes the one stream at the start of `input`, producing at most `limit` bytes.
pub fn decompress(c: Compression, input: &[u8], limit: u64) -> Result<Decoded, DecodeError> {
    match c {
        Compression::None => Ok(Decoded {
            data: input.to_vec(),
            consumed: input.len(),
        }),
        Compression::Gzip => {
            let mut d = flate2::bufread::GzDecoder::new(input);
            let data = read_limited(&mut d, limit)?;
            let rest = d.into_inner();
            Ok(consumed(input, rest, data))
        }
        Compression::Bzip2 => {
            let mut d = bzip2::bufread::BzDecoder::new(input);
            let data = read_limited(&mut d, limit)?;
            let rest = d.into_inner();
            Ok(consumed(input, rest, data))
        }
        Compression::Xz | Compression::Lzma => {
            // The header chooses the dictionary size (up to 4 GiB) and liblzma
            // allocates it up front: cap what a hostile header can make us allocate.
            // Real images use at most 64 MiB (xz -9, lzma -9).
            let memlimit = limit.clamp(128 << 20, 1 << 30);
            let stream = if c == Compression::Xz {
                // No LZMA_CONCATENATED: the next stream is the next segment.
                liblzma::stream::Stream::new_stream_decoder(memlimit, 0)
            } else {
                liblzma::stream::Stream::new_lzma_decoder(memlimit)
            }
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
            let mut d = liblzma::bufread::XzDecoder::new_stream(input, stream);
            let data = read_limited(&mut d, limit)?;
            let rest = d.into_inner();
            Ok(consumed(input, rest, data))
        }
        Compression::Zstd => decompress_zstd(input, limit),
        Compression::Lz4 => lz4_legacy::decode(input, limit),
        Compression::Lzo => lzop::decode(input, limit),
    }
}

/// One zstd frame, decoded straight into the spare capacity of one growing buffer.
///
/// Why not `zstd::stream::read::Decoder` + `read_to_end`: that path zero-fills each
/// 128 KiB chunk before zstd overwrites it and hands zstd small output windows, so
/// it copies every byte through zstd's internal buffer; measured 30-60% slower
/// than `zstd -dc` on real 14-33 MB images. With a large output window libzstd
/// decodes in place, at the CLI's speed. The reservation is an estimate (the frame's
/// content size when its header has one, else 4x the compressed bytes), capped by
/// `limit`; untouched capacity costs no memory, and growth doubles up to `limit`.
fn decompress_zstd(input: &[u8], limit: u64) -> Result<Decoded, DecodeError> {
    use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer, get_error_name};
    let corrupt = |code: usize| DecodeError::Corrupt(get_error_name(code).to_string());
    let cap = limit.saturating_add(1);
    let guess = match zstd::zstd_safe::get_frame_content_size(input) {
        Ok(Some(n)) => n.saturating_add(1),
        _ => (input.len() as u64).saturating_mul(4),
    };
    let mut out: Vec<u8> = Vec::new();
    let first = usize::try_from(guess.max(1 << 16).min(cap)).map_err(|_| DecodeError::TooLarge)?;
    out.try_reserve_exact(first)
        .map_err(|_| DecodeError::TooLarge)?;
    let mut dctx = DCtx::try_create()
        .ok_or_else(|| DecodeError::Corrupt("cannot allocate a zstd context".into()))?;
    let mut src = InBuffer::around(input);
    loop {
        if out.len() == out.capacity() {
            if out.len() as u64 >= cap {
                return Err(DecodeError::TooLarge);
            }
            let more = (out.capacity() as u64).min(cap - out.len() as u64);
            out.try_reserve_exact(more as usize)
                .map_err(|_| DecodeError::TooLarge)?;
        }
        let before = (src.pos(), out.len());
        let pos = out.len();
        let hint = dctx
            .decompress_stream(&mut OutBuffer::around_pos(&mut out, pos), &mut src)
            .map_err(corrupt)?;
        if out.len() as u64 > limit {
            return Err(DecodeError::TooLarge);
        }
        if hint == 0 {
            break;
        }
        if (src.pos(), out.len()) == before && out.len() < out.capacity() {
            // No input left and no output possible: the frame is cut short.
            return Err(DecodeError::Corrupt(
                "truncated zstd frame (input ends before the frame does)".into(),
            ));
        }
    }
    out.shrink_to_fit();
    Ok(Decoded {
        data: out,
        consumed: src.pos(),
    })
}

fn consumed(input: &[u8], rest: &[u8], data: Vec<u8>) -> Decoded {
    Decoded {
        data,
        consumed: input.len() - rest.len(),
    }
}

fn read_limited<R: Read>(r: &mut R, limit: u64) -> Result<Vec<u8>, DecodeError> {
    // No up-front reservation from a size guess: read_to_end zero-fills what it is
    // given, so a generous guess costs real memory (measured: +40 MB on a 54 MB image).
    let mut out = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(DecodeError::TooLarge);
    }
    // Doubling left up to half the buffer unused; it lives as long as the image.
    out.shrink_to_fit();
    Ok(out)
}

/// How hard and with how many threads to compress.
#[derive(Debug, Clone, Copy)]
pub struct CompressOptions {
    /// Format-specific level; `None` picks what the distributions' generators use.
    pub level: Option<i32>,
    /// Worker threads for formats that can use them (xz, zstd); 0 or 1 = single.
    pub threads: u32,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            level: None,
            threads: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
        }
    }
}

/// Compresses `data` into one stream the kernel can unpack.
pub fn compress(c: Compression, data: &[u8], opts: CompressOptions) -> std::io::Result<Vec<u8>> {
    let mut e = Encoder::new(c, opts, Vec::new())?;
    e.write_all(data)?;
    e.finish()
}

/// A compressor that appends one stream to an output buffer as data is written
/// to it, so an archive is never held uncompressed and compressed at once
/// (lz4 legacy and lzo, our own framings, still collect their input first).
pub enum Encoder {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Bzip2(bzip2::write::BzEncoder<Vec<u8>>),
    Lzma(liblzma::write::XzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Collect {
        c: Compression,
        level: i32,
        input: Vec<u8>,
        out: Vec<u8>,
    },
}

impl Encoder {
    /// Starts a stream of compression `c` appended to `out`.
    pub fn new(c: Compression, opts: CompressOptions, out: Vec<u8>) -> std::io::Result<Encoder> {
        let io_err = |e: liblzma::stream::Error| std::io::Error::other(e.to_string());
        Ok(match c {
            Compression::None => Encoder::Plain(out),
            Compression::Gzip => {
                let level = opts.level.unwrap_or(6).clamp(1, 9) as u32;
                Encoder::Gzip(flate2::write::GzEncoder::new(
                    out,
                    flate2::Compression::new(level),
                ))
            }
            Compression::Bzip2 => {
                let level = opts.level.unwrap_or(9).clamp(1, 9) as u32;
                Encoder::Bzip2(bzip2::write::BzEncoder::new(
                    out,
                    bzip2::Compression::new(level),
                ))
            }
            Compression::Xz => {
                let preset = opts.level.unwrap_or(6).clamp(0, 9) as u32;
                // The kernel's XZ decoder only verifies CRC32 (or none): never CRC64.
                let stream = if opts.threads > 1 {
                    liblzma::stream::MtStreamBuilder::new()
                        .threads(opts.threads)
                        .preset(preset)
                        .check(liblzma::stream::Check::Crc32)
                        .encoder()
                        .map_err(io_err)?
                } else {
                    liblzma::stream::Stream::new_easy_encoder(preset, liblzma::stream::Check::Crc32)
                        .map_err(io_err)?
                };
                Encoder::Lzma(liblzma::write::XzEncoder::new_stream(out, stream))
            }
            Compression::Lzma => {
                let preset = opts.level.unwrap_or(6).clamp(0, 9) as u32;
                let lo = liblzma::stream::LzmaOptions::new_preset(preset).map_err(io_err)?;
                let stream = liblzma::stream::Stream::new_lzma_encoder(&lo).map_err(io_err)?;
                Encoder::Lzma(liblzma::write::XzEncoder::new_stream(out, stream))
            }
            Compression::Zstd => {
                let level = opts.level.unwrap_or(3).clamp(1, 19);
                let mut e = zstd::stream::write::Encoder::new(out, level)?;
                if opts.threads > 1 {
                    e.multithread(opts.threads)?;
                }
                Encoder::Zstd(e)
            }
            Compression::Lz4 | Compression::Lzo => Encoder::Collect {
                c,
                level: opts.level.unwrap_or(3),
                input: Vec::new(),
                out,
            },
        })
    }

    /// Ends the stream; returns the output buffer with the stream appended.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Plain(out) => Ok(out),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
            Encoder::Lzma(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Collect {
                c,
                level,
                input,
                mut out,
            } => {
                let stream = if c == Compression::Lz4 {
                    lz4_legacy::encode(&input)
                } else {
                    lzop::encode(&input, level)
                };
                out.extend_from_slice(&stream);
                Ok(out)
            }
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Plain(out) => out.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Bzip2(e) => e.write(buf),
            Encoder::Lzma(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Collect { input, .. } => input.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Plain(out) => out.write_all(buf),
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::Bzip2(e) => e.write_all(buf),
            Encoder::Lzma(e) => e.write_all(buf),
            Encoder::Zstd(e) => e.write_all(buf),
            Encoder::Collect { input, .. } => input.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_format_round_trips_and_reports_its_own_length() {
        let data = sample();
        for c in Compression::ALL {
            let mut packed = compress(
                c,
                &data,
                CompressOptions {
                    level: None,
                    threads: 2,
                },
            )
            .unwrap();
            if c != Compression::None {
                assert_eq!(Compression::detect(&packed), Some(c), "{c}");
            }
            let stream_len = packed.len();
            // What follows the stream (padding, next segment) must not be eaten.
            if c != Compression::None {
                packed.extend_from_slice(&[0, 0, 0, 0, 0x1f, 0x8b]);
            }
            let d = decompress(c, &packed, u64::MAX).unwrap();
            assert_eq!(d.data, data, "{c}");
            assert_eq!(d.consumed, stream_len, "{c}");
        }
    }

    #[test]
    fn the_limit_stops_a_decompression_bomb() {
        let data = vec![0u8; 1 << 20];
        for c in Compression::ALL.into_iter().skip(1) {
            let packed = compress(c, &data, CompressOptions::default()).unwrap();
            assert_eq!(
                decompress(c, &packed, 1000).err(),
                Some(DecodeError::TooLarge),
                "{c}"
            );
        }
    }

    #[test]
    fn a_hostile_lzma_dictionary_size_is_refused_not_allocated() {
        // .lzma header: properties, 4 GiB - 1 dictionary, unknown size.
        let mut hostile = vec![0x5d, 0xff, 0xff, 0xff, 0xff];
        hostile.extend_from_slice(&[0xff; 8]);
        hostile.extend_from_slice(&[0; 64]);
        let e = decompress(Compression::Lzma, &hostile, 16 << 20).err();
        assert_eq!(e, Some(DecodeError::Corrupt("memory limit reached".into())));
    }

    #[test]
    fn truncated_streams_are_errors() {
        let data = sample();
        for c in Compression::ALL.into_iter().skip(1) {
            let packed = compress(c, &data, CompressOptions::default()).unwrap();
            let cut = &packed[..packed.len() / 2];
            assert!(
                matches!(decompress(c, cut, u64::MAX), Err(DecodeError::Corrupt(_))),
                "{c}"
            );
        }
    }

    #[test]
    fn names_parse_back() {
        for c in Compression::ALL {
            assert_eq!(c.name().parse::<Compression>().unwrap(), c);
        }
        assert!("rar".parse::<Compression>().is_err());
    }
}

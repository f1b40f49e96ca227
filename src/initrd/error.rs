//! Errors about the archive itself, each one line naming where in the image
//! (byte offset, segment) the problem is, so a sysadmin can look with `xxd`.

use super::compression::Compression;

/// Something wrong with an initramfs image or with an edit asked of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("the image is empty or all zero bytes: not an initramfs")]
    Empty,

    #[error(
        "byte {offset}: found {found} where a cpio header (070701/070702) or a compression magic \
         (gzip, bzip2, lzma, xz, lzo, lz4, zstd) was expected: not an initramfs, or garbage after the last segment"
    )]
    BadMagic { offset: u64, found: String },

    #[error(
        "byte {offset}: uncompressed cpio archive does not start on a 4-byte boundary (the kernel refuses it)"
    )]
    Misaligned { offset: u64 },

    #[error(
        "segment {segment} at byte {offset}: {compression} stream is truncated or corrupt: {detail}"
    )]
    Decompress {
        segment: usize,
        offset: u64,
        compression: Compression,
        detail: String,
    },

    #[error(
        "segment {segment} at byte {offset}: decompresses to more than the limit of {limit} bytes; refusing to continue"
    )]
    TooLarge {
        segment: usize,
        offset: u64,
        limit: u64,
    },

    #[error(
        "segment {segment} ({compression} at byte {offset}), cpio byte {entry_offset}: {problem}"
    )]
    Cpio {
        segment: usize,
        offset: u64,
        compression: Compression,
        entry_offset: u64,
        problem: String,
    },

    #[error("path {path:?}: {problem}")]
    BadPath { path: String, problem: String },

    #[error("cannot write the image: {0}")]
    Write(String),
}

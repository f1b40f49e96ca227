//! initramfs images: read them as the kernel does (segments, compression, cpio),
//! edit them in memory, write them back as an overlay or a rewrite, list them.
//!
//! ```
//! use luksify::initrd::{Image, WriteOptions, write};
//! # fn demo(raw: Vec<u8>) -> Result<(), luksify::initrd::ArchiveError> {
//! let mut img = Image::parse(raw)?;                       // never unpacks to disk
//! img.add_file("etc/crypttab", b"root UUID=... none luks\n".to_vec(), 0o644)?;
//! img.add_symlink("sbin/cryptsetup", "/usr/sbin/cryptsetup")?;
//! let out = write(&img, &WriteOptions::default())?;      // overlay where safe
//! // out.bytes: the new image; out.method: Overlay or Rewrite; out.rewrite_reasons.
//! # let _ = out; Ok(()) }
//! ```
//!
//! Paths given to the edit API are normalized ("./x", "/x" mean "x"; ".." is refused)
//! and symlinks in their parent directories are followed inside the image, as the
//! kernel would when unpacking (so `lib/x.so` lands in `usr/lib/x.so` on usr-merged
//! images instead of replacing the `lib` symlink by a directory).

pub mod cli;
pub mod compression;
pub mod cpio;
pub mod elf;
pub mod error;
pub mod flavour;
pub mod image;
pub mod inimage;
pub mod inject;
pub mod kmod;
pub mod list;
pub mod lz4_legacy;
pub mod lzop;
pub mod path;
pub mod segment;
pub mod skim;
pub mod verify;
pub mod write;

pub use compression::{CompressOptions, Compression};
pub use cpio::{CpioFormat, Kind};
pub use error::ArchiveError;
pub use image::{Change, Image, NewEntry, Node};
pub use list::{Listing, list};
pub use segment::{ReadOptions, Segment};
pub use write::{
    Method, WriteMode, WriteOptions, Written, WrittenParts, overlay_blockers, write, write_parts,
};

//! initramfs images: read them as the kernel does (segments, compression, cpio),
//! edit them in memory, write them back as an overlay or a rewrite, list them.

pub mod cli;
pub mod compression;
pub mod cpio;
pub mod error;
pub mod image;
pub mod list;
pub mod lz4_legacy;
pub mod lzop;
pub mod path;
pub mod segment;
pub mod write;

pub use compression::{CompressOptions, Compression};
pub use cpio::{CpioFormat, Kind};
pub use error::ArchiveError;
pub use image::{Change, Image, NewEntry, Node};
pub use list::{Listing, list};
pub use segment::{ReadOptions, Segment};
pub use write::{Method, WriteMode, WriteOptions, Written, overlay_blockers, write};

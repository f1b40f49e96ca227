//! Our own newc/crc cpio codec.
//!
//! Why not the `cpio` crate: it cannot keep hard links (keyed by dev/ino, data on the
//! last link only), cannot give back an untouched entry's exact bytes, and reads one
//! archive from one stream, while an initramfs is several archives, some compressed,
//! with padding between. The format is 110 bytes of ASCII hex and a name: small
//! enough that owning it is cheaper than working around a crate.

pub mod entry;
pub mod newc;

pub use entry::{Body, Entry, Kind};
pub use newc::{CpioFormat, Header, TRAILER};

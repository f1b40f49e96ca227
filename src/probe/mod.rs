//! Read-only discovery of the machine: disks, signatures, LVM, device-mapper,
//! mounts and the target OS. [`collect`] does the I/O through a [`source::Source`],
//! the `parse_*` modules turn raw text into the [`Snapshot`].

pub mod blkid;
pub mod collect;
pub mod describe;
pub mod lvm_report;
pub mod mountinfo;
pub mod snapshot;
pub mod source;
pub mod target;

pub use snapshot::*;

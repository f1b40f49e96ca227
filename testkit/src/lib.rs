//! Test artefacts for luksify that must be real rather than mocked: a
//! debootstrapped Debian 12 root per initramfs generator, and initramfs images
//! that Debian's own tools built for Debian's own kernel.
//!
//! Everything lives under `${LUKSIFY_CACHE:-$HOME/.cache/luksify}/` in
//! directories named after a hash of their inputs, built in a temporary
//! directory and renamed into place when complete, under a file lock so that
//! parallel test processes (and threads) build each artefact once.
//!
//! Building needs root (debootstrap, chroot, mount) and the Debian mirror.

mod cache;
mod debian;
mod images;
mod mounts;
mod oracle;
mod run;

pub use cache::{cache_root, cached_dir};
pub use debian::{Flavour, debian_mirror, debian_root, kernel_version};
pub use images::{Compression, Generator, RealImage, real_images};
pub use oracle::{lsinitramfs, unmkinitramfs};
pub use run::run;

//! Test artefacts for luksify that must be real rather than mocked: a
//! debootstrapped Debian 12 root per initramfs generator, and initramfs images
//! that Debian's own tools built for Debian's own kernel.
//!
//! Everything lives under `${LUKSIFY_CACHE:-$HOME/.cache/luksify}/` in
//! directories named after a hash of their inputs, built in a temporary
//! directory and renamed into place when complete, under a file lock so that
//! parallel test processes (and threads) build each artefact once.
//!
//! Building needs root (debootstrap, chroot, mount) and the Debian mirror
//! (the one apt on the host uses; `LUKSIFY_DEBIAN_MIRROR` overrides it).
//!
//! ```no_run
//! let root = testkit::debian_root(testkit::Flavour::InitramfsTools)?;
//! for img in testkit::real_images()? {
//!     let names = testkit::lsinitramfs(&img.path, false)?; // Debian's reader
//!     assert!(!names.is_empty());
//! }
//! # anyhow::Ok(())
//! ```
//!
//! Cold cost measured on the 2-core test machine while others were busy:
//! debootstrap 26 s, each flavour root 12-17 s (apt, .debs cached in
//! CACHE/debs), all images a few minutes (see `real_images`). Warm: instant.
//! Layout: CACHE/debian-base-HASH/root, CACHE/debian-root-FLAVOUR-HASH/root,
//! CACHE/real-images-HASH/*.img; CACHE/.locks/ holds the lock files and an
//! interrupted build leaves CACHE/.tmp-NAME-HASH, cleared by the next one.

mod cache;
mod debian;
mod images;
mod mounts;
mod oracle;
mod root_copy;
mod run;
mod vm_target;

pub use cache::{cache_root, cached_dir};
pub use debian::{Flavour, debian_mirror, debian_root, kernel_version};
pub use images::{Compression, Generator, RealImage, mkinitramfs_after, real_images};
pub use oracle::{lsinitramfs, unmkinitramfs};
pub use root_copy::RootCopy;
pub use run::run;
pub use vm_target::{
    VM_TARGET_PACKAGES, VM_TARGET_PACKAGES_DRACUT, VM_TARGET_PACKAGES_NO_CRYPTSETUP_INITRAMFS,
    debian_vm_target, debian_vm_target_with,
};

//! QEMU harness: the proof that a migrated machine boots.
//!
//! Artefacts (Debian packages, the guest kernel, the live initramfs) are built
//! once into `${LUKSIFY_CACHE:-$HOME/.cache/luksify}` ([`cache`]); guests are
//! started with [`qemu::GuestBuilder`] and driven through their serial
//! [`console::Console`].

pub mod cache;
pub mod console;
pub mod cpio;
pub mod debian_pkgs;
pub mod disk;
pub mod guest_kernel;
pub mod host_closure;
pub mod image_tree;
pub mod kernel_update;
pub mod legacy_target;
pub mod live_env;
pub mod logs;
pub mod luksify_bin;
pub mod probe_capture;
pub mod qemu;
pub mod relay;
pub mod target_disk;
pub mod unlock_boot;
pub mod wizard_driver;

//! Regenerating a dracut target's images with its own dracut, in a chroot.
//!
//! Debian's dracut names an image /boot/initrd.img-KVER (its kernel hook
//! does), Fedora's and RHEL's /boot/initramfs-KVER.img: GRUB's generator
//! finds each by that name, so the image is rebuilt where it already is.
//!
//! A generic (not host-only) dracut image, Debian's default, leaves out
//! /etc/crypttab and unlocks only from rd.luks.uuid= on the command line.
//! luksify's dracut configuration asks for the crypt and lvm modules and the
//! crypttab in every image the target's dracut builds from now on (a kernel
//! update too), so the image itself names the container and its mapper name
//! and `verify` can check it. On a host-only target the crypt module already
//! copies the crypttab lines the root needs; the whole file then replaces
//! them, which on a freshly encrypted system is the same line.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::boot::target_fs;
use crate::sys::atomic_file;

/// luksify's dracut configuration in the target.
pub const CONF_PATH: &str = "/etc/dracut.conf.d/90-luksify.conf";

pub const CONF: &str = "# Written by luksify: the root file system is LVM inside the LUKS\n\
# container /etc/crypttab names. Every image needs dracut's crypt and lvm\n\
# modules and that crypttab to unlock it.\n\
add_dracutmodules+=\" crypt dm lvm \"\n\
install_items+=\" /etc/crypttab \"\n";

/// The image of kernel `kver` in the target mounted at `root`, as dracut is
/// told to write it: the existing one, else the distribution's name for it.
pub fn image_path(root: &Path, kver: &str) -> String {
    let debian = format!("/boot/initrd.img-{kver}");
    let redhat = format!("/boot/initramfs-{kver}.img");
    let exists = |p: &str| target_fs::exists(root, p);
    if exists(&debian) {
        debian
    } else if exists(&redhat) || !exists("/etc/debian_version") {
        redhat
    } else {
        debian
    }
}

/// Writes [`CONF`] to [`CONF_PATH`] in the target (atomically, through the
/// target's own symlinks). Writing it again is harmless.
pub fn install_conf(root: &Path) -> Result<()> {
    let host = target_fs::host(root, &target_fs::resolve(root, Path::new(CONF_PATH)));
    if let Some(dir) = host.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    atomic_file::write_atomic(&host, CONF.as_bytes(), 0o644)
        .with_context(|| format!("writing the target's {CONF_PATH}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, p: &str) {
        let p = root.join(p.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn image_names_follow_the_distribution() {
        let k = "6.1.0-28-amd64";
        // Debian: its kernel hook's name, existing or not.
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "/etc/debian_version");
        assert_eq!(image_path(d.path(), k), format!("/boot/initrd.img-{k}"));
        touch(d.path(), &format!("/boot/initrd.img-{k}"));
        assert_eq!(image_path(d.path(), k), format!("/boot/initrd.img-{k}"));
        // Fedora / RHEL.
        let f = tempfile::tempdir().unwrap();
        assert_eq!(image_path(f.path(), k), format!("/boot/initramfs-{k}.img"));
        // An image already there keeps its name, whatever the distribution.
        touch(d.path(), "/boot/initramfs-5.10.0-1-amd64.img");
        assert_eq!(
            image_path(d.path(), "5.10.0-1-amd64"),
            "/boot/initramfs-5.10.0-1-amd64.img"
        );
    }

    #[test]
    fn conf_is_written_and_rewritten() {
        let d = tempfile::tempdir().unwrap();
        install_conf(d.path()).unwrap();
        install_conf(d.path()).unwrap();
        let text = fs::read_to_string(d.path().join("etc/dracut.conf.d/90-luksify.conf")).unwrap();
        assert_eq!(text, CONF);
        assert!(text.contains("install_items+=\" /etc/crypttab \""));
    }
}

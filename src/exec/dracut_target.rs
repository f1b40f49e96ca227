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
//!
//! dracut is not told to write the image in place: it copies its result over
//! its output file and deletes that file when the copy fails, so a /boot that
//! fills up would leave the kernel with no image at all. It writes
//! IMAGE.luksify-new instead, which replaces IMAGE by a rename once complete.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::boot_fs;
use crate::boot::target_fs;
use crate::plan::boot_room;
use crate::sys::atomic_file;
use crate::sys::process::Cmd;

pub use crate::plan::boot_room::NEW_SUFFIX;

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

/// Rebuilds each kernel's image with the target's dracut, in a chroot of the
/// target mounted at `root`; `done` is told each image's name once it is in
/// place. Refuses before anything in /boot changes when it cannot hold the
/// new images beside the old ones; an image dracut fails to build stays as
/// it was.
pub fn rebuild(root: &Path, kernels: &[String], mut done: impl FnMut(&str)) -> Result<()> {
    // Through the target's symlinks: dracut writes where the chroot resolves
    // the name, and the rename must replace that file, not a link to it.
    // (kernel, image in the target, image on the host, dracut's file on the host)
    let images: Vec<(&String, String, PathBuf, PathBuf)> = kernels
        .iter()
        .map(|k| {
            let image = target_fs::resolve(root, Path::new(&image_path(root, k)));
            let host = target_fs::host(root, &image);
            let new = boot_fs::with_suffix(&host, NEW_SUFFIX);
            (k, image.to_string_lossy().into_owned(), host, new)
        })
        .collect();
    let len = |p: &Path| match fs::metadata(p) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    };
    let (mut sizes, mut stale) = (Vec::new(), 0u64);
    for (_, _, host, new) in &images {
        sizes.push(len(host)?);
        stale += len(new)?;
    }
    if let Some((_, _, host, _)) = images.first() {
        let dir = host.parent().unwrap_or(root);
        let avail = boot_fs::free_bytes(dir)?.saturating_add(stale);
        let needed = boot_room::needed_beside(sizes);
        boot_fs::refuse_short(dir, boot_room::dracut_shortfall(avail, needed))?;
    }
    for (k, image, host, new) in &images {
        let new_image = format!("{image}{NEW_SUFFIX}");
        // A run cut short may have left one; dracut's is built afresh.
        remove_if_there(new)?;
        if let Err(e) = Cmd::new("chroot")
            .args([root.as_os_str(), "dracut".as_ref(), "--force".as_ref()])
            .args([new_image.as_str(), k.as_str()])
            .run()
        {
            let _ = fs::remove_file(new);
            return Err(e).with_context(|| {
                format!("the target's dracut building {new_image}; {image} was left as it was")
            });
        }
        if let Err(e) = replace(new, host) {
            let _ = fs::remove_file(new);
            return Err(e).with_context(|| {
                format!("putting {new_image} in place of {image}; {image} was left as it was")
            });
        }
        done(image);
    }
    Ok(())
}

fn remove_if_there(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    }
}

/// Renames `new` over `old`, with `old`'s permissions (dracut creates its
/// output private to root; the image it replaces may not have been), on disk
/// before and after the rename.
fn replace(new: &Path, old: &Path) -> Result<()> {
    if let Ok(m) = fs::metadata(old) {
        fs::set_permissions(new, m.permissions())
            .with_context(|| format!("setting the permissions of {}", new.display()))?;
    }
    fs::File::open(new)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {} to disk", new.display()))?;
    fs::rename(new, old)
        .with_context(|| format!("renaming {} to {}", new.display(), old.display()))?;
    atomic_file::sync_dir(old.parent().unwrap_or(Path::new("/")))
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

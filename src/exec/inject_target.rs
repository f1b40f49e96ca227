//! The initramfs step for a target whose own generator cannot unlock LUKS
//! (Debian's initramfs-tools without cryptsetup-initramfs): luksify's own
//! engine ([`crate::initrd`]) adds cryptsetup, its libraries and the cipher's
//! modules from the mounted target root, and its unlock hook, to each
//! kernel's image in the target's /boot.
//!
//! Safe to run again after an interruption: the original image is kept once
//! as IMAGE.luksify-backup and never overwritten; the new image is checked
//! in memory before it replaces the original by an atomic rename; an image
//! that already unlocks this container is left alone, so nothing is
//! injected twice.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::boot_fs;
use crate::initrd::elf::inroot;
use crate::initrd::flavour::{Settings, UNLOCK_CONF};
use crate::initrd::inject::{InjectOptions, inject};
use crate::initrd::verify::{Verdict, verify};
use crate::initrd::{Image, WriteMode, WriteOptions, inimage, write};
use crate::plan::boot_room;
pub use crate::plan::boot_room::{BACKUP_SUFFIX, image_names};
use crate::sys::atomic_file;

/// The container the images must unlock.
pub struct Unlock<'a> {
    pub luks_uuid: &'a str,
    /// The dm-crypt mapping's name; None when only checking.
    pub mapper_name: Option<&'a str>,
    pub vg: &'a str,
    pub root_lv: &'a str,
    /// dm-crypt cipher of the container, e.g. aes-xts-plain64.
    pub cipher: &'a str,
}

impl Unlock<'_> {
    fn settings(&self) -> Result<Settings> {
        Settings::new(
            self.luks_uuid,
            self.vg,
            Some(self.root_lv),
            self.mapper_name,
        )
    }
}

/// The backup of `image`.
pub fn backup_of(image: &Path) -> PathBuf {
    boot_fs::with_suffix(image, BACKUP_SUFFIX)
}

/// Everything the injection needs from the mounted target, checked before
/// the first write: the cryptsetup program and each kernel's image. Returns
/// each kernel with its image's path on the host.
pub fn preflight(
    root: &Path,
    generator: Option<&str>,
    kernels: &[String],
) -> Result<Vec<(String, PathBuf)>> {
    if !["/sbin/cryptsetup", "/usr/sbin/cryptsetup"]
        .iter()
        .any(|p| inroot::exists(root, Path::new(p)))
    {
        bail!(
            "the target has no cryptsetup program, which its initramfs needs to unlock the root. Install it in the target (Debian/Ubuntu: `chroot {} apt-get install cryptsetup-bin`) and run `luksify migrate` again: it resumes here",
            root.display()
        );
    }
    if kernels.is_empty() {
        bail!("the target has no kernel with modules in /lib/modules; nothing could boot it");
    }
    let images: Vec<(String, PathBuf)> = kernels
        .iter()
        .map(|k| {
            let names = image_names(generator, k);
            names
                .iter()
                .map(|n| root.join(n.trim_start_matches('/')))
                .find(|p| p.is_file())
                .map(|p| (k.clone(), p))
                .with_context(|| {
                    format!(
                        "kernel {k} has no initramfs in the target's /boot (looked for {}); luksify adds the unlock to an existing image and cannot build one",
                        names.join(", ")
                    )
                })
        })
        .collect::<Result<_>>()?;
    check_room(&images)?;
    Ok(images)
}

/// Refuses, before anything in /boot is written, when its file system cannot
/// hold what `boot_room::needed` says (the plan checked the same from the probe).
fn check_room(images: &[(String, PathBuf)]) -> Result<()> {
    let Some((_, first)) = images.first() else {
        return Ok(());
    };
    let dir = first.parent().unwrap_or(Path::new("/"));
    let sizes = images
        .iter()
        .map(|(_, image)| {
            let len = fs::metadata(image)
                .with_context(|| format!("reading {}", image.display()))?
                .len();
            Ok((len, backup_of(image).exists()))
        })
        .collect::<Result<Vec<_>>>()?;
    enough_room(dir, boot_fs::free_bytes(dir)?, boot_room::needed(sizes))
}

fn enough_room(dir: &Path, avail: u64, needed: u64) -> Result<()> {
    boot_fs::refuse_short(dir, boot_room::shortfall(avail, needed))
}

/// What happened to one image.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It already unlocked the container (an earlier run got this far).
    AlreadyUnlocks,
    /// Injected; `added` files, original kept at `backup`.
    Injected { added: usize, backup: PathBuf },
}

/// Teaches `image` (a path on the host, inside `root`) to unlock `u`.
pub fn inject_image(root: &Path, image: &Path, kver: &str, u: &Unlock) -> Result<Outcome> {
    let s = u.settings()?;
    let mut img = Image::open(image)?;
    if verify(&img, &s, u.cipher, None).ok() {
        return Ok(Outcome::AlreadyUnlocks);
    }
    let mode = fs::metadata(image)
        .with_context(|| format!("reading {}", image.display()))?
        .permissions()
        .mode()
        & 0o7777;
    let backup = backup_of(image);
    // An existing backup is the image as it was before luksify first touched
    // it; the current one may be ours from a run that was interrupted.
    if !backup.exists() {
        atomic_file::write_atomic(&backup, img.raw(), mode)
            .with_context(|| format!("keeping the original image as {}", backup.display()))?;
    }
    let report = inject(
        &mut img,
        &s,
        &InjectOptions {
            root: root.to_path_buf(),
            flavour: None,
            kver: Some(kver.to_string()),
            cipher: u.cipher.to_string(),
        },
    )
    .with_context(|| format!("adding the unlock to {}", image.display()))?;
    // One archive, as the generator writes it: every reader (the target's own
    // lsinitramfs included) sees the injected files.
    let written = write(
        &img,
        &WriteOptions {
            mode: WriteMode::Rewrite,
            ..WriteOptions::default()
        },
    )?;
    drop(img);
    let check = Image::parse(written.bytes).context("reading back the new image")?;
    let v = verify(&check, &s, u.cipher, Some(report.flavour));
    if !v.ok() {
        bail!(
            "the new image for kernel {kver} would not unlock the root; {} was left unchanged: {}",
            image.display(),
            v.to_text().trim_end()
        );
    }
    atomic_file::write_atomic(image, check.raw(), mode)
        .with_context(|| format!("replacing {}", image.display()))?;
    Ok(Outcome::Injected {
        added: report.added.len(),
        backup,
    })
}

/// Whether the image carries luksify's own unlock (so `verify` applies).
pub fn carries_luksify_unlock(img: &Image) -> bool {
    inimage::read(img, UNLOCK_CONF).is_some()
        || inimage::read(img, "etc/cmdline.d/90-luksify.conf").is_some()
}

/// The unlock configuration an image carries (the one luksify added).
pub fn unlock_conf_of(image: &Path) -> Result<Option<String>> {
    Ok(inimage::text(&Image::open(image)?, UNLOCK_CONF))
}

/// The engine's verdict: can `img` unlock `u`?
pub fn verdict(img: &Image, u: &Unlock) -> Result<Verdict> {
    Ok(verify(img, &u.settings()?, u.cipher, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_boot_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("initrd.img-6.1");
        fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let images = vec![("6.1".to_string(), image.clone())];
        // The temp dir's file system has room for 1 MiB twice plus the margin.
        check_room(&images).unwrap();
        let err = enough_room(dir.path(), 10 << 20, (2 << 20) + boot_room::GROWTH)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has 10 MiB free"), "{err}");
        assert!(err.contains("needs about 18 MiB"), "{err}");
        assert!(err.contains("run `luksify migrate` again"), "{err}");
        assert!(!backup_of(&image).exists());
    }

    #[test]
    fn debian_names_come_first_for_initramfs_tools() {
        assert_eq!(
            image_names(Some("initramfs-tools"), "6.1.0-28-amd64")[0],
            "/boot/initrd.img-6.1.0-28-amd64"
        );
        assert_eq!(
            image_names(Some("nash"), "2.6.18-8.el5")[0],
            "/boot/initrd-2.6.18-8.el5.img"
        );
        assert_eq!(
            backup_of(Path::new("/t/boot/initrd.img-6.1")),
            Path::new("/t/boot/initrd.img-6.1.luksify-backup")
        );
    }
}

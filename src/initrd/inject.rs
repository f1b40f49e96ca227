//! Teaching an initramfs to unlock a LUKS root on LVM: cryptsetup with its
//! library closure from the TARGET root (so it matches the target's libc),
//! the kernel modules of the container's cipher with a module index rebuilt
//! for the image, and the flavour's hook and configuration. Everything
//! happens on the in-memory [`Image`]; writing is the caller's business.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::elf::{self, inroot};
use super::flavour::{self, Flavour, Settings};
use super::image::Image;
use super::inimage;
use super::kmod::{self, KernelModules};

/// Programs the unlock needs, as paths inside the target root. lvm is only
/// taken when the image lacks it (generators ship it with their lvm hooks).
const CRYPTSETUP: &str = "/sbin/cryptsetup";
const LVM: &str = "/sbin/lvm";
/// Applets the unlock script uses, linked to busybox when an image lacks them.
const APPLETS: &[&str] = &[
    "modprobe", "blkid", "stty", "sleep", "mkdir", "mount", "mknod",
];

#[derive(Debug, Clone)]
pub struct InjectOptions {
    pub root: PathBuf,
    pub flavour: Option<Flavour>,
    pub kver: Option<String>,
    /// dm-crypt cipher of the container, e.g. aes-xts-plain64.
    pub cipher: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub flavour: Flavour,
    pub kver: String,
    /// Normalized names of files added (not counting ones already present).
    pub added: Vec<String>,
    pub notes: Vec<String>,
}

/// The kernel version the image is for: the one /lib/modules/* of the image
/// holds, else the only one the target root has.
pub fn image_kver(img: &Image) -> Option<String> {
    let k = inimage::children(img, "lib/modules");
    (k.len() == 1).then(|| k[0].clone())
}

fn pick_kver(img: &Image, root: &Path, asked: Option<&str>) -> Result<String> {
    if let Some(k) = asked {
        return Ok(k.to_string());
    }
    if let Some(k) = image_kver(img) {
        return Ok(k);
    }
    let dir = inroot::host_path(
        root,
        &inroot::resolve(root, Path::new("/lib/modules"))?.real,
    );
    let kvers: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .filter(|e| e.path().join("modules.dep").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match kvers.as_slice() {
        [k] => Ok(k.clone()),
        _ => bail!(
            "cannot tell which kernel the image is for (the image has no single lib/modules/KVER, \
             {} has {:?}); pass --kver",
            dir.display(),
            kvers
        ),
    }
}

fn host_file(root: &Path, inside: &Path) -> Result<(Vec<u8>, u32)> {
    let host = inroot::host_path(root, inside);
    let data = fs::read(&host).with_context(|| format!("reading {}", host.display()))?;
    let mode = fs::metadata(&host)?.permissions().mode() & 0o7777;
    Ok((data, mode))
}

fn rel(p: &Path) -> String {
    p.to_string_lossy().trim_start_matches('/').to_string()
}

/// Adds `programs`' ELF closure from the root; files the image already has
/// at the same place are kept as they are.
fn add_programs(
    img: &mut Image,
    root: &Path,
    programs: &[&Path],
    added: &mut Vec<String>,
) -> Result<Vec<String>> {
    let closure = elf::closure(root, programs)
        .context("finding cryptsetup's libraries in the target root")?;
    for f in &closure.files {
        let real = rel(&f.real);
        if inimage::read(img, &real).is_none() {
            let (data, mode) = host_file(root, &f.real)?;
            img.add_file(&real, data, mode)?;
            added.push(real.clone());
        }
        let asked = rel(&f.path);
        if asked != real && inimage::follow(img, &asked).is_none() {
            img.add_symlink(&asked, &format!("/{real}"))?;
            added.push(asked);
        }
    }
    Ok(closure.notes)
}

/// Adds the cipher's module closure and rebuilds the image's module index.
/// Returns the module names in load order.
fn add_modules(
    img: &mut Image,
    root: &Path,
    kver: &str,
    cipher: &str,
    added: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<Vec<String>> {
    let km = KernelModules::load(root, kver)?;
    let closure = km.closure(&kmod::crypt_wants(cipher))?;
    notes.extend(closure.notes.iter().cloned());
    let base = format!("lib/modules/{kver}");
    let mut new = 0;
    for m in &closure.modules {
        let dest = format!("{base}/{}", m.rel.display());
        if inimage::read(img, &dest).is_none() {
            let (data, _) = host_file(root, &m.path)?;
            img.add_file(&dest, data, 0o644)?;
            added.push(dest);
            new += 1;
        }
    }
    if new > 0 {
        // The index must describe exactly the modules in the image.
        let dir = img.resolve(&format!("{base}/modules.dep"))?;
        let mut prefix = inimage_parent(&dir);
        prefix.push(b'/');
        let mut names: Vec<Vec<u8>> = img
            .original_names()
            .chain(img.changes().keys())
            .filter(|n| n.starts_with(&prefix) && is_module_file(n))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        let mut files = Vec::new();
        for n in names {
            let name = String::from_utf8_lossy(&n).into_owned();
            if let Some(f) = inimage::read(img, &name) {
                files.push((PathBuf::from(&name[prefix.len()..]), f.data));
            }
        }
        for (file, data) in kmod::module_index(root, kver, &files)? {
            img.add_file(&format!("{base}/{file}"), data, 0o644)?;
            added.push(format!("{base}/{file}"));
        }
    }
    Ok(closure.modules.iter().map(|m| m.name.clone()).collect())
}

fn inimage_parent(name: &[u8]) -> Vec<u8> {
    super::path::parent(name).to_vec()
}

fn is_module_file(n: &[u8]) -> bool {
    [&b".ko"[..], b".ko.xz", b".ko.zst", b".ko.gz"]
        .iter()
        .any(|s| n.ends_with(s))
}

/// Injects everything the image needs to unlock `s` and activate its VG.
pub fn inject(img: &mut Image, s: &Settings, opts: &InjectOptions) -> Result<Report> {
    if img.segments().iter().any(|seg| !seg.contents) {
        // Flavour detection, ORDER edits and the module index read file contents.
        bail!(
            "the image was read without file contents (ReadOptions::contents = false); inject needs them"
        );
    }
    let flavour = opts.flavour.unwrap_or_else(|| flavour::detect(img));
    let kver = pick_kver(img, &opts.root, opts.kver.as_deref())?;
    let mut added = Vec::new();
    let mut notes = Vec::new();
    let mut programs: Vec<&Path> = vec![Path::new(CRYPTSETUP)];
    let has_lvm = ["sbin/lvm", "usr/sbin/lvm"]
        .iter()
        .any(|p| inimage::read(img, p).is_some());
    if !has_lvm {
        if inroot::exists(&opts.root, Path::new(LVM)) {
            programs.push(Path::new(LVM));
        } else {
            notes.push(format!(
                "{} has no /sbin/lvm: the image cannot activate VG {}",
                opts.root.display(),
                s.vg
            ));
        }
    }
    notes.extend(add_programs(img, &opts.root, &programs, &mut added)?);
    let mut s = s.clone();
    s.modules = add_modules(img, &opts.root, &kver, &opts.cipher, &mut added, &mut notes)?;
    if inimage::read(img, "bin/busybox").is_some() {
        for a in APPLETS {
            let present = ["bin", "sbin", "usr/bin", "usr/sbin"]
                .iter()
                .any(|d| inimage::exists(img, &format!("{d}/{a}")));
            if !present {
                img.add_symlink(&format!("bin/{a}"), "busybox")?;
                added.push(format!("bin/{a}"));
            }
        }
    }
    notes.extend(flavour::apply(flavour, img, &s)?);
    Ok(Report {
        flavour,
        kver,
        added,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initrd::compression::{CompressOptions, Compression, compress};
    use crate::initrd::image::tests::sample_cpio;
    use crate::initrd::segment::ReadOptions;

    #[test]
    fn an_image_read_without_contents_is_refused_not_misread() {
        let raw = compress(
            Compression::Zstd,
            &sample_cpio(),
            CompressOptions::default(),
        )
        .unwrap();
        let skim = ReadOptions {
            contents: false,
            ..ReadOptions::default()
        };
        let mut img = Image::parse_with(raw, &skim).unwrap();
        let s = Settings::new("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "vg0", None, None).unwrap();
        let opts = InjectOptions {
            root: PathBuf::from("/nonexistent"),
            flavour: None,
            kver: None,
            cipher: "aes-xts-plain64".into(),
        };
        let e = inject(&mut img, &s, &opts).unwrap_err();
        assert!(e.to_string().contains("without file contents"), "{e}");
        assert!(!img.is_modified());
    }
}

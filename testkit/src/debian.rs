use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cache::{cache_root, cached_dir};
use crate::mounts::ChrootMounts;
use crate::run::{run, run_env};

/// Which initramfs generator the root carries. Debian lets only one be
/// installed: dracut conflicts with initramfs-tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    InitramfsTools,
    Dracut,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::InitramfsTools => "initramfs-tools",
            Flavour::Dracut => "dracut",
        }
    }

    /// The generator, plus systemd for dracut so that its systemd modules
    /// can be included (a default Debian system runs systemd).
    fn packages(self) -> &'static [&'static str] {
        match self {
            Flavour::InitramfsTools => &["initramfs-tools"],
            Flavour::Dracut => &["dracut", "systemd"],
        }
    }
}

pub(crate) const SUITE: &str = "bookworm";
/// non-free-firmware carries intel-microcode and amd64-microcode.
pub(crate) const COMPONENTS: &str = "main non-free-firmware";
/// What a target system we migrate looks like: Debian's kernel, LVM, the
/// cryptsetup binary (not cryptsetup-initramfs: teaching the image to unlock
/// is our job), busybox, microcode, and the decompressors lsinitramfs needs.
const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "lvm2",
    "cryptsetup",
    "busybox",
    "intel-microcode",
    "amd64-microcode",
    "cpio",
    "gzip",
    "zstd",
    "xz-utils",
    "lz4",
];
/// Bump when the way a root is built changes, so old caches are not reused.
const RECIPE: &str = "debian-root v1";

/// The Debian mirror apt on this machine uses (first `deb.debian.org`-like
/// `/debian` URI in /etc/apt/sources.list{,.d}), or `LUKSIFY_DEBIAN_MIRROR`.
pub fn debian_mirror() -> String {
    if let Ok(m) = std::env::var("LUKSIFY_DEBIAN_MIRROR")
        && !m.is_empty()
    {
        return m;
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        for word in text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace)
        {
            let w = word.trim_end_matches('/');
            if (w.starts_with("http://") || w.starts_with("https://")) && w.ends_with("/debian") {
                return w.to_string();
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// Serialises everything that writes the shared .deb cache (debootstrap
/// --cache-dir and apt's archive directory), which apt does not share well.
/// Copies the debootstrapped base to `root` and readies it for apt in a
/// chroot: the mirror as its only source, and no daemon allowed to start.
pub(crate) fn copy_base_for_apt(base: &Path, root: &Path, mirror: &str) -> Result<()> {
    run(
        "cp",
        [
            "-a".as_ref(),
            "--reflink=auto".as_ref(),
            base.as_os_str(),
            root.as_os_str(),
        ],
    )?;
    fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb {mirror} {SUITE} {COMPONENTS}\n"),
    )?;
    let policy = root.join("usr/sbin/policy-rc.d");
    fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
    run("chmod", ["0755".as_ref(), policy.as_os_str()])?;
    Ok(())
}

pub(crate) fn with_deb_cache<T>(f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let root = cache_root();
    let debs = root.join("debs");
    fs::create_dir_all(debs.join("partial"))?;
    fs::create_dir_all(root.join(".locks"))?;
    let lock = fs::File::create(root.join(".locks/debs.lock"))?;
    lock.lock().context("locking the .deb cache")?;
    f(&debs)
}

pub(crate) fn base_root() -> Result<PathBuf> {
    let mirror = debian_mirror();
    let key = format!("{RECIPE}\nminbase {SUITE} {COMPONENTS} {mirror}");
    let dir = cached_dir("debian-base", &key, |tmp| {
        let root = tmp.join("root");
        with_deb_cache(|debs| {
            let components = COMPONENTS.replace(' ', ",");
            run(
                "debootstrap",
                [
                    "--variant=minbase".to_string(),
                    format!("--cache-dir={}", debs.display()),
                    format!("--components={components}"),
                    SUITE.to_string(),
                    root.display().to_string(),
                    mirror.clone(),
                ],
            )
            .map(drop)
        })
    })?;
    Ok(dir.join("root"))
}

/// A debootstrapped Debian 12 root with [`PACKAGES`] and the flavour's
/// generator installed, and no initramfs built yet (tests build the images
/// they need). Cold: ~30 s debootstrap + ~30 s apt on this machine.
pub fn debian_root(flavour: Flavour) -> Result<PathBuf> {
    let base = base_root()?;
    let mirror = debian_mirror();
    let mut packages: Vec<&str> = PACKAGES.to_vec();
    packages.extend(flavour.packages());
    let key = format!(
        "{RECIPE}\nbase={}\nflavour={}\npackages={}",
        base.display(),
        flavour.name(),
        packages.join(" ")
    );
    let dir = cached_dir(&format!("debian-root-{}", flavour.name()), &key, |tmp| {
        let root = tmp.join("root");
        copy_base_for_apt(&base, &root, &mirror)?;
        with_deb_cache(|debs| {
            let _mounts = ChrootMounts::new(&root, Some(debs))?;
            // INITRD=No makes the kernel's postinst hooks skip building an
            // initramfs: the images are built on purpose by real_images().
            let env = [
                ("DEBIAN_FRONTEND", "noninteractive"),
                ("INITRD", "No"),
                ("LC_ALL", "C"),
                ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            ];
            chroot_env(&root, ["apt-get", "-q", "update"], &env)?;
            let mut install = vec!["apt-get", "-q", "-y", "--no-install-recommends", "install"];
            install.extend(&packages);
            chroot_env(&root, install, &env)?;
            Ok(())
        })?;
        let kver = kernel_version(&root)?;
        if !root.join("sbin/cryptsetup").exists() {
            bail!("cryptsetup is missing from the new root");
        }
        eprintln!("testkit: {} root has kernel {kver}", flavour.name());
        Ok(())
    })?;
    Ok(dir.join("root"))
}

pub(crate) fn chroot_env<I, S>(root: &Path, argv: I, env: &[(&str, &str)]) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut args = vec![root.as_os_str().to_owned()];
    args.extend(argv.into_iter().map(|a| a.as_ref().to_owned()));
    run_env("chroot", args, env)
}

/// The one kernel version installed in ROOT/lib/modules.
pub fn kernel_version(root: &Path) -> Result<String> {
    let dir = root.join("lib/modules");
    let mut kvers: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .filter(|e| e.path().join("modules.dep").exists() || e.path().join("kernel").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    kvers.sort();
    match kvers.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("expected one kernel in {}, found {kvers:?}", dir.display()),
    }
}

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cache::{cached_dir, remove_tree};
use crate::debian::{Flavour, chroot_env, debian_root, kernel_version};
use crate::mounts::ChrootMounts;
use crate::run::run;

/// Who made an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generator {
    /// Debian's initramfs-tools (`mkinitramfs`), MODULES=most.
    Mkinitramfs,
    /// Debian's dracut, generic (--no-hostonly), with its systemd modules.
    DracutSystemd,
    /// Debian's dracut, generic, with the systemd modules omitted (scripted
    /// dracut init, as on systems without systemd).
    Dracut,
    /// A hand-made busybox /init image (GNU cpio, newc), the generic fallback.
    Busybox,
    /// Like [`Generator::Busybox`] but in the crc (070702) format with the
    /// applets as hard links of /bin/busybox.
    BusyboxCrcHardlinks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    Zstd,
    Xz,
    Lz4,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
        }
    }
}

/// An initramfs image built by Debian's tools for Debian's kernel.
#[derive(Debug, Clone)]
pub struct RealImage {
    pub path: PathBuf,
    pub generator: Generator,
    /// Compression of the main (last) segment.
    pub compression: Compression,
    /// Whether an uncompressed early cpio with kernel/x86/microcode/*.bin
    /// precedes the main segment.
    pub early_microcode: bool,
    /// Generic image with (nearly) every module: MODULES=most or dracut
    /// --no-hostonly. Otherwise a small MODULES=list image.
    pub all_modules: bool,
    pub kver: String,
    /// The root the image was made from (its binaries, modules, lsinitramfs).
    pub root: PathBuf,
}

/// (generator, compression, early microcode, all modules). Only the images a
/// benchmark wants big carry MODULES=most / a generic dracut; the others are
/// built with MODULES=list (what the hooks add: busybox, udev, lvm2,
/// dm-mod...) or dracut --drivers (only the listed drivers), because on this
/// machine MODULES=most costs ~25 s an image (xz ~150 s) and a generic dracut
/// image 1.5-2.5 min (dracut compresses with zstd -15 / gzip -9).
const SPECS: &[(Generator, Compression, bool, bool)] = &[
    (Generator::Mkinitramfs, Compression::Zstd, true, true),
    (Generator::Mkinitramfs, Compression::Zstd, false, false),
    (Generator::Mkinitramfs, Compression::Gzip, true, false),
    (Generator::Mkinitramfs, Compression::Gzip, false, false),
    (Generator::Mkinitramfs, Compression::Xz, true, false),
    (Generator::Mkinitramfs, Compression::Xz, false, false),
    (Generator::Mkinitramfs, Compression::Lz4, true, false),
    (Generator::Mkinitramfs, Compression::Lz4, false, false),
    (Generator::DracutSystemd, Compression::Zstd, true, true),
    (Generator::DracutSystemd, Compression::Gzip, false, false),
    (Generator::Dracut, Compression::Zstd, false, false),
    (Generator::Busybox, Compression::Gzip, false, false),
    (
        Generator::BusyboxCrcHardlinks,
        Compression::Gzip,
        false,
        false,
    ),
];
const RECIPE: &str = "real-images v3";

fn file_name(g: Generator, c: Compression, ucode: bool, all_modules: bool) -> String {
    let g = match g {
        Generator::Mkinitramfs => "mkinitramfs",
        Generator::DracutSystemd => "dracut-systemd",
        Generator::Dracut => "dracut",
        Generator::Busybox => "busybox",
        Generator::BusyboxCrcHardlinks => "busybox-crc-hardlinks",
    };
    let u = if ucode { "-ucode" } else { "" };
    let m = if all_modules { "-most" } else { "" };
    format!("{g}-{}{u}{m}.img", c.name())
}

fn flavour_of(g: Generator) -> Flavour {
    match g {
        Generator::DracutSystemd | Generator::Dracut => Flavour::Dracut,
        _ => Flavour::InitramfsTools,
    }
}

/// Every image in [`SPECS`], built once and cached. Cold: a few minutes
/// (mkinitramfs with MODULES=most takes ~25 s an image here).
pub fn real_images() -> Result<Vec<RealImage>> {
    let it_root = debian_root(Flavour::InitramfsTools)?;
    let dracut_root = debian_root(Flavour::Dracut)?;
    let key = format!(
        "{RECIPE}\n{}\n{}\n{SPECS:?}",
        it_root.display(),
        dracut_root.display()
    );
    let dir = cached_dir("real-images", &key, |tmp| {
        build_all(tmp, Flavour::InitramfsTools, &it_root)?;
        build_all(tmp, Flavour::Dracut, &dracut_root)
    })?;
    let mut images = Vec::new();
    for &(generator, compression, early_microcode, all_modules) in SPECS {
        let root = match flavour_of(generator) {
            Flavour::InitramfsTools => it_root.clone(),
            Flavour::Dracut => dracut_root.clone(),
        };
        images.push(RealImage {
            path: dir.join(file_name(
                generator,
                compression,
                early_microcode,
                all_modules,
            )),
            generator,
            compression,
            early_microcode,
            all_modules,
            kver: kernel_version(&root)?,
            root,
        });
    }
    Ok(images)
}

/// Builds this flavour's images in a private copy of its root, so that the
/// configuration changes mkinitramfs needs never touch the cached root.
fn build_all(out: &Path, flavour: Flavour, root: &Path) -> Result<()> {
    let work = out.join(format!("work-{flavour:?}"));
    crate::root_copy::copy_tree(root, &work)?;
    let kver = kernel_version(&work)?;
    {
        let _mounts = ChrootMounts::new(&work, None)?;
        for &(g, c, ucode, most) in SPECS.iter().filter(|s| flavour_of(s.0) == flavour) {
            let name = file_name(g, c, ucode, most);
            let started = std::time::Instant::now();
            let inside = format!("/tmp/{name}");
            match g {
                Generator::Mkinitramfs => mkinitramfs(&work, &kver, c, ucode, most, &inside)?,
                Generator::DracutSystemd | Generator::Dracut => dracut(
                    &work,
                    &kver,
                    c,
                    ucode,
                    g == Generator::DracutSystemd,
                    most,
                    &inside,
                )?,
                Generator::Busybox => busybox(&work, "newc", false, &inside)?,
                Generator::BusyboxCrcHardlinks => busybox(&work, "crc", true, &inside)?,
            }
            fs::rename(work.join(inside.trim_start_matches('/')), out.join(&name))
                .with_context(|| format!("moving {name} out of the work root"))?;
            eprintln!(
                "testkit: built {name} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    remove_tree(&work)
}

const CHROOT_ENV: &[(&str, &str)] = &[("LC_ALL", "C"), ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")];

fn mkinitramfs(
    root: &Path,
    kver: &str,
    c: Compression,
    ucode: bool,
    most: bool,
    out: &str,
) -> Result<()> {
    // The microcode hooks read these after their defaults; "early" forces the
    // early cpio whatever CPU builds the image (SCANCPUS=no: all of Intel's
    // microcode, not just the build machine's), "no" leaves it out.
    let (intel, amd) = if ucode {
        ("early", "early")
    } else {
        ("no", "no")
    };
    fs::write(
        root.join("etc/default/intel-microcode"),
        format!("IUCODE_TOOL_INITRAMFS={intel}\nIUCODE_TOOL_SCANCPUS=no\n"),
    )?;
    let conf = root.join("etc/initramfs-tools/initramfs.conf");
    let modules = if most { "MODULES=most" } else { "MODULES=list" };
    let text: String = fs::read_to_string(&conf)?
        .lines()
        .map(|l| {
            if l.starts_with("MODULES=") {
                modules
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&conf, text)?;
    fs::write(
        root.join("etc/default/amd64-microcode"),
        format!("AMD64UCODE_INITRAMFS={amd}\n"),
    )?;
    chroot_env(
        root,
        ["mkinitramfs", "-c", c.name(), "-o", out, kver],
        CHROOT_ENV,
    )?;
    Ok(())
}

fn dracut(
    root: &Path,
    kver: &str,
    c: Compression,
    ucode: bool,
    systemd: bool,
    all_modules: bool,
    out: &str,
) -> Result<()> {
    let mut argv = vec![
        "dracut".to_string(),
        "--force".into(),
        "--no-hostonly".into(),
        format!("--{}", c.name()),
        if ucode {
            "--early-microcode".into()
        } else {
            "--no-early-microcode".into()
        },
    ];
    if !all_modules {
        // Only these (and their dependencies), instead of every storage
        // driver a generic image carries: enough to boot a VM from virtio.
        argv.push("--drivers".into());
        argv.push("dm-mod ext4 virtio_blk virtio_pci virtio_scsi sd_mod ahci".into());
    }
    if !systemd {
        argv.push("--omit".into());
        argv.push("systemd systemd-initrd systemd-udevd dracut-systemd".into());
    }
    argv.push(out.into());
    argv.push(kver.into());
    chroot_env(root, argv, CHROOT_ENV)?;
    Ok(())
}

/// A minimal generic image: busybox, its libraries, and a /init that mounts
/// the pseudo filesystems and drops to a shell. The file list comes from the
/// root's own ldd (this is test scaffolding, not the code under test).
fn busybox(root: &Path, format: &str, hardlinks: bool, out: &str) -> Result<()> {
    let stage = root.join("tmp/busybox-stage");
    remove_tree(&stage)?;
    for d in [
        "bin", "dev", "proc", "sys", "root", "etc", "lib64", "usr/lib",
    ] {
        fs::create_dir_all(stage.join(d))?;
    }
    fs::copy(root.join("usr/bin/busybox"), stage.join("bin/busybox"))?;
    let ldd = chroot_env(root, ["ldd", "/usr/bin/busybox"], CHROOT_ENV)?;
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let dest = stage.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().expect("absolute"))?;
        run(
            "cp",
            [
                "-L".as_ref(),
                root.join(lib.trim_start_matches('/')).as_os_str(),
                dest.as_os_str(),
            ],
        )?;
    }
    for applet in ["sh", "mount", "ls", "cat", "switch_root"] {
        let link = stage.join("bin").join(applet);
        if hardlinks {
            fs::hard_link(stage.join("bin/busybox"), &link)?;
        } else {
            std::os::unix::fs::symlink("busybox", &link)?;
        }
    }
    fs::write(
        stage.join("init"),
        "#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\necho 'busybox initramfs'\nexec sh\n",
    )?;
    run("chmod", ["0755".as_ref(), stage.join("init").as_os_str()])?;
    let script = format!(
        "cd '{}' && find . | LC_ALL=C sort | cpio --quiet -o -H {format} | gzip -9n > '{}'",
        stage.display(),
        root.join(out.trim_start_matches('/')).display()
    );
    run("sh", ["-c", &script])?;
    remove_tree(&stage)
}

/// An image made by Debian's mkinitramfs (MODULES=list, gzip) in a private
/// copy of the initramfs-tools root after `edit` changed that copy: what a
/// target's own `update-initramfs` builds once something (a hook, a
/// configuration file) was installed in it. Returns the image and the root
/// copy, which is unmounted and removed when it drops.
pub fn mkinitramfs_after(
    edit: impl FnOnce(&Path) -> Result<()>,
) -> Result<(Vec<u8>, crate::RootCopy)> {
    let mut copy = crate::RootCopy::new(Flavour::InitramfsTools)?;
    let work = copy.path();
    edit(&work)?;
    let kver = kernel_version(&work)?;
    copy.mount()?;
    mkinitramfs(
        &work,
        &kver,
        Compression::Gzip,
        false,
        false,
        "/tmp/after.img",
    )?;
    let img = fs::read(work.join("tmp/after.img")).context("reading mkinitramfs's image")?;
    Ok((img, copy))
}

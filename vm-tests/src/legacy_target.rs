//! The seed's own situation (issue 6 item 6): a target in CentOS 5's
//! default layout, built from Debian pieces because no CentOS package can be
//! fetched here.
//!
//! - DOS label; vda1 `/boot` (ext3, label `/boot`, mounted by `LABEL=/boot`
//!   as anaconda wrote it) holding the kernel, `initrd-KVER.img` and
//!   `grub/grub.conf` (with `menu.lst` a link to it) in anaconda's style:
//!   `title`, `root (hd0,0)`, `kernel /vmlinuz-KVER ro
//!   root=/dev/VolGroup00/LogVol00 ...`, `initrd /initrd-KVER.img`.
//! - vda2 the PV of `VolGroup00`: `LogVol00` the root (ext3), `LogVol01` swap.
//! - The root is the Debian 12 root of [`Variant::NoCryptsetupInitramfs`]
//!   reshaped: no dpkg database, no initramfs-tools, no GRUB 2 tools, an
//!   `/etc/redhat-release`, and `/sbin/nash` and `/sbin/mkinitrd` — the
//!   generator luksify detects. Both are stand-ins (`legacy_target/nash`,
//!   `legacy_target/mkinitrd`): nash is a busybox sh script that runs a nash
//!   /init's commands; mkinitrd refuses to run (luksify must not need it).
//! - The initrd is built here the way CentOS 5's mkinitrd laid it out: a
//!   `#!/bin/nash` /init (`legacy_target/init`: /dev on a tmpfs, `mkblkdevs`
//!   before and after the drivers, `lvm vgchange -ay VolGroup00`,
//!   `mkrootdev`, `switchroot`), the modules flat in /lib, lvm and its
//!   libraries from the target root, busybox (static, from the host) for the
//!   stand-in nash and as /bin/sh. No udev: no /dev/disk/by-uuid.
//! - GRUB legacy itself in the MBR: Debian's grub-legacy package (GRUB
//!   0.97, the version CentOS 5 shipped) gives stage1, e2fs_stage1_5 and
//!   stage2 (copied into /boot/grub as anaconda's install left them) and its
//!   grub shell, which runs on the host (a 32-bit program: libc6-i386) with
//!   the disk image as (hd0) and does `root (hd0,0)`, `setup (hd0)`: stage1
//!   in the MBR, stage1.5 embedded after it, reading /grub/menu.lst (the link
//!   to grub.conf). SeaBIOS boots the disk; GRUB reads grub.conf's default
//!   stanza and loads its kernel and initrd. [`LegacyBoot::read`] reads the
//!   same stanza and files on the host, for the test's assertions.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use luksify::initrd::elf::{self, inroot};
use luksify::sys::process::Cmd;

use crate::guest_kernel::{GuestKernel, parse_show_depends};
use crate::host_closure::find_program;
use crate::target_disk::{self, SUMS_PATH, Variant};
use crate::{cache, cpio, debian_pkgs, disk};

pub const VG: &str = "VolGroup00";
pub const ROOT_LV: &str = "LogVol00";
pub const SWAP_LV: &str = "LogVol01";
pub const BOOT_UUID: &str = "0b0a1e5c-0000-4000-8000-00000000c500";
pub const ROOT_UUID: &str = "0b0a1e5c-0000-4000-8000-00000000c5f0";
/// The sizes of the seed target's layout: the disk is laid out by
/// [`target_disk::lay_out_in_guest`].
pub const BOOT_MIB: u64 = target_disk::BOOT_MIB;
pub const SWAP_MIB: u64 = target_disk::SWAP_MIB;
/// Unallocated in the VG: room for the LUKS2 header spare-return needs.
pub const FREE_MIB: u64 = target_disk::FREE_MIB;
/// Bump when the layout or the scripts change.
const RECIPE: &str = "vm-legacy-target v2";

const NASH: &str = include_str!("legacy_target/nash");
const INIT: &str = include_str!("legacy_target/init");
const MKINITRD: &str = include_str!("legacy_target/mkinitrd");
const LAYOUT: &str = include_str!("legacy_target/layout.sh");
const LVM_CONF: &str = include_str!("live_env/lvm.conf");

/// What the initrd's /init loads, in this order with their dependencies:
/// the storage drivers, device-mapper, the root's file system.
const INITRD_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "dm-mod", "ext4"];

/// The files of the Debian root that make it a Debian system luksify would
/// treat as such (package database, generators, GRUB 2 tools).
const NOT_ON_CENTOS5: &[&str] = &[
    "var/lib/dpkg",
    "usr/sbin/mkinitramfs",
    "usr/sbin/update-initramfs",
    "usr/bin/lsinitramfs",
    "usr/bin/unmkinitramfs",
    "etc/initramfs-tools",
    "usr/share/initramfs-tools",
    "usr/sbin/update-grub",
    "usr/sbin/update-grub2",
    "usr/sbin/grub-mkconfig",
    "etc/default/grub.d",
    "etc/kernel",
    "boot/grub",
    "etc/os-release",
    "usr/lib/os-release",
];

/// The cached legacy disk.
#[derive(Debug, Clone)]
pub struct LegacyDisk {
    pub image: PathBuf,
    pub root_mib: u64,
    /// The kernel in its /boot.
    pub kver: String,
}

impl LegacyDisk {
    /// A sparse copy at `dest`, for a test to change.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        Cmd::new("cp")
            .arg("--sparse=always")
            .arg(&self.image)
            .arg(dest)
            .run()
            .context("copying the legacy target disk image")?;
        Ok(())
    }
}

/// boot-check with the legacy names, doing first what CentOS 5's
/// rc.sysinit does on the fresh /dev udev gives it: LVM's nodes. It also
/// reports the kernel command line GRUB passed (the kernel's own early lines
/// on the serial console can lose characters).
fn boot_check() -> String {
    target_disk::BOOT_CHECK
        .replace("vg0-swap", &format!("{VG}-{SWAP_LV}"))
        .replacen(
            "say \"start\"\n",
            &format!(
                "dmsetup mknodes >/dev/null 2>&1\n\
                 vgchange -q -ay --sysinit --noudevsync {VG} >/dev/null 2>&1\n\
                 vgmknodes {VG} >/dev/null 2>&1\n\
                 say \"start\"\n\
                 say \"cmdline $(cat /proc/cmdline)\"\n"
            ),
            1,
        )
}

/// anaconda's grub.conf for a separate /boot.
pub fn grub_conf(kver: &str) -> String {
    format!(
        "# grub.conf generated by anaconda\n\
         #\n\
         # Note that you do not have to rerun grub after making changes to this file\n\
         # NOTICE:  You have a /boot partition.  This means that\n\
         #          all kernel and initrd paths are relative to /boot/, eg.\n\
         #          root (hd0,0)\n\
         #          kernel /vmlinuz-version ro root=/dev/{VG}/{ROOT_LV}\n\
         #          initrd /initrd-version.img\n\
         #boot=/dev/vda\n\
         default=0\n\
         timeout=5\n\
         hiddenmenu\n\
         title CentOS ({kver})\n\
         \troot (hd0,0)\n\
         \tkernel /vmlinuz-{kver} ro root=/dev/{VG}/{ROOT_LV} console=ttyS0 init=/usr/local/sbin/boot-check panic=-1\n\
         \tinitrd /initrd-{kver}.img\n"
    )
}

fn fstab() -> String {
    format!(
        "/dev/{VG}/{ROOT_LV}        /                       ext3    defaults        1 1\n\
         LABEL=/boot             /boot                   ext3    defaults        1 2\n\
         tmpfs                   /dev/shm                tmpfs   defaults        0 0\n\
         devpts                  /dev/pts                devpts  gid=5,mode=620  0 0\n\
         sysfs                   /sys                    sysfs   defaults        0 0\n\
         proc                    /proc                   proc    defaults        0 0\n\
         /dev/{VG}/{SWAP_LV}        swap                    swap    defaults        0 0\n"
    )
}

/// Builds (or finds in the cache) the legacy target disk. `kernel` runs the
/// live guest that lays the disk out; the target keeps its own kernel.
pub fn build(kernel: &GuestKernel) -> Result<LegacyDisk> {
    let root = target_disk::root_variant(Variant::NoCryptsetupInitramfs)?;
    let root_name = root.display().to_string();
    let check = boot_check();
    let busybox = disk::sha256_file(&find_program("busybox")?)?;
    let grub = grub_legacy()?;
    let grub_name = grub.display().to_string();
    let key = cache::key_of(&[
        RECIPE.as_bytes(),
        root_name.as_bytes(),
        NASH.as_bytes(),
        INIT.as_bytes(),
        MKINITRD.as_bytes(),
        LAYOUT.as_bytes(),
        LVM_CONF.as_bytes(),
        check.as_bytes(),
        busybox.as_bytes(),
        grub_name.as_bytes(),
    ]);
    let dir = cache::entry("vm-legacy-disk", &key, |dir| {
        build_into(kernel, &root, &grub, dir)
    })?;
    let read = |f: &str| -> Result<String> {
        Ok(fs::read_to_string(dir.join(f))
            .with_context(|| format!("reading {f} of the cached legacy disk"))?
            .trim()
            .to_string())
    };
    Ok(LegacyDisk {
        image: dir.join("target.img"),
        root_mib: read("root-mib")?.parse()?,
        kver: read("kver")?,
    })
}

fn write_file(root: &Path, path: &str, data: &[u8], mode: u32) -> Result<()> {
    let p = root.join(path.trim_start_matches('/'));
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Debian's grub-legacy package, unpacked (cached).
fn grub_legacy() -> Result<PathBuf> {
    let pkg = debian_pkgs::resolve("grub-legacy")?;
    debian_pkgs::unpacked(&pkg, "", |_| Ok(()))
}

/// GRUB legacy's files for an ext2/3 /boot, as its `setup` expects them.
const GRUB_STAGES: &[&str] = &["stage1", "e2fs_stage1_5", "stage2"];

/// Turns the Debian root into the CentOS 5 shape; returns its kernel version.
fn reshape(root: &Path, grub: &Path) -> Result<String> {
    for p in NOT_ON_CENTOS5 {
        let host = root.join(p);
        if host.is_dir() && !host.is_symlink() {
            fs::remove_dir_all(&host)?;
        } else if host.symlink_metadata().is_ok() {
            fs::remove_file(&host)?;
        }
    }
    for e in fs::read_dir(root.join("boot"))? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with("initrd.img-") {
            fs::remove_file(e.path())?;
        }
    }
    write_file(root, "/etc/fstab", fstab().as_bytes(), 0o644)?;
    write_file(
        root,
        "/etc/redhat-release",
        b"CentOS release 5 (Final) (luksify test stand-in: Debian 12 userland)\n",
        0o644,
    )?;
    write_file(root, "/usr/sbin/nash", NASH.as_bytes(), 0o755)?;
    write_file(root, "/usr/sbin/mkinitrd", MKINITRD.as_bytes(), 0o755)?;
    write_file(
        root,
        "/usr/local/sbin/boot-check",
        boot_check().as_bytes(),
        0o755,
    )?;
    if !root.join(SUMS_PATH.trim_start_matches('/')).is_file() {
        bail!("the Debian root has no {SUMS_PATH}");
    }
    let kvers: Vec<String> = fs::read_dir(root.join("lib/modules"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let [kver] = kvers.as_slice() else {
        bail!("expected one kernel in the Debian root, found {kvers:?}");
    };
    if !root.join(format!("boot/vmlinuz-{kver}")).is_file() {
        bail!("the Debian root has no /boot/vmlinuz-{kver}");
    }
    let boot = root.join("boot");
    write_file(
        root,
        "/boot/grub/grub.conf",
        grub_conf(kver).as_bytes(),
        0o600,
    )?;
    symlink("./grub.conf", boot.join("grub/menu.lst"))?;
    for stage in GRUB_STAGES {
        let data = fs::read(grub.join("usr/lib/grub/x86_64-pc").join(stage))
            .with_context(|| format!("reading grub-legacy's {stage}"))?;
        write_file(root, &format!("/boot/grub/{stage}"), &data, 0o644)?;
    }
    symlink("../boot/grub/grub.conf", root.join("etc/grub.conf"))?;
    build_initrd(root, kver, &boot.join(format!("initrd-{kver}.img")))?;
    Ok(kver.clone())
}

/// The initrd CentOS 5's mkinitrd would have written for this root.
pub fn build_initrd(root: &Path, kver: &str, out: &Path) -> Result<()> {
    let t = tempfile::tempdir()?;
    let d = t.path().join("initrd");
    for dir in [
        "bin",
        "sbin",
        "lib",
        "dev",
        "proc",
        "sys",
        "sysroot",
        "tmp",
        "etc/lvm",
        "run/lvm",
        "run/lock/lvm",
        "var/lock",
    ] {
        fs::create_dir_all(d.join(dir))?;
    }
    fs::copy(find_program("busybox")?, d.join("bin/busybox"))?;
    fs::set_permissions(d.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    for applet in [
        "sh",
        "mount",
        "umount",
        "mkdir",
        "mknod",
        "insmod",
        "switch_root",
        "sleep",
        "cat",
        "sed",
        "readlink",
    ] {
        symlink("busybox", d.join("bin").join(applet))?;
    }
    write_file(&d, "/bin/nash", NASH.as_bytes(), 0o755)?;
    write_file(&d, "/etc/lvm/lvm.conf", LVM_CONF.as_bytes(), 0o644)?;

    // lvm and its libraries from the target, where mkinitrd takes them.
    let closure = elf::closure(root, &[Path::new("/sbin/lvm")])
        .context("finding lvm's libraries in the target root")?;
    for f in &closure.files {
        let real = d.join(f.real.strip_prefix("/")?);
        if !real.exists() {
            fs::create_dir_all(real.parent().context("no parent")?)?;
            fs::copy(inroot::host_path(root, &f.real), &real)?;
        }
        if f.path != f.real {
            let link = d.join(f.path.strip_prefix("/")?);
            if link.symlink_metadata().is_err() {
                fs::create_dir_all(link.parent().context("no parent")?)?;
                symlink(&f.real, &link)?;
            }
        }
    }

    // The modules flat in /lib, loaded one by one, as mkinitrd wrote them.
    let mut lines = String::new();
    let mut loaded: Vec<String> = Vec::new();
    for m in INITRD_MODULES {
        let text = Cmd::new("modprobe")
            .arg("-d")
            .arg(root)
            .args(["-S", kver, "--show-depends", m])
            .run()
            .with_context(|| format!("finding module {m} in the target's {kver}"))?
            .stdout_str();
        for path in parse_show_depends(&text) {
            let name = path
                .file_name()
                .context("module without a name")?
                .to_string_lossy()
                .into_owned();
            if loaded.contains(&name) {
                continue;
            }
            fs::copy(&path, d.join("lib").join(&name))?;
            lines.push_str(&format!(
                "echo \"Loading {name} module\"\ninsmod /lib/{name}\n"
            ));
            loaded.push(name);
        }
    }
    let init = INIT.replace("@MODULES@\n", &lines);
    write_file(&d, "/init", init.as_bytes(), 0o755)?;
    cpio::pack_dir_gzip(&d, out)
}

/// GRUB legacy's own shell installs it into `image`'s MBR, reading /boot
/// (the first partition) from the image file as BIOS disk (hd0).
fn install_grub(grub: &Path, image: &Path) -> Result<()> {
    let t = tempfile::tempdir()?;
    let map = t.path().join("device.map");
    fs::write(&map, format!("(hd0) {}\n", image.display()))?;
    let out = Cmd::new(grub.join("usr/sbin/grub"))
        .args(["--batch", "--no-floppy", "--no-curses"])
        .arg(format!("--device-map={}", map.display()))
        .stdin_bytes(b"root (hd0,0)\nsetup (hd0)\nquit\n".to_vec())
        .run()
        .context("running grub-legacy's shell (needs libc6-i386, see xtask/apt/vm-legacy.txt)")?
        .stdout_str();
    if !out.contains("Done.") || out.contains("Error") {
        bail!("GRUB legacy's setup (hd0) failed:\n{out}");
    }
    Ok(())
}

fn build_into(kernel: &GuestKernel, root: &Path, grub: &Path, dir: &Path) -> Result<()> {
    let work = tempfile::tempdir_in(dir)?;
    let staging = work.path().join("root");
    Cmd::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(root)
        .arg(&staging)
        .run()?;
    let kver = reshape(&staging, grub)?;
    let boot_staging = work.path().join("boot");
    Cmd::new("mv")
        .arg(staging.join("boot"))
        .arg(&boot_staging)
        .run()?;
    fs::create_dir(staging.join("boot"))?;

    let root_used = target_disk::du_mib(&staging)?;
    let root_mib = (root_used * 13 / 10 + 128).div_ceil(4) * 4;
    let boot_img = work.path().join("boot.img");
    let root_img = work.path().join("root.img");
    target_disk::mke2fs_typed(
        "ext3",
        &boot_staging,
        &boot_img,
        BOOT_UUID,
        "/boot",
        BOOT_MIB,
    )?;
    target_disk::mke2fs_typed("ext3", &staging, &root_img, ROOT_UUID, "/", root_mib)?;
    target_disk::drop_dir(&staging)?;
    target_disk::drop_dir(&boot_staging)?;

    let image = dir.join("target.img");
    target_disk::lay_out_in_guest(
        kernel,
        "legacy-disk-build",
        &image,
        [&boot_img, &root_img],
        root_mib,
        target_disk::Script {
            text: LAYOUT,
            extra_env: "",
            table_mib: 0,
        },
    )?;
    install_grub(grub, &image)?;
    fs::write(dir.join("root-mib"), format!("{root_mib}\n"))?;
    fs::write(dir.join("kver"), format!("{kver}\n"))?;
    Ok(())
}

/// One `title` entry of a GRUB legacy configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub title: String,
    /// `root (hd0,0)`: the device GRUB reads the kernel from.
    pub root: String,
    /// The kernel's path on that device, and its arguments.
    pub kernel: String,
    pub args: String,
    pub initrd: Option<String>,
}

/// The default stanza (`default=N`, `default N`, first when absent) of a
/// grub.conf/menu.lst.
pub fn default_stanza(conf: &str) -> Result<Stanza> {
    let mut default = 0usize;
    let mut entries: Vec<Stanza> = Vec::new();
    for line in conf.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let wlen = l
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(l.len());
        let (word, rest) = l.split_at(wlen);
        let arg = rest
            .trim_start_matches(|c: char| c.is_whitespace() || c == '=')
            .trim_end();
        match word {
            "default" if entries.is_empty() => {
                default = arg.parse().with_context(|| format!("`{l}`"))?;
            }
            "title" => entries.push(Stanza {
                title: arg.to_string(),
                root: String::new(),
                kernel: String::new(),
                args: String::new(),
                initrd: None,
            }),
            "root" | "kernel" | "initrd" => {
                let e = entries
                    .last_mut()
                    .with_context(|| format!("`{l}` before any title"))?;
                match word {
                    "root" => e.root = arg.to_string(),
                    "kernel" => {
                        let (k, a) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
                        e.kernel = k.to_string();
                        e.args = a.trim().to_string();
                    }
                    _ => e.initrd = Some(arg.to_string()),
                }
            }
            _ => {}
        }
    }
    let n = entries.len();
    entries
        .into_iter()
        .nth(default)
        .with_context(|| format!("default={default}, but grub.conf has {n} entries"))
}

/// Reads a file of the disk image's first partition (its /boot, ext2/3/4)
/// on the host with debugfs: `path` as GRUB sees it from `(hd0,0)`.
fn boot_file(part: &Path, path: &str, out: &Path) -> Result<()> {
    Cmd::new("debugfs")
        .args(["-R", &format!("dump -p {path} {}", out.display())])
        .arg(part)
        .run()
        .with_context(|| format!("reading {path} from the disk's /boot"))?;
    if !out.is_file() || fs::metadata(out)?.len() == 0 {
        bail!("the disk's /boot has no {path}");
    }
    Ok(())
}

/// What GRUB legacy would load from `disk`: grub.conf, its default stanza,
/// the kernel and initrd that stanza names (copied out of /boot).
pub struct LegacyBoot {
    pub grub_conf: String,
    pub stanza: Stanza,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    _dir: tempfile::TempDir,
}

impl LegacyBoot {
    pub fn read(disk: &Path) -> Result<LegacyBoot> {
        let dir = tempfile::tempdir()?;
        let part = dir.path().join("boot.part");
        // vda1 starts at 1 MiB (sfdisk's alignment) and is BOOT_MIB long.
        Cmd::new("dd")
            .arg(format!("if={}", disk.display()))
            .arg(format!("of={}", part.display()))
            .args(["bs=1M", "skip=1", &format!("count={BOOT_MIB}")])
            .args(["conv=sparse", "status=none"])
            .run()
            .context("copying the disk's first partition")?;
        let conf_path = dir.path().join("grub.conf");
        // Red Hat's GRUB reads grub.conf (menu.lst links to it).
        boot_file(&part, "/grub/grub.conf", &conf_path)?;
        let grub_conf = fs::read_to_string(&conf_path)?;
        let stanza = default_stanza(&grub_conf)?;
        if stanza.root != "(hd0,0)" {
            bail!(
                "the default stanza's root is {}, not (hd0,0) (the /boot partition)",
                stanza.root
            );
        }
        let kernel = dir.path().join("kernel");
        boot_file(&part, &stanza.kernel, &kernel)?;
        let initrd_name = stanza
            .initrd
            .clone()
            .context("the default stanza has no initrd line")?;
        let initrd = dir.path().join("initrd");
        boot_file(&part, &initrd_name, &initrd)?;
        fs::remove_file(&part)?;
        Ok(LegacyBoot {
            grub_conf,
            stanza,
            kernel,
            initrd,
            _dir: dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_stanza_is_read_as_grub_legacy_reads_it() {
        let s = default_stanza(&grub_conf("2.6.18-53.el5")).unwrap();
        assert_eq!(s.title, "CentOS (2.6.18-53.el5)");
        assert_eq!(s.root, "(hd0,0)");
        assert_eq!(s.kernel, "/vmlinuz-2.6.18-53.el5");
        assert!(
            s.args
                .starts_with("ro root=/dev/VolGroup00/LogVol00 console=ttyS0"),
            "{}",
            s.args
        );
        assert_eq!(s.initrd.as_deref(), Some("/initrd-2.6.18-53.el5.img"));
        // luksify's clone comes first and default stays 0; default 1 picks
        // the second entry.
        let two = "default 1\ntitle A\n root (hd0,0)\n kernel /a x=1\ntitle B\n\
                   root (hd0,0)\n kernel /b y=2\n initrd /ib\n";
        let b = default_stanza(two).unwrap();
        assert_eq!((b.kernel.as_str(), b.args.as_str()), ("/b", "y=2"));
        assert!(default_stanza("default=3\ntitle A\n").is_err());
    }

    #[test]
    fn boot_check_uses_the_legacy_names() {
        let c = boot_check();
        assert!(c.contains("swapon /dev/mapper/VolGroup00-LogVol01"), "{c}");
        assert!(!c.contains("vg0"), "{c}");
        assert!(c.contains("vgmknodes VolGroup00"), "{c}");
        assert!(c.contains("say \"cmdline $(cat /proc/cmdline)\""), "{c}");
    }
}

//! "The live CD": the guest kernel plus an initramfs holding busybox, lvm2,
//! cryptsetup, the util-linux and e2fsprogs tools, the kernel modules for
//! virtio disks, ext4, device-mapper and the crypto luksify uses, and a root
//! shell on ttyS0. Built from the host's installed programs, cached by the
//! digest of everything that goes in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use luksify::sys::process::Cmd;

use crate::guest_kernel::{GuestKernel, LIVE_MODULES};
use crate::host_closure::{add_program, add_program_as, add_usr_merge_links, find_program};
use crate::image_tree::ImageTree;
use crate::{cache, cpio, logs};

/// Programs taken from the host (with their libraries), by name.
pub const TOOLS: &[&str] = &[
    "dash",
    "lvm",
    "dmsetup",
    "cryptsetup",
    "blkid",
    "lsblk",
    "findmnt",
    "sfdisk",
    "wipefs",
    "mkswap",
    "swapon",
    "mke2fs",
    "mkfs.ext4",
    "e2fsck",
    "fsck.ext4",
    "tune2fs",
    "dumpe2fs",
    "resize2fs",
    // kmod's, not busybox's: luksify's initramfs injection needs the binary
    // module index (modules.dep.bin) only kmod's depmod writes.
    "depmod",
];

const INIT: &str = include_str!("live_env/init.sh");
const PROFILE: &str = include_str!("live_env/profile");
const LVM_CONF: &str = include_str!("live_env/lvm.conf");

/// The shell prompt of the live environment, as a regex.
pub const PROMPT: &str = r"live# ";

/// A bootable live environment.
#[derive(Debug, Clone)]
pub struct LiveEnv {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Kernel command line to boot it with.
    pub append: String,
}

/// Builds (or finds in the cache) the live environment for `kernel`, with
/// `extra_programs` (e.g. a freshly built `luksify`) copied to /usr/bin.
///
/// The base image is cached by its inputs; extra programs change with
/// every build, so they go into a small second archive appended to the base
/// one (the kernel unpacks concatenated archives in order), written under
/// the target directory rather than the cache.
pub fn build(kernel: &GuestKernel, extra_programs: &[PathBuf]) -> Result<LiveEnv> {
    let base_tree = tree(kernel)?;
    let key = base_tree.digest()?;
    let dir = cache::entry("live-env", &key, |dir| {
        let staging = tempfile::tempdir_in(dir)?;
        base_tree.write_to(staging.path())?;
        cpio::pack_dir_gzip(staging.path(), &dir.join("initrd.gz"))
    })?;
    let base = dir.join("initrd.gz");
    let initrd = if extra_programs.is_empty() {
        base
    } else {
        with_extras(&base, &key, &base_tree, extra_programs)?
    };
    Ok(LiveEnv {
        kernel: kernel.vmlinux(),
        initrd,
        append: "console=ttyS0 panic=-1 loglevel=4".into(),
    })
}

/// `base` followed by an archive of `programs` and whatever libraries of
/// theirs the base image lacks.
fn with_extras(
    base: &Path,
    base_key: &str,
    base_tree: &ImageTree,
    programs: &[PathBuf],
) -> Result<PathBuf> {
    let mut extra = ImageTree::new();
    for p in programs {
        let name = p
            .file_name()
            .with_context(|| format!("extra program {} has no file name", p.display()))?;
        add_program_as(&mut extra, p, &Path::new("usr/bin").join(name))?;
    }
    let extra = extra.without(base_tree);
    let out_dir = logs::target_dir().join("vm-initrd");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join(format!("live-{base_key}-{}.gz", extra.digest()?));
    if out.is_file() {
        return Ok(out);
    }
    let work = tempfile::tempdir_in(&out_dir)?;
    let staging = work.path().join("tree");
    std::fs::create_dir(&staging)?;
    extra.write_to(&staging)?;
    let extra_gz = work.path().join("extra.gz");
    cpio::pack_dir_gzip(&staging, &extra_gz)?;
    let mut joined = std::fs::read(base)?;
    joined.extend(std::fs::read(&extra_gz)?);
    luksify::sys::atomic_file::write_atomic(&out, &joined, 0o644)?;
    Ok(out)
}

/// What the base initramfs contains.
pub fn tree(kernel: &GuestKernel) -> Result<ImageTree> {
    let mut t = ImageTree::new();
    add_usr_merge_links(&mut t)?;
    add_busybox(&mut t)?;
    for name in TOOLS {
        add_program(&mut t, &find_program(name)?)?;
    }
    add_lvm_command_links(&mut t)?;
    // Debian's busybox-static runs its own applets before anything on PATH
    // (FEATURE_SH_STANDALONE), so its sh would call its own blkid and mke2fs.
    // dash runs what PATH finds.
    t.add_symlink("usr/bin/sh", "dash")?;
    // glibc loads libgcc_s at run time (thread cancellation), invisible to ldd.
    for lib in ["/lib/x86_64-linux-gnu/libgcc_s.so.1"] {
        if Path::new(lib).exists() {
            add_program(&mut t, Path::new(lib))?;
        }
    }

    let mut modules = String::new();
    for m in kernel.load_order(LIVE_MODULES)? {
        let rel = Path::new("usr/lib/modules")
            .join(&kernel.release)
            .join(kernel.relative_module_path(&m)?);
        t.add_file(&rel, &m)?;
        modules.push_str(&format!("/{}\n", rel.display()));
    }
    t.add_bytes("etc/luksify-live/modules", modules, 0o644)?;

    t.add_bytes("init", INIT, 0o755)?;
    t.add_bytes("etc/profile", PROFILE, 0o644)?;
    t.add_bytes("etc/lvm/lvm.conf", LVM_CONF, 0o644)?;
    t.add_bytes("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)?;
    t.add_bytes("etc/group", "root:x:0:\ndisk:x:6:\n", 0o644)?;
    t.add_bytes("etc/fstab", "", 0o644)?;
    if Path::new("/etc/mke2fs.conf").exists() {
        t.add_file("etc/mke2fs.conf", "/etc/mke2fs.conf")?;
    }
    for d in [
        "root",
        "tmp",
        "mnt",
        "run",
        "proc",
        "sys",
        "dev",
        "etc/lvm/backup",
        "etc/lvm/archive",
    ] {
        t.add_dir(d)?;
    }
    Ok(t)
}

/// busybox-static and a link for each applet the real tools don't provide.
fn add_busybox(t: &mut ImageTree) -> Result<()> {
    let bb = find_program("busybox")?;
    t.add_file("usr/bin/busybox", &bb)?;
    let list = Cmd::new(&bb)
        .arg("--list-full")
        .run()
        .context("listing busybox applets")?
        .stdout_str();
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let name = Path::new(applet).file_name().context("empty applet name")?;
        if TOOLS.iter().any(|t| *t == name) {
            continue;
        }
        // All applets live in usr/bin: the usr-merge links make /bin, /sbin work.
        let dest = Path::new("usr/bin").join(name);
        if !t.contains(&dest) && name != "busybox" {
            t.add_symlink(dest, "busybox")?;
        }
    }
    Ok(())
}

/// `pvcreate`, `vgextend`, ... are symlinks to `lvm` on the host; copy them.
fn add_lvm_command_links(t: &mut ImageTree) -> Result<()> {
    let lvm = find_program("lvm")?;
    let dir = lvm.parent().context("lvm has no directory")?;
    let canon_dir = std::fs::canonicalize(dir)?;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if let Ok(target) = std::fs::read_link(e.path())
            && target == Path::new("lvm")
        {
            t.add_symlink(canon_dir.join(e.file_name()), "lvm")?;
        }
    }
    Ok(())
}

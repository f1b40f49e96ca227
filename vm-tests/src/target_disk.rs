//! The VM target disk: a Debian 12 install in the seed layout (DOS label,
//! vda1 /boot ext4, vda2 the PV of vg0 holding LVs root and swap), GRUB in
//! the MBR, cryptsetup-initramfs installed (or, as [`Variant::NoCryptsetupInitramfs`],
//! only the cryptsetup program; [`Variant::Gpt`] is the same install on a
//! GPT label), and `boot-check` as init: it
//! reports the root device, device-mapper tables, swap and the sha256 sums
//! of a known file tree on the console, then powers off.
//!
//! The file systems are made on the host (`mke2fs -d`, no mount needed); the
//! partitioning, LVM, GRUB install and grub.cfg need a kernel with
//! device-mapper, so they are done inside a live guest. The finished image
//! is cached by its inputs; tests copy it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use luksify::sys::process::Cmd;
use sha2::{Digest, Sha256};

use crate::guest_kernel::GuestKernel;
use crate::live_env::{self, PROMPT};
use crate::qemu::GuestBuilder;
use crate::{cache, disk};

pub const VG: &str = "vg0";
pub const BOOT_UUID: &str = "0b0a1e5c-0000-4000-8000-000000000b00";
pub const ROOT_UUID: &str = "0b0a1e5c-0000-4000-8000-0000000000f0";
/// Where boot-check finds the sums the host recorded.
pub const SUMS_PATH: &str = "/var/lib/boot-check/tree.sha256";
pub const BOOT_MIB: u64 = 256;
pub const SWAP_MIB: u64 = 64;
/// Unallocated space left in the VG.
pub const FREE_MIB: u64 = 32;
/// Bump when the layout or the scripts run in the guest change.
const RECIPE: &str = "vm-target-disk v2";

pub(crate) const BOOT_CHECK: &str = include_str!("target_disk/boot-check.sh");
const LAYOUT: &str = include_str!("target_disk/layout.sh");
const LAYOUT_GPT: &str = include_str!("target_disk/layout-gpt.sh");

const T: Duration = Duration::from_secs(300);

/// Which Debian packages the target carries besides the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// cryptsetup-initramfs installed: the target's own update-initramfs
    /// can unlock LUKS once crypttab names the container.
    WithCryptsetupInitramfs,
    /// Only cryptsetup-bin: initramfs-tools cannot unlock LUKS, so luksify
    /// adds the unlock to the image itself (issue 5's premise).
    NoCryptsetupInitramfs,
    /// dracut instead of initramfs-tools (issue 6 item 1): its crypt and lvm
    /// modules can unlock LUKS given crypttab or rd.luks.uuid.
    Dracut,
    /// [`Variant::WithCryptsetupInitramfs`]'s Debian root (the same cached
    /// root) on a GPT label: vda1 a 1 MiB BIOS boot partition for GRUB's
    /// core, vda2 /boot, vda3 the PV. SeaBIOS boots it through the
    /// protective MBR's boot code.
    Gpt,
}

impl Variant {
    fn packages(self) -> &'static [&'static str] {
        match self {
            Variant::WithCryptsetupInitramfs | Variant::Gpt => testkit::VM_TARGET_PACKAGES,
            Variant::NoCryptsetupInitramfs => testkit::VM_TARGET_PACKAGES_NO_CRYPTSETUP_INITRAMFS,
            Variant::Dracut => testkit::VM_TARGET_PACKAGES_DRACUT,
        }
    }

    /// Part of the disk's cache key; empty for the first variant, so its
    /// existing cache entries stay valid.
    fn key(self) -> &'static str {
        match self {
            Variant::WithCryptsetupInitramfs => "",
            Variant::NoCryptsetupInitramfs => "no-cryptsetup-initramfs",
            Variant::Dracut => "dracut",
            Variant::Gpt => "gpt",
        }
    }

    /// The script that partitions the disk in the live guest.
    fn layout(self) -> &'static str {
        match self {
            Variant::Gpt => LAYOUT_GPT,
            _ => LAYOUT,
        }
    }

    /// MiB the partition table takes besides the 1 MiB gap in front: GPT's
    /// BIOS boot partition and its backup table at the end.
    fn table_mib(self) -> u64 {
        match self {
            Variant::Gpt => 2,
            _ => 0,
        }
    }

    /// The partition numbers of /boot and of the PV.
    pub fn partitions(self) -> (u32, u32) {
        match self {
            Variant::Gpt => (2, 3),
            _ => (1, 2),
        }
    }

    /// Bytes from the disk's start to the end of /boot: the label, what
    /// precedes /boot (the gap, GPT's BIOS boot partition) and /boot.
    pub fn boot_end_bytes(self) -> u64 {
        let bios = if self == Variant::Gpt { 1 } else { 0 };
        (1 + bios + BOOT_MIB) << 20
    }
}

/// A finished target disk image in the cache.
#[derive(Debug, Clone)]
pub struct TargetDisk {
    /// The cached image; copy it before booting (see [`TargetDisk::copy_to`]).
    pub image: PathBuf,
    /// Size of the root LV in MiB.
    pub root_mib: u64,
}

impl TargetDisk {
    /// A sparse copy at `dest`, for a test to change.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        Cmd::new("cp")
            .arg("--sparse=always")
            .arg(&self.image)
            .arg(dest)
            .run()
            .context("copying the target disk image")?;
        Ok(())
    }
}

/// The known file tree (path, content): small text, a file with a space in
/// its name, and a few MiB of deterministic pseudo-random data so moved
/// extents are really checked.
pub fn known_tree() -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (
            "/srv/tree/hello.txt".to_string(),
            b"hello, luksify\n".to_vec(),
        ),
        (
            "/srv/tree/with space.txt".to_string(),
            b"names survive\n".to_vec(),
        ),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..4 {
        let mut data = Vec::with_capacity(1 << 20);
        while data.len() < 1 << 20 {
            // xorshift64*: fast and fixed, no dependency.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            data.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        files.push((format!("/srv/tree/data/block-{i}.bin"), data));
    }
    files
}

/// `sha256sum` lines for [`known_tree`].
pub fn known_sums() -> String {
    known_tree()
        .iter()
        .map(|(p, d)| format!("{}  {p}\n", crate::cache::hex(&Sha256::digest(d))))
        .collect()
}

/// The dracut target's own configuration, as a sysadmin would keep dracut
/// fast. hostonly="no" is Debian's default, and the image is first built in a
/// chroot on the build host, where host-only detection would see the host's
/// disks. `drivers` names the guest's drivers instead of every storage
/// driver a generic image carries (a generic image takes minutes under TCG);
/// dracut's dm, lvm and crypt modules still add dm-mod, dm-crypt and the
/// ciphers. gzip rather than zstd -15, no microcode: seconds, not minutes.
const DRACUT_CONF: &[u8] = b"hostonly=\"no\"\n\
drivers+=\" virtio_pci virtio_blk ext4 crc32c_generic \"\n\
compress=\"gzip\"\n\
early_microcode=\"no\"\n";

/// boot-check stands in for the init system, which on a real Debian
/// activates the LVs the initramfs left alone (lvm2's udev rules or init
/// script). dracut activates only the rd.lvm.lv= it is given (luksify names
/// the root LV), so on the dracut target boot-check first does the init's
/// part for the swap LV; no udev runs by then, hence --noudevsync and
/// vgmknodes.
fn boot_check(variant: Variant) -> String {
    match variant {
        Variant::Dracut => BOOT_CHECK.replacen(
            "say \"start\"\n",
            &format!(
                "vgchange -q -ay --sysinit --noudevsync {VG} >/dev/null 2>&1\n\
                 vgmknodes {VG} >/dev/null 2>&1\n\
                 say \"start\"\n"
            ),
            1,
        ),
        _ => BOOT_CHECK.to_string(),
    }
}

fn config_files(variant: Variant) -> Vec<(String, Vec<u8>, u32)> {
    let mut files: Vec<(String, Vec<u8>, u32)> = vec![
        (
            "/etc/fstab".into(),
            format!(
                "/dev/mapper/{VG}-root / ext4 errors=remount-ro 0 1\n\
                 UUID={BOOT_UUID} /boot ext4 defaults 0 2\n\
                 /dev/mapper/{VG}-swap none swap sw 0 0\n"
            )
            .into_bytes(),
            0o644,
        ),
        ("/etc/hostname".into(), b"vm-target\n".to_vec(), 0o644),
        // grub-mkconfig reads this after /etc/default/grub (which grub-pc's
        // postinst owns). boot-check stands in for the init system.
        (
            "/etc/default/grub.d/vm-target.cfg".into(),
            b"GRUB_TIMEOUT=0\n\
              GRUB_CMDLINE_LINUX_DEFAULT=\"\"\n\
              GRUB_CMDLINE_LINUX=\"console=ttyS0 init=/usr/local/sbin/boot-check panic=-1\"\n\
              GRUB_TERMINAL=console\n\
              GRUB_DISABLE_OS_PROBER=true\n\
              GRUB_DISABLE_RECOVERY=true\n"
                .to_vec(),
            0o644,
        ),
    ];
    if variant == Variant::Dracut {
        files.push((
            "/etc/dracut.conf.d/vm-target.conf".into(),
            DRACUT_CONF.to_vec(),
            0o644,
        ));
    } else {
        files.extend(initramfs_tools_files());
    }
    files.extend([
        (
            "/usr/local/sbin/boot-check".into(),
            boot_check(variant).into_bytes(),
            0o755,
        ),
        (SUMS_PATH.into(), known_sums().into_bytes(), 0o644),
    ]);
    for (p, d) in known_tree() {
        files.push((p, d, 0o644));
    }
    files
}

fn initramfs_tools_files() -> Vec<(String, Vec<u8>, u32)> {
    vec![
        // MODULES=list with the guest's drivers named: a sysadmin's choice
        // that makes update-initramfs take seconds instead of the 20 minutes
        // MODULES=most takes under TCG (measured natively: 4.6 s vs 29 s).
        // The LVM and cryptsetup hooks still add dm-mod, dm-crypt and ciphers.
        (
            "/etc/initramfs-tools/conf.d/modules".into(),
            b"MODULES=list\n".to_vec(),
            0o644,
        ),
        (
            "/usr/share/initramfs-tools/modules.d/vm-target".into(),
            b"virtio_pci\nvirtio_blk\ncrc32c_generic\next4\n".to_vec(),
            0o644,
        ),
        // No resume device: the initramfs would otherwise wait for one.
        (
            "/etc/initramfs-tools/conf.d/resume".into(),
            b"RESUME=none\n".to_vec(),
            0o644,
        ),
    ]
}

/// The target's Debian root as it goes onto the disk (cached; do not change
/// it), before GRUB is installed and its grub.cfg generated in the guest.
pub fn root() -> Result<PathBuf> {
    root_variant(Variant::WithCryptsetupInitramfs)
}

/// [`root`] of a [`Variant`].
pub fn root_variant(variant: Variant) -> Result<PathBuf> {
    let files = config_files(variant);
    let refs: Vec<(&str, &[u8], u32)> = files
        .iter()
        .map(|(p, d, m)| (p.as_str(), d.as_slice(), *m))
        .collect();
    testkit::debian_vm_target_with(&refs, variant.packages())
        .context("building the target's Debian root")
}

/// Builds (or finds in the cache) the target disk, with cryptsetup-initramfs.
pub fn build(kernel: &GuestKernel) -> Result<TargetDisk> {
    build_variant(kernel, Variant::WithCryptsetupInitramfs)
}

/// Builds (or finds in the cache) the target disk of a [`Variant`].
pub fn build_variant(kernel: &GuestKernel, variant: Variant) -> Result<TargetDisk> {
    let root = root_variant(variant)?;
    let root_name = root.display().to_string();
    let mut parts: Vec<&[u8]> = vec![
        RECIPE.as_bytes(),
        root_name.as_bytes(),
        BOOT_CHECK.as_bytes(),
        variant.layout().as_bytes(),
    ];
    if !variant.key().is_empty() {
        parts.push(variant.key().as_bytes());
    }
    let key = cache::key_of(&parts);
    let dir = cache::entry("vm-target-disk", &key, |dir| {
        build_into(kernel, variant, &root, dir)
    })?;
    let root_mib: u64 = std::fs::read_to_string(dir.join("root-mib"))?
        .trim()
        .parse()?;
    Ok(TargetDisk {
        image: dir.join("target.img"),
        root_mib,
    })
}

pub(crate) fn du_mib(dir: &Path) -> Result<u64> {
    let out = Cmd::new("du").args(["-sxm"]).arg(dir).run()?.stdout_str();
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .context("parsing du's output")
}

fn build_into(kernel: &GuestKernel, variant: Variant, root: &Path, dir: &Path) -> Result<()> {
    let work = tempfile::tempdir_in(dir)?;
    let staging = work.path().join("root");
    Cmd::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(root)
        .arg(&staging)
        .run()?;
    let boot_staging = work.path().join("boot");
    Cmd::new("mv")
        .arg(staging.join("boot"))
        .arg(&boot_staging)
        .run()?;
    std::fs::create_dir(staging.join("boot"))?;
    std::fs::create_dir_all(boot_staging.join("grub"))?;

    let root_used = du_mib(&staging)?;
    // Room for a kernel update and the initramfs tools' temp files.
    let root_mib = (root_used * 13 / 10 + 128).div_ceil(4) * 4;
    let boot_img = work.path().join("boot.img");
    let root_img = work.path().join("root.img");
    mke2fs(&boot_staging, &boot_img, BOOT_UUID, "boot", BOOT_MIB)?;
    mke2fs(&staging, &root_img, ROOT_UUID, "root", root_mib)?;
    drop_dir(&staging)?;
    drop_dir(&boot_staging)?;

    let image = dir.join("target.img");
    lay_out_in_guest(
        kernel,
        "target-disk-build",
        &image,
        [&boot_img, &root_img],
        root_mib,
        Script {
            text: variant.layout(),
            extra_env: &format!("VG={VG}"),
            table_mib: variant.table_mib(),
        },
    )?;
    std::fs::write(dir.join("root-mib"), format!("{root_mib}\n"))?;
    Ok(())
}

/// A layout script run by [`lay_out_in_guest`].
pub(crate) struct Script<'a> {
    pub text: &'a str,
    /// `NAME=value` words put before the script's command line.
    pub extra_env: &'a str,
    /// MiB the partition table takes beyond the 1 MiB gap in front (GPT's
    /// BIOS boot partition and backup table), added to the disk's size.
    pub table_mib: u64,
}

/// Makes the empty disk `image` for a layout of `root_mib` MiB of root,
/// then runs `script` in a live guest that sees it as vda and the host-made
/// /boot and root filesystem images as vdb and vdc, with BOOT_MIB,
/// ROOT_MIB, SWAP_MIB and the script's `extra_env` in its environment. `name` names the
/// guest (and its log).
pub(crate) fn lay_out_in_guest(
    kernel: &GuestKernel,
    name: &str,
    image: &Path,
    [boot_img, root_img]: [&Path; 2],
    root_mib: u64,
    script: Script,
) -> Result<()> {
    // 1 MiB label gap + /boot + PV: root + swap + 1 MiB of LVM metadata +
    // FREE_MIB unallocated, the room a LUKS2 header (16 MiB) takes when
    // spare-return turns the PV's partition into a container.
    let total = 1 + script.table_mib + BOOT_MIB + root_mib + SWAP_MIB + 4 + FREE_MIB;
    disk::create_sparse(image, total * disk::MIB)?;
    let live = live_env::build(kernel, &[])?;
    let mut g = GuestBuilder::new(name)
        .kernel(&live.kernel)
        .initrd(&live.initrd)
        .append(&live.append)
        .disk_with_serial(image, "target")
        .disk_with_serial(boot_img, "bootimg")
        .disk_with_serial(root_img, "rootimg")
        .start()?;
    let c = g.console();
    c.wait_for("luksify-live: ready", T)?;
    c.init_shell(PROMPT, T)?;
    c.put_file("/tmp/layout.sh", script.text.as_bytes(), T)?;
    let out = c.exec(
        &format!(
            "BOOT_MIB={BOOT_MIB} ROOT_MIB={root_mib} SWAP_MIB={SWAP_MIB} {} sh /tmp/layout.sh",
            script.extra_env
        ),
        Duration::from_secs(600),
    )?;
    if out.code != 0 {
        bail!(
            "laying out the disk ({name}) failed ({}):\n{}\n{}",
            out.code,
            out.stdout_str(),
            out.stderr_str()
        );
    }
    g.poweroff(T)?;
    Ok(())
}

pub(crate) fn drop_dir(d: &Path) -> Result<()> {
    std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))
}

fn mke2fs(src: &Path, img: &Path, uuid: &str, label: &str, mib: u64) -> Result<()> {
    mke2fs_typed("ext4", src, img, uuid, label, mib)
}

/// An `fstype` (ext2, ext3, ext4) image of `mib` MiB holding `src`'s tree.
pub(crate) fn mke2fs_typed(
    fstype: &str,
    src: &Path,
    img: &Path,
    uuid: &str,
    label: &str,
    mib: u64,
) -> Result<()> {
    Cmd::new("mke2fs")
        .args(["-q", "-F", "-t", fstype, "-U", uuid, "-L", label, "-d"])
        .arg(src)
        .arg(img)
        .arg(format!("{mib}M"))
        .run()
        .with_context(|| format!("making the {label} file system image"))?;
    Ok(())
}

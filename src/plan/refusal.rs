//! Reasons to refuse, each found before anything is written, each saying what
//! is wrong and what the person can do about it.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    #[error(
        "no root filesystem was found on an active logical volume{detail}. Activate the volume group without restarting an interrupted move (`vgchange -ay --poll n VG`) and make sure its root LV holds an /etc/fstab with a `/` entry, or name the VG with --vg"
    )]
    NoRootLv { detail: String },

    #[error("volume group {vg:?} was not found; the volume groups here are: {known}")]
    NoSuchVg { vg: String, known: String },

    #[error("{what} is required: pass {flag}")]
    MissingChoice { what: String, flag: String },

    #[error("spare device {spare} does not exist on this machine; the disks here are: {known}")]
    SpareNotFound { spare: String, known: String },

    #[error(
        "spare {spare} is too small: it holds {have_extents} extents of {extent_mib} MiB but the data needs {need_extents}. Use a spare of at least {need_mib} MiB"
    )]
    SpareTooSmall {
        spare: String,
        have_extents: u64,
        need_extents: u64,
        extent_mib: u64,
        need_mib: u64,
    },

    #[error(
        "spare {spare} is not empty: it carries {found}. Everything on it would be destroyed; if that is what you want, pass --wipe-spare"
    )]
    SpareNotEmpty { spare: String, found: String },

    #[error(
        "the LUKS container on {device} would hold {have_extents} extents but {need_extents} are allocated ({short} short, {short_mib} MiB). Shrink logical volumes by at least that much first ({lvs}), or use --strategy spare-keep with a larger spare"
    )]
    ContainerTooSmall {
        device: String,
        have_extents: u64,
        need_extents: u64,
        short: u64,
        short_mib: u64,
        lvs: String,
    },

    #[error(
        "volume group {vg} also lives on {pvs}, which this plan does not cover. Move those extents onto one PV first (`pvmove PV`), or encrypt them in a separate run"
    )]
    UncoveredPvs { vg: String, pvs: String },

    #[error(
        "volume group {vg} lives on {count} unencrypted PVs ({pvs}); luksify encrypts a volume group that lives on one PV. {advice}"
    )]
    SeveralPvs {
        vg: String,
        count: usize,
        /// Each PV with its allocated and total size.
        pvs: String,
        /// The commands that gather the extents on one PV, or why they cannot.
        advice: String,
    },

    #[error(
        "volume group {vg} holds logical volumes that pvmove cannot move safely: {lvs}. Convert or remove them first"
    )]
    UnsupportedLvs { vg: String, lvs: String },

    #[error(
        "a pvmove is in progress in {vg} ({lv}, moving off {source_pv}) that this migration did not start. Let it finish (`vgchange -ay --poll n {vg}`, then `pvmove -i 1`: a bare pvmove on an inactive VG exits 0 having moved nothing) or abort it (`pvmove --abort`), then run luksify again"
    )]
    ForeignPvmove {
        vg: String,
        lv: String,
        source_pv: String,
    },

    #[error(
        "{device} is on {disk}, a disk the running live system uses. Choose a disk that is not mounted by the live system"
    )]
    LiveSystemDisk { device: String, disk: String },

    #[error(
        "/boot of the target sits inside the volume group being encrypted ({detail}); the bootloader could no longer read the kernel. Move /boot to its own unencrypted partition first"
    )]
    BootInsideVg { detail: String },

    #[error(
        "{spare} has {spare_sector}-byte logical sectors but {original} has {original_sector}; filesystems made for the smaller sector size can break on the larger one. Use a spare with {original_sector}-byte sectors"
    )]
    SectorSizeMismatch {
        spare: String,
        spare_sector: u32,
        original: String,
        original_sector: u32,
    },

    #[error(
        "volume group {vg} holds the root filesystem of the running system; luksify must run from a live system. Boot a live CD or USB stick and run it there"
    )]
    RootInUse { vg: String },

    #[error(
        "the target system has no cryptsetup, so its initramfs cannot unlock the root. Install it in the target first (for Debian: `chroot /mnt apt-get install cryptsetup-bin`)"
    )]
    NoCryptsetup,

    #[error(
        "the target's /boot {detail}; luksify adds the unlock to each kernel's image there once the data has moved. Make room in it before migrating (remove kernels it no longer needs: mount the target and `chroot /mnt apt-get purge linux-image-OLD`), then plan again"
    )]
    BootTooFull { detail: String },

    #[error(
        "spare {spare} already holds volume group data of the VG being encrypted; choose an unused disk"
    )]
    SpareIsOriginal { spare: String },

    #[error(
        "spare {spare} holds {what} of the system being encrypted; using it as the spare would destroy it. Choose a disk the target does not use"
    )]
    SpareInUse { spare: String, what: String },

    #[error("the target's boot configuration cannot be updated safely: {detail}")]
    BootConfig { detail: String },

    #[error(
        "{device} is an LVM PV on a whole disk, without a partition table; luksify records the partition's UUID to find the original again after a reboot, so it cannot migrate this layout safely yet. Use a layout with the PV on a partition"
    )]
    WholeDiskPv { device: String },

    #[error(
        "--strategy spare-keep needs a whole disk as the spare, but {spare} is a partition: luksify gives the spare its own partition table with a /boot partition and GRUB so that it boots without the original disk. Name the whole disk (e.g. {disk}, if everything on it may go), or use --strategy spare-return, which leaves /boot and the bootloader where they are"
    )]
    SpareKeepNeedsDisk { spare: String, disk: String },

    #[error(
        "--strategy spare-keep makes the spare boot on its own, and luksify can do that only for a target that boots through BIOS; this one boots through UEFI ({detail}). Use --strategy spare-return, which leaves the EFI system partition and the bootloader where they are"
    )]
    SpareKeepUefi { detail: String },

    #[error(
        "--strategy spare-keep installs GRUB 2 on the spare (grub-install, update-grub), but the target's bootloader is {found}. Use --strategy spare-return, which leaves the bootloader where it is"
    )]
    SpareKeepBootloader { found: String },

    #[error(
        "--strategy spare-keep makes the spare bootable with the target's own programs, run inside it after the data has moved, but the target lacks {missing}. Install them in the target first (Debian/Ubuntu, with the target's root mounted at /mnt: `chroot /mnt apt-get install {packages}`), or use --strategy spare-return, which leaves /boot and the bootloader where they are"
    )]
    SpareKeepTargetFiles { missing: String, packages: String },

    #[error(
        "--strategy spare-keep copies /boot onto a partition of the spare, which needs /boot on its own partition of the original disk {disk}; here {detail}. Use --strategy spare-return, which leaves /boot where it is"
    )]
    SpareKeepBootLayout { disk: String, detail: String },

    #[error(
        "--strategy spare-keep makes a new /boot filesystem on the spare of the same type as the original, which luksify does for ext2, ext3 and ext4; the target's /boot ({device}) is {fstype}. Use --strategy spare-return, which leaves /boot where it is"
    )]
    SpareKeepBootFs { device: String, fstype: String },

    #[error(
        "--strategy spare-keep leaves {disk} to be detached, but the target's fstab also uses {uses} on it, which the spare does not get: the machine would wait for them at boot. Move that data into a logical volume of the volume group first, or use --strategy spare-return, which keeps {disk} in use"
    )]
    SpareKeepOtherPartitions { disk: String, uses: String },

    #[error(
        "--strategy spare-keep gives spare {spare} ({spare_gib} GiB) a DOS partition table like the original disk {original_disk}'s, and a DOS table reaches only the first {reach_gib} GiB of a disk (2^32 sectors of {sector} bytes): the LUKS container there would hold {have_extents} extents but {need_extents} are allocated ({short_mib} MiB short). A larger spare does not help. Shrink logical volumes by at least that much first ({lvs}), or use --strategy spare-return, which uses the whole spare without a partition table"
    )]
    SpareKeepDosLimit {
        spare: String,
        spare_gib: u64,
        original_disk: String,
        reach_gib: u64,
        sector: u32,
        have_extents: u64,
        need_extents: u64,
        short_mib: u64,
        lvs: String,
    },

    #[error(
        "the backup path {path} is on {device}, which this migration rewrites; a backup there could be lost with what it protects. Choose a path on another disk (a USB stick) or the live system's RAM disk, and copy it off before rebooting"
    )]
    BackupOnChangedDisk { path: String, device: String },

    #[error(
        "the disks are in a state luksify does not recognise: {detail}. Nothing was changed; see `luksify status`"
    )]
    UnknownState { detail: String },
}

//! The Snapshot: everything luksify knows about the machine, captured once,
//! read-only. Planning works from this value alone, so a snapshot saved with
//! `luksify probe --json` on a real machine is a complete test fixture.

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning, so old fixtures are refused clearly.
pub const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub disks: Vec<Disk>,
    pub lvm: LvmState,
    /// Device-mapper devices that are not LVM volumes (open LUKS containers).
    pub crypt_mappings: Vec<CryptMapping>,
    pub mounts: Vec<Mount>,
    /// Whole disks (paths) that the running live system itself depends on.
    pub live_system_disks: Vec<String>,
    /// What was found inside the target's root filesystem, when it could be read.
    pub target: Option<TargetOs>,
    /// When no root was found: the candidate LVs (`VG/LV`, device) whose
    /// ext3/ext4 journal needs recovery after an unclean shutdown. The probe
    /// never replays a journal, so their newest files may be unreadable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreplayed_journals: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub path: String,
    pub size: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub transport: Option<String>,
    pub removable: bool,
    pub read_only: bool,
    pub partition_table: Option<PartitionTable>,
    /// A signature on the whole disk (a PV or LUKS header without a partition table).
    pub signature: Option<Signature>,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionTable {
    /// `dos` or `gpt`, as blkid names them.
    pub kind: String,
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    pub path: String,
    pub number: u32,
    /// Offset from the start of the disk, in bytes.
    pub start: u64,
    pub size: u64,
    /// `0x8e` on a DOS table, a type GUID on GPT.
    pub type_id: Option<String>,
    /// Stable across reboots and kernel renames, unlike the device path.
    pub part_uuid: Option<String>,
    pub signature: Option<Signature>,
}

/// What blkid's low-level probe found on a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// blkid's TYPE: `LVM2_member`, `crypto_LUKS`, `ext4`, `swap`, ...
    pub kind: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LvmState {
    pub pvs: Vec<Pv>,
    pub vgs: Vec<Vg>,
    pub lvs: Vec<Lv>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pv {
    pub path: String,
    pub uuid: String,
    /// Empty for an orphan PV.
    pub vg: Option<String>,
    pub size: u64,
    pub free: u64,
    /// Offset of the first extent from the start of the device, in bytes.
    pub pe_start: u64,
    pub pe_count: u64,
    pub pe_alloc_count: u64,
    pub dev_size: u64,
    pub tags: Vec<String>,
    pub missing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vg {
    pub name: String,
    pub uuid: String,
    pub extent_size: u64,
    pub extent_count: u64,
    pub free_count: u64,
    pub tags: Vec<String>,
    pub pv_count: u64,
    pub lv_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lv {
    pub name: String,
    pub vg: String,
    pub uuid: String,
    pub size: u64,
    /// LVM's ten-character attribute string (`-wi-ao----`).
    pub attr: String,
    pub active: bool,
    pub path: Option<String>,
    pub dm_path: Option<String>,
    pub role: Vec<String>,
    pub origin: Option<String>,
    pub pool_lv: Option<String>,
    /// For a pvmove LV: the PV being emptied.
    pub move_pv: Option<String>,
    pub copy_percent: Option<f64>,
    pub tags: Vec<String>,
    pub segments: Vec<LvSegment>,
    /// What blkid found inside the LV when it was active.
    pub filesystem: Option<Signature>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LvSegment {
    pub segtype: String,
    pub start_pe: u64,
    pub size_pe: u64,
    /// Where the segment's extents live: a PV path or another LV (`pvmove0`).
    pub devices: Vec<SegmentDevice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentDevice {
    pub device: String,
    pub start_pe: u64,
}

/// An open dm-crypt mapping and the device underneath it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CryptMapping {
    pub name: String,
    /// The kernel's name for it (`dm-3`); LVM may report the PV by either path.
    pub kernel_name: String,
    pub path: String,
    /// The LUKS UUID, from the dm UUID (`CRYPT-LUKS2-<hex>-<name>`).
    pub luks_uuid: Option<String>,
    pub backing_device: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub mount_point: String,
    pub fstype: String,
    /// `major:minor` of the mounted device.
    pub device_number: String,
}

/// Free space in the file system holding the target's /boot, and the sizes of
/// the initramfs images there (and of any backups luksify made of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSpace {
    pub avail_bytes: u64,
    /// File name in /boot → bytes.
    pub images: std::collections::BTreeMap<String, u64>,
}

/// Facts read from the target's root filesystem, mounted read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TargetOs {
    /// `VG/LV` of the target's root filesystem.
    pub root_lv: String,
    pub pretty_name: Option<String>,
    pub fstab: Vec<FstabEntry>,
    /// Existing crypttab text, verbatim (empty when there is none).
    pub crypttab: String,
    /// Kernel versions with both a kernel image and modules.
    pub kernels: Vec<String>,
    pub initramfs_generator: Option<String>,
    pub bootloader: Option<String>,
    pub has_cryptsetup: bool,
    pub has_cryptsetup_initramfs: bool,
    /// Which of the files spare-keep runs from the target (its mke2fs,
    /// grub-install, GRUB's BIOS modules: see
    /// [`crate::plan::spare_boot::TARGET_NEEDS`]) exist, as paths inside it.
    /// None in a snapshot from a luksify that did not look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_boot_files: Option<Vec<String>>,
    /// Room in the target's /boot, for the plan to check before any data moves
    /// that adding the unlock to its initramfs images will fit. None when the
    /// probe could not tell, or a luksify that did not look made the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_space: Option<BootSpace>,
    /// Boot-relevant configuration files (path inside the target → content),
    /// so `plan` can show exact diffs without the target mounted.
    pub files: std::collections::BTreeMap<String, String>,
    /// Every look the boot engine took at the mounted target while the probe
    /// had it mounted: replayed by `plan` to show the bootloader diffs.
    /// Absent when the snapshot was replayed from a recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_view: Option<Vec<FsAccess>>,
}

/// One look at the target's file system, as the boot engine took it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "look", rename_all = "kebab-case")]
pub enum FsAccess {
    /// `found` = (the path after the target's symlinks, the content).
    Read {
        path: String,
        found: Option<(String, String)>,
    },
    Exists {
        path: String,
        yes: bool,
    },
    IsDir {
        path: String,
        yes: bool,
    },
    List {
        path: String,
        names: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FstabEntry {
    pub spec: String,
    pub mount_point: String,
    pub fstype: String,
    pub options: String,
}

impl Snapshot {
    pub fn vg(&self, name: &str) -> Option<&Vg> {
        self.lvm.vgs.iter().find(|v| v.name == name)
    }

    pub fn pv(&self, path: &str) -> Option<&Pv> {
        self.lvm.pvs.iter().find(|p| p.path == path)
    }

    pub fn pvs_of<'a>(&'a self, vg: &'a str) -> impl Iterator<Item = &'a Pv> + 'a {
        self.lvm
            .pvs
            .iter()
            .filter(move |p| p.vg.as_deref() == Some(vg))
    }

    pub fn lvs_of<'a>(&'a self, vg: &'a str) -> impl Iterator<Item = &'a Lv> + 'a {
        self.lvm.lvs.iter().filter(move |l| l.vg == vg)
    }

    /// The disk that holds `path`, whether `path` is the disk or one of its partitions.
    pub fn disk_of(&self, path: &str) -> Option<&Disk> {
        self.disks
            .iter()
            .find(|d| d.path == path || d.partitions.iter().any(|p| p.path == path))
    }

    pub fn partition(&self, path: &str) -> Option<&Partition> {
        self.disks
            .iter()
            .flat_map(|d| d.partitions.iter())
            .find(|p| p.path == path)
    }

    /// Size in bytes of a disk or partition.
    pub fn device_size(&self, path: &str) -> Option<u64> {
        if let Some(p) = self.partition(path) {
            return Some(p.size);
        }
        self.disks.iter().find(|d| d.path == path).map(|d| d.size)
    }

    /// The signature blkid found on a disk or partition.
    pub fn signature(&self, path: &str) -> Option<&Signature> {
        if let Some(p) = self.partition(path) {
            return p.signature.as_ref();
        }
        self.disks
            .iter()
            .find(|d| d.path == path)
            .and_then(|d| d.signature.as_ref())
    }

    /// The PV that sits on an open crypt mapping, under either of its names.
    pub fn pv_on_mapping(&self, m: &CryptMapping) -> Option<&Pv> {
        let dm = format!("/dev/{}", m.kernel_name);
        self.lvm
            .pvs
            .iter()
            .find(|p| p.path == m.path || p.path == dm)
    }

    pub fn mapping_over(&self, device: &str) -> Option<&CryptMapping> {
        self.crypt_mappings
            .iter()
            .find(|m| m.backing_device.as_deref() == Some(device))
    }

    /// The pvmove LV of a VG, if a move is in progress.
    pub fn pvmove_in<'a>(&'a self, vg: &'a str) -> Option<&'a Lv> {
        self.lvs_of(vg).find(|l| l.is_pvmove())
    }
}

impl Lv {
    pub fn is_pvmove(&self) -> bool {
        self.attr.starts_with('p') || self.role.iter().any(|r| r == "pvmove")
    }

    /// A volume the person sees (not a hidden image, log or pvmove helper).
    pub fn is_public(&self) -> bool {
        self.role.iter().any(|r| r == "public")
            || (self.role.is_empty() && !self.name.starts_with('['))
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.vg, self.name)
    }
}

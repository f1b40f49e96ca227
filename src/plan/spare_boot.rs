//! spare-keep leaves the data on the spare, so the spare must boot without
//! the original disk: it gets a partition table of the original's kind, a
//! /boot partition sized like the original's (same filesystem type, a new
//! UUID so the two never collide while both disks are attached), a BIOS boot
//! partition for GRUB's core on GPT (on DOS the core goes in the gap after
//! the MBR), and the LUKS container in the rest. What luksify cannot make
//! bootable this way is refused here, before anything is written.

use super::capacity::MIB;
use super::layout::derive_uuid;
use super::refusal::Refusal;
use crate::probe::{Snapshot, TargetOs};

/// GPT's "BIOS boot partition": where grub-install puts its core on GPT.
pub const BIOS_GRUB_GUID: &str = "21686148-6449-6E6F-744E-656564454649";
/// GPT's "EFI System" partition type.
const ESP_GUID: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// Written into the new /boot once every file of the original is copied, so
/// a resumed migration neither copies again over what later steps changed
/// nor trusts a copy that was cut short.
pub const COPY_MARKER: &str = ".luksify-boot-copied";
/// Where the original /boot is mounted read-only while it is copied.
pub const OLD_BOOT_MOUNT: &str = "/run/luksify/original-boot";
const EXT_FILESYSTEMS: &[&str] = &["ext2", "ext3", "ext4"];
/// A DOS partition entry holds its start and size as 32-bit sector counts,
/// and sfdisk (libfdisk) ends a primary partition at sector 2^32 - 1 at the
/// latest: a DOS table reaches 2^32 sectors of the disk, 2 TiB with 512-byte
/// sectors.
pub const DOS_MAX_SECTORS: u64 = 1 << 32;

/// A file spare-keep runs from the target (in a chroot, after the data has
/// moved): without it the migration would stop half-way, so its absence is
/// refused at plan time. Packages as Debian 12 ships them (checked against
/// the grub-pc-bin, grub2-common and grub-common 2.06 packages' contents).
pub struct TargetNeed {
    /// Paths inside the target, any one of which will do.
    pub any_of: &'static [&'static str],
    pub what: &'static str,
    /// The Debian/Ubuntu package that installs it.
    pub package: &'static str,
}

pub const TARGET_NEEDS: &[TargetNeed] = &[
    TargetNeed {
        // By this path: see the mke2fs step in target_steps.
        any_of: &["sbin/mke2fs"],
        what: "makes the new /boot filesystem",
        package: "e2fsprogs",
    },
    TargetNeed {
        any_of: &["usr/sbin/grub-install", "sbin/grub-install"],
        what: "installs GRUB on the spare",
        package: "grub2-common",
    },
    TargetNeed {
        any_of: &["usr/sbin/grub-mkconfig", "sbin/grub-mkconfig"],
        what: "writes the spare's grub.cfg",
        package: "grub-common",
    },
    // grub-install --target=i386-pc reads its platform from here; a target
    // that boots through grub-efi alone (or was installed without
    // grub-pc-bin) lacks it.
    TargetNeed {
        any_of: &["usr/lib/grub/i386-pc/modinfo.sh"],
        what: "GRUB's BIOS (i386-pc) platform, which grub-install --target=i386-pc needs",
        package: "grub-pc-bin",
    },
    TargetNeed {
        any_of: &["usr/lib/grub/i386-pc/boot.img"],
        what: "GRUB's boot sector for the spare's MBR",
        package: "grub-pc-bin",
    },
];

/// The target's files that spare-keep runs and it lacks.
fn missing_target_files(target: &TargetOs) -> Result<Vec<&'static TargetNeed>, Refusal> {
    let found = target
        .spare_boot_files
        .as_ref()
        .ok_or_else(|| Refusal::UnknownState {
            detail: "the snapshot does not record whether the target has mke2fs, grub-install and GRUB's BIOS modules, which spare-keep runs from it (it was made by an older luksify); probe again (`luksify probe --json`)".into(),
        })?;
    Ok(TARGET_NEEDS
        .iter()
        .filter(|n| !n.any_of.iter().any(|p| found.iter().any(|f| f == p)))
        .collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpareBoot {
    /// The spare disk.
    pub disk: String,
    /// `dos` or `gpt`: the original disk's kind.
    pub label: String,
    /// The spare's size and logical sector size.
    pub disk_bytes: u64,
    pub sector_bytes: u32,
    /// The new /boot partition on the spare.
    pub boot_part: String,
    pub boot_bytes: u64,
    /// ext2, ext3 or ext4, as the original /boot.
    pub fstype: String,
    /// The new /boot filesystem's UUID, derived so that `plan` shows the
    /// fstab line `migrate` writes.
    pub uuid: String,
    /// The original /boot while the target's fstab still names it; None once
    /// fstab names the new one (the copy is then complete).
    pub old_device: Option<String>,
    /// How fstab names /boot now.
    pub fstab_spec: String,
}

impl SpareBoot {
    pub fn gpt(&self) -> bool {
        self.label == "gpt"
    }

    /// The part of the spare its partition table can reach: all of it on
    /// GPT, the first 2^32 sectors on DOS.
    ///
    /// A DOS spare larger than that is not refused: its container is capped
    /// at the limit, and the plan says so (see [`Self::unreachable_bytes`]).
    /// The data came from a DOS disk, so it almost always fits below the
    /// limit, and the capped spare boots like the original did. Giving it GPT
    /// instead would change how this machine's firmware must boot it (some
    /// BIOSes do not boot a GPT disk, which has no active MBR partition), and
    /// the spare must boot here; a refusal would leave no way to use a large
    /// disk with spare-keep at all. sfdisk caps a DOS partition at the same
    /// place, so the plan's numbers are what it makes.
    pub fn reachable_bytes(&self) -> u64 {
        if self.gpt() {
            self.disk_bytes
        } else {
            self.disk_bytes
                .min(DOS_MAX_SECTORS * u64::from(self.sector_bytes.max(512)))
        }
    }

    /// What lies beyond the DOS table's reach, left unpartitioned.
    pub fn unreachable_bytes(&self) -> u64 {
        self.disk_bytes - self.reachable_bytes()
    }

    /// Bytes the LUKS container gets: what the table reaches, less 1 MiB of
    /// alignment (the MBR gap on DOS), the BIOS boot partition on GPT,
    /// /boot, and GPT's backup table at the end.
    pub fn container_bytes(&self) -> u64 {
        let front = MIB + if self.gpt() { MIB } else { 0 } + self.boot_bytes;
        let end = if self.gpt() { MIB } else { 0 };
        self.reachable_bytes().saturating_sub(front + end) / MIB * MIB
    }

    /// What the spare needs beyond the container itself.
    pub fn overhead_bytes(&self) -> u64 {
        MIB + self.boot_bytes + if self.gpt() { 2 * MIB } else { 0 }
    }

    /// sfdisk's input: sizes in MiB so that 4 KiB-sector disks get the same layout.
    pub fn sfdisk_script(&self) -> String {
        let linux = if self.gpt() {
            super::ladder::LINUX_DATA_GUID
        } else {
            "83"
        };
        let boot_mib = self.boot_bytes / MIB;
        let mut s = format!("label: {}\n", self.label);
        if self.gpt() {
            s.push_str(&format!("start=1MiB, size=1MiB, type={BIOS_GRUB_GUID}\n"));
            s.push_str(&format!("size={boot_mib}MiB, type={linux}\n"));
        } else {
            s.push_str(&format!(
                "start=1MiB, size={boot_mib}MiB, type={linux}, bootable\n"
            ));
        }
        if self.unreachable_bytes() > 0 {
            // Explicit rather than left to sfdisk's cap.
            s.push_str(&format!(
                "size={}MiB, type={linux}\n",
                self.container_bytes() / MIB
            ));
        } else {
            s.push_str(&format!("type={linux}\n"));
        }
        s
    }
}

/// The partition numbers on the spare: /boot, then the container.
pub fn boot_number(gpt: bool) -> u32 {
    if gpt { 2 } else { 1 }
}

pub fn container_number(gpt: bool) -> u32 {
    if gpt { 3 } else { 2 }
}

/// The kernel names partitions `sda1` but `nvme0n1p1` and `mmcblk0p1`.
pub fn partition_path(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

/// The partition-table kind of the disk holding `original` (`dos` when unknown).
pub fn label_of(snap: &Snapshot, original: &str) -> String {
    snap.disk_of(original)
        .and_then(|d| d.partition_table.as_ref())
        .map(|t| t.kind.clone())
        .unwrap_or_else(|| "dos".into())
}

/// The UUID of the new /boot filesystem, derived from the VG and the
/// original's identity like the container's.
pub fn boot_uuid(vg_uuid: &str, orig_tag: &str) -> String {
    derive_uuid(vg_uuid, &format!("spare-keep /boot:{orig_tag}"))
}

/// Checks that the target can boot from the spare as luksify makes it, and
/// describes the spare's /boot.
pub fn resolve(
    snap: &Snapshot,
    target: &TargetOs,
    original: &str,
    spare: &str,
    uuid: String,
) -> Result<SpareBoot, Refusal> {
    let label = label_of(snap, original);
    let gpt = label == "gpt";
    let orig_disk = snap
        .disk_of(original)
        .map(|d| d.path.clone())
        .unwrap_or_else(|| original.to_string());
    if let Some(e) = target
        .fstab
        .iter()
        .find(|e| e.mount_point == "/boot/efi" || e.mount_point == "/efi")
    {
        return Err(Refusal::SpareKeepUefi {
            detail: format!("its fstab mounts {} on {}", e.spec, e.mount_point),
        });
    }
    if let Some(p) = snap
        .disk_of(original)
        .into_iter()
        .flat_map(|d| d.partitions.iter())
        .find(|p| {
            p.type_id
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(ESP_GUID) || t == "0xef")
        })
    {
        return Err(Refusal::SpareKeepUefi {
            detail: format!("{} on {orig_disk} is an EFI system partition", p.path),
        });
    }
    match target.bootloader.as_deref() {
        Some("grub2") => {}
        Some(other) => {
            return Err(Refusal::SpareKeepBootloader {
                found: match other {
                    "bls" => "a Boot Loader Specification setup (/boot/loader/entries)".into(),
                    "grub-legacy" => "GRUB legacy (grub.conf or menu.lst)".into(),
                    o => o.into(),
                },
            });
        }
        None => {
            return Err(Refusal::SpareKeepBootloader {
                found: "not recognised (no /boot/grub/grub.cfg)".into(),
            });
        }
    }
    if target.files.contains_key("boot/grub2/grub.cfg")
        && !target.files.contains_key("boot/grub/grub.cfg")
    {
        return Err(Refusal::SpareKeepBootloader {
            found: "GRUB 2 in /boot/grub2 (grub2-install, Red Hat's naming), which luksify does not drive yet".into(),
        });
    }
    let missing = missing_target_files(target)?;
    if !missing.is_empty() {
        let mut packages: Vec<&str> = Vec::new();
        for n in &missing {
            if !packages.contains(&n.package) {
                packages.push(n.package);
            }
        }
        return Err(Refusal::SpareKeepTargetFiles {
            missing: missing
                .iter()
                .map(|n| format!("/{} ({}; package {})", n.any_of[0], n.what, n.package))
                .collect::<Vec<_>>()
                .join(", "),
            packages: packages.join(" "),
        });
    }
    let layout = |detail: String| Refusal::SpareKeepBootLayout {
        disk: orig_disk.clone(),
        detail,
    };
    let entry = target
        .fstab
        .iter()
        .find(|e| e.mount_point == "/boot")
        .ok_or_else(|| layout("the target's fstab has no /boot entry".into()))?;
    let dev = crate::probe::target::resolve_spec(snap, &entry.spec).ok_or_else(|| {
        layout(format!(
            "fstab's /boot ({}) names no partition attached here",
            entry.spec
        ))
    })?;
    let new_part = partition_path(spare, boot_number(gpt));
    let sig = snap.signature(&dev);
    let ours = dev == new_part && sig.and_then(|s| s.uuid.as_deref()) == Some(uuid.as_str());
    let (fstype, bytes, old_device) = if ours {
        // An earlier run already moved fstab to the new /boot.
        let size = snap.device_size(&dev).unwrap_or(0);
        let kind = sig.map(|s| s.kind.clone()).unwrap_or_default();
        (kind, size, None)
    } else {
        let part = snap
            .partition(&dev)
            .filter(|_| snap.disk_of(&dev).is_some_and(|d| d.path == orig_disk))
            .ok_or_else(|| {
                layout(format!(
                    "fstab's /boot ({}) is {dev}, which is not a partition of {orig_disk}",
                    entry.spec
                ))
            })?;
        let kind = sig
            .map(|s| s.kind.clone())
            .unwrap_or_else(|| "unknown (blkid found no filesystem)".into());
        (kind, part.size.div_ceil(MIB) * MIB, Some(dev.clone()))
    };
    // Swap, /home or anything else fstab takes from the original disk stays
    // behind with it.
    let left_behind: Vec<String> = target
        .fstab
        .iter()
        .filter(|e| e.mount_point != "/boot")
        .filter_map(|e| {
            let d = crate::probe::target::resolve_spec(snap, &e.spec)?;
            snap.disk_of(&d)
                .is_some_and(|disk| disk.path == orig_disk)
                .then(|| format!("{d} ({})", e.mount_point))
        })
        .collect();
    if !left_behind.is_empty() {
        return Err(Refusal::SpareKeepOtherPartitions {
            disk: orig_disk,
            uses: left_behind.join(", "),
        });
    }
    if !EXT_FILESYSTEMS.contains(&fstype.as_str()) {
        return Err(Refusal::SpareKeepBootFs {
            device: dev,
            fstype,
        });
    }
    let spare_disk = snap.disks.iter().find(|d| d.path == spare);
    Ok(SpareBoot {
        disk: spare.to_string(),
        label,
        disk_bytes: spare_disk.map(|d| d.size).unwrap_or(0),
        sector_bytes: spare_disk.map(|d| d.logical_sector_size).unwrap_or(512),
        boot_part: new_part,
        boot_bytes: bytes,
        fstype,
        uuid,
        old_device,
        fstab_spec: entry.spec.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(label: &str) -> SpareBoot {
        SpareBoot {
            disk: "/dev/vdb".into(),
            label: label.into(),
            disk_bytes: 1024 * MIB,
            sector_bytes: 512,
            boot_part: partition_path("/dev/vdb", boot_number(label == "gpt")),
            boot_bytes: 200 * MIB,
            fstype: "ext4".into(),
            uuid: "u".into(),
            old_device: Some("/dev/vda1".into()),
            fstab_spec: "UUID=x".into(),
        }
    }

    #[test]
    fn dos_layout_boot_then_container() {
        let s = sb("dos");
        assert_eq!(
            s.sfdisk_script(),
            "label: dos\nstart=1MiB, size=200MiB, type=83, bootable\ntype=83\n"
        );
        assert_eq!(s.container_bytes(), 823 * MIB);
        assert_eq!(s.boot_part, "/dev/vdb1");
    }

    #[test]
    fn gpt_layout_has_a_bios_boot_partition() {
        let s = sb("gpt");
        let script = s.sfdisk_script();
        assert!(script.starts_with("label: gpt\nstart=1MiB, size=1MiB, type=21686148-"));
        assert_eq!(script.lines().count(), 4);
        assert_eq!(s.container_bytes(), 821 * MIB);
        assert_eq!(s.boot_part, "/dev/vdb2");
        assert_eq!(partition_path("/dev/nvme1n1", 3), "/dev/nvme1n1p3");
    }

    #[test]
    fn a_dos_table_reaches_two_to_the_32_sectors() {
        const TIB: u64 = 1 << 40;
        let mut s = sb("dos");
        s.disk_bytes = 3 * TIB;
        assert_eq!(s.reachable_bytes(), 2 * TIB);
        assert_eq!(s.unreachable_bytes(), TIB);
        assert_eq!(s.container_bytes(), 2 * TIB - 201 * MIB);
        assert_eq!(
            s.sfdisk_script(),
            format!(
                "label: dos\nstart=1MiB, size=200MiB, type=83, bootable\nsize={}MiB, type=83\n",
                (2 * TIB - 201 * MIB) / MIB
            ),
            "the container ends within the table's reach"
        );
        // 4096-byte sectors reach 16 TiB.
        s.sector_bytes = 4096;
        assert_eq!(s.unreachable_bytes(), 0);
        assert!(s.sfdisk_script().ends_with("\ntype=83\n"));
        let mut g = sb("gpt");
        g.disk_bytes = 3 * TIB;
        assert_eq!(g.unreachable_bytes(), 0);
        assert_eq!(g.container_bytes(), 3 * TIB - 203 * MIB);
    }
}

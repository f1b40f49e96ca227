//! Which disks may be offered as the spare, and why the others are not: the
//! wizard never offers a disk the planner would refuse for its size, its use
//! by the live system, or its use by the system being encrypted.

use crate::plan::LuksOptions;
use crate::plan::capacity::{
    NEW_PV_PE_START, allocated_extents, extents_in, whole_disk_partition_bytes,
};
use crate::probe::{Disk, Snapshot};

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub path: String,
    /// Why the disk is not offered; None when it is.
    pub why_not: Option<String>,
    /// What is on it now (destroyed if chosen).
    pub carries: Option<String>,
}

/// Bytes the data needs on a fresh PV (the extents plus LVM's label area).
pub fn needed_bytes(snap: &Snapshot, vg: &str) -> u64 {
    let e = snap.vg(vg).map(|v| v.extent_size).unwrap_or(4 << 20);
    allocated_extents(snap, vg) * e + NEW_PV_PE_START
}

/// The smallest spare that works with some strategy, in MiB (spare-return's:
/// spare-keep also needs room for a partition table and the LUKS header).
pub fn min_spare_mib(snap: &Snapshot, vg: &str) -> u64 {
    needed_bytes(snap, vg).div_ceil(1 << 20)
}

/// Does the data fit on `disk` with at least one strategy?
/// spare-return makes the whole disk a PV; spare-keep partitions it and puts
/// a LUKS header in front of the PV.
fn fits(snap: &Snapshot, vg: &str, disk: &Disk, luks: &LuksOptions) -> bool {
    let e = snap.vg(vg).map(|v| v.extent_size).unwrap_or(4 << 20);
    let need = allocated_extents(snap, vg);
    let as_pv = extents_in(disk.size, e);
    let in_luks = extents_in(
        whole_disk_partition_bytes(disk.size, true).saturating_sub(luks.header_bytes()),
        e,
    );
    as_pv.max(in_luks) >= need
}

/// What the system being encrypted keeps on `disk`.
fn used_by_target(snap: &Snapshot, vg: &str, disk: &Disk) -> Vec<String> {
    let on_disk = |dev: &str| snap.disk_of(dev).is_some_and(|d| d.path == disk.path);
    let mut uses: Vec<String> = snap
        .pvs_of(vg)
        .filter(|p| on_disk(&p.path))
        .map(|p| format!("volume group {vg} ({})", p.path))
        .collect();
    if let Some(t) = &snap.target {
        for e in &t.fstab {
            if let Some(dev) = crate::probe::target::resolve_spec(snap, &e.spec)
                && on_disk(&dev)
            {
                uses.push(format!("the installed system's {} ({dev})", e.mount_point));
            }
        }
    }
    // A PV of another VG is data too, just not ours.
    for p in snap.lvm.pvs.iter().filter(|p| on_disk(&p.path)) {
        if let Some(other) = p.vg.as_deref().filter(|v| *v != vg) {
            uses.push(format!("volume group {other} ({})", p.path));
        }
    }
    uses
}

fn carries(disk: &Disk) -> Option<String> {
    let mut found = Vec::new();
    if let Some(t) = &disk.partition_table {
        found.push(format!(
            "a {} partition table with {} partition(s)",
            t.kind,
            disk.partitions.len()
        ));
    }
    if let Some(s) = &disk.signature {
        found.push(s.kind.clone());
    }
    for p in &disk.partitions {
        if let Some(s) = &p.signature {
            found.push(format!("{} on {}", s.kind, p.path));
        }
    }
    (!found.is_empty()).then(|| found.join(", "))
}

pub fn spare_candidates(snap: &Snapshot, vg: &str, luks: &LuksOptions) -> Vec<Candidate> {
    let data_sector = snap
        .pvs_of(vg)
        .filter_map(|p| snap.disk_of(&p.path))
        .map(|d| d.logical_sector_size)
        .min();
    snap.disks
        .iter()
        .map(|d| {
            let uses = used_by_target(snap, vg, d);
            let why_not = if snap.live_system_disks.contains(&d.path) {
                Some("the live system runs from it".to_string())
            } else if !uses.is_empty() {
                Some(format!("it holds {}", uses.join(", ")))
            } else if d.read_only {
                Some("it is read-only".into())
            } else if !fits(snap, vg, d, luks) {
                Some(format!(
                    "too small: {} MiB, the data needs at least {} MiB",
                    d.size >> 20,
                    min_spare_mib(snap, vg)
                ))
            } else if data_sector.is_some_and(|s| d.logical_sector_size > s) {
                Some(format!(
                    "its {}-byte sectors are larger than the {}-byte sectors the data was made with",
                    d.logical_sector_size,
                    data_sector.unwrap_or_default()
                ))
            } else {
                None
            };
            Candidate {
                path: d.path.clone(),
                why_not,
                carries: carries(d),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::wizard::seed_fixture as fixture;

    #[test]
    fn seed_offers_only_the_empty_disk() {
        let s = fixture();
        let c = spare_candidates(&s, "vg0", &LuksOptions::default());
        assert_eq!(c.len(), 2);
        let vda = &c[0];
        assert_eq!(vda.path, "/dev/vda");
        let why = vda.why_not.as_deref().unwrap();
        assert!(why.contains("volume group vg0 (/dev/vda2)"), "{why}");
        assert!(why.contains("/boot (/dev/vda1)"), "{why}");
        assert_eq!(c[1].path, "/dev/vdb");
        assert_eq!(c[1].why_not, None);
        assert_eq!(c[1].carries, None);
    }

    #[test]
    fn live_small_and_read_only_disks_are_explained() {
        let mut s = fixture();
        let mut small = s.disks[1].clone();
        small.path = "/dev/vdc".into();
        small.size = 300 << 20;
        let mut ro = s.disks[1].clone();
        ro.path = "/dev/sr0".into();
        ro.read_only = true;
        s.disks.push(small);
        s.disks.push(ro);
        s.live_system_disks.push("/dev/vdb".into());
        let c = spare_candidates(&s, "vg0", &LuksOptions::default());
        let why = |p: &str| {
            c.iter()
                .find(|c| c.path == p)
                .unwrap()
                .why_not
                .clone()
                .unwrap_or_default()
        };
        assert_eq!(why("/dev/vdb"), "the live system runs from it");
        assert!(why("/dev/vdc").starts_with("too small: 300 MiB"));
        assert_eq!(why("/dev/sr0"), "it is read-only");
    }

    #[test]
    fn need_is_the_allocated_extents() {
        let s = fixture();
        // 141 extents of 4 MiB in use, plus the 1 MiB label area.
        assert_eq!(needed_bytes(&s, "vg0"), 141 * (4 << 20) + (1 << 20));
    }
}

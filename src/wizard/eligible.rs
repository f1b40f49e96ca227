//! Which disks may be offered as the spare, and why the others are not: the
//! wizard never offers a disk the planner would refuse for its size, its use
//! by the live system, or its use by the system being encrypted.

use crate::plan::capacity::{NEW_PV_PE_START, allocated_extents, extents_in};
use crate::plan::{self, Choices, Refusal, Strategy};
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

/// The smallest spare for the chosen strategy, in MiB. Without one chosen:
/// spare-return's, the smaller (spare-keep also puts /boot, the partition
/// table's room and the LUKS header on the spare), so that every disk that
/// works with some strategy is offered.
pub fn min_spare_mib(snap: &Snapshot, vg: &str, choices: &Choices) -> u64 {
    let as_pv = needed_bytes(snap, vg).div_ceil(1 << 20);
    match choices.strategy {
        Some(Strategy::SpareKeep) => plan::spare_keep_min_mib(snap, choices).unwrap_or(as_pv),
        _ => as_pv,
    }
}

/// Why the data does not fit on `disk` with the chosen strategy (with
/// either, when none is chosen), by the planner's own rule. spare-return
/// makes the whole disk a PV; spare-keep's size rule is the planner's, asked
/// directly: it lays /boot, the partition table and the LUKS header out on
/// the spare beside the data.
fn too_small(snap: &Snapshot, vg: &str, disk: &Disk, choices: &Choices) -> Option<String> {
    if choices.strategy == Some(Strategy::SpareKeep) {
        let trial = Choices {
            spare: Some(disk.path.clone()),
            // What the disk carries now is asked about once it is chosen.
            wipe_spare: true,
            ..choices.clone()
        };
        // Other refusals are not about this disk's size; planning names them.
        return match plan::plan(snap, &trial) {
            Err(Refusal::SpareTooSmall { need_mib, .. }) => Some(format!(
                "too small for spare-keep: {} MiB, which needs at least {need_mib} MiB (the data, the LUKS header and a /boot like the original's)",
                disk.size >> 20
            )),
            Err(Refusal::SpareKeepDosLimit { reach_gib, .. }) => Some(format!(
                "the DOS partition table spare-keep gives it reaches only its first {reach_gib} GiB, too little for the data"
            )),
            _ => None,
        };
    }
    let e = snap.vg(vg).map(|v| v.extent_size).unwrap_or(4 << 20);
    (extents_in(disk.size, e) < allocated_extents(snap, vg)).then(|| {
        format!(
            "too small: {} MiB, the data needs at least {} MiB",
            disk.size >> 20,
            min_spare_mib(snap, vg, choices)
        )
    })
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

pub fn spare_candidates(snap: &Snapshot, vg: &str, choices: &Choices) -> Vec<Candidate> {
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
            } else if let Some(why) = too_small(snap, vg, d, choices) {
                Some(why)
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
        let c = spare_candidates(&s, "vg0", &Choices::default());
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
        let c = spare_candidates(&s, "vg0", &Choices::default());
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
    fn with_spare_keep_chosen_the_spare_must_also_hold_boot() {
        // 700 MiB holds the data as a PV (565 MiB), but not with the LUKS
        // header and a 200 MiB /boot beside it.
        let mut s = fixture();
        s.disks[1].size = 700 << 20;
        let keep = Choices {
            strategy: Some(Strategy::SpareKeep),
            ..Default::default()
        };
        assert_eq!(
            spare_candidates(&s, "vg0", &Choices::default())[1].why_not,
            None,
            "offered while spare-return is still possible"
        );
        let min = min_spare_mib(&s, "vg0", &keep);
        assert!(min > 565 + 16 + 200, "{min}");
        let why = spare_candidates(&s, "vg0", &keep)[1]
            .why_not
            .clone()
            .expect("not offered for spare-keep");
        assert!(
            why.starts_with(&format!(
                "too small for spare-keep: 700 MiB, which needs at least {min} MiB"
            )),
            "{why}"
        );
        // The planner draws the same line.
        let plan_on = |size: u64| {
            let mut s = s.clone();
            s.disks[1].size = size;
            let c = Choices {
                spare: Some("/dev/vdb".into()),
                ..keep.clone()
            };
            (plan::plan(&s, &c), spare_candidates(&s, "vg0", &keep))
        };
        let (planned, offered) = plan_on(700 << 20);
        assert!(
            matches!(planned, Err(Refusal::SpareTooSmall { need_mib, .. }) if need_mib == min),
            "{planned:?}"
        );
        assert!(offered[1].why_not.is_some());
        let (planned, offered) = plan_on(min << 20);
        assert!(planned.is_ok(), "{planned:?}");
        assert_eq!(offered[1].why_not, None);
        for size in [(min - 3) << 20, (min - 2) << 20, (min - 1) << 20] {
            let (planned, offered) = plan_on(size);
            assert_eq!(
                planned.is_ok(),
                offered[1].why_not.is_none(),
                "{} MiB: {planned:?} {:?}",
                size >> 20,
                offered[1].why_not
            );
        }
    }

    #[test]
    fn need_is_the_allocated_extents() {
        let s = fixture();
        // 141 extents of 4 MiB in use, plus the 1 MiB label area.
        assert_eq!(needed_bytes(&s, "vg0"), 141 * (4 << 20) + (1 << 20));
    }
}

//! Refusals that do not depend on how far a migration has come.

use super::layout::Layout;
use super::refusal::Refusal;
use crate::probe::{Lv, Snapshot};

const MOVABLE_SEGTYPES: &[&str] = &["linear", "striped"];

pub fn check(snap: &Snapshot, l: &Layout) -> Result<(), Refusal> {
    root_not_in_use(snap, &l.vg)?;
    for dev in [&l.original, &l.spare] {
        if let Some(disk) = snap.disk_of(dev) {
            if snap.live_system_disks.contains(&disk.path) {
                return Err(Refusal::LiveSystemDisk {
                    device: dev.clone(),
                    disk: disk.path.clone(),
                });
            }
        }
    }
    movable_lvs(snap, &l.vg)?;
    no_foreign_pvmove(snap, l)?;
    boot_outside_vg(snap, l)?;
    if !l.target.has_cryptsetup && !l.target.has_cryptsetup_initramfs {
        return Err(Refusal::NoCryptsetup);
    }
    sector_sizes(snap, l)
}

fn lv_device_names(lv: &Lv) -> Vec<String> {
    let mangled = format!(
        "/dev/mapper/{}-{}",
        lv.vg.replace('-', "--"),
        lv.name.replace('-', "--")
    );
    let mut v = vec![mangled, format!("/dev/{}/{}", lv.vg, lv.name)];
    v.extend(lv.dm_path.clone());
    v.extend(lv.path.clone());
    v
}

fn root_not_in_use(snap: &Snapshot, vg: &str) -> Result<(), Refusal> {
    let Some(root) = snap.mounts.iter().find(|m| m.mount_point == "/") else {
        return Ok(());
    };
    if snap
        .lvs_of(vg)
        .any(|lv| lv_device_names(lv).contains(&root.source))
    {
        return Err(Refusal::RootInUse { vg: vg.into() });
    }
    Ok(())
}

fn movable_lvs(snap: &Snapshot, vg: &str) -> Result<(), Refusal> {
    let bad: Vec<String> = snap
        .lvs_of(vg)
        .filter(|lv| !lv.is_pvmove())
        .filter_map(|lv| {
            let kind = lv.attr.chars().next().unwrap_or('-');
            let segtype = lv
                .segments
                .iter()
                .map(|s| s.segtype.as_str())
                .find(|t| !MOVABLE_SEGTYPES.contains(t));
            let why = match (kind, segtype) {
                ('t', _) => "thin pool",
                ('V', _) | ('T', _) => "thin volume",
                ('r' | 'R', _) => "RAID",
                ('C', _) => "cache",
                ('o' | 'O', _) => "snapshot origin",
                ('s' | 'S', _) => "snapshot",
                ('m' | 'M', _) => "mirror",
                (_, Some(_)) => "unsupported segment type",
                _ => return None,
            };
            Some(format!("{} ({why})", lv.full_name()))
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Refusal::UnsupportedLvs {
            vg: vg.into(),
            lvs: bad.join(", "),
        })
    }
}

fn no_foreign_pvmove(snap: &Snapshot, l: &Layout) -> Result<(), Refusal> {
    if let Some(mv) = snap.pvmove_in(&l.vg) {
        let source = mv.move_pv.clone().unwrap_or_default();
        if source != l.original && source != l.spare {
            return Err(Refusal::ForeignPvmove {
                vg: l.vg.clone(),
                lv: mv.name.clone(),
                source_pv: source,
            });
        }
    }
    Ok(())
}

fn boot_outside_vg(snap: &Snapshot, l: &Layout) -> Result<(), Refusal> {
    let Some(boot) = l.target.fstab.iter().find(|e| e.mount_point == "/boot") else {
        return Err(Refusal::BootInsideVg {
            detail: "the target's fstab has no separate /boot, so the kernel lives on the root filesystem".into(),
        });
    };
    let spec = boot.spec.as_str();
    let on_lv = snap.lvs_of(&l.vg).find(|lv| {
        lv_device_names(lv).iter().any(|n| n == spec)
            || spec
                .strip_prefix("UUID=")
                .is_some_and(|u| lv.filesystem.as_ref().and_then(|f| f.uuid.as_deref()) == Some(u))
    });
    if let Some(lv) = on_lv {
        return Err(Refusal::BootInsideVg {
            detail: format!("/boot is {} on {}", spec, lv.full_name()),
        });
    }
    Ok(())
}

fn sector_sizes(snap: &Snapshot, l: &Layout) -> Result<(), Refusal> {
    let (Some(orig), Some(spare)) = (snap.disk_of(&l.original), snap.disk_of(&l.spare)) else {
        return Ok(());
    };
    if spare.logical_sector_size > orig.logical_sector_size {
        return Err(Refusal::SectorSizeMismatch {
            spare: l.spare.clone(),
            spare_sector: spare.logical_sector_size,
            original: l.original.clone(),
            original_sector: orig.logical_sector_size,
        });
    }
    Ok(())
}

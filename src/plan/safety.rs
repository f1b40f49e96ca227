//! Refusals that do not depend on how far a migration has come.

use super::choices::Choices;
use super::layout::Layout;
use super::refusal::Refusal;
use crate::probe::{Lv, Snapshot};

const MOVABLE_SEGTYPES: &[&str] = &["linear", "striped"];

pub fn check(snap: &Snapshot, l: &Layout, choices: &Choices) -> Result<(), Refusal> {
    root_not_in_use(snap, &l.vg)?;
    for dev in [&l.original, &l.spare] {
        if let Some(disk) = snap.disk_of(dev)
            && snap.live_system_disks.contains(&disk.path)
        {
            return Err(Refusal::LiveSystemDisk {
                device: dev.clone(),
                disk: disk.path.clone(),
            });
        }
    }
    spare_unused_by_target(snap, l)?;
    movable_lvs(snap, &l.vg)?;
    no_foreign_pvmove(snap, l)?;
    boot_outside_vg(snap, l)?;
    if !l.target.has_cryptsetup && !l.target.has_cryptsetup_initramfs {
        return Err(Refusal::NoCryptsetup);
    }
    super::boot_room::check(l.target)?;
    sector_sizes(snap, l)?;
    backup_location(snap, l, choices)
}

/// The mount that holds `path` (longest mount-point prefix).
fn mount_of<'a>(snap: &'a Snapshot, path: &str) -> Option<&'a crate::probe::Mount> {
    snap.mounts
        .iter()
        .filter(|m| {
            m.mount_point == "/"
                || path == m.mount_point
                || path.starts_with(&format!("{}/", m.mount_point))
        })
        .max_by_key(|m| m.mount_point.len())
}

fn backup_location(snap: &Snapshot, l: &Layout, choices: &Choices) -> Result<(), Refusal> {
    let Some(path) = &choices.header_backup else {
        return Ok(());
    };
    let Some(m) = mount_of(snap, path) else {
        return Ok(());
    };
    let changed_disks: Vec<&str> = [&l.original, &l.spare]
        .iter()
        .filter_map(|d| snap.disk_of(d).map(|d| d.path.as_str()))
        .collect();
    let on_changed_disk = snap
        .disk_of(&m.source)
        .is_some_and(|d| changed_disks.contains(&d.path.as_str()));
    let on_vg = snap
        .lvs_of(&l.vg)
        .any(|lv| lv_device_names(lv).contains(&m.source));
    if on_changed_disk || on_vg {
        return Err(Refusal::BackupOnChangedDisk {
            path: path.clone(),
            device: m.source.clone(),
        });
    }
    Ok(())
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
    // A later mount on / hides the earlier ones (an initramfs's rootfs).
    let Some(root) = snap.mounts.iter().rev().find(|m| m.mount_point == "/") else {
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
        let mut ours = vec![l.original.clone(), l.spare.clone(), l.mapper_path()];
        // After a reboot the PV inside the closed container is `[unknown]`.
        if snap.mapping_over(&l.container).is_none() && snap.pvs_of(&l.vg).any(|p| p.missing) {
            ours.push("unknown".into());
        }
        let mapping_dm = snap
            .crypt_mappings
            .iter()
            .find(|m| m.name == l.mapper_name)
            .map(|m| format!("/dev/{}", m.kernel_name));
        let foreign_dest = mv
            .segments
            .iter()
            .flat_map(|s| s.devices.iter())
            .any(|d| !ours.contains(&d.device) && Some(&d.device) != mapping_dm.as_ref());
        if (source != l.original && source != l.spare) || foreign_dest {
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

/// The spare must not hold anything the target mounts (its /boot, say) nor
/// be the disk the original PV sits on: --wipe-spare must never reach those.
fn spare_unused_by_target(snap: &Snapshot, l: &Layout) -> Result<(), Refusal> {
    let spare_devices: Vec<String> = match snap.disks.iter().find(|d| d.path == l.spare) {
        Some(d) => std::iter::once(d.path.clone())
            .chain(d.partitions.iter().map(|p| p.path.clone()))
            .collect(),
        None => vec![l.spare.clone()],
    };
    if spare_devices.contains(&l.original) {
        return Err(Refusal::SpareInUse {
            spare: l.spare.clone(),
            what: format!("the physical volume {}", l.original),
        });
    }
    // spare-keep's own new /boot, once an earlier run pointed fstab at it.
    let own_boot = l
        .spare_boot
        .as_ref()
        .filter(|b| b.old_device.is_none())
        .map(|b| b.boot_part.as_str());
    for e in &l.target.fstab {
        if let Some(dev) = crate::probe::target::resolve_spec(snap, &e.spec)
            && spare_devices.contains(&dev)
            && !(e.mount_point == "/boot" && own_boot == Some(dev.as_str()))
        {
            return Err(Refusal::SpareInUse {
                spare: l.spare.clone(),
                what: format!("{} ({dev})", e.mount_point),
            });
        }
    }
    Ok(())
}

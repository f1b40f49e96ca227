//! Where a migration stands, read from the disks, and the steps that remain.
//! Each strategy is a ladder of stages; the stage is found by looking at the
//! disks (LVM labels, VG membership, extents, LUKS headers, open mappings,
//! a pvmove in progress), and the plan starts there.

use super::capacity;
use super::choices::Choices;
use super::layout::Layout;
use super::refusal::Refusal;
use super::step::Step;
use super::steps::*;
use crate::probe::Snapshot;

/// GPT's "Linux filesystem data" partition type.
pub const LINUX_DATA_GUID: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

pub struct Ladder {
    pub steps: Vec<Step>,
    /// What was found already done, for the person; None on a fresh start.
    pub resumed: Option<String>,
}

struct Facts<'a> {
    snap: &'a Snapshot,
    l: &'a Layout<'a>,
}

impl Facts<'_> {
    fn sig(&self, dev: &str) -> Option<&str> {
        self.snap.signature(dev).map(|s| s.kind.as_str())
    }
    fn in_vg(&self, dev: &str) -> bool {
        self.snap
            .pv(dev)
            .is_some_and(|p| p.vg.as_deref() == Some(&self.l.vg))
    }
    fn orphan_pv(&self, dev: &str) -> bool {
        self.snap.pv(dev).is_some_and(|p| p.vg.is_none())
    }
    fn alloc(&self, dev: &str) -> u64 {
        self.snap.pv(dev).map(|p| p.pe_alloc_count).unwrap_or(0)
    }
    fn moving_off(&self, dev: &str) -> bool {
        self.snap
            .pvmove_in(&self.l.vg)
            .is_some_and(|m| m.move_pv.as_deref() == Some(dev))
    }
    fn tagged(&self) -> bool {
        self.snap
            .vg(&self.l.vg)
            .is_some_and(|v| self.l.tags.iter().all(|t| v.tags.contains(t)))
    }
    /// The PV inside the open container: (mapping path, in this VG?).
    fn crypt_pv(&self) -> Option<(String, bool)> {
        let m = self.snap.mapping_over(&self.l.container)?;
        let pv = self.snap.pv_on_mapping(m)?;
        Some((pv.path.clone(), pv.vg.as_deref() == Some(&self.l.vg)))
    }
    /// The container is not open and the VG misses a PV: the one inside it.
    fn reboot_with_container_closed(&self, container: &str) -> bool {
        self.snap.mapping_over(container).is_none()
            && self.snap.pvs_of(&self.l.vg).any(|p| p.missing)
    }

    /// What the spare carries that would be destroyed, if anything.
    fn spare_contents(&self) -> Option<String> {
        let spare = &self.l.spare;
        if let Some(d) = self.snap.disks.iter().find(|d| &d.path == spare)
            && let Some(t) = &d.partition_table
        {
            return Some(format!(
                "a {} partition table with {} partition(s)",
                t.kind,
                d.partitions.len()
            ));
        }
        self.snap
            .signature(spare)
            .map(|s| format!("a signature of type {}", s.kind))
    }
}

pub fn plan(snap: &Snapshot, l: &Layout, choices: &Choices) -> Result<Ladder, Refusal> {
    match l.strategy {
        super::choices::Strategy::SpareReturn => spare_return(&Facts { snap, l }, choices),
        super::choices::Strategy::SpareKeep => spare_keep(&Facts { snap, l }, choices),
    }
}

fn backup_dir_file(choices: &Choices, name: &str) -> Option<String> {
    choices.header_backup.as_ref().map(|h| {
        let dir = std::path::Path::new(h)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into());
        format!("{dir}/{name}")
    })
}

/// The stages of the first half, shared by both strategies' starts: clear
/// the spare if agreed, mark the VG.
fn fresh_start(f: &Facts, choices: &Choices, steps: &mut Vec<Step>) -> Result<(), Refusal> {
    if let Some(found) = f.spare_contents() {
        if !choices.wipe_spare {
            return Err(Refusal::SpareNotEmpty {
                spare: f.l.spare.clone(),
                found,
            });
        }
        steps.push(wipe(&f.l.spare, &found));
    }
    if !f.tagged() {
        steps.push(tag_vg(f.l));
    }
    Ok(())
}

fn spare_return(f: &Facts, choices: &Choices) -> Result<Ladder, Refusal> {
    let l = f.l;
    let (o, s, vg) = (l.original.as_str(), l.spare.as_str(), l.vg.as_str());
    let m = l.mapper_path();
    let container_bytes = f.snap.device_size(o).unwrap_or(0);

    // Stage numbers follow the seed procedure; see the README's step list.
    let stage: u32;
    let mut resumed = None;
    let mut steps = Vec::new();
    let mut reopen = false;
    if f.sig(o) == Some("crypto_LUKS") && f.reboot_with_container_closed(o) {
        // After a reboot: the VG's PV inside the container shows as missing.
        // Open it before anything activates the VG, then carry on.
        reopen = true;
        stage = if f.in_vg(s) {
            if f.moving_off(s) || f.alloc(s) > 0 {
                14
            } else {
                15
            }
        } else if f.orphan_pv(s) {
            16
        } else {
            17
        };
        resumed = Some(format!(
            "{o} is a closed LUKS container holding part of {vg}"
        ));
    } else if f.sig(o) == Some("crypto_LUKS") {
        stage = match f.crypt_pv() {
            None if f.snap.mapping_over(o).is_none() => 10,
            None => 12,
            Some((_, false)) => 13,
            Some(_) if f.in_vg(s) => {
                if f.moving_off(s) || f.alloc(s) > 0 {
                    14
                } else {
                    15
                }
            }
            Some(_) if f.orphan_pv(s) => 16,
            Some(_) => 17,
        };
        resumed = Some(format!("{o} is already a LUKS container"));
    } else if f.sig(o) == Some("LVM2_member") && f.in_vg(o) {
        stage = if f.moving_off(o) || f.alloc(o) > 0 {
            if f.in_vg(s) {
                4
            } else if f.orphan_pv(s) && f.tagged() {
                3
            } else {
                // An orphan PV on the spare that no run of ours made is a
                // signature like any other: wiping it needs --wipe-spare.
                1
            }
        } else {
            5
        };
        if stage > 1 || f.tagged() {
            resumed = Some(format!("{s} has already joined {vg}"));
        }
    } else if f.sig(o) == Some("LVM2_member") && f.orphan_pv(o) {
        stage = 6;
        resumed = Some(format!("{o} has already left {vg}"));
    } else if f.sig(o).is_none() && f.tagged() && !f.in_vg(o) {
        let retyped = f
            .snap
            .partition(o)
            .and_then(|p| p.type_id.as_deref())
            .is_none_or(|t| t == "0x83" || t.eq_ignore_ascii_case(LINUX_DATA_GUID));
        stage = if retyped { 9 } else { 8 };
        resumed = Some(format!(
            "{o} has already been emptied and its LVM label removed"
        ));
    } else {
        return Err(Refusal::UnknownState {
            detail: format!(
                "{o} carries {} and is not a PV of {vg}",
                f.sig(o)
                    .map(|k| format!("a {k} signature"))
                    .unwrap_or("nothing".into())
            ),
        });
    }

    if stage <= 1 {
        fresh_start(f, choices, &mut steps)?;
    } else if !f.tagged() && stage <= 7 {
        // Moved part-way by hand or by an older run: mark the VG before the
        // original loses the label it could otherwise be recognised by.
        steps.push(tag_vg(l));
    }
    if stage <= 4 {
        let spare_bytes = f.snap.device_size(s).unwrap_or(0);
        capacity::check(f.snap, l, container_bytes, Some(spare_bytes))?;
    } else if stage <= 13 {
        capacity::check(f.snap, l, container_bytes, None)?;
    }
    if reopen {
        steps.push(luks_open(o, &l.luks_uuid, &l.mapper_name));
    }
    if f.snap.lvs_of(vg).any(|lv| lv.is_public() && !lv.active) {
        steps.push(activate(vg, f.snap.pvmove_in(vg).is_some()));
    }
    let part = f.snap.partition(o);
    let disk = f.snap.disk_of(o);
    let gpt = disk
        .and_then(|d| d.partition_table.as_ref())
        .is_some_and(|t| t.kind == "gpt");
    let sector = disk.map(|d| d.logical_sector_size).unwrap_or(512).max(512);
    let all: Vec<(u32, Step)> = [
        (
            2,
            pvcreate(
                s,
                "the spare holds the data while the original partition is encrypted",
            ),
        ),
        (3, vgextend(vg, s)),
        (
            4,
            if f.moving_off(o) {
                resume_pvmove(vg, o)
            } else {
                pvmove(
                    vg,
                    o,
                    s,
                    "empties the original partition so it can be encrypted",
                )
            },
        ),
        (5, vgreduce(vg, o)),
        (
            6,
            vg_backup(vg, backup_dir_file(choices, &format!("{vg}.vg"))),
        ),
        (7, pvremove(o)),
    ]
    .into_iter()
    .chain(match (part, disk) {
        (Some(p), Some(d)) => Some((8, retype(&d.path, p.number, gpt, o))),
        _ => None,
    })
    .chain([
        (9, luks_format(o, &l.luks_uuid, &choices.luks, sector)),
        (10, header_backup(o, choices.header_backup.clone())),
        (11, luks_open(o, &l.luks_uuid, &l.mapper_name)),
        (
            12,
            pvcreate(&m, "the VG's data will live inside the encrypted container"),
        ),
        (13, vgextend(vg, &m)),
        (
            14,
            if f.moving_off(s) {
                resume_pvmove(vg, s)
            } else {
                pvmove(
                    vg,
                    s,
                    &m,
                    "moves the data back, into the encrypted container",
                )
            },
        ),
        (15, vgreduce(vg, s)),
        (16, pvremove(s)),
    ])
    .collect();
    steps.extend(all.into_iter().filter(|(n, _)| *n >= stage).map(|(_, s)| s));
    Ok(Ladder { steps, resumed })
}

fn spare_keep(f: &Facts, choices: &Choices) -> Result<Ladder, Refusal> {
    let l = f.l;
    let (o, s, c, vg) = (
        l.original.as_str(),
        l.spare.as_str(),
        l.container.as_str(),
        l.vg.as_str(),
    );
    let m = l.mapper_path();
    let spare_disk = f.snap.disks.iter().find(|d| d.path == s);
    let boot = l.spare_boot.as_ref();
    let stage: u32;
    let mut resumed = None;
    let mut steps = Vec::new();
    let mut reopen = false;
    if f.sig(c) == Some("crypto_LUKS") && f.reboot_with_container_closed(c) {
        reopen = true;
        stage = if f.in_vg(o) {
            if f.moving_off(o) || f.alloc(o) > 0 {
                8
            } else {
                9
            }
        } else if f.orphan_pv(o) {
            10
        } else {
            11
        };
        resumed = Some(format!(
            "{c} is a closed LUKS container holding part of {vg}"
        ));
    } else if f.sig(c) == Some("crypto_LUKS") {
        stage = match f.crypt_pv() {
            None if f.snap.mapping_over(c).is_none() => 4,
            None => 6,
            Some((_, false)) => 7,
            Some(_) if f.in_vg(o) => {
                if f.moving_off(o) || f.alloc(o) > 0 {
                    8
                } else {
                    9
                }
            }
            Some(_) if f.orphan_pv(o) => 10,
            Some(_) => 11,
        };
        resumed = Some(format!("{c} is already a LUKS container"));
    } else if f.tagged() && f.snap.partition(c).is_some() && f.sig(c).is_none() {
        stage = 3;
        resumed = Some(format!("{s} has already been partitioned"));
    } else if f.in_vg(o) {
        stage = 0;
        if f.tagged() {
            resumed = Some(format!("the migration of {vg} has already begun"));
        }
        fresh_start(f, choices, &mut steps)?;
    } else {
        return Err(Refusal::UnknownState {
            detail: format!("{o} is not a PV of {vg} and {c} holds no LUKS container"),
        });
    }
    // Until the spare is partitioned (whatever it carries now is wiped), the
    // container's size follows from the layout luksify gives it.
    let container_bytes = match (boot, spare_disk) {
        (Some(b), Some(_)) if stage <= 2 => b.container_bytes(),
        _ => f.snap.device_size(c).unwrap_or(0),
    };
    if stage <= 7 {
        capacity::check(f.snap, l, container_bytes, None).map_err(|e| match e {
            // A larger spare would not help: the table does not reach further.
            Refusal::ContainerTooSmall {
                have_extents,
                need_extents,
                short_mib,
                lvs,
                ..
            } if boot.is_some_and(|b| b.unreachable_bytes() > 0) => {
                let b = boot.expect("checked");
                Refusal::SpareKeepDosLimit {
                    spare: s.into(),
                    spare_gib: b.disk_bytes >> 30,
                    original_disk: f
                        .snap
                        .disk_of(o)
                        .map(|d| d.path.clone())
                        .unwrap_or_else(|| o.into()),
                    reach_gib: b.reachable_bytes() >> 30,
                    sector: b.sector_bytes,
                    have_extents,
                    need_extents,
                    short_mib,
                    lvs,
                }
            }
            Refusal::ContainerTooSmall {
                have_extents,
                need_extents,
                ..
            } => Refusal::SpareTooSmall {
                spare: s.into(),
                have_extents,
                need_extents,
                extent_mib: f.snap.vg(vg).map(|v| v.extent_size >> 20).unwrap_or(4),
                need_mib: capacity::spare_keep_min_mib(
                    f.snap,
                    vg,
                    boot.map(|b| b.overhead_bytes()).unwrap_or(0),
                    l.luks_header_bytes,
                ),
            },
            e => e,
        })?;
    }
    if reopen {
        steps.push(luks_open(c, &l.luks_uuid, &l.mapper_name));
    }
    if f.snap.lvs_of(vg).any(|lv| lv.is_public() && !lv.active) {
        steps.push(activate(vg, f.snap.pvmove_in(vg).is_some()));
    }
    let sector = f
        .snap
        .disk_of(o)
        .map(|d| d.logical_sector_size)
        .unwrap_or(512)
        .max(512);
    let all: Vec<(u32, Step)> = boot
        .map(|b| (2, partition_disk(b, c)))
        .into_iter()
        .chain([
            (3, luks_format(c, &l.luks_uuid, &choices.luks, sector)),
            (4, header_backup(c, choices.header_backup.clone())),
            (5, luks_open(c, &l.luks_uuid, &l.mapper_name)),
            (
                6,
                pvcreate(&m, "the VG's data will live inside the encrypted container"),
            ),
            (7, vgextend(vg, &m)),
            (
                8,
                if f.moving_off(o) {
                    resume_pvmove(vg, o)
                } else {
                    pvmove(vg, o, &m, "moves the data into the encrypted container")
                },
            ),
            (9, vgreduce(vg, o)),
            (
                10,
                vg_backup(vg, backup_dir_file(choices, &format!("{vg}.vg"))),
            ),
            (10, pvremove(o)),
        ])
        .collect();
    steps.extend(all.into_iter().filter(|(n, _)| *n >= stage).map(|(_, s)| s));
    Ok(Ladder { steps, resumed })
}

//! Snapshot + Choices → Plan, or a Refusal. Pure: no I/O, so every state of a
//! migration can be tested from a saved snapshot.

pub mod boot_room;
pub mod capacity;
pub mod choices;
pub mod ladder;
pub mod layout;
pub mod refusal;
pub mod safety;
pub mod spare_boot;
pub mod status;
pub mod step;
pub mod steps;
pub mod target_steps;

pub use choices::{Choices, LuksOptions, LuksVersion, Pbkdf, Strategy};
pub use refusal::Refusal;
pub use step::{Action, Check, FileDiff, Plan, Step};

use crate::probe::{SNAPSHOT_FORMAT, Snapshot};

/// Plans what remains to be done for these choices on the disks as they are.
pub fn plan(snap: &Snapshot, choices: &Choices) -> Result<Plan, Refusal> {
    if snap.format != SNAPSHOT_FORMAT {
        return Err(Refusal::UnknownState {
            detail: format!(
                "the snapshot has format {} but this luksify reads format {SNAPSHOT_FORMAT}; probe again",
                snap.format
            ),
        });
    }
    let l = layout::resolve(snap, choices)?;
    safety::check(snap, &l, choices)?;
    let ladder = ladder::plan(snap, &l, choices)?;
    let boot = crate::boot::preview::planned_edits(snap, &l).map_err(|e| Refusal::BootConfig {
        detail: e.to_string(),
    })?;
    let mut steps = ladder.steps;
    steps.extend(target_steps::steps(snap, &l, boot));
    steps.push(steps::untag_vg(&l));
    Ok(Plan {
        strategy: l.strategy,
        vg: l.vg.clone(),
        original_pv: l.original.clone(),
        spare: l.spare.clone(),
        container: l.container.clone(),
        luks_uuid: l.luks_uuid.clone(),
        mapper_name: l.mapper_name.clone(),
        resumed: ladder.resumed,
        notes: notes(&l, choices),
        steps,
    })
}

/// The smallest spare `--strategy spare-keep` could use here, in MiB, by the
/// planner's own rule (the layout it would give the spare: /boot like the
/// original's, the partition table's own room, the LUKS header). None when
/// no disk here gets that far in planning (spare-keep is refused here for
/// another reason, which planning names).
pub fn spare_keep_min_mib(snap: &Snapshot, choices: &Choices) -> Option<u64> {
    snap.disks.iter().find_map(|d| {
        let trial = Choices {
            spare: Some(d.path.clone()),
            strategy: Some(Strategy::SpareKeep),
            ..choices.clone()
        };
        let l = layout::resolve(snap, &trial).ok()?;
        let b = l.spare_boot.as_ref()?;
        Some(capacity::spare_keep_min_mib(
            snap,
            &l.vg,
            b.overhead_bytes(),
            l.luks_header_bytes,
        ))
    })
}

fn notes(l: &layout::Layout, choices: &Choices) -> Vec<String> {
    let (vg, lv) = l.target.root_lv.split_once('/').unwrap_or_default();
    let mut n = vec![format!(
        "The logical volumes keep their names (/dev/{vg}/{lv}, /dev/mapper/{}-{}) and filesystem UUIDs, so /etc/fstab needs no change for them{}.",
        vg.replace('-', "--"),
        lv.replace('-', "--"),
        if l.spare_boot.is_some() {
            "; only its /boot line changes, to the spare's new /boot"
        } else {
            ""
        }
    )];
    if choices.header_backup.is_none() {
        n.push("No --header-backup PATH was given: `migrate` will ask for one (on a disk that is not being changed) before it writes anything.".into());
    }
    match l.strategy {
        Strategy::SpareReturn => n.push(format!(
            "At the end {} is empty again and can be detached.",
            l.spare
        )),
        Strategy::SpareKeep => {
            let boot = l.spare_boot.as_ref();
            n.push(format!(
                "At the end the data lives on {} and it boots on its own: its own /boot ({}) and GRUB. {} is no longer part of {}; the original /boot{} and the original disk's GRUB are left as they were (they would boot the old, now unusable initramfs).",
                l.spare,
                boot.map(|b| b.boot_part.as_str()).unwrap_or("?"),
                l.original,
                l.vg,
                boot.and_then(|b| b.old_device.as_deref())
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
            n.push(format!(
                "Boot from {}: detach the original disk, or put {} first in the firmware's boot order.",
                l.spare, l.spare
            ));
            if let Some(b) = boot.filter(|b| b.unreachable_bytes() > 0) {
                n.push(format!(
                    "{} gets a DOS partition table like the original disk's (the kind this machine boots from), and a DOS table reaches only the first {} GiB of a disk (2^32 sectors of {} bytes): the container ends there, and the last {} of {} stay unpartitioned and unused. Using them would need a GPT partition table with a BIOS boot partition for GRUB, which luksify does not make from a DOS original.",
                    l.spare,
                    b.reachable_bytes() >> 30,
                    b.sector_bytes,
                    match b.unreachable_bytes() {
                        u if u >= 1 << 30 => format!("{} GiB", u >> 30),
                        u => format!("{} MiB", u.div_ceil(1 << 20)),
                    },
                    l.spare
                ));
            }
        }
    }
    n
}

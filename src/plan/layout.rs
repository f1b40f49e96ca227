//! Who is who in this migration: the VG, the PV being encrypted or emptied,
//! the spare, the device that becomes the container, and its UUID. Resolved
//! from probed names and UUIDs, and from the tags an earlier run left in the
//! VG metadata, never from remembered kernel names (the seed's bug).

use sha2::{Digest, Sha256};

use super::capacity::MIB;
use super::choices::{Choices, Strategy};
use super::refusal::Refusal;
use super::spare_boot::{self, SpareBoot};
use crate::probe::{Pv, Snapshot, TargetOs};

pub const TAG_PREFIX: &str = "luksify:";

#[derive(Debug, Clone, PartialEq)]
pub struct Layout<'a> {
    pub strategy: Strategy,
    pub vg: String,
    pub original: String,
    pub spare: String,
    /// The spare is a whole disk that gets a partition table (spare-keep):
    /// /boot, then the container (see [`SpareBoot`]).
    pub spare_needs_partition: bool,
    pub container: String,
    pub luks_uuid: String,
    pub luks_header_bytes: u64,
    pub mapper_name: String,
    pub target: &'a TargetOs,
    /// Tags that mark the VG as being migrated; present until the end.
    pub tags: Vec<String>,
    /// spare-keep: how the spare is made to boot on its own.
    pub spare_boot: Option<SpareBoot>,
}

impl Layout<'_> {
    pub fn mapper_path(&self) -> String {
        format!("/dev/mapper/{}", self.mapper_name)
    }
}

pub fn resolve<'a>(snap: &'a Snapshot, choices: &Choices) -> Result<Layout<'a>, Refusal> {
    let target = snap.target.as_ref().ok_or_else(|| Refusal::NoRootLv {
        detail: no_root_detail(snap),
    })?;
    let root_vg = target
        .root_lv
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let vg_name = choices.vg.clone().unwrap_or(root_vg.clone());
    let vg = snap.vg(&vg_name).ok_or_else(|| Refusal::NoSuchVg {
        vg: vg_name.clone(),
        known: snap
            .lvm
            .vgs
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    if vg_name != root_vg {
        return Err(Refusal::NoRootLv {
            detail: format!(
                " in volume group {vg_name} (the root found is {})",
                target.root_lv
            ),
        });
    }
    let spare = choices
        .spare
        .clone()
        .ok_or_else(|| Refusal::MissingChoice {
            what: "a spare disk to hold the data while the original is encrypted".into(),
            flag: "--spare DEVICE".into(),
        })?;
    if snap.device_size(&spare).is_none() {
        return Err(Refusal::SpareNotFound {
            spare,
            known: snap
                .disks
                .iter()
                .map(|d| d.path.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let tagged_strategy = vg
        .tags
        .iter()
        .find_map(|t| match t.strip_prefix(TAG_PREFIX) {
            Some("spare-return") => Some(Strategy::SpareReturn),
            Some("spare-keep") => Some(Strategy::SpareKeep),
            _ => None,
        });
    let strategy = match (choices.strategy, tagged_strategy) {
        (Some(c), Some(t)) if c != t => {
            return Err(Refusal::UnknownState {
                detail: format!(
                    "volume group {vg_name} is half-way through a {} migration but --strategy {} was given; run again with --strategy {}",
                    t.name(),
                    c.name(),
                    t.name()
                ),
            });
        }
        (Some(c), _) => c,
        (None, Some(t)) => t,
        (None, None) => {
            return Err(Refusal::MissingChoice {
                what: "a strategy".into(),
                flag: "--strategy spare-return|spare-keep".into(),
            });
        }
    };
    let migrating = vg.tags.iter().any(|t| t.starts_with(TAG_PREFIX));
    if let Some(mv) = snap.pvmove_in(&vg_name).filter(|_| !migrating) {
        return Err(Refusal::ForeignPvmove {
            vg: vg_name.clone(),
            lv: mv.name.clone(),
            source_pv: mv.move_pv.clone().unwrap_or_default(),
        });
    }
    if !migrating
        && snap
            .pv(&spare)
            .is_some_and(|p| p.vg.as_deref() == Some(&vg_name))
    {
        return Err(Refusal::SpareIsOriginal { spare });
    }
    let original = find_original(snap, &vg_name, &vg.tags, &spare)?;
    if spare == original {
        return Err(Refusal::SpareIsOriginal { spare });
    }
    let spare_is_disk = snap.disks.iter().any(|d| d.path == spare);
    if strategy == Strategy::SpareKeep && !spare_is_disk {
        return Err(Refusal::SpareKeepNeedsDisk {
            disk: snap
                .disk_of(&spare)
                .map(|d| d.path.clone())
                .unwrap_or_else(|| "the disk it is on".into()),
            spare,
        });
    }
    let spare_needs_partition = strategy == Strategy::SpareKeep;
    let container = match strategy {
        Strategy::SpareReturn => original.clone(),
        Strategy::SpareKeep => spare_boot::partition_path(
            &spare,
            spare_boot::container_number(spare_boot::label_of(snap, &original) == "gpt"),
        ),
    };
    // An earlier run's record of the original wins: after pvremove a whole-disk
    // PV has nothing left to be recognised by.
    let orig_tag = vg
        .tags
        .iter()
        .find(|t| t.starts_with("luksify:orig-"))
        .cloned()
        .or_else(|| identity_tag(snap, &original));
    if !migrating && snap.partition(&original).is_none() {
        return Err(Refusal::WholeDiskPv { device: original });
    }
    let derived = derive_uuid(
        &vg.uuid,
        &format!(
            "{}:{}",
            strategy.name(),
            orig_tag.clone().unwrap_or_default()
        ),
    );
    // luksify formats with the derived UUID; any other LUKS header here was
    // made by someone else and may hold their data.
    let luks_uuid = match snap.signature(&container) {
        Some(s) if s.kind == "crypto_LUKS" => {
            let found = s.uuid.clone().unwrap_or_default();
            if found != derived {
                return Err(Refusal::UnknownState {
                    detail: format!(
                        "{container} holds a LUKS container (UUID {found}) that this migration did not make; luksify will not touch it. If it is yours to destroy, wipe it (`wipefs --all {container}`) and run luksify again"
                    ),
                });
            }
            found
        }
        _ => derived,
    };
    let mapper_name = choices
        .mapper_name
        .clone()
        .or_else(|| snap.mapping_over(&container).map(|m| m.name.clone()))
        .unwrap_or_else(|| format!("luks-{luks_uuid}"));
    check_pvs_covered(snap, &vg_name, &original, &spare, &container, &mapper_name)?;
    let spare_boot = match strategy {
        Strategy::SpareReturn => None,
        Strategy::SpareKeep => {
            let uuid = spare_boot::boot_uuid(&vg.uuid, orig_tag.as_deref().unwrap_or_default());
            let b = spare_boot::resolve(snap, target, &original, &spare, uuid)?;
            // A /boot filesystem on the spare that is not the one luksify
            // makes (by its UUID) is someone's data, once the spare is ours.
            if migrating
                && let Some(sig) = snap.signature(&b.boot_part)
                && sig.uuid.as_deref() != Some(b.uuid.as_str())
            {
                return Err(Refusal::UnknownState {
                    detail: format!(
                        "{} carries a {} signature that this migration did not make; luksify will not format over it. If it is yours to destroy, wipe it (`wipefs --all {}`) and run luksify again",
                        b.boot_part, sig.kind, b.boot_part
                    ),
                });
            }
            Some(b)
        }
    };
    let mut tags = vec![format!("{TAG_PREFIX}{}", strategy.name())];
    tags.extend(orig_tag);
    Ok(Layout {
        strategy,
        vg: vg_name,
        original,
        spare,
        spare_needs_partition,
        container,
        luks_uuid,
        luks_header_bytes: choices.luks.header_bytes(),
        mapper_name,
        target,
        tags,
        spare_boot,
    })
}

/// Every PV of the VG must be the original, the spare or the PV inside the
/// container. A PV LVM cannot find is allowed only while the container is
/// closed (after a reboot): it is the one inside it.
fn check_pvs_covered(
    snap: &Snapshot,
    vg: &str,
    original: &str,
    spare: &str,
    container: &str,
    mapper_name: &str,
) -> Result<(), Refusal> {
    let mapping = snap.crypt_mappings.iter().find(|m| m.name == mapper_name);
    let container_closed = mapping.is_none()
        && snap
            .signature(container)
            .is_some_and(|s| s.kind == "crypto_LUKS");
    let mut missing = 0;
    let mut others = Vec::new();
    for pv in snap.pvs_of(vg) {
        let ours = pv.path == original
            || pv.path == spare
            || mapping
                .is_some_and(|m| pv.path == m.path || pv.path == format!("/dev/{}", m.kernel_name));
        if ours {
            continue;
        }
        if pv.missing && container_closed {
            missing += 1;
            continue;
        }
        others.push(if pv.missing {
            format!("a missing PV (UUID {})", pv.uuid)
        } else {
            pv.path.clone()
        });
    }
    if missing > 1 {
        others.push(format!("{missing} missing PVs"));
    }
    if others.is_empty() {
        Ok(())
    } else {
        Err(Refusal::UncoveredPvs {
            vg: vg.into(),
            pvs: others.join(", "),
        })
    }
}

fn no_root_detail(snap: &Snapshot) -> String {
    let inactive: Vec<String> = snap
        .lvm
        .lvs
        .iter()
        .filter(|l| l.is_public() && !l.active)
        .map(|l| l.full_name())
        .collect();
    let mut d = if inactive.is_empty() {
        String::new()
    } else {
        format!(" (inactive: {})", inactive.join(", "))
    };
    for (lv, dev) in &snap.unreplayed_journals {
        d.push_str(&format!(
            "; the journal of {lv} needs recovery (the machine lost power or was not shut down cleanly), and luksify reads it without replaying the journal, so its newest files may be missing: replay it with `e2fsck -p {dev}`, then run luksify again"
        ));
    }
    d
}

/// The device an earlier run recorded in the VG's tags as the one being
/// encrypted, if it is attached.
pub fn recorded_original(snap: &Snapshot, tags: &[String]) -> Option<String> {
    tags.iter()
        .any(|t| t.starts_with("luksify:orig-"))
        .then(|| find_original(snap, "", tags, "").ok())
        .flatten()
}

/// The PV being migrated: from the VG's tags when an earlier run recorded it,
/// else the one PV of the VG that is neither the spare nor already encrypted.
fn find_original(
    snap: &Snapshot,
    vg: &str,
    tags: &[String],
    spare: &str,
) -> Result<String, Refusal> {
    for t in tags {
        if let Some(pu) = t.strip_prefix("luksify:orig-part=") {
            let p = snap
                .disks
                .iter()
                .flat_map(|d| d.partitions.iter())
                .find(|p| {
                    p.part_uuid
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(pu))
                });
            return p.map(|p| p.path.clone()).ok_or_else(|| Refusal::UnknownState {
                detail: format!(
                    "volume group {vg} records that partition PARTUUID={pu} is being encrypted, but no such partition is attached"
                ),
            });
        }
        if let Some(u) = t.strip_prefix("luksify:orig-pv=") {
            if let Some(pv) = snap.lvm.pvs.iter().find(|p| p.uuid == u) {
                return Ok(pv.path.clone());
            }
            return Err(Refusal::UnknownState {
                detail: format!(
                    "volume group {vg} records that PV {u} is being encrypted, but it is no longer a PV and has no partition UUID to find it by"
                ),
            });
        }
    }
    let crypt_pvs: Vec<String> = snap
        .crypt_mappings
        .iter()
        .filter_map(|m| snap.pv_on_mapping(m).map(|p| p.path.clone()))
        .collect();
    let candidates: Vec<&str> = snap
        .pvs_of(vg)
        .filter(|p| p.path != spare && !crypt_pvs.contains(&p.path))
        .map(|p| p.path.as_str())
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Refusal::UnknownState {
            detail: format!(
                "volume group {vg} has no unencrypted PV left and no luksify migration recorded on it: it is already encrypted, nothing is left to do"
            ),
        }),
        many => Err(several_pvs(snap, vg, many)),
    }
}

/// The refusal for a VG spread over several plain PVs, with the commands
/// that gather it on the PV that leaves the least to move among those with
/// room for the others' extents.
fn several_pvs(snap: &Snapshot, vg: &str, paths: &[&str]) -> Refusal {
    let pvs: Vec<&Pv> = paths.iter().filter_map(|p| snap.pv(p)).collect();
    let used = |p: &Pv| p.size - p.free;
    let described: Vec<String> = pvs
        .iter()
        .map(|p| {
            format!(
                "{} with {} of {} MiB allocated",
                p.path,
                used(p) / MIB,
                p.size / MIB
            )
        })
        .collect();
    let total_used: u64 = pvs.iter().map(|p| used(p)).sum();
    let keep = pvs
        .iter()
        .filter(|k| total_used - used(k) <= k.free)
        .max_by_key(|k| used(k));
    let advice = match keep {
        Some(keep) => {
            let mut cmds = Vec::new();
            for o in pvs.iter().filter(|p| p.path != keep.path) {
                cmds.push(format!("pvmove {} {}", o.path, keep.path));
                cmds.push(format!("vgreduce {vg} {}", o.path));
            }
            format!(
                "Gather its extents on {} first ({} MiB to move, {} MiB free there): `{}`; then run luksify again",
                keep.path,
                (total_used - used(keep)) / MIB,
                keep.free / MIB,
                cmds.join(" && ")
            )
        }
        None => format!(
            "No PV has room for the others' extents ({}): shrink logical volumes or grow a PV until one can hold them all, gather them there with pvmove and vgreduce, then run luksify again",
            pvs.iter()
                .map(|k| format!(
                    "{} has {} MiB free for {} MiB",
                    k.path,
                    k.free / MIB,
                    (total_used - used(k)) / MIB
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Refusal::SeveralPvs {
        vg: vg.into(),
        count: paths.len(),
        pvs: described.join(", "),
        advice,
    }
}

fn identity_tag(snap: &Snapshot, original: &str) -> Option<String> {
    if let Some(pu) = snap.partition(original).and_then(|p| p.part_uuid.clone()) {
        return Some(format!("{TAG_PREFIX}orig-part={pu}"));
    }
    snap.pv(original)
        .map(|p| format!("{TAG_PREFIX}orig-pv={}", p.uuid))
}

/// The kernel names partitions `sda1` but `nvme0n1p1` and `mmcblk0p1`.
pub fn first_partition_path(disk: &str) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p1")
    } else {
        format!("{disk}1")
    }
}

/// A UUID derived from the VG and the container's identity, so `plan` and
/// the `migrate` that follows show the same UUID (crypttab, kernel arguments)
/// before the container exists. RFC 9562 version 8 (custom) layout.
pub fn derive_uuid(vg_uuid: &str, device_identity: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"luksify container\0");
    h.update(vg_uuid.as_bytes());
    h.update(b"\0");
    h.update(device_identity.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names() {
        assert_eq!(first_partition_path("/dev/sdb"), "/dev/sdb1");
        assert_eq!(first_partition_path("/dev/nvme1n1"), "/dev/nvme1n1p1");
    }

    #[test]
    fn derived_uuid_is_stable_and_well_formed() {
        let a = derive_uuid("vgu", "a1b2c3d4-02");
        assert_eq!(a, derive_uuid("vgu", "a1b2c3d4-02"));
        assert_ne!(a, derive_uuid("vgu", "a1b2c3d4-03"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
    }
}

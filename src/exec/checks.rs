//! Evaluates a step's expected facts against a fresh snapshot of the disks.

use crate::plan::Check;
use crate::probe::Snapshot;

/// Returns a description of every expectation that does not hold.
pub fn unmet(snap: &Snapshot, checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|&c| !holds(snap, c))
        .map(describe)
        .collect()
}

fn crypt_pv<'a>(snap: &'a Snapshot, path: &str) -> Option<&'a crate::probe::Pv> {
    snap.pv(path).or_else(|| {
        let name = path.strip_prefix("/dev/mapper/")?;
        let m = snap.crypt_mappings.iter().find(|m| m.name == name)?;
        snap.pv_on_mapping(m)
    })
}

pub fn holds(snap: &Snapshot, c: &Check) -> bool {
    match c {
        Check::PvInVg { pv, vg } => crypt_pv(snap, pv).is_some_and(|p| p.vg.as_deref() == Some(vg)),
        Check::PvNotInVg { pv, vg } => {
            crypt_pv(snap, pv).is_none_or(|p| p.vg.as_deref() != Some(vg))
        }
        Check::IsPv { device } => crypt_pv(snap, device).is_some(),
        Check::NotPv { device } => crypt_pv(snap, device).is_none(),
        Check::PvEmpty { pv } => crypt_pv(snap, pv).is_none_or(|p| p.pe_alloc_count == 0),
        Check::NoPvmove { vg } => snap.pvmove_in(vg).is_none(),
        Check::NoSignature { device } => {
            snap.signature(device).is_none()
                && snap
                    .disks
                    .iter()
                    .find(|d| &d.path == device)
                    .is_none_or(|d| d.partition_table.is_none())
        }
        Check::IsLuks { device, uuid } => snap
            .signature(device)
            .is_some_and(|s| s.kind == "crypto_LUKS" && s.uuid.as_deref() == Some(uuid)),
        Check::HasFilesystem { device, uuid } => snap
            .signature(device)
            .is_some_and(|s| s.kind.starts_with("ext") && s.uuid.as_deref() == Some(uuid)),
        Check::MappingOpen { name, device } => snap
            .crypt_mappings
            .iter()
            .any(|m| &m.name == name && m.backing_device.as_deref() == Some(device)),
        Check::VgTagged { vg, tag } => snap.vg(vg).is_some_and(|v| v.tags.contains(tag)),
        Check::VgNotTagged { vg, tag } => snap.vg(vg).is_some_and(|v| !v.tags.contains(tag)),
        Check::AllLvsActive { vg } => snap.lvs_of(vg).filter(|l| l.is_public()).all(|l| l.active),
    }
}

fn describe(c: &Check) -> String {
    match c {
        Check::PvInVg { pv, vg } => format!("{pv} should be a PV of {vg}"),
        Check::PvNotInVg { pv, vg } => format!("{pv} should no longer be in {vg}"),
        Check::IsPv { device } => format!("{device} should be an LVM PV"),
        Check::NotPv { device } => format!("{device} should no longer be an LVM PV"),
        Check::PvEmpty { pv } => format!("{pv} should hold no allocated extents"),
        Check::NoPvmove { vg } => format!("no pvmove should be left in {vg}"),
        Check::NoSignature { device } => format!("{device} should carry no signature"),
        Check::IsLuks { device, uuid } => format!("{device} should be LUKS with UUID {uuid}"),
        Check::HasFilesystem { device, uuid } => {
            format!("{device} should hold a filesystem with UUID {uuid}")
        }
        Check::MappingOpen { name, device } => {
            format!("/dev/mapper/{name} should be open on {device}")
        }
        Check::VgTagged { vg, tag } => format!("{vg} should carry tag {tag}"),
        Check::VgNotTagged { vg, tag } => format!("{vg} should no longer carry tag {tag}"),
        Check::AllLvsActive { vg } => format!("every LV of {vg} should be active"),
    }
}

//! Extent arithmetic: will the data fit where it is going? The seed never
//! asked; a LUKS container is smaller than its partition by the header.

use super::layout::Layout;
use super::refusal::Refusal;
use crate::probe::Snapshot;
use crate::probe::snapshot::Pv;

/// LVM's default offset of the first extent on a new PV.
pub const NEW_PV_PE_START: u64 = 1 << 20;
pub(super) const MIB: u64 = 1 << 20;

/// Extents allocated to the VG's volumes: everything that must end up inside
/// the container. The temporary pvmove mirror is not counted twice.
pub fn allocated_extents(snap: &Snapshot, vg: &str) -> u64 {
    snap.lvs_of(vg)
        .filter(|lv| !lv.is_pvmove())
        .flat_map(|lv| lv.segments.iter())
        .map(|s| s.size_pe)
        .sum()
}

/// Extents a new PV of `bytes` would offer.
pub fn extents_in(bytes: u64, extent_size: u64) -> u64 {
    bytes.saturating_sub(NEW_PV_PE_START) / extent_size.max(1)
}

/// Extents `pv` offers a VG of `extent_size`. An orphan PV (made by
/// pvcreate, in no VG yet) reports pe_count 0: LVM only divides a PV into
/// extents when it joins a VG, so count them from its size.
pub fn pv_extents(pv: &Pv, extent_size: u64) -> u64 {
    if pv.vg.is_some() && pv.pe_count > 0 {
        return pv.pe_count;
    }
    let bytes = if pv.dev_size > 0 {
        pv.dev_size
    } else {
        pv.size
    };
    let start = if pv.pe_start > 0 {
        pv.pe_start
    } else {
        NEW_PV_PE_START
    };
    bytes.saturating_sub(start) / extent_size.max(1)
}

/// Size of the one partition sfdisk creates on a whole disk: it starts at
/// 1 MiB, and GPT keeps its backup table at the end.
pub fn whole_disk_partition_bytes(disk_bytes: u64, gpt: bool) -> u64 {
    let end_reserve = if gpt { MIB } else { 0 };
    disk_bytes.saturating_sub(MIB + end_reserve) / MIB * MIB
}

/// The smallest spare on which spare-keep's layout holds the allocated
/// extents of `vg`, in MiB: the extents, the LUKS header, LVM's label area and
/// what the layout puts beside the container (`overhead_bytes`: see
/// [`super::spare_boot::SpareBoot::overhead_bytes`]), with 2 MiB for rounding.
pub fn spare_keep_min_mib(
    snap: &Snapshot,
    vg: &str,
    overhead_bytes: u64,
    header_bytes: u64,
) -> u64 {
    let e = snap.vg(vg).map(|v| v.extent_size).unwrap_or(4 << 20);
    ((allocated_extents(snap, vg) * e + header_bytes + NEW_PV_PE_START + overhead_bytes) >> 20) + 2
}

pub fn check(
    snap: &Snapshot,
    l: &Layout,
    container_bytes: u64,
    spare_bytes: Option<u64>,
) -> Result<(), Refusal> {
    let Some(vg) = snap.vg(&l.vg) else {
        return Ok(());
    };
    let need = allocated_extents(snap, &l.vg);
    let e = vg.extent_size;
    if let Some(spare_bytes) = spare_bytes {
        let have = snap
            .pv(&l.spare)
            .map(|p| pv_extents(p, e))
            .unwrap_or_else(|| extents_in(spare_bytes, e));
        if have < need {
            return Err(Refusal::SpareTooSmall {
                spare: l.spare.clone(),
                have_extents: have,
                need_extents: need,
                extent_mib: e / MIB,
                need_mib: (need * e + NEW_PV_PE_START).div_ceil(MIB),
            });
        }
    }
    let have = snap
        .mapping_over(&l.container)
        .and_then(|m| snap.pv_on_mapping(m))
        .map(|p| pv_extents(p, e))
        .unwrap_or_else(|| extents_in(container_bytes.saturating_sub(l.luks_header_bytes), e));
    if have < need {
        let short = need - have;
        let lvs = snap
            .lvs_of(&l.vg)
            .filter(|lv| lv.is_public())
            .map(|lv| format!("{} is {} MiB", lv.full_name(), lv.size / MIB))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Refusal::ContainerTooSmall {
            device: l.container.clone(),
            have_extents: have,
            need_extents: need,
            short,
            short_mib: (short * e).div_ceil(MIB),
            lvs,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_after_pe_start() {
        assert_eq!(extents_in(1 << 30, 4 << 20), 255);
        assert_eq!(extents_in(0, 4 << 20), 0);
    }

    fn pv(vg: Option<&str>, pe_count: u64) -> Pv {
        Pv {
            path: "/dev/vdb".into(),
            uuid: "u".into(),
            vg: vg.map(String::from),
            size: 1 << 30,
            free: 0,
            pe_start: MIB,
            pe_count,
            pe_alloc_count: 0,
            dev_size: 1 << 30,
            tags: vec![],
            missing: false,
        }
    }

    /// Measured in the VM: right after `pvcreate /dev/vdb` the spare's
    /// report says pv_pe_count 0; a re-plan must not call it too small.
    #[test]
    fn orphan_pv_counts_extents_from_its_size() {
        assert_eq!(pv_extents(&pv(None, 0), 4 << 20), 255);
        assert_eq!(pv_extents(&pv(Some("vg0"), 250), 4 << 20), 250);
    }

    #[test]
    fn partition_of_whole_disk() {
        assert_eq!(whole_disk_partition_bytes(1 << 30, false), (1 << 30) - MIB);
        assert_eq!(
            whole_disk_partition_bytes(1 << 30, true),
            (1 << 30) - 2 * MIB
        );
    }
}

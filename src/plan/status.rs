//! Where a migration stands, derived only from what is on the disks.

use std::fmt::Write;

use serde::Serialize;

use super::layout::TAG_PREFIX;
use crate::probe::Snapshot;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VgStatus {
    pub vg: String,
    /// PVs inside open LUKS containers.
    pub encrypted_pvs: Vec<String>,
    pub plain_pvs: Vec<String>,
    /// The strategy recorded in the VG's tags while a migration is under way.
    pub migrating: Option<String>,
    /// (PV being emptied, percent done) of a pvmove in progress.
    pub pvmove: Option<(String, f64)>,
    pub summary: String,
}

pub fn of(snap: &Snapshot) -> Vec<VgStatus> {
    snap.lvm
        .vgs
        .iter()
        .map(|vg| {
            let mut encrypted = Vec::new();
            let mut plain = Vec::new();
            for pv in snap.pvs_of(&vg.name) {
                let on_crypt = snap
                    .crypt_mappings
                    .iter()
                    .any(|m| snap.pv_on_mapping(m).is_some_and(|p| p.path == pv.path));
                if on_crypt {
                    encrypted.push(pv.path.clone());
                } else {
                    plain.push(pv.path.clone());
                }
            }
            let migrating = vg.tags.iter().find_map(|t| {
                t.strip_prefix(TAG_PREFIX)
                    .filter(|s| *s == "spare-return" || *s == "spare-keep")
                    .map(String::from)
            });
            let pvmove = snap
                .pvmove_in(&vg.name)
                .map(|m| (m.move_pv.clone().unwrap_or_default(), m.copy_percent.unwrap_or(0.0)));
            let summary = match (&migrating, &pvmove) {
                (Some(s), Some((src, pct))) => format!(
                    "{s} migration under way: moving extents off {src}, {pct:.1}% done; run `luksify migrate` with the same choices to resume"
                ),
                (Some(s), None) => format!(
                    "{s} migration under way; run `luksify plan` with the same choices to see the remaining steps"
                ),
                (None, _) if plain.is_empty() && !encrypted.is_empty() => "encrypted: every PV is inside a LUKS container".into(),
                (None, _) if encrypted.is_empty() => "not encrypted".into(),
                (None, _) => "partly encrypted, no luksify migration recorded".into(),
            };
            VgStatus {
                vg: vg.name.clone(),
                encrypted_pvs: encrypted,
                plain_pvs: plain,
                migrating,
                pvmove,
                summary,
            }
        })
        .collect()
}

pub fn text(st: &[VgStatus]) -> String {
    let mut o = String::new();
    if st.is_empty() {
        o.push_str("No LVM volume groups found.\n");
    }
    for s in st {
        let _ = writeln!(o, "{}: {}", s.vg, s.summary);
    }
    o
}

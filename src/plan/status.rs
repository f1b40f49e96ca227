//! Where a migration stands, derived only from what is on the disks.

use std::fmt::Write;

use serde::Serialize;

use super::choices::{Choices, Strategy};
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
    /// The PV being encrypted or emptied, as the VG's tags record it.
    pub original: Option<String>,
    /// What remains, when the disks tell which spare the run was given.
    pub remaining: Option<Remaining>,
    /// Devices that could be the spare, when the disks do not settle it.
    pub spare_candidates: Vec<String>,
    pub summary: String,
}

/// The rest of an interrupted migration, planned from the disks alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remaining {
    pub spare: String,
    pub steps: usize,
    pub next: String,
    /// The `luksify migrate` flags that resume it.
    pub resume_flags: String,
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
            let pvmove = snap.pvmove_in(&vg.name).map(|m| {
                (
                    m.move_pv.clone().unwrap_or_default(),
                    m.copy_percent.unwrap_or(0.0),
                )
            });
            let original = super::layout::recorded_original(snap, &vg.tags);
            let (remaining, spare_candidates) = match migrating.as_deref() {
                Some(m) => rest_of(snap, &vg.name, m, original.as_deref()),
                None => (None, Vec::new()),
            };
            let summary = summary(
                &migrating,
                &pvmove,
                &remaining,
                &spare_candidates,
                &plain,
                &encrypted,
            );
            VgStatus {
                vg: vg.name.clone(),
                encrypted_pvs: encrypted,
                plain_pvs: plain,
                migrating,
                pvmove,
                original,
                remaining,
                spare_candidates,
                summary,
            }
        })
        .collect()
}

fn summary(
    migrating: &Option<String>,
    pvmove: &Option<(String, f64)>,
    remaining: &Option<Remaining>,
    candidates: &[String],
    plain: &[String],
    encrypted: &[String],
) -> String {
    let Some(s) = migrating else {
        let state = if plain.is_empty() && !encrypted.is_empty() {
            "encrypted: every PV is inside a LUKS container"
        } else if encrypted.is_empty() {
            "not encrypted"
        } else {
            "partly encrypted, no luksify migration recorded"
        };
        return match pvmove {
            Some((src, pct)) => format!(
                "{state}; a pvmove not started by luksify is moving extents off {src} ({pct:.1}% done): let it finish (`pvmove` resumes it) before planning a migration"
            ),
            None => state.into(),
        };
    };
    let mut out = format!("{s} migration under way");
    if let Some((src, pct)) = pvmove {
        out.push_str(&format!(": moving extents off {src}, {pct:.1}% done"));
    }
    match remaining {
        Some(r) => out.push_str(&format!(
            "; {} step{} remain{}, next: {}. Resume with `luksify migrate {}`",
            r.steps,
            if r.steps == 1 { "" } else { "s" },
            if r.steps == 1 { "s" } else { "" },
            r.next,
            r.resume_flags
        )),
        None if candidates.is_empty() => out.push_str(
            "; the disks do not show which spare it was given: run `luksify plan --strategy ... --spare DEVICE` with the choices of the interrupted run",
        ),
        None => out.push_str(&format!(
            "; the spare was one of {}: run `luksify plan` with the choices of the interrupted run to see the remaining steps",
            candidates.join(", ")
        )),
    }
    out
}

/// Plans the rest with every device that could be the spare; the spare is
/// known when exactly one of them yields a plan.
fn rest_of(
    snap: &Snapshot,
    vg: &str,
    strategy: &str,
    original: Option<&str>,
) -> (Option<Remaining>, Vec<String>) {
    let strategy = match strategy {
        "spare-keep" => Strategy::SpareKeep,
        _ => Strategy::SpareReturn,
    };
    let original_disk = original
        .and_then(|o| snap.disk_of(o))
        .map(|d| d.path.as_str());
    let devices = snap
        .disks
        .iter()
        .filter(|d| Some(d.path.as_str()) != original_disk)
        .flat_map(|d| {
            std::iter::once(d.path.clone()).chain(d.partitions.iter().map(|p| p.path.clone()))
        });
    let mut found = Vec::new();
    for dev in devices {
        let choices = Choices {
            vg: Some(vg.to_string()),
            spare: Some(dev.clone()),
            strategy: Some(strategy),
            // Only to let the planner through; status never writes it.
            header_backup: Some("/run/luksify/status-placeholder".into()),
            ..Default::default()
        };
        if let Ok(p) = super::plan(snap, &choices) {
            found.push((dev, p));
        }
    }
    // A whole disk and its partition name the same container once the disk
    // is partitioned: the same migration, so the disk (listed first) stands.
    found.dedup_by(|b, a| a.1.container == b.1.container && a.1.steps.len() == b.1.steps.len());
    if let [(spare, p)] = found.as_slice() {
        let rest = Remaining {
            spare: spare.clone(),
            steps: p.steps.len(),
            next: p.steps.first().map(|s| s.title.clone()).unwrap_or_default(),
            resume_flags: format!(
                "--vg {vg} --strategy {} --spare {spare} --header-backup FILE",
                strategy.name()
            ),
        };
        return (Some(rest), Vec::new());
    }
    (None, found.into_iter().map(|(d, _)| d).collect())
}

pub fn text(st: &[VgStatus]) -> String {
    let mut o = String::new();
    if st.is_empty() {
        o.push_str("No LVM volume groups found.\n");
    }
    for s in st {
        let _ = writeln!(o, "{}: {}", s.vg, s.summary);
        if let Some(orig) = &s.original {
            let _ = writeln!(o, "  being encrypted: {orig}");
        }
        if let Some(r) = &s.remaining {
            let _ = writeln!(o, "  spare: {}", r.spare);
        }
    }
    o
}

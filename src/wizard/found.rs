//! What was found, as the wizard shows it before asking anything: every disk
//! with what identifies it physically (model, serial, transport), the volume
//! group with its volumes, which disk holds root, which the live system uses.

use std::fmt::Write;

use crate::probe::Snapshot;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// `1.0 GiB`, `564 MiB`.
pub fn size(b: u64) -> String {
    if b >= GIB {
        format!("{:.1} GiB", b as f64 / GIB as f64)
    } else {
        format!("{} MiB", b / MIB)
    }
}

/// Disks that hold a PV of `vg`.
pub fn vg_disks(snap: &Snapshot, vg: &str) -> Vec<String> {
    let mut v: Vec<String> = snap
        .pvs_of(vg)
        .filter_map(|p| snap.disk_of(&p.path).map(|d| d.path.clone()))
        .collect();
    v.dedup();
    v
}

pub fn text(snap: &Snapshot, vg: &str) -> String {
    let mut o = String::new();
    let root_lv = snap.target.as_ref().map(|t| t.root_lv.clone());
    let root_disks = vg_disks(snap, vg);
    let _ = writeln!(o, "Disks found:");
    for d in &snap.disks {
        let mut roles = Vec::new();
        if root_disks.contains(&d.path) {
            roles.push(format!(
                "holds the root filesystem ({})",
                root_lv.as_deref().unwrap_or(vg)
            ));
        }
        if snap.live_system_disks.contains(&d.path) {
            roles.push("the live system runs from it".into());
        }
        let _ = writeln!(
            o,
            "  {:<14} {:>9}  model {}  serial {}  via {}{}",
            d.path,
            size(d.size),
            d.model.as_deref().unwrap_or("?"),
            d.serial.as_deref().unwrap_or("?"),
            d.transport.as_deref().unwrap_or("?"),
            if roles.is_empty() {
                String::new()
            } else {
                format!("  <- {}", roles.join("; "))
            }
        );
        for p in &d.partitions {
            let _ = writeln!(
                o,
                "      {:<14} {:>9}  {}",
                p.path,
                size(p.size),
                p.signature
                    .as_ref()
                    .map(|s| s.kind.as_str())
                    .unwrap_or("(no signature)")
            );
        }
        if let Some(s) = &d.signature {
            let _ = writeln!(o, "      whole disk: {}", s.kind);
        }
    }
    if let Some(v) = snap.vg(vg) {
        let pvs: Vec<&str> = snap.pvs_of(vg).map(|p| p.path.as_str()).collect();
        let used = v.extent_count - v.free_count;
        let _ = writeln!(
            o,
            "Volume group {vg} on {}: {} in use of {}",
            pvs.join(", "),
            size(used * v.extent_size),
            size(v.extent_count * v.extent_size)
        );
        for lv in snap.lvs_of(vg).filter(|l| l.is_public()) {
            let is_root = root_lv.as_deref() == Some(lv.full_name().as_str());
            let _ = writeln!(
                o,
                "  {:<16} {:>9}  {}{}",
                lv.name,
                size(lv.size),
                lv.filesystem
                    .as_ref()
                    .map(|f| f.kind.as_str())
                    .unwrap_or("-"),
                if is_root { "  <- root filesystem" } else { "" }
            );
        }
    }
    if let Some(t) = &snap.target {
        let _ = writeln!(
            o,
            "Installed system: {} (root {}, boot via {}, initramfs by {})",
            t.pretty_name.as_deref().unwrap_or("unknown"),
            t.root_lv,
            t.bootloader.as_deref().unwrap_or("unknown"),
            t.initramfs_generator.as_deref().unwrap_or("unknown")
        );
    }
    if snap.live_system_disks.is_empty() {
        let _ = writeln!(
            o,
            "The live system runs from none of these disks (from RAM or a drive not listed)."
        );
    } else {
        let _ = writeln!(
            o,
            "The live system runs from {}; it is never touched.",
            snap.live_system_disks.join(", ")
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(GIB), "1.0 GiB");
        assert_eq!(size(564 * MIB), "564 MiB");
    }
}

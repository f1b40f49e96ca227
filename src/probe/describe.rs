//! The snapshot as a person reads it.

use std::fmt::Write;

use super::Snapshot;

const MIB: u64 = 1 << 20;

fn size(b: u64) -> String {
    if b >= 10 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", b / MIB)
    }
}

pub fn text(s: &Snapshot) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Disks:");
    for d in &s.disks {
        let live = if s.live_system_disks.contains(&d.path) {
            "  [live system]"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {} {} {} {}{}{}",
            d.path,
            size(d.size),
            d.model.as_deref().unwrap_or("-"),
            d.transport.as_deref().unwrap_or("-"),
            d.partition_table
                .as_ref()
                .map(|t| format!(" ({} table)", t.kind))
                .unwrap_or_default(),
            live
        );
        if let Some(sig) = &d.signature {
            let _ = writeln!(o, "    whole disk: {}", sig.kind);
        }
        for p in &d.partitions {
            let _ = writeln!(
                o,
                "    {} {} type {} {}",
                p.path,
                size(p.size),
                p.type_id.as_deref().unwrap_or("-"),
                p.signature
                    .as_ref()
                    .map(|x| x.kind.as_str())
                    .unwrap_or("(empty)")
            );
        }
    }
    let _ = writeln!(o, "Volume groups:");
    for vg in &s.lvm.vgs {
        let pvs: Vec<&str> = s.pvs_of(&vg.name).map(|p| p.path.as_str()).collect();
        let _ = writeln!(
            o,
            "  {} on {} ({} extents of {} MiB, {} free){}",
            vg.name,
            pvs.join(", "),
            vg.extent_count,
            vg.extent_size / MIB,
            vg.free_count,
            if vg.tags.is_empty() {
                String::new()
            } else {
                format!(" tags: {}", vg.tags.join(","))
            }
        );
        for lv in s.lvs_of(&vg.name) {
            let _ = writeln!(
                o,
                "    {} {} {}{}",
                lv.name,
                size(lv.size),
                if lv.active { "active" } else { "inactive" },
                lv.filesystem
                    .as_ref()
                    .map(|f| format!(" {}", f.kind))
                    .unwrap_or_default()
            );
        }
    }
    for m in &s.crypt_mappings {
        let _ = writeln!(
            o,
            "Open LUKS container: /dev/mapper/{} on {}",
            m.name,
            m.backing_device.as_deref().unwrap_or("?")
        );
    }
    match &s.target {
        Some(t) => {
            let _ = writeln!(
                o,
                "Target system: {} on {} (initramfs: {}, boot: {}, kernels: {}, cryptsetup: {}{})",
                t.pretty_name.as_deref().unwrap_or("unknown"),
                t.root_lv,
                t.initramfs_generator.as_deref().unwrap_or("unknown"),
                t.bootloader.as_deref().unwrap_or("unknown"),
                t.kernels.join(", "),
                if t.has_cryptsetup { "yes" } else { "no" },
                t.boot_space
                    .as_ref()
                    .map(|b| format!(", /boot: {} MiB free", b.avail_bytes >> 20))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(o, "Target system: not found on any active logical volume");
        }
    }
    o
}

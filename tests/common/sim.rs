//! What each step does to the disks, as LVM and cryptsetup would report it
//! afterwards. Used to walk a plan through every intermediate state; the VM
//! tests prove the same steps against the real tools.

use luksify::plan::capacity::extents_in;
use luksify::plan::{Action, Step};
use luksify::probe::*;

use super::EXTENT;

fn set_signature(s: &mut Snapshot, dev: &str, sig: Option<Signature>) {
    for d in &mut s.disks {
        if d.path == dev {
            d.signature = sig;
            return;
        }
        for p in &mut d.partitions {
            if p.path == dev {
                p.signature = sig;
                return;
            }
        }
    }
}

fn device_size(s: &Snapshot, dev: &str) -> u64 {
    s.device_size(dev)
        .or_else(|| {
            s.crypt_mappings
                .iter()
                .find(|m| m.path == dev)
                .map(|m| m.size)
        })
        .expect("device exists")
}

fn recount(s: &mut Snapshot) {
    for vg in &mut s.lvm.vgs {
        let pvs: Vec<&Pv> = s
            .lvm
            .pvs
            .iter()
            .filter(|p| p.vg.as_deref() == Some(&vg.name))
            .collect();
        vg.pv_count = pvs.len() as u64;
        vg.extent_count = pvs.iter().map(|p| p.pe_count).sum();
        vg.free_count = pvs.iter().map(|p| p.pe_count - p.pe_alloc_count).sum();
    }
    for pv in &mut s.lvm.pvs {
        pv.free = (pv.pe_count - pv.pe_alloc_count) * EXTENT;
    }
}

fn move_extents(s: &mut Snapshot, source: &str, dest: &str) {
    // A resumed move's mirror already counts its extents on the destination.
    let resuming = s.lvm.lvs.iter().any(|l| l.is_pvmove());
    let n = if resuming {
        0
    } else {
        s.pv(source).map(|p| p.pe_alloc_count).unwrap_or(0)
    };
    let mut offset = s.pv(dest).map(|p| p.pe_alloc_count).unwrap_or(0);
    for lv in &mut s.lvm.lvs {
        for seg in &mut lv.segments {
            for d in &mut seg.devices {
                if d.device == source || d.device.starts_with("pvmove") {
                    d.device = dest.to_string();
                    d.start_pe = offset;
                    offset += seg.size_pe;
                }
            }
        }
    }
    s.lvm.lvs.retain(|l| !l.is_pvmove());
    for pv in &mut s.lvm.pvs {
        if pv.path == source {
            pv.pe_alloc_count = 0;
        } else if pv.path == dest {
            pv.pe_alloc_count += n;
        }
    }
    recount(s);
}

/// Applies a step's effect on the disks.
pub fn apply(s: &mut Snapshot, step: &Step) {
    match &step.action {
        Action::Command { argv, .. } => {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            match a.as_slice() {
                ["lvm", "vgchange", "-ay", ..] => {
                    for lv in &mut s.lvm.lvs {
                        lv.active = true;
                    }
                }
                ["lvm", "vgchange", rest @ ..] => {
                    let vg = rest.last().unwrap().to_string();
                    let v = s.lvm.vgs.iter_mut().find(|v| v.name == vg).unwrap();
                    for pair in rest[..rest.len() - 1].chunks(2) {
                        match pair {
                            ["--addtag", t] => v.tags.push(t.to_string()),
                            ["--deltag", t] => v.tags.retain(|x| x != t),
                            other => panic!("unmodelled vgchange {other:?}"),
                        }
                    }
                }
                ["wipefs", "--all", dev] => {
                    set_signature(s, dev, None);
                    if let Some(d) = s.disks.iter_mut().find(|d| d.path == *dev) {
                        d.partition_table = None;
                        d.partitions.clear();
                    }
                }
                ["lvm", "pvcreate", dev] => {
                    let size = device_size(s, dev);
                    let uuid = format!("PV-{dev}");
                    set_signature(
                        s,
                        dev,
                        Some(Signature {
                            kind: "LVM2_member".into(),
                            uuid: Some(uuid.clone()),
                            label: None,
                            version: Some("LVM2 001".into()),
                        }),
                    );
                    let pe_count = extents_in(size, EXTENT);
                    s.lvm.pvs.push(Pv {
                        path: dev.to_string(),
                        uuid,
                        vg: None,
                        size: pe_count * EXTENT,
                        free: pe_count * EXTENT,
                        pe_start: 1 << 20,
                        pe_count,
                        pe_alloc_count: 0,
                        dev_size: size,
                        tags: vec![],
                        missing: false,
                    });
                }
                ["lvm", "vgextend", vg, dev] => {
                    s.lvm.pvs.iter_mut().find(|p| p.path == *dev).unwrap().vg =
                        Some(vg.to_string());
                    recount(s);
                }
                ["lvm", "vgreduce", _, dev] => {
                    let pv = s.lvm.pvs.iter_mut().find(|p| p.path == *dev).unwrap();
                    assert_eq!(pv.pe_alloc_count, 0, "vgreduce of a PV in use");
                    pv.vg = None;
                    recount(s);
                }
                ["lvm", "pvremove", dev] => {
                    s.lvm.pvs.retain(|p| p.path != *dev);
                    set_signature(s, dev, None);
                }
                ["sfdisk", "--part-type", disk, n, t] => {
                    let d = s.disks.iter_mut().find(|d| d.path == *disk).unwrap();
                    let p = d
                        .partitions
                        .iter_mut()
                        .find(|p| p.number.to_string() == *n)
                        .unwrap();
                    p.type_id = Some(if t.len() == 2 {
                        format!("0x{t}")
                    } else {
                        t.to_lowercase()
                    });
                }
                [
                    "sfdisk",
                    "--wipe",
                    "always",
                    "--wipe-partitions",
                    "always",
                    disk,
                ] => {
                    let script = step_stdin(step);
                    let d = s.disks.iter_mut().find(|d| d.path == *disk).unwrap();
                    let gpt = script.contains("label: gpt");
                    d.partition_table = Some(PartitionTable {
                        kind: if gpt { "gpt".into() } else { "dos".into() },
                        uuid: Some("5a4e0002".into()),
                    });
                    // One partition a line: `size=NMiB`, the last one takes the rest.
                    let end = if gpt { d.size - (1 << 20) } else { d.size };
                    let mut start = 1u64 << 20;
                    d.partitions.clear();
                    for (i, line) in script.lines().skip(1).enumerate() {
                        let size = line
                            .split(", ")
                            .find_map(|f| f.strip_prefix("size="))
                            .map(|m| m.trim_end_matches("MiB").parse::<u64>().unwrap() << 20)
                            .unwrap_or((end - start) / (1 << 20) * (1 << 20));
                        let n = i as u32 + 1;
                        d.partitions.push(Partition {
                            path: luksify::plan::spare_boot::partition_path(disk, n),
                            number: n,
                            start,
                            size,
                            type_id: Some("0x83".into()),
                            part_uuid: Some(format!("5a4e0002-{n:02}")),
                            signature: None,
                        });
                        start += size;
                    }
                }
                [
                    "chroot",
                    _,
                    "/sbin/mke2fs",
                    "-q",
                    "-t",
                    kind,
                    "-U",
                    uuid,
                    dev,
                ] => set_signature(
                    s,
                    dev,
                    Some(Signature {
                        kind: kind.to_string(),
                        uuid: Some(uuid.to_string()),
                        label: None,
                        version: Some("1.0".into()),
                    }),
                ),
                other => panic!("unmodelled command {other:?}"),
            }
        }
        Action::PvMove { source, dest, vg } => {
            let (src, dst) = match (source, dest) {
                (Some(a), Some(b)) => (a.clone(), b.clone()),
                _ => {
                    let mv = s.pvmove_in(vg).expect("a pvmove to resume");
                    let src = mv.move_pv.clone().unwrap();
                    let dst = mv.segments[0]
                        .devices
                        .iter()
                        .map(|d| d.device.clone())
                        .find(|d| *d != src)
                        .unwrap();
                    (src, dst)
                }
            };
            move_extents(s, &src, &dst);
        }
        Action::LuksFormat { device, uuid, .. } => set_signature(
            s,
            device,
            Some(Signature {
                kind: "crypto_LUKS".into(),
                uuid: Some(uuid.clone()),
                label: Some("luksify".into()),
                version: Some("2".into()),
            }),
        ),
        Action::LuksOpen { device, name, .. } => {
            let size = s.device_size(device).unwrap() - (16 << 20);
            let n = s.crypt_mappings.len();
            // The PV inside, if any, is found again.
            let path = format!("/dev/mapper/{name}");
            for pv in s.lvm.pvs.iter_mut().filter(|p| p.missing) {
                pv.missing = false;
                pv.path = path.clone();
            }
            for lv in &mut s.lvm.lvs {
                for seg in &mut lv.segments {
                    for d in seg.devices.iter_mut().filter(|d| d.device == "unknown") {
                        d.device = path.clone();
                    }
                }
            }
            s.crypt_mappings.push(CryptMapping {
                name: name.clone(),
                kernel_name: format!("dm-{}", 10 + n),
                path: format!("/dev/mapper/{name}"),
                luks_uuid: None,
                backing_device: Some(device.clone()),
                size,
            });
        }
        _ => {}
    }
}

fn step_stdin(step: &Step) -> String {
    match &step.action {
        Action::Command { stdin, .. } => stdin.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Turns a state where extents sit on `source` into one where a pvmove to
/// `dest` was interrupted part-way, as `lvs -a` shows it.
pub fn interrupt_pvmove(s: &mut Snapshot, vg: &str, source: &str, dest: &str, active: bool) {
    let n = s.pv(source).unwrap().pe_alloc_count;
    for lv in &mut s.lvm.lvs {
        for seg in &mut lv.segments {
            for d in &mut seg.devices {
                if d.device == source {
                    d.device = "pvmove0".into();
                }
            }
        }
        lv.active = active;
        if active {
            lv.attr = "-wI-a-----".into();
        }
    }
    for pv in &mut s.lvm.pvs {
        if pv.path == dest {
            pv.pe_alloc_count += n;
        }
    }
    recount(s);
    let mut mv = super::lv("pvmove0", 0, n, None);
    mv.vg = vg.into();
    mv.attr = "p-C-aom---".into();
    mv.active = active;
    mv.role = vec!["private".into(), "pvmove".into()];
    mv.path = None;
    mv.move_pv = Some(source.into());
    mv.copy_percent = Some(41.0);
    mv.segments[0].segtype = "mirror".into();
    mv.segments[0].devices = vec![
        SegmentDevice {
            device: source.into(),
            start_pe: 0,
        },
        SegmentDevice {
            device: dest.into(),
            start_pe: 0,
        },
    ];
    s.lvm.lvs.push(mv);
}

/// A reboot into the live system: open containers are closed, the PV inside
/// one shows as missing (`[unknown]`), nothing is active.
pub fn reboot(s: &mut Snapshot) {
    let closed: Vec<String> = s.crypt_mappings.drain(..).map(|m| m.path).collect();
    for pv in &mut s.lvm.pvs {
        if closed.contains(&pv.path) {
            pv.path = "[unknown]".into();
            pv.missing = pv.vg.is_some();
        }
    }
    // An orphan PV inside a closed container is simply not seen.
    s.lvm.pvs.retain(|p| p.path != "[unknown]" || p.missing);
    for lv in &mut s.lvm.lvs {
        lv.active = false;
        for seg in &mut lv.segments {
            for d in seg
                .devices
                .iter_mut()
                .filter(|d| closed.contains(&d.device))
            {
                d.device = "unknown".into();
            }
        }
    }
}

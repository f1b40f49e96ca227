//! Gathers the raw facts through a [`Source`] and assembles the [`Snapshot`].
//! Nothing here writes to a disk: the target is mounted read-only (without
//! journal replay) and unmounted again.

use anyhow::{Context, Result, bail};

use super::blkid;
use super::lvm_report::{self, LV_COLUMNS, PV_COLUMNS, VG_COLUMNS};
use super::mountinfo;
use super::snapshot::*;
use super::source::Source;
use super::target;

/// Probes everything; `inspect_target` mounts candidate root LVs read-only.
pub fn collect(src: &mut dyn Source, inspect_target: bool) -> Result<Snapshot> {
    let mut disks = Vec::new();
    let mut crypt_mappings = Vec::new();
    // dm name (`vg0-root`) → kernel name (`dm-0`): blkid probes the kernel
    // node, which exists even where nobody created /dev/mapper links.
    let mut dm_names = std::collections::BTreeMap::new();
    for name in src.list("/sys/block") {
        if name.starts_with("dm-")
            && let Some(n) = sys_text(src, &format!("/sys/block/{name}/dm/name"))
        {
            dm_names.insert(n, name.clone());
        }
        if ["loop", "ram", "zram", "sr", "fd", "nbd"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        if name.starts_with("dm-") {
            if let Some(m) = crypt_mapping(src, &name) {
                crypt_mappings.push(m);
            }
            continue;
        }
        disks.push(disk(src, &name)?);
    }
    let mut lvm = lvm_state(src)?;
    for lv in lvm.lvs.iter_mut().filter(|l| l.active && !l.is_pvmove()) {
        let dm_name = format!(
            "{}-{}",
            lv.vg.replace('-', "--"),
            lv.name.replace('-', "--")
        );
        if let Some(kernel) = dm_names.get(&dm_name) {
            lv.filesystem = blkid::signature(&blkid_fields(src, &format!("/dev/{kernel}"))?);
        }
    }
    let mounts = mountinfo::parse(&src.read("/proc/self/mountinfo").unwrap_or_default());
    let live_system_disks = live_disks(src, &mounts);
    let mut snap = Snapshot {
        format: SNAPSHOT_FORMAT,
        disks,
        lvm,
        crypt_mappings,
        mounts,
        live_system_disks,
        target: None,
        unreplayed_journals: Vec::new(),
    };
    if inspect_target {
        snap.target = target::inspect(src, &snap)?;
        if snap.target.is_none() {
            snap.unreplayed_journals = target::unreplayed_journals(src, &snap);
        }
    }
    Ok(snap)
}

fn sys_num(src: &mut dyn Source, path: &str) -> u64 {
    src.read(path)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn sys_text(src: &mut dyn Source, path: &str) -> Option<String> {
    src.read(path)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn blkid_fields(
    src: &mut dyn Source,
    dev: &str,
) -> Result<std::collections::BTreeMap<String, String>> {
    let out = src.run(&["blkid", "-p", "-o", "export", dev])?;
    // blkid exits 2 when it finds nothing, which for an empty disk is the answer.
    match out.code {
        0 | 2 => Ok(blkid::parse_export(&out.stdout)),
        c => bail!(
            "blkid could not probe {dev} (exit status {c}): {}",
            out.stderr.trim()
        ),
    }
}

fn disk(src: &mut dyn Source, name: &str) -> Result<Disk> {
    let base = format!("/sys/block/{name}");
    let path = format!("/dev/{name}");
    let fields = blkid_fields(src, &path)?;
    let partition_table = fields.get("PTTYPE").map(|k| PartitionTable {
        kind: k.clone(),
        uuid: fields.get("PTUUID").cloned(),
    });
    let mut partitions = Vec::new();
    for child in src.list(&base) {
        if !child.starts_with(name) {
            continue;
        }
        let pbase = format!("{base}/{child}");
        let Some(number) = sys_text(src, &format!("{pbase}/partition")) else {
            continue;
        };
        let ppath = format!("/dev/{child}");
        let pf = blkid_fields(src, &ppath)?;
        partitions.push(Partition {
            number: number.parse().unwrap_or(0),
            start: sys_num(src, &format!("{pbase}/start")) * 512,
            size: sys_num(src, &format!("{pbase}/size")) * 512,
            type_id: pf.get("PART_ENTRY_TYPE").cloned(),
            part_uuid: pf.get("PART_ENTRY_UUID").cloned(),
            signature: blkid::signature(&pf),
            path: ppath,
        });
    }
    partitions.sort_by_key(|p| p.number);
    let devpath = src.canonical(&base).unwrap_or_default();
    Ok(Disk {
        size: sys_num(src, &format!("{base}/size")) * 512,
        logical_sector_size: sys_num(src, &format!("{base}/queue/logical_block_size")) as u32,
        physical_sector_size: sys_num(src, &format!("{base}/queue/physical_block_size")) as u32,
        model: sys_text(src, &format!("{base}/device/model")),
        serial: sys_text(src, &format!("{base}/device/serial"))
            .or_else(|| sys_text(src, &format!("{base}/serial"))),
        transport: transport(&devpath),
        removable: sys_num(src, &format!("{base}/removable")) == 1,
        read_only: sys_num(src, &format!("{base}/ro")) == 1,
        signature: if partition_table.is_none() {
            blkid::signature(&fields)
        } else {
            None
        },
        partition_table,
        partitions,
        path,
    })
}

/// Guesses the bus from the device's sysfs path, as lsblk's TRAN column does.
fn transport(devpath: &str) -> Option<String> {
    let t = if devpath.contains("/usb") {
        "usb"
    } else if devpath.contains("/nvme") {
        "nvme"
    } else if devpath.contains("/virtio") {
        "virtio"
    } else if devpath.contains("/ata") {
        "sata"
    } else if devpath.contains("/host") {
        "scsi"
    } else {
        return None;
    };
    Some(t.into())
}

fn crypt_mapping(src: &mut dyn Source, dm: &str) -> Option<CryptMapping> {
    let base = format!("/sys/block/{dm}");
    let uuid = sys_text(src, &format!("{base}/dm/uuid"))?;
    if !uuid.starts_with("CRYPT-") {
        return None;
    }
    let name = sys_text(src, &format!("{base}/dm/name"))?;
    let backing_device = src
        .list(&format!("{base}/slaves"))
        .first()
        .map(|s| format!("/dev/{s}"));
    Some(CryptMapping {
        path: format!("/dev/mapper/{name}"),
        luks_uuid: luks_uuid_from_dm_uuid(&uuid),
        backing_device,
        size: sys_num(src, &format!("{base}/size")) * 512,
        kernel_name: dm.to_string(),
        name,
    })
}

/// `CRYPT-LUKS2-0123456789abcdef0123456789abcdef-name` → the dashed LUKS UUID.
pub fn luks_uuid_from_dm_uuid(dm_uuid: &str) -> Option<String> {
    let mut parts = dm_uuid.splitn(4, '-');
    let (_, kind, hex) = (parts.next()?, parts.next()?, parts.next()?);
    if !kind.starts_with("LUKS") || hex.len() != 32 {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

fn lvm_state(src: &mut dyn Source) -> Result<LvmState> {
    let report = |src: &mut dyn Source, cmd: &str, cols: &str, extra: &[&str]| -> Result<String> {
        let mut argv = vec![
            "lvm",
            cmd,
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
        ];
        argv.extend_from_slice(extra);
        argv.extend_from_slice(&["-o", cols]);
        let out = src.run(&argv)?;
        if out.code != 0 {
            bail!(
                "`{}` failed (exit status {}): {}",
                argv.join(" "),
                out.code,
                out.stderr.trim()
            );
        }
        Ok(out.stdout)
    };
    Ok(LvmState {
        pvs: lvm_report::parse_pvs(&report(src, "pvs", PV_COLUMNS, &["-a"])?)
            .context("reading LVM's physical volumes")?
            .into_iter()
            // `pvs -a` lists every block device; only real PVs have a UUID.
            .filter(|p| !p.uuid.is_empty())
            .collect(),
        vgs: lvm_report::parse_vgs(&report(src, "vgs", VG_COLUMNS, &[])?)
            .context("reading LVM's volume groups")?,
        lvs: lvm_report::parse_lvs(&report(src, "lvs", LV_COLUMNS, &["-a", "--segments"])?)
            .context("reading LVM's logical volumes")?,
    })
}

/// Mount points that belong to the running live system, whose disks must never be touched.
fn is_live_mount(mp: &str) -> bool {
    mp == "/"
        || mp == "/usr"
        || mp == "/cdrom"
        || [
            "/run/live",
            "/lib/live",
            "/run/archiso",
            "/run/initramfs/live",
            "/run/rootfsbase",
        ]
        .iter()
        .any(|p| mp == *p || mp.starts_with(&format!("{p}/")))
}

fn live_disks(src: &mut dyn Source, mounts: &[Mount]) -> Vec<String> {
    let mut disks = Vec::new();
    for m in mounts.iter().filter(|m| is_live_mount(&m.mount_point)) {
        if m.device_number.starts_with("0:") {
            continue;
        }
        let Some(devpath) = src.canonical(&format!("/sys/dev/block/{}", m.device_number)) else {
            continue;
        };
        for d in disks_under(src, &devpath) {
            if !disks.contains(&d) {
                disks.push(d);
            }
        }
    }
    disks
}

/// The whole disks a sysfs block device sits on, following dm slaves.
fn disks_under(src: &mut dyn Source, devpath: &str) -> Vec<String> {
    let name = devpath.rsplit('/').next().unwrap_or_default().to_string();
    if name.starts_with("dm-") {
        let slaves = src.list(&format!("/sys/block/{name}/slaves"));
        let mut out = Vec::new();
        for s in slaves {
            if let Some(p) = src.canonical(&format!("/sys/class/block/{s}")) {
                out.extend(disks_under(src, &p));
            }
        }
        return out;
    }
    // A partition's sysfs directory sits inside its disk's.
    let parent = devpath.rsplit('/').nth(1).unwrap_or_default().to_string();
    if src.read(&format!("{devpath}/partition")).is_some() {
        vec![format!("/dev/{parent}")]
    } else {
        vec![format!("/dev/{name}")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_uuid_to_luks_uuid() {
        assert_eq!(
            luks_uuid_from_dm_uuid("CRYPT-LUKS2-0d3c2f1e9a8b4c7d8e6f5a4b3c2d1e0f-luks-x")
                .as_deref(),
            Some("0d3c2f1e-9a8b-4c7d-8e6f-5a4b3c2d1e0f")
        );
        assert_eq!(luks_uuid_from_dm_uuid("CRYPT-PLAIN-abc"), None);
    }

    #[test]
    fn transports() {
        assert_eq!(
            transport("/sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda").as_deref(),
            Some("virtio")
        );
        assert_eq!(transport("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb").as_deref(), Some("usb"));
    }
}

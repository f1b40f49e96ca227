//! Constructors for the individual steps, each with its why and the facts
//! the runner checks afterwards.

use super::choices::LuksOptions;
use super::layout::Layout;
use super::spare_boot::{SpareBoot, partition_path};
use super::step::{Action, Check, Step};

fn cmd(argv: &[&str]) -> Action {
    Action::Command {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        stdin: None,
    }
}

pub fn activate(vg: &str, pvmove_pending: bool) -> Step {
    // `--poll n` keeps an interrupted pvmove from restarting in the background
    // before we resume it in the foreground where its progress is visible.
    let mut argv = vec!["lvm", "vgchange", "-ay"];
    if pvmove_pending {
        argv.extend(["--poll", "n"]);
    }
    argv.push(vg);
    Step {
        title: format!("Activate volume group {vg}"),
        why: "its volumes must be active to be moved and to read the target system".into(),
        action: cmd(&argv),
        expect: vec![Check::AllLvsActive { vg: vg.into() }],
    }
}

pub fn tag_vg(l: &Layout) -> Step {
    let mut argv = vec!["lvm".to_string(), "vgchange".into()];
    for t in &l.tags {
        argv.push("--addtag".into());
        argv.push(t.clone());
    }
    argv.push(l.vg.clone());
    Step {
        title: format!("Mark volume group {} as being migrated", l.vg),
        why: "the mark lives in the VG metadata on the disks, so an interrupted migration is recognised and resumed by running luksify again".into(),
        action: Action::Command { argv, stdin: None },
        expect: l
            .tags
            .iter()
            .map(|t| Check::VgTagged {
                vg: l.vg.clone(),
                tag: t.clone(),
            })
            .collect(),
    }
}

pub fn untag_vg(l: &Layout) -> Step {
    let mut argv = vec!["lvm".to_string(), "vgchange".into()];
    for t in &l.tags {
        argv.push("--deltag".into());
        argv.push(t.clone());
    }
    argv.push(l.vg.clone());
    Step {
        title: format!("Clear the migration mark on {}", l.vg),
        why: "the migration is complete and verified".into(),
        action: Action::Command { argv, stdin: None },
        expect: l
            .tags
            .iter()
            .map(|t| Check::VgNotTagged {
                vg: l.vg.clone(),
                tag: t.clone(),
            })
            .collect(),
    }
}

pub fn wipe(device: &str, found: &str) -> Step {
    Step {
        title: format!("Wipe the old signatures on {device}"),
        why: format!("it carries {found}, which you agreed to destroy (--wipe-spare)"),
        action: cmd(&["wipefs", "--all", device]),
        expect: vec![Check::NoSignature {
            device: device.into(),
        }],
    }
}

pub fn pvcreate(device: &str, why: &str) -> Step {
    Step {
        title: format!("Make {device} an LVM physical volume"),
        why: why.into(),
        action: cmd(&["lvm", "pvcreate", device]),
        expect: vec![Check::IsPv {
            device: device.into(),
        }],
    }
}

pub fn vgextend(vg: &str, device: &str) -> Step {
    Step {
        title: format!("Add {device} to volume group {vg}"),
        why: "pvmove only moves extents between PVs of the same VG".into(),
        action: cmd(&["lvm", "vgextend", vg, device]),
        expect: vec![Check::PvInVg {
            pv: device.into(),
            vg: vg.into(),
        }],
    }
}

pub fn pvmove(vg: &str, source: &str, dest: &str, why: &str) -> Step {
    Step {
        title: format!("Move all extents of {vg} from {source} to {dest}"),
        why: why.into(),
        action: Action::PvMove {
            vg: vg.into(),
            source: Some(source.into()),
            dest: Some(dest.into()),
        },
        expect: vec![
            Check::NoPvmove { vg: vg.into() },
            Check::PvEmpty { pv: source.into() },
        ],
    }
}

pub fn resume_pvmove(vg: &str, source: &str) -> Step {
    Step {
        title: format!("Resume the interrupted move off {source}"),
        why: "a move was interrupted; LVM restarts the unfinished segment, the finished ones stay"
            .into(),
        action: Action::PvMove {
            vg: vg.into(),
            source: None,
            dest: None,
        },
        expect: vec![
            Check::NoPvmove { vg: vg.into() },
            Check::PvEmpty { pv: source.into() },
        ],
    }
}

pub fn vgreduce(vg: &str, device: &str) -> Step {
    Step {
        title: format!("Remove {device} from volume group {vg}"),
        why: "it no longer holds any extents".into(),
        action: cmd(&["lvm", "vgreduce", vg, device]),
        expect: vec![Check::PvNotInVg {
            pv: device.into(),
            vg: vg.into(),
        }],
    }
}

pub fn pvremove(device: &str) -> Step {
    Step {
        title: format!("Remove the LVM label from {device}"),
        why: "so nothing mistakes it for a PV of the volume group any more".into(),
        action: cmd(&["lvm", "pvremove", device]),
        expect: vec![Check::NotPv {
            device: device.into(),
        }],
    }
}

pub fn vg_backup(vg: &str, path: Option<String>) -> Step {
    Step {
        title: format!("Back up the metadata of volume group {vg}"),
        why: "vgcfgrestore can rebuild the VG layout from it if something goes wrong".into(),
        action: Action::VgMetadataBackup {
            vg: vg.into(),
            path,
        },
        expect: vec![],
    }
}

pub fn retype(disk: &str, number: u32, gpt: bool, device: &str) -> Step {
    // 0FC63DAF… is "Linux filesystem data"; LUKS has no type of its own on DOS tables.
    let t = if gpt {
        super::ladder::LINUX_DATA_GUID
    } else {
        "83"
    };
    Step {
        title: format!("Set the partition type of {device} to Linux ({t})"),
        why: "it will hold a LUKS container, no longer an LVM PV, and tools that trust the type should see that".into(),
        action: cmd(&["sfdisk", "--part-type", disk, &number.to_string(), t]),
        expect: vec![],
    }
}

pub fn partition_disk(b: &SpareBoot, container: &str) -> Step {
    let bios = if b.gpt() {
        format!(
            "a 1 MiB BIOS boot partition {} for GRUB's core, ",
            partition_path(&b.disk, 1)
        )
    } else {
        String::new()
    };
    Step {
        title: format!(
            "Partition {} ({}): {bios}/boot {} ({} MiB), LUKS container {} ({})",
            b.disk,
            b.label,
            b.boot_part,
            b.boot_bytes >> 20,
            container,
            if b.unreachable_bytes() > 0 {
                format!(
                    "{} MiB, up to where the DOS table's reach ends",
                    b.container_bytes() >> 20
                )
            } else {
                "the rest".into()
            }
        ),
        why: format!(
            "the data stays on {} and it must boot without the original disk: it gets its own /boot{} next to the encrypted container, laid out like the original disk",
            b.disk,
            if b.gpt() {
                " and room for GRUB's core"
            } else {
                " (GRUB's core goes in the gap after the MBR)"
            }
        ),
        action: Action::Command {
            argv: vec![
                "sfdisk".into(),
                "--wipe".into(),
                "always".into(),
                "--wipe-partitions".into(),
                "always".into(),
                b.disk.clone(),
            ],
            stdin: Some(b.sfdisk_script()),
        },
        expect: vec![],
    }
}

pub fn luks_format(device: &str, uuid: &str, options: &LuksOptions, sector_size: u32) -> Step {
    Step {
        title: format!("Format {device} as a LUKS container (UUID {uuid})"),
        why: format!(
            "{} with {} ({}-bit key) and {:?} key derivation; everything written inside is encrypted",
            match options.version {
                super::choices::LuksVersion::Luks1 => "LUKS1",
                super::choices::LuksVersion::Luks2 => "LUKS2",
            },
            options.cipher,
            options.key_size_bits,
            options.pbkdf
        ),
        action: Action::LuksFormat {
            device: device.into(),
            uuid: uuid.into(),
            options: options.clone(),
            sector_size,
            label: "luksify".into(),
        },
        expect: vec![Check::IsLuks {
            device: device.into(),
            uuid: uuid.into(),
        }],
    }
}

pub fn header_backup(device: &str, path: Option<String>) -> Step {
    Step {
        title: format!("Back up the LUKS header of {device}"),
        why: "a damaged header makes the data unrecoverable even with the passphrase; keep this file off the disk".into(),
        action: Action::LuksHeaderBackup {
            device: device.into(),
            path,
        },
        expect: vec![],
    }
}

pub fn luks_open(device: &str, uuid: &str, name: &str) -> Step {
    Step {
        title: format!("Open the LUKS container on {device} as /dev/mapper/{name}"),
        why: "the data moves into the opened container".into(),
        action: Action::LuksOpen {
            device: device.into(),
            uuid: uuid.into(),
            name: name.into(),
        },
        expect: vec![Check::MappingOpen {
            name: name.into(),
            device: device.into(),
        }],
    }
}

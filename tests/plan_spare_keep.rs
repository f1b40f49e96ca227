//! spare-keep makes the spare boot on its own: its partition layout, the new
//! /boot's steps (filesystem, copy, fstab, GRUB), resuming them, and the
//! layouts it refuses before anything is written.

mod common;

use common::{MIB, seed, sim};
use luksify::plan::{self, Action, Check, Choices, Plan, Refusal, Strategy};
use luksify::probe::{FstabEntry, Partition, PartitionTable, Signature, Snapshot};

const OLD_BOOT_UUID: &str = "b00710ad-0000-4000-8000-000000000001";
const FSTAB: &str = "# /etc/fstab\n/dev/mapper/vg0-root /               ext4    errors=remount-ro 0       1\nUUID=b00710ad-0000-4000-8000-000000000001 /boot           ext4    defaults        0       2\n/dev/mapper/vg0-swap none            swap    sw              0       0\n";

fn choices() -> Choices {
    Choices {
        spare: Some("/dev/vdb".into()),
        strategy: Some(Strategy::SpareKeep),
        header_backup: Some("/root/backup/vg0.luksheader".into()),
        ..Default::default()
    }
}

fn with_fstab() -> Snapshot {
    let mut s = seed();
    s.target
        .as_mut()
        .unwrap()
        .files
        .insert("etc/fstab".into(), FSTAB.into());
    s
}

fn refusal(s: &Snapshot) -> Refusal {
    plan::plan(s, &choices()).expect_err("should refuse")
}

fn position(p: &Plan, f: impl Fn(&Action) -> bool) -> usize {
    p.steps
        .iter()
        .position(|s| f(&s.action))
        .unwrap_or_else(|| panic!("step missing in {:#?}", p.steps))
}

fn new_boot_uuid(p: &Plan) -> String {
    p.steps
        .iter()
        .find_map(|s| match &s.action {
            Action::GrubInstall { boot_uuid, .. } => Some(boot_uuid.clone()),
            _ => None,
        })
        .expect("a GRUB step")
}

#[test]
fn dos_spare_gets_boot_then_container_and_the_boot_steps_in_order() {
    let p = plan::plan(&with_fstab(), &choices()).unwrap();
    assert_eq!(p.container, "/dev/vdb2");
    let part = &p.steps[position(
        &p,
        |a| matches!(a, Action::Command { argv, .. } if argv[0] == "sfdisk"),
    )];
    let Action::Command { argv, stdin } = &part.action else {
        unreachable!()
    };
    assert_eq!(argv.last().unwrap(), "/dev/vdb");
    assert_eq!(
        stdin.as_deref(),
        Some("label: dos\nstart=1MiB, size=200MiB, type=83, bootable\ntype=83\n"),
        "/boot sized like the original's 200 MiB, GRUB's core in the gap after the MBR"
    );
    let uuid = new_boot_uuid(&p);
    assert_ne!(uuid, OLD_BOOT_UUID);
    assert_ne!(uuid, p.luks_uuid);

    let mount = position(&p, |a| matches!(a, Action::MountTarget { .. }));
    let Action::MountTarget { boot_device, .. } = &p.steps[mount].action else {
        unreachable!()
    };
    assert_eq!(
        boot_device, &None,
        "the original /boot is never mounted read-write"
    );
    let mkfs = position(
        &p,
        |a| matches!(a, Action::Command { argv, .. } if argv.iter().any(|x| x == "/sbin/mke2fs")),
    );
    let Action::Command { argv, .. } = &p.steps[mkfs].action else {
        unreachable!()
    };
    assert_eq!(
        argv,
        &[
            "chroot",
            "/run/luksify/target",
            "/sbin/mke2fs",
            "-q",
            "-t",
            "ext4",
            "-U",
            &uuid,
            "/dev/vdb1"
        ]
    );
    assert_eq!(
        p.steps[mkfs].expect,
        [Check::HasFilesystem {
            device: "/dev/vdb1".into(),
            uuid: uuid.clone()
        }]
    );
    let copy = position(&p, |a| matches!(a, Action::CopyBoot { .. }));
    assert_eq!(
        p.steps[copy].action,
        Action::CopyBoot {
            target_root: "/run/luksify/target".into(),
            from_device: Some("/dev/vda1".into()),
            to_device: "/dev/vdb1".into(),
            fstype: "ext4".into(),
        }
    );
    let fstab = position(&p, |a| matches!(a, Action::RetargetBoot { .. }));
    let config = position(&p, |a| matches!(a, Action::BootConfig { .. }));
    let initramfs = position(&p, |a| matches!(a, Action::Initramfs { .. }));
    let grub = position(&p, |a| matches!(a, Action::GrubInstall { .. }));
    let verify = position(&p, |a| matches!(a, Action::Verify { .. }));
    assert!(
        mount < mkfs
            && mkfs < copy
            && copy < fstab
            && fstab < config
            && config < initramfs
            && initramfs < grub
            && grub < verify,
        "order: {mount} {mkfs} {copy} {fstab} {config} {initramfs} {grub} {verify}"
    );
    assert_eq!(
        p.steps[grub].action,
        Action::GrubInstall {
            target_root: "/run/luksify/target".into(),
            disk: "/dev/vdb".into(),
            boot_uuid: uuid.clone(),
        }
    );
    // The plan shows the fstab diff: only the /boot line changes.
    let Action::RetargetBoot {
        edit: Some(edit), ..
    } = &p.steps[fstab].action
    else {
        panic!("{:?}", p.steps[fstab])
    };
    assert_eq!(
        edit.after,
        FSTAB.replace(OLD_BOOT_UUID, &uuid),
        "only /boot's source changes"
    );
    let text = luksify::exec::render::text(&p);
    assert!(text.contains("--- a/etc/fstab"), "{text}");
    assert!(
        text.contains(&format!("+UUID={uuid} /boot           ext4")),
        "{text}"
    );
    assert!(
        text.contains("grub-install --target=i386-pc /dev/vdb"),
        "{text}"
    );
    assert!(text.contains("Boot from /dev/vdb"), "{text}");
}

#[test]
fn gpt_spare_gets_a_bios_boot_partition() {
    let mut s = with_fstab();
    s.disks[0].partition_table = Some(PartitionTable {
        kind: "gpt".into(),
        uuid: None,
    });
    let p = plan::plan(&s, &choices()).unwrap();
    assert_eq!(p.container, "/dev/vdb3");
    let script = p
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Command { stdin: Some(x), .. } => Some(x.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        script.starts_with(
            "label: gpt\nstart=1MiB, size=1MiB, type=21686148-6449-6E6F-744E-656564454649\nsize=200MiB,"
        ),
        "{script}"
    );
    assert!(p.steps.iter().any(|s| matches!(&s.action,
        Action::CopyBoot { to_device, .. } if to_device == "/dev/vdb2")));
}

#[test]
fn the_spare_must_also_hold_boot() {
    // 141 extents of 4 MiB + LUKS2 header + PV start fit in 600 MiB, but not
    // with a 200 MiB /boot beside them.
    let mut s = seed();
    s.disks[1].size = 700 * MIB;
    let r = refusal(&s);
    let Refusal::SpareTooSmall { need_mib, .. } = r else {
        panic!("{r:?}")
    };
    assert!(need_mib > 141 * 4 + 16 + 1 + 200, "{need_mib}");
    s.disks[1].size = (need_mib + 1) * MIB;
    plan::plan(&s, &choices()).unwrap_or_else(|r| panic!("{need_mib} MiB: {r}"));
}

#[test]
fn resumed_after_fstab_names_the_new_boot() {
    let c = choices();
    let fresh = plan::plan(&with_fstab(), &c).unwrap();
    let uuid = new_boot_uuid(&fresh);
    let mut s = with_fstab();
    for step in fresh.steps.iter().filter(|s| {
        matches!(
            s.action,
            Action::Command { .. }
                | Action::PvMove { .. }
                | Action::LuksFormat { .. }
                | Action::LuksOpen { .. }
        )
    }) {
        let last = matches!(&step.action, Action::Command { argv, .. } if argv.iter().any(|a| a == "--deltag"));
        if !last {
            sim::apply(&mut s, step);
        }
    }
    assert!(
        s.signature("/dev/vdb1")
            .is_some_and(|x| x.uuid.as_deref() == Some(uuid.as_str()))
    );
    // The copy and the fstab edit were done; then the power went.
    for e in &mut s.target.as_mut().unwrap().fstab {
        if e.mount_point == "/boot" {
            e.spec = format!("UUID={uuid}");
        }
    }
    let t = s.target.as_mut().unwrap();
    let now = t.files["etc/fstab"].replace(OLD_BOOT_UUID, &uuid);
    t.files.insert("etc/fstab".into(), now);
    let p = plan::plan(&s, &c).unwrap_or_else(|r| panic!("resume refused: {r}"));
    assert!(p.resumed.is_some());
    assert!(
        !p.steps
            .iter()
            .any(|s| matches!(&s.action, Action::Command { argv, .. } if argv.iter().any(|a| a == "/sbin/mke2fs"))),
        "no second mkfs"
    );
    assert!(p.steps.iter().any(|s| matches!(&s.action,
        Action::CopyBoot { from_device: None, to_device, .. } if to_device == "/dev/vdb1")));
    assert!(
        p.steps
            .iter()
            .any(|s| matches!(&s.action, Action::RetargetBoot { edit: None, .. }))
    );
    assert_eq!(new_boot_uuid(&p), uuid);
}

#[test]
fn a_foreign_filesystem_on_the_new_boot_partition_is_not_formatted_over() {
    let c = choices();
    let fresh = plan::plan(&seed(), &c).unwrap();
    let mut s = seed();
    for step in &fresh.steps[..2] {
        sim::apply(&mut s, step);
    }
    s.disks[1].partitions[0].signature = Some(Signature {
        kind: "ext4".into(),
        uuid: Some("someone-elses".into()),
        label: None,
        version: None,
    });
    let r = plan::plan(&s, &c).unwrap_err();
    assert!(matches!(r, Refusal::UnknownState { .. }), "{r:?}");
    assert!(r.to_string().contains("/dev/vdb1"), "{r}");
}

#[test]
fn a_partition_as_spare_is_refused() {
    let mut s = seed();
    s.disks[1].partition_table = Some(PartitionTable {
        kind: "dos".into(),
        uuid: None,
    });
    s.disks[1].partitions.push(Partition {
        path: "/dev/vdb1".into(),
        number: 1,
        start: MIB,
        size: 1000 * MIB,
        type_id: Some("0x83".into()),
        part_uuid: None,
        signature: None,
    });
    let mut c = choices();
    c.spare = Some("/dev/vdb1".into());
    let r = plan::plan(&s, &c).unwrap_err();
    assert!(matches!(r, Refusal::SpareKeepNeedsDisk { .. }), "{r:?}");
    let m = r.to_string();
    assert!(
        m.contains("/dev/vdb1 is a partition") && m.contains("/dev/vdb"),
        "{m}"
    );
    assert!(m.contains("--strategy spare-return"), "{m}");
}

#[test]
fn uefi_targets_are_refused() {
    let mut s = seed();
    s.target
        .as_mut()
        .unwrap()
        .fstab
        .push(luksify::probe::FstabEntry {
            spec: "UUID=ABCD-1234".into(),
            mount_point: "/boot/efi".into(),
            fstype: "vfat".into(),
            options: "umask=0077".into(),
        });
    let r = refusal(&s);
    assert!(matches!(r, Refusal::SpareKeepUefi { .. }), "{r:?}");
    assert!(r.to_string().contains("/boot/efi"), "{r}");

    let mut s = seed();
    s.disks[0].partitions[0].type_id = Some("c12a7328-f81f-11d2-ba4b-00a0c93ec93b".into());
    let r = refusal(&s);
    assert!(matches!(r, Refusal::SpareKeepUefi { .. }), "{r:?}");
    assert!(r.to_string().contains("EFI system partition"), "{r}");
}

#[test]
fn bootloaders_other_than_grub2_are_refused() {
    for (found, says) in [
        (Some("bls"), "Boot Loader Specification"),
        (Some("grub-legacy"), "GRUB legacy"),
        (None, "not recognised"),
    ] {
        let mut s = seed();
        s.target.as_mut().unwrap().bootloader = found.map(String::from);
        let r = refusal(&s);
        assert!(matches!(r, Refusal::SpareKeepBootloader { .. }), "{r:?}");
        assert!(r.to_string().contains(says), "{r}");
        // spare-return does not touch the bootloader's home.
        let mut c = choices();
        c.strategy = Some(Strategy::SpareReturn);
        assert!(plan::plan(&s, &c).is_ok(), "{found:?}");
    }
    let mut s = seed();
    s.target
        .as_mut()
        .unwrap()
        .files
        .insert("boot/grub2/grub.cfg".into(), String::new());
    let r = refusal(&s);
    assert!(r.to_string().contains("/boot/grub2"), "{r}");
}

#[test]
fn boot_must_be_an_ext_partition_of_the_original_disk() {
    // /boot on another disk.
    let mut s = seed();
    let mut other = common::empty_disk("/dev/vdc", 512 * MIB, "other");
    let mut boot = s.disks[0].partitions.remove(0);
    boot.path = "/dev/vdc1".into();
    other.partition_table = s.disks[0].partition_table.clone();
    other.partitions.push(boot);
    s.disks.push(other);
    let r = refusal(&s);
    assert!(matches!(r, Refusal::SpareKeepBootLayout { .. }), "{r:?}");
    assert!(
        r.to_string()
            .contains("/dev/vdc1, which is not a partition of /dev/vda"),
        "{r}"
    );

    // /boot named by a spec that finds nothing.
    let mut s = seed();
    s.target.as_mut().unwrap().fstab[1].spec = "LABEL=gone".into();
    let r = refusal(&s);
    assert!(matches!(r, Refusal::SpareKeepBootLayout { .. }), "{r:?}");

    // /boot on XFS.
    let mut s = seed();
    s.disks[0].partitions[0].signature.as_mut().unwrap().kind = "xfs".into();
    let r = refusal(&s);
    assert!(matches!(r, Refusal::SpareKeepBootFs { .. }), "{r:?}");
    assert!(r.to_string().contains("is xfs"), "{r}");

    // ext2 is fine, and the new /boot is ext2 too.
    let mut s = seed();
    s.disks[0].partitions[0].signature.as_mut().unwrap().kind = "ext2".into();
    let p = plan::plan(&s, &choices()).unwrap();
    assert!(p.steps.iter().any(|s| matches!(&s.action,
        Action::Command { argv, .. } if argv.windows(2).any(|w| w == ["-t", "ext2"]))));
}

#[test]
fn a_spare_to_be_wiped_is_sized_by_the_layout_luksify_gives_it() {
    // An old 100 MiB partition on a 1 GiB spare: the container's size comes
    // from the new layout, not from what is there now.
    let mut s = seed();
    s.disks[1].partition_table = Some(PartitionTable {
        kind: "dos".into(),
        uuid: None,
    });
    s.disks[1].partitions.push(Partition {
        path: "/dev/vdb1".into(),
        number: 1,
        start: MIB,
        size: 100 * MIB,
        type_id: Some("0x83".into()),
        part_uuid: None,
        signature: Some(Signature {
            kind: "ext4".into(),
            uuid: Some("old".into()),
            label: None,
            version: None,
        }),
    });
    let mut c = choices();
    c.wipe_spare = true;
    let p = plan::plan(&s, &c).unwrap_or_else(|r| panic!("{r}"));
    assert!(matches!(&p.steps[0].action, Action::Command { argv, .. } if argv[0] == "wipefs"));
    // sfdisk also wipes old signatures inside the new partitions, so the new
    // /boot is never mistaken for someone else's filesystem.
    assert!(p.steps.iter().any(|s| matches!(&s.action,
        Action::Command { argv, .. } if argv.windows(2).any(|w| w == ["--wipe-partitions", "always"]))));
    // The old ext4 on /dev/vdb1 is gone after that partitioning: the new
    // /boot is made there, before the copy needs it.
    let mkfs = position(
        &p,
        |a| matches!(a, Action::Command { argv, .. } if argv.iter().any(|x| x == "/sbin/mke2fs")),
    );
    let copy = position(&p, |a| matches!(a, Action::CopyBoot { .. }));
    assert!(mkfs < copy);
}

#[test]
fn other_partitions_of_the_original_disk_in_fstab_are_refused() {
    // A swap partition on the original disk, beside /boot and the PV: it
    // would stay behind with the detached disk.
    let mut s = seed();
    let mut swap = s.disks[0].partitions[0].clone();
    swap.path = "/dev/vda3".into();
    swap.number = 3;
    swap.signature = Some(Signature {
        kind: "swap".into(),
        uuid: Some("5a5a5a5a-0000-4000-8000-000000000003".into()),
        label: None,
        version: None,
    });
    s.disks[0].partitions.push(swap);
    s.target.as_mut().unwrap().fstab.push(FstabEntry {
        spec: "UUID=5a5a5a5a-0000-4000-8000-000000000003".into(),
        mount_point: "none".into(),
        fstype: "swap".into(),
        options: "sw".into(),
    });
    let r = refusal(&s);
    assert!(
        matches!(&r, Refusal::SpareKeepOtherPartitions { uses, .. } if uses == "/dev/vda3 (none)"),
        "{r:?}"
    );
    assert!(r.to_string().contains("--strategy spare-return"), "{r}");
}

const TIB: u64 = 1 << 40;

fn sfdisk_input(p: &Plan) -> String {
    p.steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Command { argv, stdin } if argv[0] == "sfdisk" => stdin.clone(),
            _ => None,
        })
        .expect("a partitioning step")
}

#[test]
fn a_dos_spare_beyond_two_tib_gets_a_container_within_the_tables_reach() {
    // The original is DOS, so the spare gets DOS, which reaches 2^32 sectors:
    // the container ends there and the plan says what stays unused.
    let mut s = with_fstab();
    s.disks[1].size = 3 * TIB;
    let p = plan::plan(&s, &choices()).unwrap_or_else(|r| panic!("{r}"));
    let container_mib = (2 * TIB - 201 * MIB) / MIB;
    assert_eq!(
        sfdisk_input(&p),
        format!(
            "label: dos\nstart=1MiB, size=200MiB, type=83, bootable\nsize={container_mib}MiB, type=83\n"
        )
    );
    let note = p
        .notes
        .iter()
        .find(|n| n.contains("DOS partition table"))
        .unwrap_or_else(|| panic!("no note on the DOS limit: {:#?}", p.notes));
    assert!(
        note.contains("first 2048 GiB") && note.contains("last 1024 GiB of /dev/vdb"),
        "{note}"
    );
    let text = luksify::exec::render::text(&p);
    assert!(
        text.contains(&format!(
            "{container_mib} MiB, up to where the DOS table's reach ends"
        )),
        "{text}"
    );

    // Just beyond the reach: what is lost is said in MiB.
    let mut just = with_fstab();
    just.disks[1].size = 2 * TIB + 3 * MIB;
    let p = plan::plan(&just, &choices()).unwrap();
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("the last 3 MiB of /dev/vdb")),
        "{:#?}",
        p.notes
    );

    // GPT reaches the whole disk: no cap, no note.
    s.disks[0].partition_table = Some(PartitionTable {
        kind: "gpt".into(),
        uuid: None,
    });
    let p = plan::plan(&s, &choices()).unwrap();
    assert!(sfdisk_input(&p).ends_with("\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"));
    assert!(!p.notes.iter().any(|n| n.contains("DOS partition table")));
}

#[test]
fn sfdisk_makes_the_planned_dos_layout_on_a_three_tib_disk() {
    // The real sfdisk, on a sparse 3 TiB file, given the plan's input: the
    // container is exactly the size the plan counted with, and ends at the
    // last sector a DOS table can address.
    let mut s = with_fstab();
    s.disks[1].size = 3 * TIB;
    let p = plan::plan(&s, &choices()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("spare.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(3 * TIB)
        .unwrap();
    let mut child = std::process::Command::new("sfdisk")
        .args(["--wipe", "always", "--wipe-partitions", "always"])
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sfdisk (package fdisk)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sfdisk_input(&p).as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let out = std::process::Command::new("sfdisk")
        .arg("--json")
        .arg(&img)
        .output()
        .unwrap();
    let table: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parts = table["partitiontable"]["partitions"].as_array().unwrap();
    let (start, size) = (
        parts[1]["start"].as_u64().unwrap(),
        parts[1]["size"].as_u64().unwrap(),
    );
    assert_eq!(start * 512, 201 * MIB);
    assert_eq!(start + size, 1 << 32, "ends at the last addressable sector");
    assert_eq!(size * 512, 2 * TIB - 201 * MIB);
}

#[test]
fn data_beyond_a_dos_tables_reach_is_refused_naming_the_limit() {
    // 2 TiB allocated on a (large) DOS original: no DOS spare can hold it
    // with a /boot beside it, however large.
    let mut s = with_fstab();
    let extents = 2 * TIB / common::EXTENT;
    s.disks[0].size = 4 * TIB;
    s.disks[0].partitions[1].size = 3 * TIB;
    let pv = &mut s.lvm.pvs[0];
    pv.size = 3 * TIB - MIB;
    pv.dev_size = 3 * TIB;
    pv.pe_count = pv.size / common::EXTENT;
    pv.free = pv.size - (extents + 16) * common::EXTENT;
    s.lvm.lvs[0].size = extents * common::EXTENT;
    s.lvm.lvs[0].segments[0].size_pe = extents;
    s.lvm.lvs[1].segments[0].devices[0].start_pe = extents;
    s.disks[1].size = 8 * TIB;
    let r = refusal(&s);
    assert!(matches!(r, Refusal::SpareKeepDosLimit { .. }), "{r:?}");
    let m = r.to_string();
    assert!(
        m.contains("reaches only the first 2048 GiB") && m.contains("2^32 sectors of 512 bytes"),
        "{m}"
    );
    assert!(m.contains("A larger spare does not help"), "{m}");
    assert!(m.contains("--strategy spare-return"), "{m}");
}

fn with_target_files(files: &[&str]) -> Snapshot {
    let mut s = with_fstab();
    s.target.as_mut().unwrap().spare_boot_files =
        Some(files.iter().map(|f| f.to_string()).collect());
    s
}

#[test]
fn a_target_without_grubs_bios_modules_or_mke2fs_is_refused_before_the_move() {
    // Debian with grub-efi-amd64 as well but no grub-pc-bin: grub-install
    // --target=i386-pc would fail after the data moved.
    let no_pc: Vec<&str> = common::SPARE_BOOT_FILES
        .iter()
        .copied()
        .filter(|f| !f.starts_with("usr/lib/grub/i386-pc/"))
        .collect();
    let r = refusal(&with_target_files(&no_pc));
    assert!(matches!(r, Refusal::SpareKeepTargetFiles { .. }), "{r:?}");
    let m = r.to_string();
    assert!(
        m.contains("/usr/lib/grub/i386-pc/modinfo.sh")
            && m.contains("/usr/lib/grub/i386-pc/boot.img"),
        "{m}"
    );
    assert!(
        m.contains("`chroot /mnt apt-get install grub-pc-bin`"),
        "{m}"
    );
    assert!(m.contains("--strategy spare-return"), "{m}");

    let no_mkfs: Vec<&str> = common::SPARE_BOOT_FILES
        .iter()
        .copied()
        .filter(|f| *f != "sbin/mke2fs")
        .collect();
    let m = refusal(&with_target_files(&no_mkfs)).to_string();
    assert!(
        m.contains("/sbin/mke2fs (makes the new /boot filesystem; package e2fsprogs)"),
        "{m}"
    );
    assert!(m.contains("apt-get install e2fsprogs`"), "{m}");

    // Both, and grub-install in /sbin (an older layout) is as good.
    let r = refusal(&with_target_files(&[
        "sbin/grub-install",
        "usr/sbin/grub-mkconfig",
    ]));
    assert!(
        r.to_string()
            .contains("`chroot /mnt apt-get install e2fsprogs grub-pc-bin`"),
        "{r}"
    );
    assert!(!r.to_string().contains("grub2-common"), "{r}");

    // Each program named with its own package, each package once.
    let m = refusal(&with_target_files(&["sbin/mke2fs"])).to_string();
    assert!(
        m.contains("/usr/sbin/grub-install (installs GRUB on the spare; package grub2-common)")
            && m.contains(
                "/usr/sbin/grub-mkconfig (writes the spare's grub.cfg; package grub-common)"
            ),
        "{m}"
    );
    assert!(
        m.contains("`chroot /mnt apt-get install grub2-common grub-common grub-pc-bin`"),
        "{m}"
    );

    // spare-return runs none of them.
    let mut c = choices();
    c.strategy = Some(Strategy::SpareReturn);
    plan::plan(&with_target_files(&[]), &c).unwrap_or_else(|r| panic!("{r}"));
}

#[test]
fn a_snapshot_that_predates_the_target_file_check_still_loads_and_asks_to_probe_again() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed-layout.snapshot.json"
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["target"]
        .as_object_mut()
        .unwrap()
        .remove("spare_boot_files")
        .expect("the fixture records them");
    let s: Snapshot = serde_json::from_value(v).expect("an older snapshot loads");
    assert_eq!(s.target.as_ref().unwrap().spare_boot_files, None);
    let r = plan::plan(&s, &choices()).unwrap_err();
    assert!(matches!(r, Refusal::UnknownState { .. }), "{r:?}");
    assert!(r.to_string().contains("probe again"), "{r}");
    let mut c = choices();
    c.strategy = Some(Strategy::SpareReturn);
    plan::plan(&s, &c).unwrap_or_else(|r| panic!("{r}"));
}

#[test]
fn the_probe_finds_the_target_files_through_a_merged_usr() {
    // A real directory tree laid out like Debian 12: /sbin is a relative
    // symlink to usr/sbin, GRUB's i386-pc files come from grub-pc-bin.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let touch = |p: &str| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    };
    touch("usr/sbin/mke2fs");
    touch("usr/sbin/grub-install");
    touch("usr/sbin/grub-mkconfig");
    std::os::unix::fs::symlink("usr/sbin", root.join("sbin")).unwrap();
    let looked_for = luksify::plan::spare_boot::TARGET_NEEDS
        .iter()
        .flat_map(|n| n.any_of.iter().copied());
    let src = &mut luksify::probe::source::RealSource;
    let root_s = root.to_str().unwrap();
    let found = luksify::probe::target::present_files(src, root_s, looked_for.clone());
    assert_eq!(
        found,
        [
            "sbin/mke2fs",
            "usr/sbin/grub-install",
            "sbin/grub-install",
            "usr/sbin/grub-mkconfig",
            "sbin/grub-mkconfig"
        ]
    );
    let found_strs: Vec<&str> = found.iter().map(String::as_str).collect();
    let r = refusal(&with_target_files(&found_strs));
    assert!(
        r.to_string().contains("apt-get install grub-pc-bin`"),
        "{r}"
    );

    // apt-get install grub-pc-bin.
    touch("usr/lib/grub/i386-pc/modinfo.sh");
    touch("usr/lib/grub/i386-pc/boot.img");
    let found = luksify::probe::target::present_files(src, root_s, looked_for);
    let found_strs: Vec<&str> = found.iter().map(String::as_str).collect();
    plan::plan(&with_target_files(&found_strs), &choices()).unwrap_or_else(|r| panic!("{r}"));
}

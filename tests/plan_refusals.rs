//! Every refusal, on a fixture, before anything would be written: each test
//! breaks one precondition of the seed layout and checks the refusal and its advice.

mod common;

use common::{MIB, seed};
use luksify::plan::{self, Choices, Refusal, Strategy};
use luksify::probe::{Mount, Signature, Snapshot};

fn choices(strategy: Strategy) -> Choices {
    Choices {
        spare: Some("/dev/vdb".into()),
        strategy: Some(strategy),
        header_backup: Some("/root/vg0.luksheader".into()),
        ..Default::default()
    }
}

fn refusal(s: &Snapshot, c: &Choices) -> Refusal {
    match plan::plan(s, c) {
        Ok(p) => panic!("expected a refusal, got a plan of {} steps", p.steps.len()),
        Err(r) => r,
    }
}

#[test]
fn no_root_lv() {
    let mut s = seed();
    s.target = None;
    s.lvm.lvs[0].active = false;
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::NoRootLv { .. }));
    let msg = r.to_string();
    assert!(msg.contains("inactive: vg0/root"), "{msg}");
    assert!(msg.contains("vgchange -ay --poll n"), "{msg}");
}

#[test]
fn spare_too_small_for_the_data() {
    let mut s = seed();
    s.disks[1].size = 256 * MIB;
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    let Refusal::SpareTooSmall {
        have_extents,
        need_extents,
        need_mib,
        ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!((have_extents, need_extents), (63, 141));
    assert_eq!(need_mib, 141 * 4 + 1);
    // spare-keep must also fit the LUKS header and a partition table.
    let r = refusal(&s, &choices(Strategy::SpareKeep));
    assert!(matches!(r, Refusal::SpareTooSmall { .. }), "{r:?}");
}

#[test]
fn spare_with_contents_needs_explicit_wipe() {
    let mut s = seed();
    s.disks[1].signature = Some(Signature {
        kind: "ext4".into(),
        uuid: Some("data".into()),
        label: Some("photos".into()),
        version: None,
    });
    let mut c = choices(Strategy::SpareReturn);
    let r = refusal(&s, &c);
    assert!(matches!(r, Refusal::SpareNotEmpty { .. }));
    assert!(r.to_string().contains("--wipe-spare"));
    c.wipe_spare = true;
    let p = plan::plan(&s, &c).unwrap();
    assert_eq!(p.steps[0].title, "Wipe the old signatures on /dev/vdb");
}

#[test]
fn orphan_pv_on_the_spare_not_made_by_us_needs_explicit_wipe() {
    let mut s = seed();
    let size = s.disks[1].size;
    s.disks[1].signature = Some(Signature {
        kind: "LVM2_member".into(),
        uuid: Some("someone-elses-pv".into()),
        label: None,
        version: Some("LVM2 001".into()),
    });
    s.lvm.pvs.push(luksify::probe::Pv {
        path: "/dev/vdb".into(),
        uuid: "someone-elses-pv".into(),
        vg: None,
        size,
        free: size,
        pe_start: 1 << 20,
        pe_count: 0,
        pe_alloc_count: 0,
        dev_size: size,
        tags: vec![],
        missing: false,
    });
    let mut c = choices(Strategy::SpareReturn);
    let r = refusal(&s, &c);
    assert!(matches!(r, Refusal::SpareNotEmpty { .. }), "{r:?}");
    assert!(r.to_string().contains("LVM2_member"), "{r}");
    c.wipe_spare = true;
    let p = plan::plan(&s, &c).unwrap();
    assert_eq!(p.steps[0].title, "Wipe the old signatures on /dev/vdb");
    assert!(
        p.steps[1].title.starts_with("Mark volume group vg0"),
        "{}",
        p.steps[1].title
    );
}

#[test]
fn spare_with_partition_table_is_not_empty() {
    let mut s = seed();
    s.disks[1].partition_table = Some(luksify::probe::PartitionTable {
        kind: "gpt".into(),
        uuid: None,
    });
    let r = refusal(&s, &choices(Strategy::SpareKeep));
    assert!(r.to_string().contains("gpt partition table"), "{r}");
}

#[test]
fn luks_header_leaves_too_few_extents() {
    let mut s = seed();
    // Fill the PV: 205 extents allocated, the container offers 201.
    let free = s.lvm.pvs[0].pe_count - s.lvm.pvs[0].pe_alloc_count;
    s.lvm.lvs[0].segments[0].size_pe += free;
    s.lvm.lvs[0].size += free * common::EXTENT;
    s.lvm.pvs[0].pe_alloc_count += free;
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    let Refusal::ContainerTooSmall {
        short,
        short_mib,
        ref lvs,
        ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(short, 4);
    assert_eq!(short_mib, 16);
    assert!(lvs.contains("vg0/root is 756 MiB"), "{lvs}");
    assert!(lvs.contains("vg0/swap is 64 MiB"), "{lvs}");
}

#[test]
fn vg_on_more_pvs_than_the_plan_covers() {
    let mut s = seed();
    let mut extra = s.lvm.pvs[0].clone();
    extra.path = "/dev/vdc".into();
    extra.uuid = "PV-extra".into();
    s.lvm.pvs.push(extra);
    s.disks
        .push(common::empty_disk("/dev/vdc", 1024 * MIB, "third"));
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::SeveralPvs { count: 2, .. }), "{r:?}");
    let text = r.to_string();
    assert!(text.contains("(/dev/vda2 with "), "{text}");
    assert!(text.contains(", /dev/vdc with "), "{text}");
}

#[test]
fn vg_on_two_partitions_of_one_disk_is_refused_with_the_commands_to_gather_it() {
    // Issue 6's two-PV layout: vg0 on vda2 and a second partition vda3.
    let mut s = seed();
    let mut second = s.lvm.pvs[0].clone();
    second.path = "/dev/vda3".into();
    second.uuid = "PV-second".into();
    second.size = 128 * MIB;
    second.free = 64 * MIB;
    s.lvm.pvs.push(second);
    let first = &s.lvm.pvs[0];
    let (first_free, first_size) = (first.free, first.size);
    for strategy in [Strategy::SpareReturn, Strategy::SpareKeep] {
        let r = refusal(&s, &choices(strategy));
        let Refusal::SeveralPvs { vg, count, .. } = &r else {
            panic!("{r:?}")
        };
        assert_eq!((vg.as_str(), *count), ("vg0", 2));
        let text = r.to_string();
        assert!(
            text.contains("/dev/vda3 with 64 of 128 MiB allocated"),
            "{text}"
        );
        if first_free >= 64 * MIB {
            assert!(
                text.contains("`pvmove /dev/vda3 /dev/vda2 && vgreduce vg0 /dev/vda3`"),
                "{text}"
            );
        } else {
            assert!(text.contains("No PV has room"), "{text}");
        }
    }
    // When only the other PV has the room, the advice gathers onto it.
    s.lvm.pvs[0].free = 0;
    s.lvm.pvs[1].size = first_size * 2;
    s.lvm.pvs[1].free = first_size * 2 - 64 * MIB;
    let text = refusal(&s, &choices(Strategy::SpareReturn)).to_string();
    assert!(
        text.contains("`pvmove /dev/vda2 /dev/vda3 && vgreduce vg0 /dev/vda2`"),
        "{text}"
    );
    // And when neither has room, it says what each lacks.
    s.lvm.pvs[1].free = 0;
    let text = refusal(&s, &choices(Strategy::SpareReturn)).to_string();
    assert!(text.contains("No PV has room"), "{text}");
    assert!(text.contains("/dev/vda3 has 0 MiB free for "), "{text}");
}

#[test]
fn lv_types_pvmove_cannot_handle() {
    for (attr, segtype, why) in [
        ("twi-a-tz--", "thin-pool", "thin pool"),
        ("rwi-a-r---", "raid1", "RAID"),
        ("owi-a-s---", "linear", "snapshot origin"),
        ("Cwi-a-C---", "cache", "cache"),
    ] {
        let mut s = seed();
        let mut lv = common::lv("odd", 141, 4, None);
        lv.attr = attr.into();
        lv.segments[0].segtype = segtype.into();
        s.lvm.lvs.push(lv);
        let r = refusal(&s, &choices(Strategy::SpareReturn));
        assert!(r.to_string().contains(&format!("vg0/odd ({why})")), "{r}");
    }
}

#[test]
fn pvmove_not_started_by_this_plan() {
    let mut s = seed();
    s.disks
        .push(common::empty_disk("/dev/vdc", 1024 * MIB, "third"));
    let mut extra = s.lvm.pvs[0].clone();
    extra.path = "/dev/vdc".into();
    extra.uuid = "PV-c".into();
    extra.pe_alloc_count = 0;
    s.lvm.pvs.push(extra);
    common::sim::interrupt_pvmove(&mut s, "vg0", "/dev/vda2", "/dev/vdc", true);
    // The VG spans vdc because of someone else's move; name the move, not the PV count.
    s.lvm.pvs.retain(|p| p.path != "/dev/vdc");
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(
        matches!(r, Refusal::ForeignPvmove { .. }),
        "moving to another disk than the spare: {r:?}"
    );
    let mut s2 = seed();
    common::sim::interrupt_pvmove(&mut s2, "vg0", "/dev/vda2", "/dev/vdc", true);
    s2.lvm.lvs.last_mut().unwrap().move_pv = Some("/dev/vdz9".into());
    let r = refusal(&s2, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::ForeignPvmove { .. }), "{r:?}");
    assert!(r.to_string().contains("pvmove --abort"));
}

#[test]
fn spare_or_target_on_the_live_system_disk() {
    for disk in ["/dev/vdb", "/dev/vda"] {
        let mut s = seed();
        s.live_system_disks = vec![disk.into()];
        let r = refusal(&s, &choices(Strategy::SpareReturn));
        assert!(matches!(r, Refusal::LiveSystemDisk { .. }), "{r:?}");
        assert!(r.to_string().contains(disk));
    }
}

#[test]
fn boot_inside_the_vg() {
    let mut s = seed();
    s.target
        .as_mut()
        .unwrap()
        .fstab
        .retain(|e| e.mount_point != "/boot");
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::BootInsideVg { .. }), "{r:?}");

    let mut s = seed();
    s.lvm
        .lvs
        .push(common::lv("boot", 141, 25, Some(("ext4", "bootlv-uuid"))));
    let t = s.target.as_mut().unwrap();
    t.fstab
        .iter_mut()
        .find(|e| e.mount_point == "/boot")
        .unwrap()
        .spec = "UUID=bootlv-uuid".into();
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(r.to_string().contains("vg0/boot"), "{r}");
}

#[test]
fn sector_size_mismatch() {
    let mut s = seed();
    s.disks[1].logical_sector_size = 4096;
    s.disks[1].physical_sector_size = 4096;
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(
        matches!(
            r,
            Refusal::SectorSizeMismatch {
                spare_sector: 4096,
                original_sector: 512,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn root_vg_is_the_running_system() {
    let mut s = seed();
    s.mounts.push(Mount {
        source: "/dev/mapper/vg0-root".into(),
        mount_point: "/".into(),
        fstype: "ext4".into(),
        device_number: "254:0".into(),
    });
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::RootInUse { .. }), "{r:?}");
    assert!(r.to_string().contains("live CD"));
}

#[test]
fn target_without_cryptsetup() {
    let mut s = seed();
    s.target.as_mut().unwrap().has_cryptsetup = false;
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert_eq!(r, Refusal::NoCryptsetup);
}

#[test]
fn missing_choices_name_their_flags() {
    let s = seed();
    let mut c = choices(Strategy::SpareReturn);
    c.spare = None;
    assert!(refusal(&s, &c).to_string().contains("--spare DEVICE"));
    let mut c = choices(Strategy::SpareReturn);
    c.strategy = None;
    assert!(refusal(&s, &c).to_string().contains("--strategy"));
    let mut c = choices(Strategy::SpareReturn);
    c.spare = Some("/dev/sdz".into());
    assert!(matches!(refusal(&s, &c), Refusal::SpareNotFound { .. }));
    let mut c = choices(Strategy::SpareReturn);
    c.vg = Some("VolGroup00".into());
    assert!(refusal(&s, &c).to_string().contains("vg0"));
}

#[test]
fn spare_is_the_original() {
    let s = seed();
    let mut c = choices(Strategy::SpareReturn);
    c.spare = Some("/dev/vda2".into());
    assert!(matches!(refusal(&s, &c), Refusal::SpareIsOriginal { .. }));
}

#[test]
fn backup_on_a_disk_being_changed() {
    for source in ["/dev/vdb", "/dev/vda1", "/dev/mapper/vg0-root"] {
        let mut s = seed();
        s.mounts.push(Mount {
            source: source.into(),
            mount_point: "/mnt/usb".into(),
            fstype: "ext4".into(),
            device_number: "254:9".into(),
        });
        let mut c = choices(Strategy::SpareReturn);
        c.header_backup = Some("/mnt/usb/keys/vg0.hdr".into());
        let r = refusal(&s, &c);
        assert!(
            matches!(r, Refusal::BackupOnChangedDisk { .. }),
            "{source}: {r:?}"
        );
    }
    let mut s = seed();
    s.disks.push(common::empty_disk("/dev/sdc", 8 << 30, "usb"));
    s.disks[2].partitions.push(luksify::probe::Partition {
        path: "/dev/sdc1".into(),
        number: 1,
        start: MIB,
        size: 4 << 30,
        type_id: Some("0x0c".into()),
        part_uuid: None,
        signature: None,
    });
    s.mounts.push(Mount {
        source: "/dev/sdc1".into(),
        mount_point: "/mnt/usb".into(),
        fstype: "vfat".into(),
        device_number: "8:33".into(),
    });
    let mut c = choices(Strategy::SpareReturn);
    c.header_backup = Some("/mnt/usb/vg0.hdr".into());
    assert!(plan::plan(&s, &c).is_ok());
}

#[test]
fn spare_used_by_the_target_is_refused_even_with_wipe() {
    // spare-keep takes whole disks only (see plan_spare_keep.rs).
    for (spare, strategy) in [
        ("/dev/vda1", Strategy::SpareReturn),
        ("/dev/vda", Strategy::SpareReturn),
        ("/dev/vda", Strategy::SpareKeep),
    ] {
        let mut c = choices(strategy);
        c.spare = Some(spare.into());
        c.wipe_spare = true;
        let r = refusal(&seed(), &c);
        assert!(matches!(r, Refusal::SpareInUse { .. }), "{spare}: {r:?}");
    }
    let mut c = choices(Strategy::SpareReturn);
    c.spare = Some("/dev/vda1".into());
    c.wipe_spare = true;
    assert!(
        refusal(&seed(), &c)
            .to_string()
            .contains("/boot (/dev/vda1)")
    );
}

#[test]
fn whole_disk_original_pv() {
    let mut s = seed();
    // The PV on the whole of /dev/vdc instead of a partition of /dev/vda.
    s.disks
        .push(common::empty_disk("/dev/vdc", 1024 * MIB, "whole"));
    s.lvm.pvs[0].path = "/dev/vdc".into();
    for lv in &mut s.lvm.lvs {
        lv.segments[0].devices[0].device = "/dev/vdc".into();
    }
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::WholeDiskPv { .. }), "{r:?}");
    assert!(r.to_string().contains("partition"), "{r}");
}

#[test]
fn a_root_whose_journal_needs_recovery_is_named_with_the_fix() {
    // A real ext4 image marked as after a power loss (needs_recovery): the
    // probe, which never replays a journal, names it.
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.img");
    let img_s = img.to_str().unwrap();
    let run = |argv: &[&str]| {
        let st = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{argv:?}");
    };
    run(&["truncate", "-s", "16M", img_s]);
    run(&["mke2fs", "-q", "-F", "-t", "ext4", img_s]);
    let mut s = seed();
    s.target = None;
    for lv in &mut s.lvm.lvs {
        lv.dm_path = Some(img_s.to_string());
    }
    let src = &mut luksify::probe::source::RealSource;
    assert!(luksify::probe::target::unreplayed_journals(src, &s).is_empty());
    run(&["debugfs", "-w", "-R", "feature needs_recovery", img_s]);
    let found = luksify::probe::target::unreplayed_journals(src, &s);
    assert_eq!(found, vec![("vg0/root".to_string(), img_s.to_string())]);

    s.unreplayed_journals = found;
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::NoRootLv { .. }), "{r:?}");
    assert!(
        r.to_string()
            .contains("the journal of vg0/root needs recovery"),
        "{r}"
    );
    assert!(
        r.to_string().contains(&format!("`e2fsck -p {img_s}`")),
        "{r}"
    );
}

#[test]
fn boot_too_full_for_the_unlock_luksify_adds() {
    // The seed's target has no cryptsetup-initramfs: luksify adds the unlock to
    // its image, which needs a backup of it and room for the new one.
    let mut s = seed();
    let space = |avail_mib: u64| {
        Some(luksify::probe::BootSpace {
            avail_bytes: avail_mib * MIB,
            images: [("initrd.img-6.1.0-28-amd64".to_string(), 40 * MIB)].into(),
        })
    };
    s.target.as_mut().unwrap().boot_space = space(90);
    let r = refusal(&s, &choices(Strategy::SpareReturn));
    assert!(matches!(r, Refusal::BootTooFull { .. }), "{r:?}");
    let msg = r.to_string();
    assert!(msg.contains("has 90 MiB free"), "{msg}");
    assert!(msg.contains("about 96 MiB"), "{msg}");
    assert!(msg.contains("then plan again"), "{msg}");
    s.target.as_mut().unwrap().boot_space = space(96);
    assert!(plan::plan(&s, &choices(Strategy::SpareReturn)).is_ok());
    // With cryptsetup-initramfs the target's update-initramfs writes each new
    // image beside the old one: room for the largest and the growth.
    s.target.as_mut().unwrap().has_cryptsetup_initramfs = true;
    s.target.as_mut().unwrap().boot_space = space(55);
    let msg = refusal(&s, &choices(Strategy::SpareReturn)).to_string();
    assert!(msg.contains("update-initramfs needs about 56 MiB"), "{msg}");
    s.target.as_mut().unwrap().boot_space = space(56);
    assert!(plan::plan(&s, &choices(Strategy::SpareReturn)).is_ok());
}

//! The probe on what real guests showed (vm-tests/fixtures): the parsing path
//! of a live run, replayed.

mod common;

use common::capture;

#[test]
fn seed_layout() {
    let s = capture::snapshot("seed-layout");
    let vda = s.disks.iter().find(|d| d.path == "/dev/vda").unwrap();
    assert_eq!(vda.size, 1 << 30);
    assert_eq!(vda.logical_sector_size, 512);
    assert_eq!(vda.serial.as_deref(), Some("target"));
    assert_eq!(vda.transport.as_deref(), Some("virtio"));
    assert_eq!(vda.partition_table.as_ref().unwrap().kind, "dos");
    let p2 = &vda.partitions[1];
    assert_eq!((p2.path.as_str(), p2.number), ("/dev/vda2", 2));
    assert_eq!(p2.start, 411648 * 512);
    assert_eq!(p2.size, 1685504 * 512);
    assert_eq!(p2.type_id.as_deref(), Some("0x8e"));
    assert!(p2.part_uuid.as_deref().unwrap().ends_with("-02"));
    assert_eq!(p2.signature.as_ref().unwrap().kind, "LVM2_member");
    assert_eq!(
        vda.partitions[0]
            .signature
            .as_ref()
            .unwrap()
            .label
            .as_deref(),
        Some("boot")
    );
    let vdb = s.disks.iter().find(|d| d.path == "/dev/vdb").unwrap();
    assert!(vdb.partition_table.is_none() && vdb.signature.is_none() && vdb.partitions.is_empty());

    let vg = s.vg("vg0").unwrap();
    assert_eq!(vg.extent_size, 4 << 20);
    let pv = s.pv("/dev/vda2").unwrap();
    assert_eq!(pv.vg.as_deref(), Some("vg0"));
    assert_eq!(pv.pe_alloc_count, 125 + 16);
    assert_eq!(s.lvm.pvs.len(), 1, "pvs -a rows without a UUID are not PVs");
    let root = s.lvm.lvs.iter().find(|l| l.name == "root").unwrap();
    assert!(root.active);
    assert_eq!(root.size, 500 << 20);
    assert_eq!(root.filesystem.as_ref().unwrap().kind, "ext4");
    assert_eq!(root.segments[0].devices[0].device, "/dev/vda2");
    assert!(s.crypt_mappings.is_empty());
    assert!(s.pvmove_in("vg0").is_none());
    assert!(
        s.live_system_disks.is_empty(),
        "the live system runs from RAM"
    );
}

#[test]
fn pvmove_in_progress() {
    let s = capture::snapshot("pvmove-in-progress");
    let mv = s.pvmove_in("vg0").expect("the interrupted move is seen");
    assert_eq!(mv.name, "pvmove0");
    assert_eq!(mv.move_pv.as_deref(), Some("/dev/vda2"));
    assert_eq!(mv.segments.len(), 2, "segments of the same hidden LV merge");
    assert!(mv.copy_percent.unwrap() > 0.0);
    assert_eq!(s.lvm.lvs.iter().filter(|l| l.name == "pvmove0").count(), 1);
    let root = s.lvm.lvs.iter().find(|l| l.name == "root").unwrap();
    assert_eq!(root.segments[0].devices[0].device, "pvmove0");
    assert_eq!(s.pv("/dev/vdb").unwrap().vg.as_deref(), Some("vg0"));
}

#[test]
fn luks_container_without_pv() {
    let s = capture::snapshot("luks-empty");
    let sig = s.signature("/dev/vda2").unwrap();
    assert_eq!(sig.kind, "crypto_LUKS");
    let m = s.mapping_over("/dev/vda2").expect("open mapping over vda2");
    assert_eq!(m.luks_uuid.as_deref(), sig.uuid.as_deref());
    assert_eq!(m.name, format!("luks-{}", sig.uuid.as_deref().unwrap()));
    assert!(s.pv_on_mapping(m).is_none(), "no PV inside yet");
    assert!(s.pv("/dev/vda2").is_none());
    assert_eq!(s.pv("/dev/vdb").unwrap().pe_alloc_count, 141);
}

#[test]
fn dashed_vg_name() {
    let s = capture::snapshot("seed-layout-vg-sys");
    let root = s.lvm.lvs.iter().find(|l| l.name == "root").unwrap();
    assert_eq!(root.vg, "vg-sys");
    assert_eq!(root.dm_path.as_deref(), Some("/dev/mapper/vg--sys-root"));
    assert_eq!(root.path.as_deref(), Some("/dev/vg-sys/root"));
}

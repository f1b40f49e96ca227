//! Snapshots for planner tests, and a model of what each step does to the
//! disks, so every intermediate state of a migration can be produced.
#![allow(dead_code)]

pub mod capture;
pub mod sim;

use luksify::probe::*;

pub const MIB: u64 = 1 << 20;
pub const EXTENT: u64 = 4 * MIB;

/// The seed layout, built to the numbers of the real capture (see [`real`]
/// for the capture itself): /dev/vda with /boot on vda1 and the PV of vg0
/// (root 500 MiB, swap 64 MiB) on vda2, and an empty 1 GiB spare /dev/vdb.
pub fn seed() -> Snapshot {
    built_seed()
}

pub fn built_seed() -> Snapshot {
    let disk_size = 1024 * MIB;
    let p2_size = disk_size - 201 * MIB;
    let pe_count = (p2_size - MIB) / EXTENT;
    let root_ext = 125;
    let swap_ext = 16;
    Snapshot {
        format: SNAPSHOT_FORMAT,
        disks: vec![
            Disk {
                path: "/dev/vda".into(),
                size: disk_size,
                logical_sector_size: 512,
                physical_sector_size: 512,
                model: None,
                serial: Some("target".into()),
                transport: Some("virtio".into()),
                removable: false,
                read_only: false,
                partition_table: Some(PartitionTable {
                    kind: "dos".into(),
                    uuid: Some("5eed0001".into()),
                }),
                signature: None,
                partitions: vec![
                    Partition {
                        path: "/dev/vda1".into(),
                        number: 1,
                        start: MIB,
                        size: 200 * MIB,
                        type_id: Some("0x83".into()),
                        part_uuid: Some("5eed0001-01".into()),
                        signature: Some(Signature {
                            kind: "ext4".into(),
                            uuid: Some("b00710ad-0000-4000-8000-000000000001".into()),
                            label: Some("boot".into()),
                            version: Some("1.0".into()),
                        }),
                    },
                    Partition {
                        path: "/dev/vda2".into(),
                        number: 2,
                        start: 201 * MIB,
                        size: p2_size,
                        type_id: Some("0x8e".into()),
                        part_uuid: Some("5eed0001-02".into()),
                        signature: Some(Signature {
                            kind: "LVM2_member".into(),
                            uuid: Some("PVorig-0000-0000-0000-0000-0000-000001".into()),
                            label: None,
                            version: Some("LVM2 001".into()),
                        }),
                    },
                ],
            },
            empty_disk("/dev/vdb", 1024 * MIB, "spare"),
        ],
        lvm: LvmState {
            pvs: vec![Pv {
                path: "/dev/vda2".into(),
                uuid: "PVorig-0000-0000-0000-0000-0000-000001".into(),
                vg: Some("vg0".into()),
                size: pe_count * EXTENT,
                free: (pe_count - root_ext - swap_ext) * EXTENT,
                pe_start: MIB,
                pe_count,
                pe_alloc_count: root_ext + swap_ext,
                dev_size: p2_size,
                tags: vec![],
                missing: false,
            }],
            vgs: vec![Vg {
                name: "vg0".into(),
                uuid: "VGuuid-0000-0000-0000-0000-0000-000001".into(),
                extent_size: EXTENT,
                extent_count: pe_count,
                free_count: pe_count - root_ext - swap_ext,
                tags: vec![],
                pv_count: 1,
                lv_count: 2,
            }],
            lvs: vec![
                lv(
                    "root",
                    0,
                    root_ext,
                    Some(("ext4", "4007f5e0-0000-4000-8000-000000000001")),
                ),
                lv(
                    "swap",
                    root_ext,
                    swap_ext,
                    Some(("swap", "5a4b0000-0000-4000-8000-000000000001")),
                ),
            ],
        },
        crypt_mappings: vec![],
        mounts: vec![],
        live_system_disks: vec![],
        target: Some(TargetOs {
            root_lv: "vg0/root".into(),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            fstab: vec![
                fstab("/dev/mapper/vg0-root", "/", "ext4"),
                fstab("UUID=b00710ad-0000-4000-8000-000000000001", "/boot", "ext4"),
                fstab("/dev/mapper/vg0-swap", "none", "swap"),
            ],
            crypttab: "# <target name>\t<source device>\t\t<key file>\t<options>\n".into(),
            kernels: vec!["6.1.0-28-amd64".into()],
            initramfs_generator: Some("initramfs-tools".into()),
            bootloader: Some("grub2".into()),
            has_cryptsetup: true,
            has_cryptsetup_initramfs: false,
            spare_boot_files: Some(SPARE_BOOT_FILES.iter().map(|f| f.to_string()).collect()),
            boot_space: None,
            files: Default::default(),
            boot_view: None,
        }),
        unreplayed_journals: Vec::new(),
    }
}

/// What a Debian 12 target with grub-pc has of the files spare-keep runs.
pub const SPARE_BOOT_FILES: &[&str] = &[
    "sbin/mke2fs",
    "usr/sbin/grub-install",
    "usr/sbin/grub-mkconfig",
    "usr/lib/grub/i386-pc/modinfo.sh",
    "usr/lib/grub/i386-pc/boot.img",
];

pub fn empty_disk(path: &str, size: u64, serial: &str) -> Disk {
    Disk {
        path: path.into(),
        size,
        logical_sector_size: 512,
        physical_sector_size: 512,
        model: None,
        serial: Some(serial.into()),
        transport: Some("virtio".into()),
        removable: false,
        read_only: false,
        partition_table: None,
        signature: None,
        partitions: vec![],
    }
}

pub fn lv(name: &str, start: u64, extents: u64, fs: Option<(&str, &str)>) -> Lv {
    Lv {
        name: name.into(),
        vg: "vg0".into(),
        uuid: format!("LV-{name}"),
        size: extents * EXTENT,
        attr: "-wi-a-----".into(),
        active: true,
        path: Some(format!("/dev/vg0/{name}")),
        dm_path: Some(format!("/dev/mapper/vg0-{name}")),
        role: vec!["public".into()],
        origin: None,
        pool_lv: None,
        move_pv: None,
        copy_percent: None,
        tags: vec![],
        segments: vec![LvSegment {
            segtype: "linear".into(),
            start_pe: 0,
            size_pe: extents,
            devices: vec![SegmentDevice {
                device: "/dev/vda2".into(),
                start_pe: start,
            }],
        }],
        filesystem: fs.map(|(k, u)| Signature {
            kind: k.into(),
            uuid: Some(u.into()),
            label: None,
            version: None,
        }),
    }
}

fn fstab(spec: &str, mp: &str, fstype: &str) -> FstabEntry {
    FstabEntry {
        spec: spec.into(),
        mount_point: mp.into(),
        fstype: fstype.into(),
        options: "defaults".into(),
    }
}

/// A captured real state with the target system's facts attached (the
/// captures' root LV holds a few files, not an installed OS), its /boot
/// pointing at the captured boot partition.
pub fn real(state: &str) -> Snapshot {
    let mut s = capture::snapshot(state);
    let mut t = built_seed().target.unwrap();
    let boot_uuid = s
        .partition("/dev/vda1")
        .and_then(|p| p.signature.as_ref())
        .and_then(|sig| sig.uuid.clone())
        .expect("captured /boot has a UUID");
    for e in &mut t.fstab {
        if e.mount_point == "/boot" {
            e.spec = format!("UUID={boot_uuid}");
        }
    }
    if let Some(vg) = s.lvm.vgs.first() {
        let vg = vg.name.clone();
        t.root_lv = format!("{vg}/root");
        for e in &mut t.fstab {
            e.spec = e.spec.replace(
                "/dev/mapper/vg0-",
                &format!("/dev/mapper/{}-", vg.replace('-', "--")),
            );
        }
    }
    s.target = Some(t);
    s
}

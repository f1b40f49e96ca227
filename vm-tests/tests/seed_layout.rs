//! Builds the seed layout (/boot partition + a VG with root and swap LVs) on
//! real LVM inside the live guest and captures what luksify's probe reads in
//! three states: the seed layout, a pvmove to the spare disk interrupted
//! part-way, and the old PV turned into an empty open LUKS container.
//!
//! Captures land in target/vm-fixtures/<state>/; with
//! `LUKSIFY_UPDATE_FIXTURES=1` they also replace vm-tests/fixtures/<state>/.

mod common;

use std::time::Instant;

use common::*;

/// A VG name with a dash: device-mapper doubles it (`vg--sys-root`).
#[test]
fn seed_layout_with_dashed_vg_name() {
    let images = tempfile::tempdir().unwrap();
    let mut g = boot_live("seed-layout-vg-sys", images.path());
    let c = g.console();
    build_seed(c, "vg-sys");
    let dir = capture(c, "seed-layout-vg-sys");
    assert_lvm_reports_ok(&dir);
    let lvs = json(&dir, "lvs.json", "seg");
    assert!(
        lvs.iter().any(|r| field(r, "lv_name") == "root"
            && field(r, "lv_dm_path") == "/dev/mapper/vg--sys-root"),
        "{lvs:?}"
    );
    let names: Vec<String> = ["dm-0", "dm-1"]
        .iter()
        .map(|d| {
            read(&dir, &format!("sys/block/{d}/dm/name"))
                .trim()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"vg--sys-root".to_string()), "{names:?}");
    g.poweroff(T).unwrap();
}

#[test]
fn seed_layout_pvmove_and_luks_captures() {
    let t0 = Instant::now();

    let images = tempfile::tempdir().unwrap();
    let mut g = boot_live("seed-layout", images.path());
    let c = g.console();
    let booted = t0.elapsed();

    build_seed(c, "vg0");
    let seed = capture(c, "seed-layout");
    let made = t0.elapsed();

    assert_lvm_reports_ok(&seed);
    let lvs = json(&seed, "lvs.json", "seg");
    let size_of = |name: &str| {
        lvs.iter()
            .find(|r| field(r, "lv_name") == name && field(r, "vg_name") == "vg0")
            .map(|r| field(r, "lv_size").to_string())
    };
    assert_eq!(size_of("root").as_deref(), Some("524288000"), "{lvs:?}");
    assert_eq!(size_of("swap").as_deref(), Some("67108864"), "{lvs:?}");
    let pvs = json(&seed, "pvs.json", "pv");
    assert!(
        pvs.iter()
            .any(|r| field(r, "pv_name") == "/dev/vda2" && field(r, "vg_name") == "vg0"),
        "{pvs:?}"
    );
    assert!(read(&seed, "blkid/vda1").contains("LABEL=boot\n"));
    assert!(read(&seed, "blkid/vda2").contains("TYPE=LVM2_member\n"));
    assert_eq!(read(&seed, "sys/block/vda/vda1/start").trim(), "2048");
    assert_eq!(read(&seed, "sys/block/vda/serial").trim(), "target");
    assert!(read(&seed, "mountinfo").contains(" /mnt/target/boot "));

    // Part of a pvmove: the spare joins the VG, the move starts, and its
    // poller is killed once the pvmove LV exists. The kernel finishes the
    // segment in flight; nothing moves the rest, so [pvmove0] stays.
    sh(c, "pvcreate /dev/vdb && vgextend vg0 /dev/vdb");
    // The wait runs in the guest: a host round trip per poll could miss a
    // move that a faster (KVM) guest finishes in a second.
    c.run_ok(
        "pvmove -i 1 /dev/vda2 /dev/vdb >/tmp/pvmove.log 2>&1 </dev/null & pid=$!; \
         until lvm lvs -a --noheadings -o lv_name vg0 | grep -q 'pvmove0'; do kill -0 $pid || break; done; \
         kill -9 $pid && sleep 1",
        T,
    )
    .unwrap();
    let moving = capture(c, "pvmove-in-progress");
    assert_lvm_reports_ok(&moving);
    let lvs = json(&moving, "lvs.json", "seg");
    assert!(
        lvs.iter().any(|r| field(r, "lv_name") == "[pvmove0]"),
        "{lvs:?}"
    );
    let pvs = json(&moving, "pvs.json", "pv");
    for pv in ["/dev/vda2", "/dev/vdb"] {
        assert!(
            pvs.iter()
                .any(|r| field(r, "pv_name") == pv && field(r, "vg_name") == "vg0"),
            "{pv} not in vg0: {pvs:?}"
        );
    }

    // Spare-return's first half: finish the move, free the old PV, and make
    // it an empty LUKS container, opened as luks-<uuid>.
    sh(c, "pvmove -i 1");
    let left = sh(c, "lvm lvs -a --noheadings -o lv_name vg0");
    assert!(!left.contains("pvmove"), "pvmove did not finish: {left}");
    sh(c, "vgreduce vg0 /dev/vda2 && pvremove /dev/vda2");
    sh(
        c,
        &format!(
            "printf '%s' '{PASSPHRASE}' | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --iter-time 100 \
             --batch-mode --key-file=- /dev/vda2"
        ),
    );
    sh(
        c,
        &format!(
            "u=$(cryptsetup luksUUID /dev/vda2) && printf '%s' '{PASSPHRASE}' | \
             cryptsetup open --key-file=- /dev/vda2 luks-$u"
        ),
    );
    let luks = capture(c, "luks-empty");
    assert_lvm_reports_ok(&luks);
    assert!(read(&luks, "blkid/vda2").contains("TYPE=crypto_LUKS\n"));
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2").trim().to_string();
    let crypt_dm = std::fs::read_dir(luks.join("sys/block"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("dm/uuid")).is_ok_and(|u| u.starts_with("CRYPT-LUKS2-"))
        })
        .expect("an open LUKS2 mapping in /sys/block");
    assert_eq!(
        std::fs::read_to_string(crypt_dm.join("dm/name"))
            .unwrap()
            .trim(),
        format!("luks-{uuid}")
    );
    assert_eq!(
        std::fs::read_to_string(crypt_dm.join("slaves.ls"))
            .unwrap()
            .trim(),
        "vda2"
    );
    let pvs = json(&luks, "pvs.json", "pv");
    let in_vg: Vec<&str> = pvs
        .iter()
        .filter(|r| field(r, "vg_name") == "vg0")
        .map(|r| field(r, "pv_name"))
        .collect();
    assert_eq!(in_vg, ["/dev/vdb"], "{pvs:?}");

    g.poweroff(T).unwrap();
    eprintln!(
        "timings: shell {booted:?}, seed layout captured {made:?}, all {:?} ({:?})",
        t0.elapsed(),
        g.accel
    );
}

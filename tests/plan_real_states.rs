//! Planning on states captured from real LVM in a guest.

mod common;

use luksify::plan::{self, Action, Choices, Refusal, Strategy};

fn choices() -> Choices {
    Choices {
        spare: Some("/dev/vdb".into()),
        strategy: Some(Strategy::SpareReturn),
        header_backup: Some("/root/vg0.luksheader".into()),
        ..Default::default()
    }
}

#[test]
fn bundled_snapshot_is_the_capture_with_a_target() {
    let s = common::real("seed-layout");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed-layout.snapshot.json");
    let json = serde_json::to_string_pretty(&s).unwrap() + "\n";
    if std::env::var_os("LUKSIFY_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &json).unwrap();
    }
    let committed = std::fs::read_to_string(&path).expect(
        "tests/fixtures/seed-layout.snapshot.json exists (LUKSIFY_UPDATE_FIXTURES=1 writes it)",
    );
    assert_eq!(committed, json, "regenerate with LUKSIFY_UPDATE_FIXTURES=1");
}

#[test]
fn seed_flow_on_the_real_layout() {
    let s = common::real("seed-layout");
    let p = plan::plan(&s, &choices()).unwrap();
    let part_uuid = s.partition("/dev/vda2").unwrap().part_uuid.clone().unwrap();
    match &p.steps[0].action {
        Action::Command { argv, .. } => {
            assert!(
                argv.contains(&format!("luksify:orig-part={part_uuid}")),
                "{argv:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(p.steps.iter().any(|s| matches!(&s.action,
        Action::PvMove { source: Some(a), dest: Some(b), .. } if a == "/dev/vda2" && b == "/dev/vdb")));
}

fn tag_as_ours(s: &mut luksify::probe::Snapshot) {
    let pu = s.partition("/dev/vda2").unwrap().part_uuid.clone().unwrap();
    s.lvm.vgs[0].tags = vec![
        "luksify:spare-return".into(),
        format!("luksify:orig-part={pu}"),
    ];
}

#[test]
fn real_pvmove_started_by_hand_is_refused() {
    let s = common::real("pvmove-in-progress");
    let r = plan::plan(&s, &choices()).unwrap_err();
    assert!(matches!(r, Refusal::ForeignPvmove { .. }), "{r:?}");
    assert!(r.to_string().contains("moving off /dev/vda2"), "{r}");
}

#[test]
fn real_interrupted_pvmove_of_this_migration_is_resumed() {
    let mut s = common::real("pvmove-in-progress");
    tag_as_ours(&mut s);
    let p = plan::plan(&s, &choices()).unwrap();
    assert!(
        matches!(p.steps[0].action, Action::PvMove { source: None, .. }),
        "{:?}",
        p.steps[0]
    );
    assert_eq!(p.steps[1].title, "Remove /dev/vda2 from volume group vg0");
}

#[test]
fn real_luks_container_made_by_someone_else_is_not_touched() {
    let s = common::real("luks-empty");
    let r = plan::plan(&s, &choices()).unwrap_err();
    assert!(matches!(r, Refusal::SpareIsOriginal { .. }), "{r:?}");
}

#[test]
fn real_luks_container_not_made_by_this_migration_is_refused_even_when_tagged() {
    // The capture was formatted by hand with a random UUID; luksify formats
    // with the UUID it derives, so this header is someone else's.
    let mut s = common::real("luks-empty");
    tag_as_ours(&mut s);
    let r = plan::plan(&s, &choices()).unwrap_err();
    assert!(matches!(r, Refusal::UnknownState { .. }), "{r:?}");
    assert!(r.to_string().contains("did not make"), "{r}");
}

#[test]
fn dashed_vg_name_is_kept_whole() {
    let s = common::real("seed-layout-vg-sys");
    let p = plan::plan(&s, &choices()).unwrap();
    assert_eq!(p.vg, "vg-sys");
    assert!(
        p.notes[0].contains("/dev/mapper/vg--sys-root"),
        "{}",
        p.notes[0]
    );
}

#[test]
fn real_pvmove_after_a_crash_activates_without_polling_then_resumes() {
    let mut s = common::real("pvmove-after-crash");
    assert!(
        s.lvm
            .lvs
            .iter()
            .filter(|l| l.is_public())
            .all(|l| !l.active),
        "nothing active after the reboot"
    );
    tag_as_ours(&mut s);
    let p = plan::plan(&s, &choices()).unwrap();
    // The trap: a bare pvmove on an inactive VG exits 0 having moved nothing.
    assert!(
        matches!(&p.steps[0].action, Action::Command { argv, .. }
        if argv == &["lvm", "vgchange", "-ay", "--poll", "n", "vg0"]),
        "{:?}",
        p.steps[0]
    );
    assert!(
        matches!(p.steps[1].action, Action::PvMove { source: None, .. }),
        "{:?}",
        p.steps[1]
    );
    assert!(p.steps[1].expect.contains(&plan::Check::PvEmpty {
        pv: "/dev/vda2".into()
    }));
}

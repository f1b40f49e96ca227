//! Convergence: from every intermediate state of both strategies, planning
//! again yields exactly the steps that remain, and nothing already done.

mod common;

use common::sim;
use luksify::plan::{self, Action, Choices, Plan, Step, Strategy};

fn choices(strategy: Strategy) -> Choices {
    Choices {
        spare: Some("/dev/vdb".into()),
        strategy: Some(strategy),
        header_backup: Some("/root/backup/vg0.luksheader".into()),
        ..Default::default()
    }
}

fn titles(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.title.as_str()).collect()
}

/// Steps up to the target configuration: the ones that change the disks' layout.
fn disk_steps(p: &Plan) -> usize {
    p.steps
        .iter()
        .position(|s| matches!(s.action, Action::MountTarget { .. }))
        .unwrap()
}

/// Backups change nothing on the disks, so a plan made after one may list it
/// again (redoing a backup is harmless); every other step must not come back.
fn leaves_no_trace(s: &Step) -> bool {
    matches!(
        s.action,
        Action::VgMetadataBackup { .. } | Action::LuksHeaderBackup { .. }
    )
}

fn walk(strategy: Strategy) {
    let c = choices(strategy);
    let fresh = plan::plan(&common::seed(), &c).expect("fresh plan");
    assert!(fresh.resumed.is_none());
    let n = disk_steps(&fresh);
    let mut state = common::seed();
    for k in 0..=n {
        let again =
            plan::plan(&state, &c).unwrap_or_else(|r| panic!("after {k} steps: refused: {r}"));
        let mut from = k;
        while from > 0
            && leaves_no_trace(&fresh.steps[from - 1])
            && again.steps.len() > fresh.steps.len() - from
        {
            from -= 1;
        }
        assert_eq!(
            titles(&again.steps),
            titles(&fresh.steps[from..]),
            "after {k} steps of {strategy:?} the plan should be the rest of the original"
        );
        assert_eq!(
            again.steps,
            fresh.steps[from..],
            "after {k} steps: same actions"
        );
        assert_eq!(again.luks_uuid, fresh.luks_uuid);
        assert_eq!(
            k > 0,
            again.resumed.is_some(),
            "after {k} steps: resumed is reported"
        );
        if k < n {
            sim::apply(&mut state, &fresh.steps[k]);
        }
    }
}

#[test]
fn spare_return_converges_from_every_state() {
    walk(Strategy::SpareReturn);
}

#[test]
fn spare_keep_converges_from_every_state() {
    walk(Strategy::SpareKeep);
}

#[test]
fn spare_return_follows_the_seed_procedure_with_probed_names() {
    let p = plan::plan(&common::seed(), &choices(Strategy::SpareReturn)).unwrap();
    let t = titles(&p.steps);
    let expected = [
        "Mark volume group vg0 as being migrated",
        "Make /dev/vdb an LVM physical volume",
        "Add /dev/vdb to volume group vg0",
        "Move all extents of vg0 from /dev/vda2 to /dev/vdb",
        "Remove /dev/vda2 from volume group vg0",
        "Back up the metadata of volume group vg0",
        "Remove the LVM label from /dev/vda2",
        "Set the partition type of /dev/vda2 to Linux (83)",
    ];
    assert_eq!(&t[..expected.len()], expected);
    let m = format!("/dev/mapper/luks-{}", p.luks_uuid);
    assert!(t.contains(&format!("Make {m} an LVM physical volume").as_str()));
    assert!(t.contains(&format!("Move all extents of vg0 from /dev/vdb to {m}").as_str()));
    assert!(t.contains(&"Remove the LVM label from /dev/vdb"));
    // The VG is activated by its probed name, never a guessed one (the seed's vg00).
    for s in &p.steps {
        if let Action::Command { argv, .. } = &s.action {
            assert!(!argv.iter().any(|a| a == "vg00" || a == "VolGroup00"));
        }
    }
    // The container is opened and recorded by UUID.
    let crypttab = p
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::BootConfig { edits, .. } => edits.iter().find(|e| e.path == "etc/crypttab"),
            _ => None,
        })
        .expect("crypttab edit");
    assert!(
        crypttab
            .after
            .contains(&format!("UUID={} none luks", p.luks_uuid))
    );
    assert!(
        crypttab.after.starts_with("# <target name>"),
        "existing lines kept"
    );
}

#[test]
fn interrupted_first_pvmove_is_resumed_not_restarted() {
    for active in [true, false] {
        let c = choices(Strategy::SpareReturn);
        let fresh = plan::plan(&common::seed(), &c).unwrap();
        let mut s = common::seed();
        for step in &fresh.steps[..3] {
            sim::apply(&mut s, step);
        }
        sim::interrupt_pvmove(&mut s, "vg0", "/dev/vda2", "/dev/vdb", active);
        let p = plan::plan(&s, &c).unwrap();
        let mut i = 0;
        if !active {
            // The trap: a bare pvmove on an inactive VG exits 0 and moves nothing.
            assert!(matches!(&p.steps[0].action, Action::Command { argv, .. }
                if argv == &["lvm", "vgchange", "-ay", "--poll", "n", "vg0"]));
            i = 1;
        }
        assert!(
            matches!(
                &p.steps[i].action,
                Action::PvMove {
                    source: None,
                    dest: None,
                    ..
                }
            ),
            "resume with a bare pvmove: {:?}",
            p.steps[i]
        );
        assert!(p.steps[i].expect.contains(&plan::Check::PvEmpty {
            pv: "/dev/vda2".into()
        }));
        assert_eq!(titles(&p.steps[i + 1..]), titles(&fresh.steps[4..]));
    }
}

#[test]
fn interrupted_second_pvmove_is_resumed() {
    let c = choices(Strategy::SpareReturn);
    let fresh = plan::plan(&common::seed(), &c).unwrap();
    let back = fresh
        .steps
        .iter()
        .position(
            |s| matches!(&s.action, Action::PvMove { source: Some(src), .. } if src == "/dev/vdb"),
        )
        .unwrap();
    let mut s = common::seed();
    for step in &fresh.steps[..back] {
        sim::apply(&mut s, step);
    }
    let m = format!("/dev/mapper/{}", fresh.mapper_name);
    sim::interrupt_pvmove(&mut s, "vg0", "/dev/vdb", &m, false);
    let p = plan::plan(&s, &c).unwrap();
    assert!(matches!(
        &p.steps[1].action,
        Action::PvMove { source: None, .. }
    ));
    assert_eq!(titles(&p.steps[2..]), titles(&fresh.steps[back + 1..]));
}

#[test]
fn spare_keep_interrupted_move_is_resumed() {
    let c = choices(Strategy::SpareKeep);
    let fresh = plan::plan(&common::seed(), &c).unwrap();
    let mv = fresh
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::PvMove { .. }))
        .unwrap();
    let mut s = common::seed();
    for step in &fresh.steps[..mv] {
        sim::apply(&mut s, step);
    }
    let m = format!("/dev/mapper/{}", fresh.mapper_name);
    sim::interrupt_pvmove(&mut s, "vg0", "/dev/vda2", &m, true);
    let p = plan::plan(&s, &c).unwrap();
    assert!(matches!(
        &p.steps[0].action,
        Action::PvMove { source: None, .. }
    ));
    assert_eq!(titles(&p.steps[1..]), titles(&fresh.steps[mv + 1..]));
}

#[test]
fn spare_keep_partitions_the_spare_with_its_own_boot() {
    let p = plan::plan(&common::seed(), &choices(Strategy::SpareKeep)).unwrap();
    assert_eq!(p.container, "/dev/vdb2");
    let t = titles(&p.steps);
    assert!(t.contains(
        &"Partition /dev/vdb (dos): /boot /dev/vdb1 (200 MiB), LUKS container /dev/vdb2 (the rest)"
    ));
    assert!(t.contains(&"Remove the LVM label from /dev/vda2"));
    assert!(!t.iter().any(|x| x.contains("partition type of /dev/vda2")));
}

#[test]
fn strategy_is_read_back_from_the_disks() {
    let c = choices(Strategy::SpareKeep);
    let fresh = plan::plan(&common::seed(), &c).unwrap();
    let mut s = common::seed();
    sim::apply(&mut s, &fresh.steps[0]);
    let mut no_strategy = c.clone();
    no_strategy.strategy = None;
    assert_eq!(
        plan::plan(&s, &no_strategy).unwrap().strategy,
        Strategy::SpareKeep
    );
    let mut other = c.clone();
    other.strategy = Some(Strategy::SpareReturn);
    let r = plan::plan(&s, &other).unwrap_err().to_string();
    assert!(r.contains("--strategy spare-keep"), "{r}");
}

#[test]
fn json_has_the_same_steps_as_text() {
    let p = plan::plan(&common::seed(), &choices(Strategy::SpareReturn)).unwrap();
    let text = luksify::exec::render::text(&p);
    let json: serde_json::Value = serde_json::to_value(&p).unwrap();
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), p.steps.len());
    for (i, s) in steps.iter().enumerate() {
        let title = s["title"].as_str().unwrap();
        assert!(
            text.contains(&format!("{}. {title}", i + 1)),
            "step {} in text",
            i + 1
        );
    }
    assert!(text.contains("--- a/etc/crypttab"));
    assert!(text.contains(&format!(
        "+luks-{} UUID={} none luks",
        p.luks_uuid, p.luks_uuid
    )));
}

fn changes_disks(a: &Action) -> bool {
    matches!(
        a,
        Action::Command { .. }
            | Action::PvMove { .. }
            | Action::LuksFormat { .. }
            | Action::LuksOpen { .. }
    )
}

/// Runs a migration the way `luksify migrate` does: the plan's steps in order,
/// each disk step only if planning again from the disks still calls for it
/// next; when it does not, the person runs luksify again (a fresh plan).
fn drive_to_completion(
    mut s: luksify::probe::Snapshot,
    c: &Choices,
    what: &str,
) -> luksify::probe::Snapshot {
    for run in 0..10 {
        let p = plan::plan(&s, c).unwrap_or_else(|r| panic!("{what}, run {run}: refused: {r}"));
        let n = disk_steps(&p);
        if n == 0 {
            return s;
        }
        for (i, step) in p.steps[..n].iter().enumerate() {
            if i > 0 && changes_disks(&step.action) {
                let again = plan::plan(&s, c)
                    .unwrap_or_else(|r| panic!("{what}, run {run}, step {i}: refused: {r}"));
                let next = again.steps.iter().find(|x| changes_disks(&x.action));
                if next.map(|x| &x.action) != Some(&step.action) {
                    break;
                }
            }
            sim::apply(&mut s, step);
        }
    }
    panic!("{what}: still not done after 10 runs of luksify");
}

fn assert_done(s: &luksify::probe::Snapshot, strategy: Strategy, what: &str) {
    let pvs: Vec<&str> = s.pvs_of("vg0").map(|p| p.path.as_str()).collect();
    assert_eq!(pvs.len(), 1, "{what}: {pvs:?}");
    assert!(pvs[0].starts_with("/dev/mapper/luks-"), "{what}: {pvs:?}");
    assert!(s.pvmove_in("vg0").is_none(), "{what}");
    let freed = match strategy {
        Strategy::SpareReturn => "/dev/vdb",
        Strategy::SpareKeep => "/dev/vda2",
    };
    assert!(s.pv(freed).is_none(), "{what}: {freed} still a PV");
    assert_eq!(
        s.pv(pvs[0]).unwrap().pe_alloc_count,
        141,
        "{what}: all data inside"
    );
}

#[test]
fn a_reboot_at_any_point_is_resumed_to_the_end() {
    for strategy in [Strategy::SpareReturn, Strategy::SpareKeep] {
        let c = choices(strategy);
        let fresh = plan::plan(&common::seed(), &c).unwrap();
        let n = disk_steps(&fresh);
        let mut state = common::seed();
        for k in 0..=n {
            let mut rebooted = state.clone();
            sim::reboot(&mut rebooted);
            let what = format!("{strategy:?}, reboot after {k} steps");
            let end = drive_to_completion(rebooted, &c, &what);
            assert_done(&end, strategy, &what);
            if k < n {
                sim::apply(&mut state, &fresh.steps[k]);
            }
        }
    }
}

#[test]
fn a_reboot_during_the_move_into_the_container_opens_it_before_activating() {
    let c = choices(Strategy::SpareReturn);
    let fresh = plan::plan(&common::seed(), &c).unwrap();
    let back = fresh
        .steps
        .iter()
        .position(
            |s| matches!(&s.action, Action::PvMove { source: Some(src), .. } if src == "/dev/vdb"),
        )
        .unwrap();
    let mut s = common::seed();
    for step in &fresh.steps[..back] {
        sim::apply(&mut s, step);
    }
    let m = format!("/dev/mapper/{}", fresh.mapper_name);
    sim::interrupt_pvmove(&mut s, "vg0", "/dev/vdb", &m, true);
    sim::reboot(&mut s);
    let p = plan::plan(&s, &c).unwrap_or_else(|r| panic!("refused: {r}"));
    assert!(
        matches!(p.steps[0].action, Action::LuksOpen { .. }),
        "{:?}",
        p.steps[0]
    );
    assert!(
        matches!(&p.steps[1].action, Action::Command { argv, .. }
        if argv == &["lvm", "vgchange", "-ay", "--poll", "n", "vg0"]),
        "{:?}",
        p.steps[1]
    );
    assert!(
        matches!(p.steps[2].action, Action::PvMove { source: None, .. }),
        "{:?}",
        p.steps[2]
    );
    assert_done(
        &drive_to_completion(s, &c, "second move"),
        Strategy::SpareReturn,
        "second move",
    );
}

#[test]
fn a_wrong_spare_on_resume_is_refused_not_called_done() {
    let c = choices(Strategy::SpareReturn);
    let fresh = plan::plan(&common::seed(), &c).unwrap();
    let back = fresh
        .steps
        .iter()
        .position(
            |s| matches!(&s.action, Action::PvMove { source: Some(src), .. } if src == "/dev/vdb"),
        )
        .unwrap();
    let mut s = common::seed();
    for step in &fresh.steps[..=back] {
        sim::apply(&mut s, step);
    }
    s.disks
        .push(common::empty_disk("/dev/vdc", 1 << 30, "other"));
    let mut wrong = c.clone();
    wrong.spare = Some("/dev/vdc".into());
    let r = plan::plan(&s, &wrong).unwrap_err();
    assert!(
        matches!(r, luksify::plan::Refusal::UncoveredPvs { .. }),
        "{r:?}"
    );
    assert!(r.to_string().contains("/dev/vdb"), "{r}");
}

//! `luksify status` at every point of an interrupted migration: it names the
//! spare when the disks settle it, the steps that remain and the flags that
//! resume, and never names a device that could not be the spare.

mod common;

use common::sim;
use luksify::plan::{self, Action, Choices, Strategy, status};

fn choices(strategy: Strategy) -> Choices {
    Choices {
        spare: Some("/dev/vdb".into()),
        strategy: Some(strategy),
        header_backup: Some("/root/backup/vg0.luksheader".into()),
        ..Default::default()
    }
}

fn walk(strategy: Strategy) -> (usize, usize) {
    let c = choices(strategy);
    let fresh = plan::plan(&common::seed(), &c).expect("fresh plan");
    let n = fresh
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::MountTarget { .. }))
        .unwrap();
    let mut state = common::seed();
    let (mut named, mut unsettled) = (0, 0);
    for k in 0..=n {
        let st = status::of(&state);
        let vg0 = st.iter().find(|s| s.vg == "vg0").unwrap();
        if k == 0 {
            assert_eq!(vg0.migrating, None);
            assert_eq!(vg0.summary, "not encrypted");
        } else {
            let rest = plan::plan(&state, &c).unwrap();
            assert_eq!(vg0.migrating.as_deref(), Some(strategy.name()), "after {k}");
            assert_eq!(vg0.original.as_deref(), Some(fresh.original_pv.as_str()));
            match &vg0.remaining {
                Some(r) => {
                    named += 1;
                    assert_eq!(r.spare, "/dev/vdb", "after {k} steps");
                    assert_eq!(r.steps, rest.steps.len(), "after {k} steps");
                    assert_eq!(r.next, rest.steps[0].title);
                    assert!(vg0.summary.contains(&r.resume_flags), "{}", vg0.summary);
                    assert!(r.resume_flags.contains("--spare /dev/vdb"));
                }
                None => {
                    unsettled += 1;
                    assert!(
                        vg0.spare_candidates.is_empty()
                            || vg0.spare_candidates.contains(&"/dev/vdb".to_string()),
                        "after {k} steps the candidates {:?} miss the real spare",
                        vg0.spare_candidates
                    );
                    assert!(vg0.summary.contains("luksify plan"), "{}", vg0.summary);
                }
            }
        }
        if k < n {
            sim::apply(&mut state, &fresh.steps[k]);
        }
    }
    (named, unsettled)
}

#[test]
fn spare_return_status_names_the_spare_and_what_remains() {
    let (named, _) = walk(Strategy::SpareReturn);
    // From the spare's pvcreate until it leaves the VG again, it is a PV of
    // vg0 and nothing else can be the spare.
    assert!(named >= 10, "the spare was named after only {named} steps");
}

#[test]
fn spare_keep_status_names_the_spare_and_what_remains() {
    let (named, _) = walk(Strategy::SpareKeep);
    assert!(named >= 4, "the spare was named after only {named} steps");
}

#[test]
fn status_text_names_the_original_and_the_spare() {
    let c = choices(Strategy::SpareReturn);
    let fresh = plan::plan(&common::seed(), &c).unwrap();
    let mut state = common::seed();
    for s in &fresh.steps[..4] {
        sim::apply(&mut state, s);
    }
    let text = status::text(&status::of(&state));
    assert!(
        text.contains(&format!("being encrypted: {}", fresh.original_pv)),
        "{text}"
    );
    assert!(text.contains("spare: /dev/vdb"), "{text}");
    assert!(
        text.contains("--strategy spare-return --spare /dev/vdb"),
        "{text}"
    );
}

#[test]
fn status_of_a_real_interrupted_pvmove_names_the_spare() {
    for state in ["pvmove-in-progress", "pvmove-after-crash"] {
        let mut snap = common::real(state);
        let untagged = status::text(&status::of(&snap));
        if snap.pvmove_in("vg0").is_some() {
            assert!(
                untagged.contains("not started by luksify"),
                "{state}: {untagged}"
            );
        }
        // As the first step of a migration would have left it.
        let pu = snap
            .partition("/dev/vda2")
            .unwrap()
            .part_uuid
            .clone()
            .unwrap();
        snap.lvm.vgs[0].tags = vec![
            "luksify:spare-return".into(),
            format!("luksify:orig-part={pu}"),
        ];
        let st = status::of(&snap);
        let text = status::text(&st);
        let vg = &st[0];
        let r = vg
            .remaining
            .as_ref()
            .unwrap_or_else(|| panic!("{state}: {text}"));
        assert!(r.steps > 0, "{text}");
        assert!(text.contains("being encrypted: /dev/vda2"), "{text}");
        assert!(text.contains(&format!("spare: {}", r.spare)), "{text}");
    }
}

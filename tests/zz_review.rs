mod common;
use common::sim;
use luksify::plan::{self, Action, Choices, Strategy};
use luksify::probe::*;

fn ch(spare: &str) -> Choices {
    Choices {
        spare: Some(spare.into()),
        strategy: Some(Strategy::SpareReturn),
        header_backup: Some("/root/backup/vg0.luksheader".into()),
        ..Default::default()
    }
}
fn titles(p: &plan::Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.title.clone()).collect()
}

fn run_until(state: &mut Snapshot, c: &Choices, pred: impl Fn(&plan::Step) -> bool) {
    loop {
        let p = plan::plan(state, c).unwrap();
        let s = p.steps[0].clone();
        if pred(&s) {
            return;
        }
        sim::apply(state, &s);
    }
}

#[test]
fn wrong_spare_after_first_move() {
    let mut s = common::seed();
    s.disks
        .push(common::empty_disk("/dev/vdc", 2048 * common::MIB, "other"));
    let c = ch("/dev/vdb");
    // run until the LUKS open is next
    run_until(&mut s, &c, |st| {
        matches!(st.action, Action::LuksFormat { .. })
    });
    let wrong = ch("/dev/vdc");
    match plan::plan(&s, &wrong) {
        Ok(p) => println!("WRONG SPARE at luksFormat: {:#?}", titles(&p)),
        Err(e) => println!("refused: {e}"),
    }
    // run until pvmove back
    run_until(&mut s, &c, |st| matches!(&st.action, Action::PvMove { .. }));
    match plan::plan(&s, &wrong) {
        Ok(p) => println!("WRONG SPARE at move-back: {:#?}", titles(&p)),
        Err(e) => println!("refused: {e}"),
    }
}

#[test]
fn reboot_with_closed_container() {
    let mut s = common::seed();
    let c = ch("/dev/vdb");
    run_until(
        &mut s,
        &c,
        |st| matches!(&st.action, Action::PvMove{source: Some(x), ..} if x=="/dev/vdb"),
    );
    // simulate reboot: mapping closed, PV on mapper missing, LVs inactive
    let m = s.crypt_mappings.remove(0);
    for pv in &mut s.lvm.pvs {
        if pv.path == m.path || pv.path == format!("/dev/{}", m.kernel_name) {
            pv.path = "[unknown]".into();
            pv.missing = true;
        }
    }
    for lv in &mut s.lvm.lvs {
        lv.active = false;
    }
    match plan::plan(&s, &c) {
        Ok(p) => println!(
            "AFTER REBOOT: {:#?}",
            p.steps
                .iter()
                .map(|s| (s.title.clone(), luksify::exec::runner::describe(s)))
                .collect::<Vec<_>>()
        ),
        Err(e) => println!("refused: {e}"),
    }
}

#[test]
fn completed_replan() {
    let mut s = common::seed();
    let c = ch("/dev/vdb");
    let p = plan::plan(&s, &c).unwrap();
    for st in &p.steps {
        sim::apply(&mut s, st);
    }
    match plan::plan(&s, &c) {
        Ok(p) => println!("AFTER COMPLETE: {:#?}", titles(&p)),
        Err(e) => println!("refused: {e}"),
    }
}

#[test]
fn whole_disk_pv() {
    let mut s = common::seed();
    // make original a whole-disk PV on a new disk vdc; keep boot on vda1
    s.disks
        .push(common::empty_disk("/dev/vdc", 1024 * common::MIB, "orig"));
    let sig = s.disks[0].partitions[1].signature.clone();
    s.disks.last_mut().unwrap().signature = sig;
    s.disks[0].partitions.remove(1);
    for pv in &mut s.lvm.pvs {
        if pv.path == "/dev/vda2" {
            pv.path = "/dev/vdc".into();
        }
    }
    for lv in &mut s.lvm.lvs {
        for seg in &mut lv.segments {
            for d in &mut seg.devices {
                if d.device == "/dev/vda2" {
                    d.device = "/dev/vdc".into();
                }
            }
        }
    }
    let c = ch("/dev/vdb");
    for i in 0..30 {
        match plan::plan(&s, &c) {
            Ok(p) => {
                if p.steps.is_empty() {
                    break;
                }
                let st = p.steps[0].clone();
                println!("{i}: {}", st.title);
                if matches!(st.action, Action::MountTarget { .. }) {
                    break;
                }
                sim::apply(&mut s, &st);
            }
            Err(e) => {
                println!("{i}: REFUSED {e}");
                break;
            }
        }
    }
}

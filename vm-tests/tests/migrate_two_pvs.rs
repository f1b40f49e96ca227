//! Issue 6's two-PV layout: the root VG spread over two partitions of the
//! same disk (vg0 on vda2 and vda3, the swap LV moved onto vda3). luksify
//! encrypts a VG that lives on one PV, so `plan` and `migrate` refuse, name
//! both PVs and print the commands that gather the extents on one of them;
//! nothing is written. After the person runs those commands, `plan` proceeds.

mod common;
mod migrate_common;

use std::time::{Duration, Instant};

use common::*;
use migrate_common::{Scenario, store_secret};
use vm_tests::disk::{self, MIB};

const PLAN_ARGS: &str =
    "--spare /dev/vdb --strategy spare-return --header-backup /root/vg0.luks-header";

#[test]
fn vg_on_two_partitions_is_refused_with_the_way_out() {
    let t0 = Instant::now();
    let s = Scenario::new(|root_mib| root_mib + 512);
    // Room after vda2 for a second PV partition.
    let len = std::fs::metadata(&s.target).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&s.target)
        .unwrap()
        .set_len(len + 256 * MIB)
        .unwrap();
    let boot = |name: &str| s.boot_live(name);

    // The layout: a third partition made a PV of vg0, the swap LV moved there.
    let mut g = boot("migrate-two-pvs-setup");
    let c = g.console();
    sh(c, "echo ',,8e' | sfdisk --quiet --append /dev/vda");
    sh(
        c,
        "pvcreate -q /dev/vda3 && vgextend -q vg0 /dev/vda3 && pvmove -i 1 -n swap /dev/vda2 /dev/vda3 >/dev/null",
    );
    let pvs = sh(c, "pvs --noheadings -o pv_name,vg_name,pv_used --units m");
    assert!(pvs.contains("/dev/vda3"), "{pvs}");
    sh(c, "vgchange -an vg0");
    g.poweroff(T).unwrap();
    drop(g);
    let before = [sum(&s.target), sum(&s.spare)];

    let mut g = boot("migrate-two-pvs");
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    let plan = c.exec(&format!("luksify plan {PLAN_ARGS}"), T).unwrap();
    let text = format!("{}{}", plan.stdout_str(), plan.stderr_str());
    assert_eq!(plan.code, 3, "expected a refusal (exit 3):\n{text}");
    assert!(text.contains("vg0 lives on 2 unencrypted PVs"), "{text}");
    assert!(text.contains("/dev/vda2 with "), "{text}");
    assert!(text.contains("/dev/vda3 with 64 of "), "{text}");
    // The seed layout leaves vda2 room for the swap LV: the advice moves it back.
    let gather = "pvmove /dev/vda3 /dev/vda2 && vgreduce vg0 /dev/vda3";
    assert!(text.contains(&format!("`{gather}`")), "{text}");
    store_secret(c, "/root/pass", PASSPHRASE, T);
    let out = c
        .exec(
            &format!(
                "luksify migrate --yes {PLAN_ARGS} --passphrase-stdin \
                 --pbkdf pbkdf2 --iter-time 100 < /root/pass"
            ),
            Duration::from_secs(300),
        )
        .unwrap();
    let migrate = format!("{}{}", out.stdout_str(), out.stderr_str());
    assert_eq!(out.code, 3, "expected a refusal (exit 3):\n{migrate}");
    assert!(!migrate.contains("[1/"), "a step started:\n{migrate}");
    sh(c, "rm /root/pass; vgchange -an vg0");
    g.poweroff(T).unwrap();
    drop(g);
    let after = [sum(&s.target), sum(&s.spare)];
    assert_eq!(before, after, "a refused migration changed a disk image");

    // The way out works: after the printed commands, the plan goes ahead.
    let mut g = boot("migrate-two-pvs-gathered");
    let c = g.console();
    sh(c, "vgchange -ay vg0");
    sh(
        c,
        &format!("{} >/dev/null", gather.replace("pvmove ", "pvmove -i 1 ")),
    );
    let plan = c.exec(&format!("luksify plan {PLAN_ARGS}"), T).unwrap();
    assert_eq!(plan.code, 0, "{}{}", plan.stdout_str(), plan.stderr_str());
    assert!(
        plan.stdout_str().contains("pvmove"),
        "{}",
        plan.stdout_str()
    );
    g.poweroff(T).unwrap();
    eprintln!("two-PV scenario: {:.1?}\n{text}", t0.elapsed());
}

fn sum(path: &std::path::Path) -> String {
    disk::sha256_file(path).unwrap()
}

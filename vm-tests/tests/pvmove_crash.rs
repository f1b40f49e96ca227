//! A pvmove cut by power loss (QEMU killed with SIGKILL part-way), then the
//! live system rebooted: captures what the probe sees (fixture
//! `pvmove-after-crash/`), proves the vm-notes trap that a bare `pvmove` with
//! the VG inactive exits 0 without moving anything, and resumes the move the
//! way that works, with the data intact.

mod common;

use std::time::Instant;

use common::*;

#[test]
fn pvmove_cut_by_power_loss_resumes_after_reboot() {
    let t0 = Instant::now();
    let images = tempfile::tempdir().unwrap();
    let mut g = boot_live("pvmove-crash", images.path());
    let c = g.console();
    build_seed(c, "vg0");
    let sum = sh(c, "sha256sum /mnt/target/data.bin");
    sh(c, "pvcreate /dev/vdb && vgextend vg0 /dev/vdb");
    // Waits in the guest until the copy is under way; QEMU is killed as
    // soon as the marker comes back.
    let seen = c
        .run_ok(
            "pvmove -i 1 /dev/vda2 /dev/vdb >/tmp/pvmove.log 2>&1 </dev/null & pid=$!; \
             until lvm lvs -a --noheadings -o lv_name,copy_percent vg0 > /tmp/lvs \
                   && awk '$1==\"[pvmove0]\" && $2+0 > 0 {f=1} END {exit !f}' /tmp/lvs; do \
                 kill -0 $pid || break; done; kill -0 $pid && cat /tmp/lvs",
            T,
        )
        .unwrap();
    g.kill_9().unwrap();
    drop(g);
    let crashed = t0.elapsed();

    let mut g = boot_live_on("pvmove-crash-reboot", images.path());
    let c = g.console();
    let dir = capture(c, "pvmove-after-crash");
    assert_lvm_reports_ok(&dir);
    let lvs = json(&dir, "lvs.json", "seg");
    assert!(
        lvs.iter().any(|r| field(r, "lv_name") == "[pvmove0]"),
        "killed at {seen}, but no pvmove0 after reboot: {lvs:?}"
    );
    assert!(
        lvs.iter().all(|r| field(r, "lv_active").is_empty()),
        "nothing is active after a reboot: {lvs:?}"
    );

    // The trap: exit status 0, nothing moved.
    let bare = c.exec("pvmove -i 1", T).unwrap();
    assert_eq!(bare.code, 0, "{}", bare.stderr_str());
    assert!(
        bare.stdout_str().contains("Skipping inactive LV"),
        "{}",
        bare.stdout_str()
    );
    let left = sh(c, "lvm lvs -a --noheadings -o lv_name vg0");
    assert!(left.contains("[pvmove0]"), "{left}");

    // What works: activate without background polling, then resume.
    sh(c, "vgchange -ay --poll n vg0 && pvmove -i 1");
    let left = sh(c, "lvm lvs -a --noheadings -o lv_name vg0");
    assert!(!left.contains("pvmove"), "{left}");
    let used = sh(c, "lvm pvs --noheadings -o pv_pe_alloc_count /dev/vda2");
    assert_eq!(used.trim(), "0", "everything moved off vda2");
    // Mounting replays the ext4 journal; the data written before the move is intact.
    sh(c, "mkdir -p /mnt/target && mount /dev/vg0/root /mnt/target");
    assert_eq!(sh(c, "sha256sum /mnt/target/data.bin"), sum);
    sh(c, "umount /mnt/target && e2fsck -fn /dev/vg0/root");
    g.poweroff(T).unwrap();
    eprintln!(
        "timings: killed at {crashed:?} ({}), all {:?}",
        seen.trim(),
        t0.elapsed()
    );
}

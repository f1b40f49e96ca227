//! The live environment boots under QEMU and has working tools and modules.

use std::time::{Duration, Instant};

use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, PROMPT};
use vm_tests::qemu::GuestBuilder;

#[test]
fn live_env_boots_and_has_its_tools() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    let live = live_env::build(&kernel, &[]).unwrap();
    let built = t0.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.img");
    disk::create_sparse(&img, 64 * MIB).unwrap();
    let mut g = GuestBuilder::new("live-boot")
        .kernel(&live.kernel)
        .initrd(&live.initrd)
        .append(&live.append)
        .disk_with_serial(&img, "smoke")
        .start()
        .unwrap();
    let c = g.console();
    c.wait_for("luksify-live: ready", Duration::from_secs(120))
        .unwrap();
    c.init_shell(PROMPT, Duration::from_secs(30)).unwrap();
    let booted = t0.elapsed();
    let t = Duration::from_secs(30);

    assert_eq!(c.run_ok("uname -r", t).unwrap().trim(), kernel.release);
    let modules = c.run_ok("cut -d' ' -f1 /proc/modules", t).unwrap();
    for m in [
        "virtio_blk",
        "dm_crypt",
        "dm_mirror",
        "aesni_intel",
        "algif_skcipher",
        "ext4",
    ] {
        assert!(modules.lines().any(|l| l == m), "{m} not loaded: {modules}");
    }
    assert_eq!(
        c.run_ok("cat /sys/block/vda/serial", t).unwrap().trim(),
        "smoke"
    );
    let v = c
        .exec(
            "lvm version && cryptsetup --version && blkid -V && sfdisk -v && mke2fs -V",
            t,
        )
        .unwrap();
    assert_eq!(v.code, 0, "{}", v.stderr_str());
    assert!(v.stdout_str().contains("LVM version"), "{}", v.stdout_str());
    assert!(
        v.stdout_str().contains("cryptsetup 2."),
        "{}",
        v.stdout_str()
    );
    // A tool that reports a failure must come back as non-zero.
    assert_ne!(c.run("blkid -p /dev/vda", t).unwrap().0, 0);
    g.poweroff(Duration::from_secs(30)).unwrap();
    eprintln!(
        "timings: kernel+live env ready {built:?}, shell ready {booted:?}, total {:?}",
        t0.elapsed()
    );
}

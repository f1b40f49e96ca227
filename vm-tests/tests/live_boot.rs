//! The live environment boots under QEMU, has working tools, modules and an
//! extra program added by the caller; kill -9 leaves the disk image with
//! what the guest had written.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, PROMPT};
use vm_tests::qemu::GuestBuilder;

#[test]
fn live_env_boots_has_its_tools_and_survives_kill_9() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    // GNU stat stands in for a freshly built luksify: a dynamic program
    // the image would otherwise only have as a busybox applet.
    let live = live_env::build(&kernel, &[PathBuf::from("/usr/bin/stat")]).unwrap();
    let built = t0.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.img");
    disk::create_sparse(&img, 64 * MIB).unwrap();
    let empty = disk::sha256_file(&img).unwrap();
    let base = dir.path().join("base.img");
    disk::create_sparse(&base, 16 * MIB).unwrap();
    let base_sum = disk::sha256_file(&base).unwrap();
    let mut g = GuestBuilder::new("live-boot")
        .kernel(&live.kernel)
        .initrd(&live.initrd)
        .append(&live.append)
        .disk_with_serial(&img, "smoke")
        .disk_snapshot(&base, "base")
        .start()
        .unwrap();
    let started = t0.elapsed();
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
        .exec("lvm version && cryptsetup --version && blkid -V && sfdisk -v && mke2fs -V && stat --version", t)
        .unwrap();
    assert_eq!(v.code, 0, "{}", v.stderr_str());
    let out = v.stdout_str() + &v.stderr_str();
    for want in [
        "LVM version",
        "cryptsetup 2.",
        "util-linux",
        "mke2fs 1.4",
        "GNU coreutils",
    ] {
        assert!(out.contains(want), "no {want:?} in: {out}");
    }
    // A tool that reports a failure must come back as non-zero.
    assert_ne!(c.run("blkid -p /dev/vda", t).unwrap().0, 0);

    // A snapshot disk takes writes, but only into QEMU's overlay.
    c.run_ok("printf overlay | dd of=/dev/vdb conv=fsync 2>/dev/null", t)
        .unwrap();
    assert_eq!(c.run_ok("head -c 7 /dev/vdb", t).unwrap(), "overlay");

    // Data the guest wrote reaches the image even if QEMU is killed right after.
    c.run_ok(
        "printf luksify-marker | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null",
        t,
    )
    .unwrap();
    g.kill_9().unwrap();
    let mut f = std::fs::File::open(&img).unwrap();
    let mut buf = [0u8; 14];
    f.seek(SeekFrom::Start(512)).unwrap();
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"luksify-marker");
    assert_ne!(disk::sha256_file(&img).unwrap(), empty);
    assert_eq!(disk::sha256_file(&base).unwrap(), base_sum);
    eprintln!(
        "timings: kernel+live env ready {built:?}, QEMU started {started:?}, shell ready {booted:?}, total {:?} ({:?})",
        t0.elapsed(),
        g.accel
    );
}

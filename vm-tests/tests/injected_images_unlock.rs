//! Issue 3's flavours booted. Real images Debian's dracut built (the
//! scripted init, and systemd's), given luksify's unlock settings by
//! `initrd inject` (the container and the VG named by /etc/crypttab and
//! /etc/cmdline.d inside the image; the kernel command line carries nothing
//! but root=), boot the dracut root's own kernel under QEMU against a disk
//! holding LUKS2 → vg0/root. dracut's prompt (cryptroot-ask, or
//! systemd-cryptsetup's) refuses a wrong passphrase and asks again, the right
//! one unlocks, and the root's /sbin/init reports that / is vg0-root inside
//! the container. luksify's own unlock in a real mkinitramfs image gives up
//! after three wrong passphrases, saying so. And the generic busybox fallback
//! (the testkit's busybox image with the virtio drivers as modules, loaded by
//! nothing of its own) unlocks before handing over to the image's /init.

mod common;
mod migrate_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{PASSPHRASE, T, sh};
use migrate_common::store_secret;
use testkit::{Generator, RealImage, real_images};
use vm_tests::cache;
use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, PROMPT};
use vm_tests::luksify_bin;
use vm_tests::qemu::GuestBuilder;
use vm_tests::unlock_boot::luksify_prompt;

const UUID: &str = "5a1c3b2d-8e4f-4a6b-9c7d-0e1f2a3b4c5d";

/// The root's init: proves where / came from, then powers off.
const INIT: &str = "#!/bin/busybox sh\n\
/bin/busybox mount -t sysfs sysfs /sys 2>/dev/null\n\
/bin/busybox sed 's/^/INJECTED-MOUNT: /' /proc/self/mountinfo\n\
for d in /sys/block/dm-*; do echo \"INJECTED-DM: $(/bin/busybox cat $d/dm/name) $(/bin/busybox cat $d/dm/uuid)\"; done\n\
echo INJECTED-END\n\
/bin/busybox poweroff -f\n";

/// vg0/root in the open container `c`, and the root file system in it,
/// mounted at /mnt/r. systemd's switch-root wants an os-release there.
const ROOT_FS: &str = "lvm pvcreate -q /dev/mapper/c && lvm vgcreate -q vg0 /dev/mapper/c \
     && lvm lvcreate -q -n root -l 100%FREE vg0 && lvm vgmknodes vg0 \
     && mke2fs -q -t ext4 /dev/mapper/vg0-root && mkdir -p /mnt/r \
     && mount /dev/mapper/vg0-root /mnt/r && cd /mnt/r \
     && mkdir -p bin sbin etc proc sys dev run tmp && cp /bin/busybox bin/busybox \
     && printf 'ID=luksify-test\\nNAME=luksify-test\\n' > etc/os-release";

/// A disk whose whole device is a LUKS2 container ([`UUID`], the test
/// passphrase, pbkdf2 for speed) holding vg0/root, an ext4 with [`INIT`] and
/// a static busybox; made in the live guest once and cached.
fn luks_disk(kernel: &GuestKernel) -> PathBuf {
    let key = cache::key_of(&[
        INIT.as_bytes(),
        ROOT_FS.as_bytes(),
        UUID.as_bytes(),
        kernel.release.as_bytes(),
    ]);
    let dir = cache::entry("injected-unlock-disk", &key, |dir| {
        let img = dir.join("disk.img");
        disk::create_sparse(&img, 96 * MIB)?;
        let live = live_env::build(kernel, &[])?;
        let mut g = GuestBuilder::new("injected-unlock-disk")
            .kernel(&live.kernel)
            .initrd(&live.initrd)
            .append(&live.append)
            .disk_with_serial(&img, "luks")
            .start()?;
        let c = g.console();
        c.wait_for("luksify-live: ready", Duration::from_secs(300))?;
        c.init_shell(PROMPT, T)?;
        store_secret(c, "/tmp/pass", PASSPHRASE, T);
        sh(
            c,
            &format!(
                "cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --iter-time 100 \
                 --uuid {UUID} /dev/vda < /tmp/pass && cryptsetup open /dev/vda c < /tmp/pass && rm /tmp/pass"
            ),
        );
        sh(c, ROOT_FS);
        c.put_file("/mnt/r/sbin/init", INIT.as_bytes(), T)?;
        sh(
            c,
            "chmod 755 /mnt/r/sbin/init && cd / && umount /mnt/r && lvm vgchange -q -an vg0 \
             && cryptsetup close c && sync",
        );
        g.poweroff(T)?;
        Ok(())
    })
    .unwrap();
    dir.join("disk.img")
}

/// `real` with luksify's unlock settings for the disk's container, by
/// `luksify initrd inject` as a person runs it.
fn injected(luksify: &Path, real: &RealImage, out: &Path) {
    let o = std::process::Command::new(luksify)
        .arg("initrd")
        .arg("inject")
        .arg(&real.path)
        .arg("--root")
        .arg(&real.root)
        .args(["--luks-uuid", UUID, "--vg", "vg0", "--lv", "root", "-o"])
        .arg(out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "initrd inject failed: {text}");
    eprintln!("{text}");
}

/// Boots the dracut root's kernel with `real` injected; a wrong passphrase
/// at dracut's `prompt` (refused with `refusal`, where the console shows
/// one), then the right one; returns what the root's init said.
fn boot(
    name: &str,
    luksify: &Path,
    real: &RealImage,
    disk: &Path,
    prompt: &str,
    refusal: Option<&str>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initrd.img");
    injected(luksify, real, &initrd);
    let kernel = real.root.join(format!("boot/vmlinuz-{}", real.kver));
    let mut g = GuestBuilder::new(name)
        .kernel(&kernel)
        .initrd(&initrd)
        // Nothing about the container or the VG: the image names them.
        .append(
            "console=ttyS0 panic=-1 root=/dev/mapper/vg0-root rw rd.shell=0 rd.emergency=poweroff",
        )
        .disk_snapshot(disk, "luks")
        .start()
        .unwrap();
    let c = g.console();
    c.send_secret_after(prompt, b"not-the-passphrase", Duration::from_secs(600))
        .unwrap();
    if let Some(refusal) = refusal {
        c.wait_for(refusal, Duration::from_secs(120)).unwrap();
    }
    // Asked again after the refusal.
    c.send_secret_after(prompt, PASSPHRASE.as_bytes(), Duration::from_secs(300))
        .unwrap();
    let m = c
        .wait_for("INJECTED-END", Duration::from_secs(600))
        .unwrap();
    g.wait_exit(Duration::from_secs(60)).unwrap();
    String::from_utf8_lossy(&m.before).replace('\r', "")
}

fn check_root(report: &str) {
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS ... - TYPE SOURCE ...
    let root = report
        .lines()
        .filter(|l| l.starts_with("INJECTED-MOUNT: "))
        .find(|l| l.split(' ').nth(5) == Some("/"))
        .unwrap_or_else(|| panic!("no mount of / in:\n{report}"));
    assert!(root.contains(" ext4 /dev/mapper/vg0-root rw"), "{root}");
    let dm: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("INJECTED-DM: "))
        .collect();
    let hex = UUID.replace('-', "");
    assert!(
        dm.iter()
            .any(|l| l.contains(&format!("CRYPT-LUKS2-{hex}-"))),
        "the container is not open: {dm:?}"
    );
    assert!(
        dm.iter().any(|l| l.contains(" vg0-root LVM-")),
        "vg0/root is not active: {dm:?}"
    );
}

fn real(generator: Generator) -> RealImage {
    real_images()
        .unwrap()
        .into_iter()
        .find(|i| i.generator == generator && !i.all_modules)
        .unwrap()
}

#[test]
fn injected_dracut_images_unlock_scripted_and_with_systemd() {
    let t0 = Instant::now();
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = luks_disk(&kernel);
    let luksify = luksify_bin::release().unwrap();
    eprintln!("disk ready at {:?}", t0.elapsed());

    let scripted = boot(
        "injected-dracut",
        &luksify,
        &real(Generator::Dracut),
        &disk,
        r"Enter passphrase for \S+: ",
        Some("No key available with this passphrase"),
    );
    check_root(&scripted);
    eprintln!("scripted dracut unlocked at {:?}", t0.elapsed());

    let systemd = boot(
        "injected-dracut-systemd",
        &luksify,
        &real(Generator::DracutSystemd),
        &disk,
        r"Please enter passphrase for disk [^\n]*: ",
        // systemd-cryptsetup reports to the journal, not the console: the
        // prompt coming back is the refusal.
        None,
    );
    check_root(&systemd);
    eprintln!("dracut with systemd unlocked at {:?}", t0.elapsed());
}

/// luksify's own unlock (initramfs-tools flavour, a generic MODULES=most
/// image, so that it has the virtio disk driver): three wrong passphrases,
/// then it stops with a message that says so, and initramfs-tools' panic
/// names luksify.
#[test]
fn injected_initramfs_tools_image_stops_after_three_wrong_passphrases() {
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = luks_disk(&kernel);
    let luksify = luksify_bin::release().unwrap();
    let real = real_images()
        .unwrap()
        .into_iter()
        .find(|i| i.generator == Generator::Mkinitramfs && i.all_modules)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initrd.img");
    injected(&luksify, &real, &initrd);
    let mut g = GuestBuilder::new("injected-initramfs-tools-three-wrong")
        .kernel(real.root.join(format!("boot/vmlinuz-{}", real.kver)))
        .initrd(&initrd)
        .append("console=ttyS0 root=/dev/mapper/vg0-root rw")
        .disk_snapshot(&disk, "luks")
        .start()
        .unwrap();
    let c = g.console();
    for attempt in 1..=3 {
        c.send_secret_after(
            &luksify_prompt(attempt),
            b"not-the-passphrase",
            Duration::from_secs(600),
        )
        .unwrap();
        c.wait_for(
            "luksify: that passphrase did not unlock",
            Duration::from_secs(120),
        )
        .unwrap();
    }
    c.wait_for(
        r"luksify: 3 wrong passphrases: the root disk stays locked\. Reboot to try again\.",
        T,
    )
    .unwrap();
    let m = c
        .wait_for(r"\(initramfs\) ", Duration::from_secs(300))
        .unwrap();
    let before = String::from_utf8_lossy(&m.before);
    assert!(
        before.contains("luksify: the root disk could not be unlocked"),
        "initramfs-tools' panic does not name luksify:\n{before}"
    );
    assert!(
        !before.contains("Passphrase to unlock"),
        "asked a fourth time:\n{before}"
    );
}

/// The testkit's busybox image (the generic fallback flavour) with what a
/// custom image would carry for this disk: the virtio drivers as modules, and
/// their index. Its own /init loads nothing; luksify's wrapper must load the
/// drivers of the hardware present before it looks for the container.
fn busybox_with_virtio_modules(real: &RealImage, out: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    let unpacked = std::process::Command::new("sh")
        .arg("-c")
        .arg("gzip -dc \"$1\" | (cd \"$2\" && cpio -idm --quiet)")
        .arg("sh")
        .arg(&real.path)
        .arg(&stage)
        .status()
        .unwrap();
    assert!(unpacked.success());
    let k = GuestKernel {
        release: real.kver.clone(),
        package_version: String::new(),
        root: real.root.clone(),
    };
    let modules = stage.join("lib/modules").join(&real.kver);
    for m in k.load_order(&["virtio_pci", "virtio_blk"]).unwrap() {
        let to = modules.join(k.relative_module_path(&m).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&m, &to).unwrap();
    }
    let depmod = std::process::Command::new("depmod")
        .arg("-b")
        .arg(&stage)
        .arg(&real.kver)
        .status()
        .unwrap();
    assert!(depmod.success());
    vm_tests::cpio::pack_dir_gzip(&stage, out).unwrap();
}

/// The generic busybox fallback booted: the wrapper loads the virtio disk's
/// driver, asks (a wrong passphrase first), unlocks, activates vg0, and hands
/// over to the image's own /init, whose shell sees vg0-root in the container.
#[test]
fn injected_busybox_image_loads_the_disk_driver_and_unlocks() {
    let kernel = GuestKernel::debian_current().unwrap();
    let disk = luks_disk(&kernel);
    let luksify = luksify_bin::release().unwrap();
    let real = real(Generator::Busybox);
    let dir = tempfile::tempdir().unwrap();
    let custom = RealImage {
        path: dir.path().join("busybox-virtio.img"),
        ..real.clone()
    };
    busybox_with_virtio_modules(&real, &custom.path);
    let initrd = dir.path().join("initrd.img");
    injected(&luksify, &custom, &initrd);
    let mut g = GuestBuilder::new("injected-busybox")
        .kernel(real.root.join(format!("boot/vmlinuz-{}", real.kver)))
        .initrd(&initrd)
        .append("console=ttyS0 panic=-1")
        .disk_snapshot(&disk, "luks")
        .start()
        .unwrap();
    let c = g.console();
    c.send_secret_after(
        &luksify_prompt(1),
        b"not-the-passphrase",
        Duration::from_secs(600),
    )
    .unwrap();
    c.send_secret_after(
        &luksify_prompt(2),
        PASSPHRASE.as_bytes(),
        Duration::from_secs(120),
    )
    .unwrap();
    c.wait_for("busybox initramfs", T).unwrap();
    c.send_line("echo; for d in /sys/block/dm-*; do echo \"DM: $(cat $d/dm/name) $(cat $d/dm/uuid)\"; done; echo DM-$((6*7))-END")
        .unwrap();
    // Not the echo of the command line: the shell computes the marker.
    let m = c.wait_for("DM-42-END", T).unwrap();
    let out = String::from_utf8_lossy(&m.before).replace('\r', "");
    let hex = UUID.replace('-', "");
    assert!(out.contains(&format!("CRYPT-LUKS2-{hex}-")), "{out}");
    assert!(out.contains("DM: vg0-root LVM-"), "{out}");
}

//! Flavours no Debian tool builds (nash, mkinitcpio): images laid out like
//! theirs, made with GNU cpio, injected with a real Debian 12 target root
//! (testkit) and checked with GNU cpio. Detection is checked on every real
//! image too.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use luksify::initrd::Image;
use luksify::initrd::flavour::{Flavour, detect};
use testkit::{Flavour as Root, Generator, debian_root, kernel_version, real_images};

const UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn gnu_cpio_image(dir: &Path) -> Vec<u8> {
    let out = Command::new("sh")
        .args([
            "-c",
            "cd \"$1\" && find . | sort | cpio -o -H newc --quiet | gzip -9",
            "sh",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn file(dir: &Path, rel: &str, text: &str, mode: u32) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Extracts `name` from `image` with GNU cpio (gzip -dc first).
fn gnu_extract(image: &Path, name: &str) -> String {
    let out = Command::new("sh")
        .args([
            "-c",
            "gzip -dc \"$1\" | cpio -i --quiet --to-stdout \"$2\"",
            "sh",
        ])
        .arg(image)
        .arg(name)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn inject(image: &Path, out: &Path, flavour: &str) -> (i32, String) {
    let root = debian_root(Root::InitramfsTools).unwrap();
    let kver = kernel_version(&root).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_luksify"))
        .args(["initrd", "inject"])
        .arg(image)
        .arg("--root")
        .arg(&root)
        .args([
            "--luks-uuid",
            UUID,
            "--vg",
            "VolGroup00",
            "--kver",
            &kver,
            "--flavour",
            flavour,
            "-o",
        ])
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn verify(image: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_luksify"))
        .args(["initrd", "verify"])
        .arg(image)
        .args(["--luks-uuid", UUID, "--vg", "VolGroup00"])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn nash_gets_the_unlock_after_mkblkdevs() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    file(
        &tree,
        "init",
        "#!/bin/nash\nmount -t proc /proc /proc\necho Creating block device nodes.\nmkblkdevs\n\
         echo Scanning logical volumes\nmkrootdev -t ext3 -o defaults,ro /dev/VolGroup00/LogVol00\n\
         echo Switching to new root\nswitchroot\n",
        0o755,
    );
    file(&tree, "bin/nash", "not really nash", 0o755);
    file(&tree, "bin/sh", "not really sh", 0o755);
    let img = t.path().join("initrd.img");
    fs::write(&img, gnu_cpio_image(&tree)).unwrap();
    assert_eq!(detect(&Image::open(&img).unwrap()), Flavour::Nash);
    assert_eq!(verify(&img).0, 4);
    let out = t.path().join("out.img");
    let (code, err) = inject(&img, &out, "auto");
    assert_eq!(code, 0, "{err}");
    let init = gnu_extract(&out, "init");
    let after = init.split_once("mkblkdevs\n").unwrap().1;
    assert!(
        after.starts_with(&format!(
            "# luksify: unlock LUKS UUID {UUID} and activate VG VolGroup00\n/bin/sh /sbin/luksify-unlock\n\
             lvm vgscan --ignorelockingfailure\nlvm vgchange -ay --ignorelockingfailure VolGroup00\nmkblkdevs\n"
        )),
        "{init}"
    );
    assert!(!init.contains("/dev/sd"), "never a kernel device name");
    let (code, text) = verify(&out);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn mkinitcpio_runs_luksify_before_lvm2() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    file(
        &tree,
        "buildconfig",
        "HOOKS=(base udev autodetect block lvm2 filesystems)\n",
        0o644,
    );
    file(
        &tree,
        "config",
        "EARLYHOOKS=\"udev\"\nHOOKS=\"udev lvm2\"\nLATEHOOKS=\"\"\nCLEANUPHOOKS=\"udev\"\n",
        0o644,
    );
    file(&tree, "hooks/udev", "run_hook() { :; }\n", 0o644);
    file(&tree, "init", "#!/usr/bin/ash\n", 0o755);
    fs::create_dir_all(tree.join("usr/bin")).unwrap();
    symlink("usr/bin", tree.join("sbin")).unwrap();
    let img = t.path().join("initramfs-linux.img");
    fs::write(&img, gnu_cpio_image(&tree)).unwrap();
    assert_eq!(detect(&Image::open(&img).unwrap()), Flavour::Mkinitcpio);
    let out = t.path().join("out.img");
    let (code, err) = inject(&img, &out, "auto");
    assert_eq!(code, 0, "{err}");
    assert!(gnu_extract(&out, "config").contains("HOOKS=\"udev luksify lvm2\"\n"));
    assert_eq!(
        gnu_extract(&out, "hooks/luksify"),
        include_str!("../initramfs/mkinitcpio-hook")
    );
    assert_eq!(
        gnu_extract(&out, "usr/bin/luksify-unlock"),
        include_str!("../initramfs/luksify-unlock")
    );
    let (code, text) = verify(&out);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn real_images_are_recognised() {
    for img in real_images().unwrap() {
        let f = detect(&Image::open(&img.path).unwrap());
        let want = match img.generator {
            Generator::Mkinitramfs => Flavour::InitramfsTools,
            Generator::DracutSystemd => Flavour::Dracut { systemd: true },
            Generator::Dracut => Flavour::Dracut { systemd: false },
            Generator::Busybox | Generator::BusyboxCrcHardlinks => Flavour::Busybox,
        };
        assert_eq!(f, want, "{}", img.path.display());
    }
}

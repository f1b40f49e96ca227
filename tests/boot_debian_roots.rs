//! Detection and crypttab on real debootstrapped Debian 12 roots (testkit's
//! cached ones): the generator is read from dpkg's real package lists, the
//! crypttab is the one Debian's cryptsetup package installs, and a root
//! without any bootloader package is refused by naming what was looked for.
//! Needs root to build the roots on a cold cache, as the CI has.

use std::path::Path;

use luksify::boot::{BootRequest, DetectError, Flavour, crypttab, detect, plan_boot_changes};

const UUID: &str = "3f5ad593-4546-4a94-a374-bcfb68aa11f7";

fn req() -> BootRequest {
    BootRequest {
        luks_uuid: UUID.into(),
        mapper_name: format!("luks-{UUID}"),
        vg: "vg0".into(),
        root_lv: "root".into(),
        flavour: None,
        initrd_path: None,
        discard: false,
    }
}

fn check(root: &Path, want: Flavour, evidence: &str, line: &str) {
    let mut ev = Vec::new();
    assert_eq!(detect::detect_flavour(root, &mut ev).unwrap(), want);
    assert!(ev.iter().any(|e| e.contains(evidence)), "{ev:?}");

    // No GRUB, no systemd-boot in these roots: refused, saying where it looked.
    let err = plan_boot_changes(root, &req()).unwrap_err().to_string();
    assert!(
        err.contains("found no bootloader configuration") && err.contains("/boot/grub/grub.cfg"),
        "{err}"
    );
    assert!(matches!(
        detect::detect(root, None),
        Err(DetectError::NoBootloader { .. })
    ));

    let text = std::fs::read_to_string(root.join("etc/crypttab")).unwrap();
    assert!(text.starts_with("# <target name>"), "{text}");
    let out = crypttab::edit(&text, &req(), want).unwrap().unwrap();
    assert_eq!(out, format!("{text}{line}\n"));
    assert_eq!(crypttab::edit(&out, &req(), want).unwrap(), None);
}

#[test]
fn debian12_initramfs_tools_root() {
    let root = testkit::debian_root(testkit::Flavour::InitramfsTools).unwrap();
    check(
        &root,
        Flavour::InitramfsTools,
        "dpkg: initramfs-tools installed",
        &format!("luks-{UUID} UUID={UUID} none luks,initramfs"),
    );
}

#[test]
fn debian12_dracut_root() {
    let root = testkit::debian_root(testkit::Flavour::Dracut).unwrap();
    check(
        &root,
        Flavour::Dracut,
        "dpkg: dracut installed",
        &format!("luks-{UUID} UUID={UUID} none luks"),
    );
}

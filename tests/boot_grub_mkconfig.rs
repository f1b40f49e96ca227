//! The whole GRUB 2 loop against Debian's real generator: a target root whose
//! /etc/default/grub and /etc/grub.d come from Debian's grub packages gets
//! its grub.cfg from the real grub-mkconfig (run through `update-grub` in a
//! chroot, exactly as the plan says), then luksify plans, applies, the
//! planned command regenerates grub.cfg, and a second plan finds nothing.
//!
//! The chroot borrows this machine's /usr (grub-common, grub2-common) inside
//! a private mount namespace, so nothing is mounted outside the test. The
//! only stand-in is grub-probe: this machine has no device-mapper, so a
//! small script answers that / is the LV vg0/root and /boot is /dev/vda1.
//! Needs root (unshare, mount, chroot), as the CI has.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use luksify::boot::{BootChanges, BootRequest, ChrootCommand, Flavour, plan_boot_changes};
use luksify::sys::process::Cmd;

const UUID: &str = "3f5ad593-4546-4a94-a374-bcfb68aa11f7";
const ROOT_FS_UUID: &str = "0f4c1c83-6a4e-4e77-a8f3-2b8b6f3d7c55";
const BOOT_FS_UUID: &str = "5c0e3a52-8d07-4f6a-9a6b-2f0f3c2b7e41";

const FAKE_GRUB_PROBE: &str = r#"#!/bin/sh
# Test stand-in for grub-probe: / is the LV vg0/root, /boot is /dev/vda1.
target= dev= path=
for a in "$@"; do
  case "$a" in
    --target=*) target=${a#--target=} ;;
    --device) dev=next ;;
    -*) ;;
    *) if [ "$dev" = next ]; then dev=$a; else path=$a; fi ;;
  esac
done
if [ -z "$dev" ] || [ "$dev" = next ]; then
  case "$path" in /boot|/boot/*) dev=/dev/vda1 ;; *) dev=/dev/mapper/vg0-root ;; esac
fi
case "$target" in
  device) echo "$dev" ;;
  fs) echo ext2 ;;
  fs_uuid) case "$dev" in /dev/vda1) echo @BOOT@ ;; *) echo @ROOT@ ;; esac ;;
  abstraction) case "$dev" in /dev/mapper/*) echo lvm ;; esac ;;
  partmap) echo msdos ;;
  compatibility_hint) case "$dev" in /dev/vda1) echo hd0,msdos1 ;; *) echo lvm/vg0-root ;; esac ;;
  disk) echo /dev/vda ;;
  *) ;;
esac
"#;

fn write(root: &Path, p: &str, content: &[u8], mode: u32) {
    let h = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(h.parent().unwrap()).unwrap();
    fs::write(&h, content).unwrap();
    fs::set_permissions(&h, fs::Permissions::from_mode(mode)).unwrap();
}

/// A Debian 12 target with GRUB 2 and the given initramfs generator package.
fn target(generator_pkg: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for (link, to) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(to, r.join(link)).unwrap();
    }
    for d in ["proc", "dev", "sys", "tmp", "boot/grub"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    // What grub-pc's postinst installs as /etc/default/grub.
    let default = fs::read("/usr/share/grub/default/grub")
        .expect("/usr/share/grub/default/grub: install grub2-common (xtask/apt/boot-config.txt)");
    write(r, "/etc/default/grub", &default, 0o644);
    // grub-common's generator scripts, as dpkg would unpack them.
    Cmd::new("cp")
        .args(["-a", "/etc/grub.d"])
        .arg(r.join("etc/"))
        .run()
        .expect("copying /etc/grub.d: install grub-common (xtask/apt/boot-config.txt)");
    write(
        r,
        "/etc/os-release",
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n",
        0o644,
    );
    write(r, "/boot/vmlinuz-6.1.0-13-amd64", b"", 0o644);
    write(r, "/boot/initrd.img-6.1.0-13-amd64", b"", 0o644);
    // The mount namespace puts this machine's /usr over these placeholders;
    // planning (outside it) sees the target's tools by name.
    for tool in ["update-grub", "grub-mkconfig"] {
        write(r, &format!("/usr/sbin/{tool}"), b"", 0o755);
    }
    for pkg in ["grub-pc", "grub2-common", "grub-common", generator_pkg] {
        write(r, &format!("/var/lib/dpkg/info/{pkg}.list"), b"/.\n", 0o644);
    }
    write(
        r,
        "/etc/crypttab",
        b"# <target name>\t<source device>\t\t<key file>\t<options>\n",
        0o644,
    );
    write(
        r,
        "/etc/fstab",
        format!(
            "/dev/mapper/vg0-root /               ext4    errors=remount-ro 0       1\n\
             UUID={BOOT_FS_UUID} /boot           ext2    defaults        0       2\n\
             /dev/mapper/vg0-swap_1 none            swap    sw              0       0\n"
        )
        .as_bytes(),
        0o644,
    );
    let probe = FAKE_GRUB_PROBE
        .replace("@BOOT@", BOOT_FS_UUID)
        .replace("@ROOT@", ROOT_FS_UUID);
    write(r, "/fake-grub-probe", probe.as_bytes(), 0o755);
    t
}

/// Runs a planned chroot command with this machine's /usr, a minimal /dev
/// and /proc mounted in a private namespace that disappears with it.
fn run_in_target(root: &Path, c: &ChrootCommand) -> String {
    let r = root.to_str().unwrap();
    let setup = format!(
        "set -e
mount --rbind /usr '{r}/usr'
mount --bind '{r}/fake-grub-probe' '{r}/usr/sbin/grub-probe'
mount -t proc proc '{r}/proc'
mount -t tmpfs dev '{r}/dev'
mknod -m 666 '{r}/dev/null' c 1 3
mkdir '{r}/dev/mapper'
: > '{r}/dev/mapper/vg0-root'
exec \"$@\""
    );
    // The planned argv, behind the same `chroot ROOT` that to_cmd() uses.
    let out = Cmd::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &setup,
            "sh",
            "chroot",
            r,
        ])
        .args(&c.argv)
        .run()
        .unwrap_or_else(|e| panic!("{}: {e:#}", c.display(root)));
    assert!(
        fs::read_dir(root.join("dev")).unwrap().next().is_none(),
        "mounts must not leak out of the namespace"
    );
    out.stderr
}

fn update_grub() -> ChrootCommand {
    ChrootCommand {
        argv: vec!["update-grub".into()],
        why: "test".into(),
    }
}

fn linux_lines(cfg: &str) -> Vec<String> {
    cfg.lines()
        .filter(|l| l.trim_start().starts_with("linux\t"))
        .map(|l| l.trim().to_string())
        .collect()
}

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

fn apply(root: &Path, ch: &BootChanges) {
    for e in &ch.edits {
        e.apply(root).unwrap();
    }
    for c in &ch.commands {
        run_in_target(root, c);
    }
}

#[test]
fn dracut_target_plan_apply_regenerate_replan() {
    let t = target("dracut");
    let r = t.path();
    run_in_target(r, &update_grub());
    let cfg = fs::read_to_string(r.join("boot/grub/grub.cfg")).unwrap();
    let lines = linux_lines(&cfg);
    assert_eq!(lines.len(), 3, "{cfg}");
    assert_eq!(
        lines[0],
        "linux\t/boot/vmlinuz-6.1.0-13-amd64 root=/dev/mapper/vg0-root ro  quiet"
    );

    let ch = plan_boot_changes(r, &req()).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::Dracut);
    println!(
        "{}",
        luksify::boot::cli::render(&ch, Path::new("/mnt/target"))
    );
    let edited: Vec<String> = ch
        .edits
        .iter()
        .map(|e| e.path.display().to_string())
        .collect();
    assert_eq!(edited, ["/etc/crypttab", "/etc/default/grub"]);
    assert_eq!(
        ch.commands,
        [ChrootCommand {
            why: ch.commands[0].why.clone(),
            ..update_grub()
        }]
    );

    apply(r, &ch);
    let cfg = fs::read_to_string(r.join("boot/grub/grub.cfg")).unwrap();
    let want =
        format!("root=/dev/mapper/vg0-root ro rd.luks.uuid=luks-{UUID} rd.lvm.lv=vg0/root quiet");
    let lines = linux_lines(&cfg);
    assert_eq!(
        lines[0],
        format!("linux\t/boot/vmlinuz-6.1.0-13-amd64 {want}"),
        "{cfg}"
    );
    assert_eq!(
        lines[2],
        format!(
            "linux\t/boot/vmlinuz-6.1.0-13-amd64 root=/dev/mapper/vg0-root ro single rd.luks.uuid=luks-{UUID} rd.lvm.lv=vg0/root"
        ),
        "recovery entry"
    );

    let again = plan_boot_changes(r, &req()).unwrap();
    assert!(again.is_empty(), "{:?} {:?}", again.edits, again.commands);
}

#[test]
fn initramfs_tools_target_needs_no_regeneration() {
    let t = target("initramfs-tools");
    let r = t.path();
    run_in_target(r, &update_grub());
    let ch = plan_boot_changes(r, &req()).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::InitramfsTools);
    assert_eq!(ch.edits.len(), 1);
    assert_eq!(ch.edits[0].path, Path::new("/etc/crypttab"));
    assert!(
        ch.commands.is_empty(),
        "grub-mkconfig already writes root=/dev/mapper/vg0-root"
    );
    apply(r, &ch);
    assert!(plan_boot_changes(r, &req()).unwrap().is_empty());
}

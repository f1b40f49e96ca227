//! plan_boot_changes on fixture trees modelled on real installs (Debian 12,
//! Ubuntu with dracut, Fedora 39 BLS, RHEL 8 `$kernelopts`, CentOS 5 GRUB
//! legacy + nash, Arch systemd-boot + mkinitcpio): the edits, commands and
//! notes; plan → apply → re-plan converges to nothing; edits refuse files
//! changed since planning.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use luksify::boot::{
    BootChanges, BootRequest, Bootloader, ChangedSincePlanning, Flavour, cli, plan_boot_changes,
};

const UUID: &str = "3f5ad593-4546-4a94-a374-bcfb68aa11f7";

fn fixture(name: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/boot_fixtures")
        .join(name);
    let t = tempfile::tempdir().unwrap();
    copy_tree(&src, t.path());
    t
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn copy_tree(src: &Path, dst: &Path) {
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &to).unwrap();
        } else if ft.is_dir() {
            fs::create_dir(&to).unwrap();
            copy_tree(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn req(vg: &str, lv: &str) -> BootRequest {
    BootRequest {
        luks_uuid: UUID.into(),
        mapper_name: format!("luks-{UUID}"),
        vg: vg.into(),
        root_lv: lv.into(),
        flavour: None,
        initrd_path: None,
        discard: false,
    }
}

fn paths(ch: &BootChanges) -> Vec<PathBuf> {
    ch.edits.iter().map(|e| e.path.clone()).collect()
}

fn after(ch: &BootChanges, path: &str) -> String {
    let e = ch
        .edits
        .iter()
        .find(|e| e.path == Path::new(path))
        .unwrap_or_else(|| panic!("no edit of {path} in {:?}", paths(ch)));
    String::from_utf8(e.after.clone()).unwrap()
}

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap()
}

/// Applies the file edits only: the chroot commands would run the target's
/// programs on this host.
fn apply_edits(root: &Path, ch: &BootChanges) {
    for e in &ch.edits {
        e.apply(root).unwrap();
    }
}

fn has_note(ch: &BootChanges, s: &str) -> bool {
    ch.notes.iter().any(|n| n.contains(s))
}

#[test]
fn debian12_needs_only_crypttab() {
    let t = fixture("debian12");
    let r = t.path();
    let original = read(r, "/etc/crypttab");
    let ch = plan_boot_changes(r, &req("debian-vg", "root")).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::InitramfsTools);
    assert_eq!(
        ch.detected.bootloader,
        Bootloader::Grub2 {
            config: Some("/boot/grub/grub.cfg".into()),
            bls: false
        }
    );
    assert_eq!(paths(&ch), [PathBuf::from("/etc/crypttab")]);
    assert_eq!(
        after(&ch, "/etc/crypttab"),
        format!("{original}luks-{UUID} UUID={UUID} none luks,initramfs\n")
    );
    // grub-mkconfig already wrote root=/dev/mapper/debian--vg-root.
    assert!(ch.commands.is_empty(), "{:?}", ch.commands);
    assert!(
        has_note(&ch, "swap on /dev/mapper/debian--vg-swap_1 stays valid"),
        "{:#?}",
        ch.notes
    );
    assert!(
        has_note(&ch, "/etc/initramfs-tools/conf.d/resume"),
        "{:#?}",
        ch.notes
    );
    assert!(has_note(&ch, "/boot by UUID=5c0e3a52"), "{:#?}", ch.notes);

    let text = cli::render(&ch, r);
    assert!(
        text.contains(&format!("+luks-{UUID} UUID={UUID} none luks,initramfs")),
        "{text}"
    );
    assert!(text.contains("--- a/etc/crypttab"), "{text}");

    apply_edits(r, &ch);
    assert_eq!(read(r, "/etc/crypttab.luksify-backup"), original);
    let again = plan_boot_changes(r, &req("debian-vg", "root")).unwrap();
    assert!(again.is_empty(), "{:?} {:?}", paths(&again), again.commands);
}

#[test]
fn debian12_with_dracut_edits_default_grub_and_regenerates() {
    let t = fixture("debian12");
    let r = t.path();
    let mut q = req("debian-vg", "root");
    q.flavour = Some(Flavour::Dracut);
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(
        paths(&ch),
        [
            PathBuf::from("/etc/crypttab"),
            PathBuf::from("/etc/default/grub")
        ]
    );
    let before = read(r, "/etc/default/grub");
    assert_eq!(
        after(&ch, "/etc/default/grub"),
        before.replace(
            "GRUB_CMDLINE_LINUX=\"\"",
            &format!("GRUB_CMDLINE_LINUX=\"rd.luks.uuid=luks-{UUID} rd.lvm.lv=debian-vg/root\"")
        )
    );
    assert_eq!(ch.commands.len(), 1);
    assert_eq!(ch.commands[0].argv, ["update-grub"]);
    assert_eq!(
        ch.commands[0].display(Path::new("/mnt/target")),
        "chroot /mnt/target update-grub"
    );

    apply_edits(r, &ch);
    // Until grub.cfg is regenerated, a re-plan keeps asking for it: an
    // interrupted run converges.
    let again = plan_boot_changes(r, &q).unwrap();
    assert!(again.edits.is_empty());
    assert_eq!(again.commands, ch.commands);
    // What update-grub would produce: the same parameters on every linux line.
    let cfg = read(r, "/boot/grub/grub.cfg");
    let regenerated = luksify::boot::grub2::edit_cfg(&cfg, &q, Flavour::Dracut)
        .unwrap()
        .unwrap();
    fs::write(r.join("boot/grub/grub.cfg"), regenerated).unwrap();
    assert!(plan_boot_changes(r, &q).unwrap().is_empty());
}

#[test]
fn ubuntu_dracut_with_dashes_in_lvm_names() {
    let t = fixture("ubuntu");
    let r = t.path();
    let ch = plan_boot_changes(r, &req("ubuntu-vg", "ubuntu-lv")).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::Dracut, "{:#?}", ch.notes);
    let g = after(&ch, "/etc/default/grub");
    assert!(
        g.contains(&format!(
            "\nGRUB_CMDLINE_LINUX=\"rd.luks.uuid=luks-{UUID} rd.lvm.lv=ubuntu-vg/ubuntu-lv\"\n"
        )),
        "{g}"
    );
    assert!(g.contains("\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\n"));
    assert_eq!(
        after(&ch, "/etc/crypttab").lines().last().unwrap(),
        format!("luks-{UUID} UUID={UUID} none luks")
    );
    assert_eq!(ch.commands[0].argv, ["update-grub"]);
    assert!(has_note(&ch, "dm-uuid-LVM-"), "{:#?}", ch.notes);
}

#[test]
fn fedora39_bls_entries_default_grub_and_mkconfig_with_bls_cmdline() {
    let t = fixture("fedora39");
    let r = t.path();
    // Git keeps no modes but 644/755: give the file the mode Fedora ships it with.
    set_mode(&r.join("etc/crypttab"), 0o600);
    let q = req("fedora", "root");
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::Dracut);
    assert_eq!(
        ch.detected.bootloader,
        Bootloader::Grub2 {
            config: Some("/boot/grub2/grub.cfg".into()),
            bls: true
        }
    );
    let entries: Vec<&PathBuf> = ch
        .edits
        .iter()
        .map(|e| &e.path)
        .filter(|p| p.starts_with("/boot/loader/entries"))
        .collect();
    assert_eq!(entries.len(), 2, "{:?}", paths(&ch));
    for e in entries {
        let text = after(&ch, &e.to_string_lossy());
        let opts = text.lines().find(|l| l.starts_with("options ")).unwrap();
        assert_eq!(
            opts,
            format!(
                "options root=/dev/mapper/fedora-root ro resume=/dev/mapper/fedora-swap rd.lvm.lv=fedora/root rd.lvm.lv=fedora/swap rhgb quiet rd.luks.uuid=luks-{UUID}"
            )
        );
        assert!(text.ends_with("grub_class fedora\n"));
    }
    assert!(after(&ch, "/etc/default/grub").contains(&format!(
        "GRUB_CMDLINE_LINUX=\"resume=/dev/mapper/fedora-swap rd.lvm.lv=fedora/root rd.lvm.lv=fedora/swap rhgb quiet rd.luks.uuid=luks-{UUID}\""
    )));
    // Fedora's crypttab is an empty file; it keeps its mode.
    assert!(after(&ch, "/etc/crypttab").ends_with(&format!("luks-{UUID} UUID={UUID} none luks\n")));
    assert_eq!(
        ch.commands[0].argv,
        [
            "grub2-mkconfig",
            "-o",
            "/boot/grub2/grub.cfg",
            "--update-bls-cmdline"
        ]
    );
    // No /etc/kernel/cmdline: kernel-install would fall back to the live
    // CD's /proc/cmdline, so it is created from the default entry
    // (grubenv's saved_entry) without per-boot parameters.
    let kc = ch
        .edits
        .iter()
        .find(|e| e.path == Path::new("/etc/kernel/cmdline"))
        .expect("/etc/kernel/cmdline is created");
    assert!(kc.before.is_none());
    assert!(kc.why.contains("/proc/cmdline"), "{}", kc.why);
    assert_eq!(
        after(&ch, "/etc/kernel/cmdline"),
        format!(
            "root=/dev/mapper/fedora-root ro resume=/dev/mapper/fedora-swap rd.lvm.lv=fedora/root rd.lvm.lv=fedora/swap rhgb quiet rd.luks.uuid=luks-{UUID}\n"
        )
    );

    let order = paths(&ch);
    let at = |p: &str| order.iter().position(|x| x == Path::new(p)).unwrap();
    assert!(
        at("/etc/kernel/cmdline") > at("/etc/default/grub"),
        "written after /etc/default/grub, so grub2-mkconfig finds it newer and keeps it: {order:?}"
    );

    apply_edits(r, &ch);
    assert_eq!(
        read(r, "/etc/kernel/cmdline"),
        after(&ch, "/etc/kernel/cmdline")
    );
    let mtime = |p: &str| fs::metadata(r.join(p)).unwrap().modified().unwrap();
    assert!(mtime("etc/kernel/cmdline") >= mtime("etc/default/grub"));
    let mode = fs::metadata(r.join("etc/crypttab"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let again = plan_boot_changes(r, &q).unwrap();
    assert!(again.is_empty(), "{:?} {:?}", paths(&again), again.commands);
}

#[test]
fn rhel8_kernelopts_live_in_grubenv() {
    let t = fixture("rhel8");
    let r = t.path();
    let q = req("rhel", "root");
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(
        ch.detected.flavour,
        Flavour::Dracut,
        "mkinitrd is dracut's wrapper here"
    );
    assert!(
        !paths(&ch).iter().any(|p| p.starts_with("/boot/loader")),
        "entries say $kernelopts and stay as they are: {:?}",
        paths(&ch)
    );
    let env = after(&ch, "/boot/grub2/grubenv");
    assert_eq!(env.len(), 1024);
    assert!(env.contains(&format!(
        "\nkernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet rd.luks.uuid=luks-{UUID} \nboot_success=0\n"
    )));
    // This grub2-mkconfig predates --update-bls-cmdline.
    assert_eq!(
        ch.commands[0].argv,
        ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"]
    );
    // Future kernels get the expanded kernelopts, not GRUB's variables.
    assert_eq!(
        after(&ch, "/etc/kernel/cmdline"),
        format!(
            "root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet rd.luks.uuid=luks-{UUID}\n"
        )
    );
    apply_edits(r, &ch);
    assert!(r.join("etc/kernel/cmdline").is_file());
    assert!(plan_boot_changes(r, &q).unwrap().is_empty());
}

#[test]
fn rhel8_with_its_esp_unmounted_says_so() {
    let t = fixture("rhel8");
    let r = t.path();
    let mut fstab = read(r, "/etc/fstab");
    fstab.push_str(
        "UUID=4A1B-2C3D          /boot/efi               vfat    umask=0077,shortname=winnt 0 2\n",
    );
    fs::write(r.join("etc/fstab"), fstab).unwrap();
    fs::create_dir_all(r.join("boot/efi")).unwrap();
    let ch = plan_boot_changes(r, &req("rhel", "root")).unwrap();
    assert!(
        has_note(&ch, "(fstab: /boot/efi) is not mounted inside the target"),
        "{:#?}",
        ch.notes
    );
    // Mounted (it has files): no such note.
    fs::create_dir_all(r.join("boot/efi/EFI/BOOT")).unwrap();
    let ch = plan_boot_changes(r, &req("rhel", "root")).unwrap();
    assert!(!has_note(&ch, "is not mounted inside the target"));
}

#[test]
fn boot_not_mounted_is_refused() {
    let t = fixture("fedora39");
    let r = t.path();
    fs::remove_dir_all(r.join("boot")).unwrap();
    fs::create_dir(r.join("boot")).unwrap();
    let err = plan_boot_changes(r, &req("fedora", "root"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("separate /boot (UUID=0e3c2b3a-6c55-4d39-9f0e-4d1f1a7e2c11)")
            && err.contains("/boot inside the target is empty"),
        "{err}"
    );
}

#[test]
fn vendor_kernel_cmdline_is_the_base_of_the_created_one() {
    let t = fixture("fedora39");
    let r = t.path();
    let vendor = "root=/dev/mapper/fedora-root ro\trd.lvm.lv=fedora/root\n  console=ttyS0\n";
    fs::create_dir_all(r.join("usr/lib/kernel")).unwrap();
    fs::write(r.join("usr/lib/kernel/cmdline"), vendor).unwrap();
    let q = req("fedora", "root");
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(
        after(&ch, "/etc/kernel/cmdline"),
        format!(
            "root=/dev/mapper/fedora-root ro rd.lvm.lv=fedora/root console=ttyS0 rd.luks.uuid=luks-{UUID}\n"
        )
    );
    assert!(
        !paths(&ch).contains(&PathBuf::from("/usr/lib/kernel/cmdline")),
        "the packaged file is never edited"
    );
    apply_edits(r, &ch);
    assert_eq!(read(r, "/usr/lib/kernel/cmdline"), vendor);
    assert!(plan_boot_changes(r, &q).unwrap().edits.is_empty());

    // A vendor line that already carries everything needs no override.
    let t = fixture("fedora39");
    let r = t.path();
    fs::create_dir_all(r.join("usr/lib/kernel")).unwrap();
    fs::write(
        r.join("usr/lib/kernel/cmdline"),
        format!("root=/dev/mapper/fedora-root ro rd.luks.uuid={UUID} rd.lvm.lv=fedora/root\n"),
    )
    .unwrap();
    let ch = plan_boot_changes(r, &q).unwrap();
    assert!(!paths(&ch).contains(&PathBuf::from("/etc/kernel/cmdline")));
}

#[test]
fn centos5_grub_conf_through_symlinks() {
    let t = fixture("centos5");
    let r = t.path();
    // Git keeps no modes but 644/755: give the file the mode CentOS ships it with.
    set_mode(&r.join("boot/grub/grub.conf"), 0o600);
    let mut q = req("VolGroup00", "LogVol00");
    q.initrd_path = Some("/boot/initrd-2.6.18-398.el5.luks.img".into());
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::Nash);
    assert_eq!(
        ch.detected.bootloader,
        Bootloader::GrubLegacy {
            config: "/boot/grub/grub.conf".into()
        }
    );
    assert_eq!(
        paths(&ch),
        [
            PathBuf::from("/etc/crypttab"),
            PathBuf::from("/boot/grub/grub.conf")
        ]
    );
    assert!(
        ch.edits[0].before.is_none(),
        "CentOS 5 has no crypttab: created"
    );
    let conf = after(&ch, "/boot/grub/grub.conf");
    assert!(
        conf.contains(
            "hiddenmenu\n\
         title CentOS (2.6.18-398.el5) (encrypted root)\n\
         \troot (hd0,0)\n\
         \tkernel /vmlinuz-2.6.18-398.el5 ro root=/dev/VolGroup00/LogVol00 rhgb quiet\n\
         \tinitrd /initrd-2.6.18-398.el5.luks.img\n\
         title CentOS (2.6.18-398.el5)\n"
        ),
        "{conf}"
    );
    assert!(
        conf.contains("default=0\nfallback=1\ntimeout=5\n"),
        "{conf}"
    );
    assert!(ch.commands.is_empty());
    assert!(has_note(
        &ch,
        "swap on /dev/VolGroup00/LogVol01 stays valid"
    ));

    apply_edits(r, &ch);
    assert!(
        fs::symlink_metadata(r.join("etc/grub.conf"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        fs::symlink_metadata(r.join("boot/grub/menu.lst"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(r, "/etc/grub.conf"), conf);
    let mode = fs::metadata(r.join("boot/grub/grub.conf"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "grub.conf keeps its mode");
    let again = plan_boot_changes(r, &q).unwrap();
    assert!(again.is_empty(), "{:?}", paths(&again));
}

#[test]
fn arch_systemd_boot_with_both_mkinitcpio_hooks() {
    let t = fixture("arch-sdboot");
    let r = t.path();
    let mut q = req("vg0", "root");
    q.mapper_name = "cryptlvm".into();
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::MkinitcpioEncrypt);
    assert_eq!(
        ch.detected.bootloader,
        Bootloader::SystemdBoot {
            esp: "/boot".into()
        }
    );
    assert_eq!(
        paths(&ch),
        [
            PathBuf::from("/boot/loader/entries/arch-fallback.conf"),
            PathBuf::from("/boot/loader/entries/arch.conf"),
            PathBuf::from("/etc/kernel/cmdline")
        ]
    );
    // loader.conf's default entry; mkinitcpio's UKIs and kernel-install read it.
    assert_eq!(
        after(&ch, "/etc/kernel/cmdline"),
        format!("root=/dev/mapper/vg0-root rw cryptdevice=UUID={UUID}:cryptlvm\n")
    );
    assert!(ch.edits[2].why.contains("(arch)"), "{}", ch.edits[2].why);
    assert_eq!(
        after(&ch, "/boot/loader/entries/arch.conf"),
        format!(
            "title   Arch Linux\nlinux   /vmlinuz-linux\ninitrd  /initramfs-linux.img\noptions root=/dev/mapper/vg0-root rw cryptdevice=UUID={UUID}:cryptlvm\n"
        )
    );
    assert!(has_note(&ch, "/etc/crypttab is left alone"));
    apply_edits(r, &ch);
    assert!(plan_boot_changes(r, &q).unwrap().is_empty());

    // The systemd hook set needs sd-encrypt's spelling instead.
    let t = fixture("arch-sdboot");
    let r = t.path();
    let conf = read(r, "/etc/mkinitcpio.conf").replace(
        "HOOKS=(base udev autodetect",
        "HOOKS=(base systemd autodetect",
    );
    fs::write(r.join("etc/mkinitcpio.conf"), conf).unwrap();
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(ch.detected.flavour, Flavour::MkinitcpioSdEncrypt);
    assert!(
        after(&ch, "/boot/loader/entries/arch.conf").contains(&format!(
            "options root=/dev/mapper/vg0-root rw rd.luks.name={UUID}=cryptlvm\n"
        ))
    );
}

#[test]
fn files_changed_since_planning_are_not_overwritten() {
    let t = fixture("fedora39");
    let r = t.path();
    let ch = plan_boot_changes(r, &req("fedora", "root")).unwrap();
    let edited = "GRUB_TIMEOUT=1\n";
    fs::write(r.join("etc/default/grub"), edited).unwrap();
    let e = ch
        .edits
        .iter()
        .find(|e| e.path == Path::new("/etc/default/grub"))
        .unwrap();
    let err = e.apply(r).unwrap_err();
    assert!(
        err.downcast_ref::<ChangedSincePlanning>().is_some(),
        "{err:#}"
    );
    assert!(
        err.to_string().contains("changed since the plan was made"),
        "{err:#}"
    );
    assert_eq!(read(r, "/etc/default/grub"), edited);
    assert!(!r.join("etc/default/grub.luksify-backup").exists());
}

#[test]
fn conflicting_generators_are_refused_by_name() {
    let t = fixture("debian12");
    let r = t.path();
    // Without package lists, both generators' files count as installed.
    fs::remove_dir_all(r.join("var/lib/dpkg")).unwrap();
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    fs::write(r.join("usr/bin/dracut"), "").unwrap();
    let err = plan_boot_changes(r, &req("debian-vg", "root"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("initramfs-tools") && err.contains("/usr/bin/dracut"),
        "{err}"
    );
    assert!(err.contains("--flavour"), "{err}");
}

#[test]
fn plan_is_data_json_round_trip_and_cli_runs() {
    let t = fixture("fedora39");
    let ch = plan_boot_changes(t.path(), &req("fedora", "root")).unwrap();
    let j = serde_json::to_string_pretty(&ch).unwrap();
    assert!(j.contains("\"kind\": \"grub2\""), "{j}");
    let back: BootChanges = serde_json::from_str(&j).unwrap();
    assert_eq!(back, ch);

    let cmd = cli::BootCommand::Plan {
        args: cli::BootArgs {
            root: t.path().to_path_buf(),
            luks_uuid: UUID.into(),
            vg: "fedora".into(),
            lv: "root".into(),
            flavour: None,
            mapper_name: None,
            initrd_path: None,
            discard: false,
            json: true,
        },
    };
    assert_eq!(cli::run(cmd).unwrap(), 0);
    // Planning wrote nothing.
    assert_eq!(read(t.path(), "/etc/crypttab"), "");
}

#[test]
fn grub_d_snippets_that_set_the_command_line_are_edited_instead() {
    let t = fixture("ubuntu");
    let r = t.path();
    fs::create_dir_all(r.join("etc/default/grub.d")).unwrap();
    // Cloud images set only the _DEFAULT variant: /etc/default/grub stays the target.
    let cloud = "# Cloud Image specific Grub settings for Generic Cloud Images\n\
                 GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0\"\n\
                 GRUB_TERMINAL=console\n";
    fs::write(r.join("etc/default/grub.d/50-cloudimg-settings.cfg"), cloud).unwrap();
    let ch = plan_boot_changes(r, &req("ubuntu-vg", "ubuntu-lv")).unwrap();
    assert!(paths(&ch).contains(&PathBuf::from("/etc/default/grub")));
    // A snippet that assigns GRUB_CMDLINE_LINUX wins, so it is the one edited.
    let snippet = "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX net.ifnames=0\"\n";
    fs::write(r.join("etc/default/grub.d/60-net.cfg"), snippet).unwrap();
    let ch = plan_boot_changes(r, &req("ubuntu-vg", "ubuntu-lv")).unwrap();
    assert!(!paths(&ch).contains(&PathBuf::from("/etc/default/grub")));
    assert_eq!(
        after(&ch, "/etc/default/grub.d/60-net.cfg"),
        format!(
            "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX net.ifnames=0 rd.luks.uuid=luks-{UUID} rd.lvm.lv=ubuntu-vg/ubuntu-lv\"\n"
        )
    );
}

#[test]
fn apply_refuses_commands_without_proc_before_writing() {
    let t = fixture("fedora39");
    let r = t.path();
    let ch = plan_boot_changes(r, &req("fedora", "root")).unwrap();
    assert!(!ch.commands.is_empty());
    let err = luksify::boot::apply_boot_changes(r, &ch, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/proc is not mounted") && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(read(r, "/etc/crypttab"), "", "nothing written");
}

#[test]
fn cli_apply_on_a_target_without_commands() {
    let t = fixture("debian12");
    let r = t.path();
    let args = cli::BootArgs {
        root: r.to_path_buf(),
        luks_uuid: UUID.into(),
        vg: "debian-vg".into(),
        lv: "root".into(),
        flavour: None,
        mapper_name: Some("vda5_crypt".into()),
        initrd_path: None,
        discard: true,
        json: false,
    };
    assert_eq!(
        cli::run(cli::BootCommand::Apply { args: args.clone() }).unwrap(),
        0
    );
    assert!(read(r, "/etc/crypttab").ends_with(&format!(
        "vda5_crypt UUID={UUID} none luks,discard,initramfs\n"
    )));
    // Applying again plans nothing and succeeds.
    assert_eq!(cli::run(cli::BootCommand::Apply { args }).unwrap(), 0);
    assert!(!r.join("etc/crypttab.luksify-backup.1").exists());
}

#[test]
fn grub2_without_a_generator_gets_grub_cfg_edited() {
    let t = fixture("debian12");
    let r = t.path();
    for f in ["usr/sbin/update-grub", "usr/sbin/grub-mkconfig"] {
        fs::remove_file(r.join(f)).unwrap();
    }
    let mut q = req("debian-vg", "root");
    q.flavour = Some(Flavour::MkinitcpioSdEncrypt);
    let ch = plan_boot_changes(r, &q).unwrap();
    assert!(ch.commands.is_empty());
    assert!(has_note(&ch, "is edited directly"));
    let before = read(r, "/boot/grub/grub.cfg");
    let cfg = after(&ch, "/boot/grub/grub.cfg");
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(cfg.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 3, "the three linux lines and nothing else");
    assert_eq!(
        changed[0].1,
        format!(
            "\tlinux\t/vmlinuz-6.1.0-13-amd64 root=/dev/mapper/debian--vg-root ro  quiet rd.luks.name={UUID}=luks-{UUID}"
        )
    );
    apply_edits(r, &ch);
    assert!(plan_boot_changes(r, &q).unwrap().is_empty());
}

#[test]
fn debian5_grub_legacy_from_package_lists() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let menu = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/boot_fixtures/files/debian5-menu.lst"),
    )
    .unwrap();
    for (p, c) in [
        ("boot/grub/menu.lst", menu.as_str()),
        // update-grub's leftovers of GRUB 2 would not count: dpkg says legacy.
        ("boot/grub/grub.cfg", "# stale\n"),
        ("var/lib/dpkg/info/grub.list", "/.\n"),
        ("var/lib/dpkg/info/initramfs-tools.list", "/.\n"),
        (
            "etc/fstab",
            "/dev/mapper/lenny-root / ext3 errors=remount-ro 0 1\n/dev/hda1 /boot ext2 defaults 0 2\n",
        ),
    ] {
        let h = r.join(p);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        fs::write(h, c).unwrap();
    }
    let mut q = req("lenny", "root");
    q.initrd_path = Some("/boot/initrd.img-2.6.26-2-686.luks".into());
    let ch = plan_boot_changes(r, &q).unwrap();
    assert_eq!(
        ch.detected.bootloader,
        Bootloader::GrubLegacy {
            config: "/boot/grub/menu.lst".into()
        }
    );
    assert_eq!(
        paths(&ch),
        [
            PathBuf::from("/etc/crypttab"),
            PathBuf::from("/boot/grub/menu.lst")
        ]
    );
    assert!(has_note(&ch, "automagic"));
    assert!(
        has_note(&ch, "/boot is mounted by kernel name /dev/hda1"),
        "{:#?}",
        ch.notes
    );
    apply_edits(r, &ch);
    assert!(plan_boot_changes(r, &q).unwrap().is_empty());
}

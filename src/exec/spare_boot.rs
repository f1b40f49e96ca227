//! spare-keep's boot steps on the mounted target: the new /boot filled from
//! the original, fstab pointed at it, GRUB installed on the spare. Each one
//! can run again after an interruption and ends in the same state.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::boot::file_edit::{Applied, FileEdit};
use crate::plan::spare_boot::{COPY_MARKER, OLD_BOOT_MOUNT};
use crate::sys::atomic_file;
use crate::sys::process::Cmd;

pub fn is_mounted(point: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(point))
}

/// Read-only without journal replay, as the probe mounts it: the original
/// /boot stays byte for byte what it was.
fn ro_options(fstype: &str) -> &'static str {
    match fstype {
        "ext3" | "ext4" => "ro,noload",
        _ => "ro",
    }
}

/// Mounts `to` at the target's /boot and copies the original /boot into it
/// unless an earlier run finished that (its marker is there).
pub fn copy_boot(target_root: &str, from: Option<&str>, to: &str, fstype: &str) -> Result<()> {
    let boot = format!("{target_root}/boot");
    if !is_mounted(&boot) {
        Cmd::new("mount")
            .args(["-t", fstype, to, &boot])
            .run()
            .with_context(|| format!("mounting the new /boot {to} at {boot}"))?;
    }
    let marker = Path::new(&boot).join(COPY_MARKER);
    if marker.exists() {
        println!("  {to} already holds the complete copy of /boot; not copied again");
        return Ok(());
    }
    let from = from.with_context(|| {
        format!(
            "the target's fstab no longer names the original /boot, but the copy into {to} never finished ({COPY_MARKER} is missing). Nothing was copied. Put the original /boot line back in the target's /etc/fstab (its backup is /etc/fstab.luksify-backup) and run luksify again"
        )
    })?;
    // Mounted without journal replay (nothing is written to the original),
    // a /boot shut down uncleanly could yield an incomplete copy.
    if fstype != "ext2" {
        let header = Cmd::new("dumpe2fs")
            .args(["-h", from])
            .run()
            .with_context(|| format!("reading the superblock of the original /boot {from}"))?;
        if crate::probe::target::journal_needs_recovery(&header.stdout_str()) {
            bail!(
                "the journal of the original /boot {from} needs recovery (it was not unmounted cleanly), so a copy made without replaying it could miss files. Nothing was copied. Replay it with `e2fsck -p {from}` and run luksify again"
            );
        }
    }
    std::fs::create_dir_all(OLD_BOOT_MOUNT)
        .with_context(|| format!("creating {OLD_BOOT_MOUNT}"))?;
    if !is_mounted(OLD_BOOT_MOUNT) {
        Cmd::new("mount")
            .args(["-t", fstype, "-o", ro_options(fstype), from, OLD_BOOT_MOUNT])
            .run()
            .with_context(|| format!("mounting the original /boot {from} read-only"))?;
    }
    // cp -a: modes, owners, timestamps, symbolic and hard links.
    let copied = Cmd::new("cp")
        .args(["-a", &format!("{OLD_BOOT_MOUNT}/."), &format!("{boot}/")])
        .run()
        .with_context(|| format!("copying {from} into {to}"));
    let unmounted = Cmd::new("umount")
        .arg(OLD_BOOT_MOUNT)
        .run()
        .with_context(|| format!("unmounting the original /boot from {OLD_BOOT_MOUNT}"));
    copied?;
    unmounted?;
    nix::unistd::sync();
    atomic_file::write_atomic(
        &marker,
        format!("luksify copied /boot here from {from}\n").as_bytes(),
        0o644,
    )?;
    println!("  copied the files of {from} into {to}");
    Ok(())
}

/// The /boot line of the target's fstab names the new filesystem.
pub fn retarget_fstab(target_root: &str, new_uuid: &str) -> Result<()> {
    let root = Path::new(target_root);
    let before =
        std::fs::read(root.join("etc/fstab")).context("reading the target's /etc/fstab")?;
    let text = String::from_utf8_lossy(&before).into_owned();
    let after = crate::boot::fstab::retarget_boot(&text, new_uuid)
        .context("the target's /etc/fstab has no /boot line")?;
    let Some(edit) = FileEdit::if_changed(
        "/etc/fstab",
        Some(before),
        after.into_bytes(),
        "/boot now lives on the spare",
    ) else {
        println!("  /etc/fstab already mounts /boot by UUID={new_uuid}");
        return Ok(());
    };
    print!("{}", edit.diff());
    match edit.apply(root)? {
        Applied::AlreadyDone => println!("  /etc/fstab already mounts /boot by UUID={new_uuid}"),
        Applied::Written { backup } => println!(
            "  wrote /etc/fstab{}",
            backup
                .map(|b| format!(
                    " (the old one is kept as /{})",
                    b.strip_prefix(root).unwrap_or(&b).display()
                ))
                .unwrap_or_default()
        ),
    }
    Ok(())
}

/// GRUB on the spare from the target's own grub-install, and grub.cfg
/// regenerated on the new /boot (what update-grub runs).
pub fn grub_install(target_root: &str, disk: &str, boot_uuid: &str) -> Result<()> {
    let out = Cmd::new("chroot")
        .args([target_root, "grub-install", "--target=i386-pc", disk])
        .run()
        .with_context(|| format!("the target's grub-install onto {disk}"))?;
    for l in out.stderr.lines() {
        println!("  grub-install: {l}");
    }
    remember_install_device(target_root, disk)?;
    Cmd::new("chroot")
        .args([target_root, "grub-mkconfig", "-o", "/boot/grub/grub.cfg"])
        .run()
        .context("the target's grub-mkconfig writing /boot/grub/grub.cfg")?;
    let cfg = std::fs::read_to_string(Path::new(target_root).join("boot/grub/grub.cfg"))
        .context("reading the new /boot/grub/grub.cfg")?;
    if !cfg.contains(boot_uuid) {
        bail!(
            "the new /boot/grub/grub.cfg does not look for /boot by its UUID {boot_uuid} (GRUB_DISABLE_UUID set in /etc/default/grub?); GRUB could load the original disk's /boot. Do not reboot yet"
        );
    }
    println!("  GRUB installed on {disk}; grub.cfg finds /boot by UUID {boot_uuid}");
    Ok(())
}

/// Debian's grub-pc reinstalls GRUB on every upgrade onto the disks its
/// debconf answer `grub-pc/install_devices` names: still the original disk,
/// which the person detaches. The spare would keep an old core beside
/// upgraded modules, which GRUB may fail to load. So the answer becomes the
/// spare, by a name that survives reboots.
fn remember_install_device(target_root: &str, disk: &str) -> Result<()> {
    if !Path::new(target_root)
        .join("usr/bin/debconf-set-selections")
        .exists()
    {
        return Ok(());
    }
    // A kernel name (sdb) may name another disk at the next boot: GRUB
    // would be written there. Without a by-id link the person chooses.
    let Some(name) = stable_name(Path::new("/dev/disk/by-id"), disk) else {
        println!(
            "  no /dev/disk/by-id name for {disk} here (no udev?): after the first boot run `dpkg-reconfigure grub-pc` and choose that disk, so that GRUB upgrades reinstall GRUB on it"
        );
        return Ok(());
    };
    Cmd::new("chroot")
        .args([target_root, "debconf-set-selections"])
        .stdin_bytes(install_devices_answer(&name).into_bytes())
        .run()
        .context("recording the spare as GRUB's install device in the target's debconf")?;
    println!("  grub-pc upgrades will install GRUB on {name}");
    Ok(())
}

fn install_devices_answer(device: &str) -> String {
    format!("grub-pc grub-pc/install_devices multiselect {device}\n")
}

/// The first (sorted) link in `by_id` that resolves to `disk` itself, not to
/// one of its partitions.
fn stable_name(by_id: &Path, disk: &str) -> Option<String> {
    let want = std::fs::canonicalize(disk).ok()?;
    let mut names: Vec<_> = std::fs::read_dir(by_id)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| std::fs::canonicalize(p).ok().as_ref() == Some(&want))
        .collect();
    names.sort();
    names.first().map(|p| p.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spare_is_named_by_its_stable_link() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("vdb");
        let part = dir.path().join("vdb1");
        std::fs::write(&disk, "").unwrap();
        std::fs::write(&part, "").unwrap();
        let by_id = dir.path().join("by-id");
        std::fs::create_dir(&by_id).unwrap();
        std::os::unix::fs::symlink(&part, by_id.join("virtio-spare-part1")).unwrap();
        std::os::unix::fs::symlink(&disk, by_id.join("virtio-spare")).unwrap();
        let got = stable_name(&by_id, disk.to_str().unwrap()).unwrap();
        assert_eq!(got, by_id.join("virtio-spare").to_string_lossy());
        assert_eq!(stable_name(&by_id, "/nonexistent"), None);
        assert_eq!(
            install_devices_answer(&got),
            format!("grub-pc grub-pc/install_devices multiselect {got}\n")
        );
    }

    #[test]
    fn fstab_is_retargeted_once_with_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let before = "/dev/mapper/vg0-root / ext4 defaults 0 1\nUUID=old /boot ext4 defaults 0 2\n";
        std::fs::write(etc.join("fstab"), before).unwrap();
        let root = dir.path().to_str().unwrap();
        retarget_fstab(root, "new").unwrap();
        let after = std::fs::read_to_string(etc.join("fstab")).unwrap();
        assert_eq!(after, before.replace("UUID=old", "UUID=new"));
        assert_eq!(
            std::fs::read_to_string(etc.join("fstab.luksify-backup")).unwrap(),
            before
        );
        // A resumed run finds it done and keeps the pristine backup.
        retarget_fstab(root, "new").unwrap();
        assert_eq!(std::fs::read_to_string(etc.join("fstab")).unwrap(), after);
        assert_eq!(
            std::fs::read_to_string(etc.join("fstab.luksify-backup")).unwrap(),
            before
        );
        assert!(!etc.join("fstab.luksify-backup.1").exists());
    }

    #[test]
    fn a_fstab_without_boot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/fstab"),
            "/dev/vg0/root / ext4 defaults 0 1\n",
        )
        .unwrap();
        let e = retarget_fstab(dir.path().to_str().unwrap(), "new").unwrap_err();
        assert!(e.to_string().contains("no /boot line"), "{e}");
    }
}

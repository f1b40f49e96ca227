//! Looks inside the target OS: finds which LV holds its root filesystem and
//! reads what planning needs (fstab, crypttab, kernels, initramfs generator,
//! bootloader, cryptsetup). Filesystems are mounted read-only without journal
//! replay, so probing never writes to the disk.

use anyhow::Result;

use super::snapshot::{BootSpace, FstabEntry, Lv, Snapshot, TargetOs};
use super::source::Source;

const MOUNT_BASE: &str = "/run/luksify/probe";
const LINUX_FILESYSTEMS: &[&str] = &["ext2", "ext3", "ext4", "xfs", "btrfs", "jfs", "reiserfs"];

pub fn inspect(src: &mut dyn Source, snap: &Snapshot) -> Result<Option<TargetOs>> {
    for lv in candidates(snap) {
        let (dev, fstype) = device_and_type(lv);
        let mp = format!("{MOUNT_BASE}/{}-{}", lv.vg, lv.name);
        let Some(root) = mount_ro(src, &dev, &fstype, &mp)? else {
            continue;
        };
        let fstab_text = src.read(&format!("{root}/etc/fstab"));
        let found = match fstab_text {
            Some(text) if parse_fstab(&text).iter().any(|e| e.mount_point == "/") => {
                Some(read_target(src, snap, lv, &root, &text)?)
            }
            _ => None,
        };
        unmount(src, &mp)?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Active public LVs with a Linux filesystem: where the root may be.
fn candidates(snap: &Snapshot) -> Vec<&Lv> {
    snap.lvm
        .lvs
        .iter()
        .filter(|l| l.is_public() && l.active)
        .filter(|l| {
            l.filesystem
                .as_ref()
                .is_some_and(|f| LINUX_FILESYSTEMS.contains(&f.kind.as_str()))
        })
        .collect()
}

fn device_and_type(lv: &Lv) -> (String, String) {
    let dev = lv
        .dm_path
        .clone()
        .or_else(|| lv.path.clone())
        .unwrap_or_default();
    let fstype = lv
        .filesystem
        .as_ref()
        .map(|f| f.kind.clone())
        .unwrap_or_default();
    (dev, fstype)
}

/// The candidate LVs (`VG/LV`, device) whose ext3/ext4 journal needs
/// recovery: read without replay (so that probing never writes), a file
/// written just before a power loss can be missing from them, fstab
/// included. dumpe2fs only reads the superblock.
pub fn unreplayed_journals(src: &mut dyn Source, snap: &Snapshot) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for lv in candidates(snap) {
        let (dev, fstype) = device_and_type(lv);
        if !matches!(fstype.as_str(), "ext3" | "ext4") {
            continue;
        }
        let Ok(out) = src.run(&["dumpe2fs", "-h", &dev]) else {
            continue;
        };
        if out.code == 0 && journal_needs_recovery(&out.stdout) {
            found.push((lv.full_name(), dev));
        }
    }
    found
}

/// Whether `dumpe2fs -h` output shows a journal still to be replayed.
pub fn journal_needs_recovery(dumpe2fs_header: &str) -> bool {
    dumpe2fs_header.lines().any(|l| {
        l.starts_with("Filesystem features:") && l.split_whitespace().any(|f| f == "needs_recovery")
    })
}

/// Mounts read-only unless the device is already mounted; returns where to read.
fn mount_ro(src: &mut dyn Source, dev: &str, fstype: &str, mp: &str) -> Result<Option<String>> {
    let opts = match fstype {
        "ext3" | "ext4" => "ro,noload",
        "xfs" => "ro,norecovery",
        _ => "ro",
    };
    src.run(&["mkdir", "-p", mp])?;
    let out = src.run(&["mount", "-t", fstype, "-o", opts, dev, mp])?;
    Ok((out.code == 0).then(|| mp.to_string()))
}

fn unmount(src: &mut dyn Source, mp: &str) -> Result<()> {
    // /boot may have been mounted inside; take it down first.
    src.run(&["umount", &format!("{mp}/boot")])?;
    src.run(&["umount", mp])?;
    Ok(())
}

fn read_target(
    src: &mut dyn Source,
    snap: &Snapshot,
    lv: &Lv,
    root: &str,
    fstab_text: &str,
) -> Result<TargetOs> {
    let fstab = parse_fstab(fstab_text);
    if let Some(boot) = fstab.iter().find(|e| e.mount_point == "/boot")
        && let Some(dev) = resolve_spec(snap, &boot.spec)
    {
        mount_ro(src, &dev, &boot.fstype, &format!("{root}/boot"))?;
    }
    let boot_files = src.list(&format!("{root}/boot"));
    let modules = src.list(&format!("{root}/lib/modules"));
    let kernels = boot_files
        .iter()
        .filter_map(|f| f.strip_prefix("vmlinuz-"))
        .filter(|k| modules.iter().any(|m| m == k))
        .map(String::from)
        .collect();
    let has = |src: &mut dyn Source, dir: &str, name: &str| {
        src.list(&format!("{root}/{dir}")).iter().any(|f| f == name)
    };
    let has_cryptsetup = has(src, "usr/sbin", "cryptsetup") || has(src, "sbin", "cryptsetup");
    let has_cryptsetup_initramfs = has(src, "usr/share/initramfs-tools/hooks", "cryptroot");
    let initramfs_generator =
        if has(src, "usr/sbin", "mkinitramfs") || has(src, "sbin", "mkinitramfs") {
            Some("initramfs-tools")
        } else if has(src, "usr/bin", "dracut") || has(src, "sbin", "dracut") {
            Some("dracut")
        } else if has(src, "usr/bin", "mkinitcpio") {
            Some("mkinitcpio")
        } else if has(src, "sbin", "nash") {
            Some("nash")
        } else {
            None
        };
    let bootloader = if has(src, "boot/loader", "entries") {
        Some("bls")
    } else if has(src, "boot/grub", "grub.cfg") || has(src, "boot/grub2", "grub.cfg") {
        Some("grub2")
    } else if has(src, "boot/grub", "grub.conf") || has(src, "boot/grub", "menu.lst") {
        Some("grub-legacy")
    } else {
        None
    };
    let pretty_name = src
        .read(&format!("{root}/etc/os-release"))
        .or_else(|| src.read(&format!("{root}/usr/lib/os-release")))
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .or_else(|| {
            src.read(&format!("{root}/etc/redhat-release"))
                .map(|s| s.trim().to_string())
        });
    Ok(TargetOs {
        root_lv: lv.full_name(),
        pretty_name,
        fstab,
        crypttab: src
            .read(&format!("{root}/etc/crypttab"))
            .unwrap_or_default(),
        kernels,
        initramfs_generator: initramfs_generator.map(String::from),
        bootloader: bootloader.map(String::from),
        has_cryptsetup,
        has_cryptsetup_initramfs,
        spare_boot_files: Some(present_files(
            src,
            root,
            crate::plan::spare_boot::TARGET_NEEDS
                .iter()
                .flat_map(|n| n.any_of.iter().copied()),
        )),
        boot_space: boot_space(src, root, &boot_files),
        files: boot_files_of(src, root),
        boot_view: src.boot_view(root, &lv.vg, &lv.name),
    })
}

/// What `stat` says about the target's /boot: its file system's free bytes and
/// the size of each initramfs image (or backup) in it. None when stat cannot
/// answer (or a replayed recording predates this look).
fn boot_space(src: &mut dyn Source, root: &str, boot_files: &[String]) -> Option<BootSpace> {
    let dir = format!("{root}/boot");
    let prefix = format!("{dir}/");
    let fs = src.run(&["stat", "-f", "-c", "%a %S", &dir]).ok()?;
    let (blocks, block_size) = fs.stdout.trim().split_once(' ').filter(|_| fs.code == 0)?;
    let avail_bytes = blocks
        .parse::<u64>()
        .ok()?
        .checked_mul(block_size.parse().ok()?)?;
    let paths: Vec<String> = boot_files
        .iter()
        .filter(|f| f.starts_with("initrd") || f.starts_with("initramfs"))
        .map(|f| format!("{prefix}{f}"))
        .collect();
    let mut images = std::collections::BTreeMap::new();
    if !paths.is_empty() {
        let mut argv = vec!["stat", "-L", "-c", "%s %n"];
        argv.extend(paths.iter().map(String::as_str));
        let out = src.run(&argv).ok()?;
        for line in out.stdout.lines() {
            if let Some((size, path)) = line.split_once(' ')
                && let (Ok(size), Some(name)) = (size.parse(), path.strip_prefix(&prefix))
            {
                images.insert(name.to_string(), size);
            }
        }
    }
    Some(BootSpace {
        avail_bytes,
        images,
    })
}

/// Those of `paths` (relative to the target's root at `root`) that exist.
/// Listed, not opened, through the target's own relative symlinks (a merged
/// /usr's `sbin -> usr/sbin`), as the chroot that runs them sees them.
pub fn present_files<'a>(
    src: &mut dyn Source,
    root: &str,
    paths: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    paths
        .into_iter()
        .filter(|p| {
            let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
            src.list(&format!("{root}/{dir}")).iter().any(|f| f == name)
        })
        .map(String::from)
        .collect()
}

/// Configuration files that the initramfs and boot-configuration steps edit or read.
const BOOT_FILES: &[&str] = &[
    "etc/crypttab",
    "etc/fstab",
    "etc/default/grub",
    "etc/kernel/cmdline",
    "etc/initramfs-tools/initramfs.conf",
    "etc/mkinitcpio.conf",
    "boot/grub/grub.cfg",
    "boot/grub/grub.conf",
    "boot/grub/menu.lst",
    "boot/grub/grubenv",
    "boot/grub2/grub.cfg",
    "boot/grub2/grubenv",
];
const BOOT_DIRS: &[&str] = &[
    "boot/loader/entries",
    "etc/dracut.conf.d",
    "etc/initramfs-tools/conf.d",
];

fn boot_files_of(src: &mut dyn Source, root: &str) -> std::collections::BTreeMap<String, String> {
    let mut files = std::collections::BTreeMap::new();
    for f in BOOT_FILES {
        if let Some(t) = src.read(&format!("{root}/{f}")) {
            files.insert(f.to_string(), t);
        }
    }
    for d in BOOT_DIRS {
        for name in src.list(&format!("{root}/{d}")) {
            if name.ends_with(".conf")
                && let Some(t) = src.read(&format!("{root}/{d}/{name}"))
            {
                files.insert(format!("{d}/{name}"), t);
            }
        }
    }
    files
}

pub fn parse_fstab(text: &str) -> Vec<FstabEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(FstabEntry {
                spec: f.first()?.to_string(),
                mount_point: f.get(1)?.to_string(),
                fstype: f.get(2).unwrap_or(&"auto").to_string(),
                options: f.get(3).unwrap_or(&"defaults").to_string(),
            })
        })
        .collect()
}

/// Resolves an fstab source (`UUID=`, `LABEL=`, `PARTUUID=` or a path) to a device path.
pub fn resolve_spec(snap: &Snapshot, spec: &str) -> Option<String> {
    let parts = snap.disks.iter().flat_map(|d| d.partitions.iter());
    if let Some(u) = spec.strip_prefix("UUID=") {
        return parts
            .into_iter()
            .find(|p| p.signature.as_ref().and_then(|s| s.uuid.as_deref()) == Some(u))
            .map(|p| p.path.clone());
    }
    if let Some(l) = spec.strip_prefix("LABEL=") {
        return parts
            .into_iter()
            .find(|p| p.signature.as_ref().and_then(|s| s.label.as_deref()) == Some(l))
            .map(|p| p.path.clone());
    }
    if let Some(u) = spec.strip_prefix("PARTUUID=") {
        return parts
            .into_iter()
            .find(|p| {
                p.part_uuid
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(u))
            })
            .map(|p| p.path.clone());
    }
    spec.starts_with("/dev/").then(|| spec.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_skips_comments() {
        let e = parse_fstab(
            "# /etc/fstab\n/dev/mapper/vg0-root / ext4 errors=remount-ro 0 1\nUUID=abc /boot ext4 defaults 0 2\n\n",
        );
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].spec, "UUID=abc");
        assert_eq!(e[0].options, "errors=remount-ro");
    }

    #[test]
    fn boot_space_is_what_stat_says_about_a_real_boot_directory() {
        let root = tempfile::tempdir().unwrap();
        let boot = root.path().join("boot");
        std::fs::create_dir(&boot).unwrap();
        std::fs::write(boot.join("initrd.img-6.1.0-28-amd64"), vec![0u8; 3000]).unwrap();
        std::fs::write(
            boot.join("initrd.img-6.1.0-28-amd64.luksify-backup"),
            vec![0u8; 2000],
        )
        .unwrap();
        std::fs::write(boot.join("vmlinuz-6.1.0-28-amd64"), vec![0u8; 100]).unwrap();
        let root_str = root.path().to_str().unwrap();
        let mut src = super::super::source::RealSource;
        let files = src.list(&format!("{root_str}/boot"));
        let space = boot_space(&mut src, root_str, &files).expect("stat answers");
        let want: std::collections::BTreeMap<String, u64> = [
            ("initrd.img-6.1.0-28-amd64".to_string(), 3000),
            ("initrd.img-6.1.0-28-amd64.luksify-backup".to_string(), 2000),
        ]
        .into();
        assert_eq!(space.images, want);
        let st = nix::sys::statvfs::statvfs(&boot).unwrap();
        let avail = st.blocks_available() as u64 * st.fragment_size() as u64;
        // Other writers may change it a little between the two looks.
        assert!(
            space.avail_bytes.abs_diff(avail) < 64 << 20,
            "{space:?} vs {avail}"
        );
        assert!(space.avail_bytes > 0);
    }

    #[test]
    fn no_boot_space_when_a_replayed_recording_lacks_the_stat_commands() {
        let mut src = super::super::source::Replay(Default::default());
        assert_eq!(boot_space(&mut src, "/x", &["initrd.img-1".into()]), None);
    }
}

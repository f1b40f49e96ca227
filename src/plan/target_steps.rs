//! The second half, done once the data sits inside the container: make the
//! target system able to unlock itself at boot, then verify that it can.

use super::layout::Layout;
use super::spare_boot::SpareBoot;
use super::step::{Action, Check, FileDiff, Step};
use crate::boot::preview::Preview;
use crate::probe::target::resolve_spec;
use crate::probe::{Snapshot, TargetOs};

pub const TARGET_MOUNT: &str = "/run/luksify/target";

/// Whether the target's own generator rebuilds its images with the unlock
/// (rather than luksify adding the unlock to the existing ones).
pub fn uses_target_generator(t: &TargetOs) -> bool {
    match t.initramfs_generator.as_deref() {
        Some("initramfs-tools") => t.has_cryptsetup_initramfs,
        Some("dracut") => true,
        _ => false,
    }
}

pub fn steps(snap: &Snapshot, l: &Layout, boot: Preview) -> Vec<Step> {
    let t = l.target;
    let (vg, lv) = t.root_lv.split_once('/').unwrap_or((&l.vg, ""));
    // spare-keep mounts the new /boot itself, once it exists.
    let boot_device = t
        .fstab
        .iter()
        .find(|e| e.mount_point == "/boot")
        .and_then(|e| resolve_spec(snap, &e.spec))
        .filter(|_| l.spare_boot.is_none());
    let use_target_generator = uses_target_generator(t);
    let initramfs_why = if use_target_generator {
        format!(
            "the target's own {} already knows how to unlock LUKS; it regenerates every kernel's image from the new crypttab",
            t.initramfs_generator.as_deref().unwrap_or("generator")
        )
    } else {
        format!(
            "the target's {} cannot unlock LUKS ({}), so luksify adds the unlock itself: into each kernel's existing image in /boot go cryptsetup and its libraries from the target (cryptsetup-bin), the cipher's dm-crypt modules and luksify's unlock hook, which asks for the passphrase at boot (3 tries). The original image is kept next to it as IMAGE.luksify-backup; the new one replaces it only after `luksify initrd verify` passes on it; an image that already unlocks this container is left alone. {}",
            t.initramfs_generator
                .as_deref()
                .unwrap_or("initramfs generator"),
            if t.initramfs_generator.as_deref() == Some("nash") {
                // The seed's situation: its init gets the unlock after mkblkdevs.
                "mkinitrd's nash init opens no LUKS container; luksify's unlock runs from its /init right after `mkblkdevs`, finds the container by its LUKS UUID and activates the real VG"
            } else {
                "Debian/Ubuntu: cryptsetup-initramfs is not installed"
            },
            if t.initramfs_generator.as_deref() == Some("initramfs-tools") {
                "So that the target's own update-initramfs (a kernel update) keeps the unlock, luksify also installs an initramfs-tools hook (/etc/initramfs-tools/hooks/luksify, scripts/local-top/luksify there, and /etc/luksify/) that adds the same to every image it builds"
            } else {
                "The target's own generator will build images without the unlock (a kernel update): run `luksify initrd inject` on each new image before rebooting into it"
            }
        )
    };
    let initramfs_title = if use_target_generator {
        "Rebuild the initramfs"
    } else {
        "Add the LUKS unlock to the initramfs"
    };
    let spare_boot = l.spare_boot.as_ref();
    let mut v = vec![Step {
        title: format!("Mount the target system ({}) at {TARGET_MOUNT}", t.root_lv),
        why: "its initramfs and boot configuration are updated from inside".into(),
        action: Action::MountTarget {
            root_device: format!("/dev/{vg}/{lv}"),
            boot_device,
            mount_point: TARGET_MOUNT.into(),
        },
        expect: vec![],
    }];
    if let Some(b) = spare_boot {
        v.extend(boot_to_spare(snap, t, b));
    }
    v.extend([
        Step {
            title: "Update crypttab and the boot configuration".into(),
            why: "so this boot and every future kernel update unlock the container by its UUID; the initramfs is built from this crypttab next".into(),
            action: Action::BootConfig {
                target_root: TARGET_MOUNT.into(),
                luks_uuid: l.luks_uuid.clone(),
                mapper_name: l.mapper_name.clone(),
                vg: vg.into(),
                root_lv: lv.into(),
                generator: t.initramfs_generator.clone(),
                edits: boot.edits,
                commands: boot.commands,
                complete: boot.complete,
            },
            expect: vec![],
        },
        Step {
            title: format!(
                "{initramfs_title} for kernel{} {}",
                if t.kernels.len() == 1 { "" } else { "s" },
                t.kernels.join(", ")
            ),
            why: initramfs_why,
            action: Action::Initramfs {
                target_root: TARGET_MOUNT.into(),
                kernels: t.kernels.clone(),
                generator: t.initramfs_generator.clone(),
                use_target_generator,
                luks_uuid: l.luks_uuid.clone(),
                mapper_name: l.mapper_name.clone(),
                vg: vg.into(),
                root_lv: lv.into(),
            },
            expect: vec![],
        },
    ]);
    if let Some(b) = spare_boot {
        v.push(Step {
            title: format!("Install GRUB on {} and regenerate its configuration", b.disk),
            why: format!(
                "the target's own grub-install puts GRUB in {}'s {} and its modules in the new /boot, and update-grub writes a grub.cfg that finds /boot by the new UUID {}; the original disk's GRUB and /boot are left as they were; on Debian grub-pc's install device becomes the spare, so GRUB upgrades reinstall it there",
                b.disk,
                if b.gpt() { "MBR and BIOS boot partition" } else { "MBR and the gap after it" },
                b.uuid
            ),
            action: Action::GrubInstall {
                target_root: TARGET_MOUNT.into(),
                disk: b.disk.clone(),
                boot_uuid: b.uuid.clone(),
            },
            expect: vec![],
        });
    }
    v.extend([
        Step {
            title: "Verify that the target will unlock and boot".into(),
            why: format!(
                "before the reboot: crypttab names this container's UUID, and every kernel's initramfs (listed with the target's own lsinitramfs or lsinitrd) holds cryptsetup, a crypttab and dm-crypt{}",
                if use_target_generator {
                    ""
                } else {
                    "; `luksify initrd verify` passes on each image luksify added the unlock to"
                }
            ),
            action: Action::Verify {
                target_root: TARGET_MOUNT.into(),
                luks_uuid: l.luks_uuid.clone(),
                vg: vg.into(),
                root_lv: lv.into(),
            },
            expect: vec![],
        },
        Step {
            title: format!("Unmount the target system from {TARGET_MOUNT}"),
            why: "flushes every change to disk".into(),
            action: Action::UnmountTarget {
                mount_point: TARGET_MOUNT.into(),
            },
            expect: vec![],
        },
    ]);
    v
}

/// spare-keep: the new /boot filesystem (made by the target's own mke2fs, so
/// its features are ones the target's GRUB reads), the original's files
/// copied into it, and fstab pointed at it.
fn boot_to_spare(snap: &Snapshot, t: &TargetOs, b: &SpareBoot) -> Vec<Step> {
    let mut v = Vec::new();
    // Only the filesystem this migration made (by its UUID) is kept: any
    // other signature there now is wiped by the partitioning (--wipe-spare;
    // without it the layout refuses), so the new /boot must be made.
    let made = snap
        .signature(&b.boot_part)
        .is_some_and(|sig| sig.uuid.as_deref() == Some(b.uuid.as_str()));
    if !made {
        v.push(Step {
            title: format!(
                "Make the new /boot filesystem on {} ({}, UUID {})",
                b.boot_part, b.fstype, b.uuid
            ),
            why: format!(
                "the spare's own /boot; a UUID of its own so that it never collides with the original /boot while both disks are attached{}",
                b.old_device
                    .as_deref()
                    .map(|d| format!(" ({d} keeps its UUID and its files)"))
                    .unwrap_or_default()
            ),
            // By its path: a busybox chroot (many live systems) runs its own
            // mke2fs applet for a bare name, which lacks -U.
            action: Action::Command {
                argv: [
                    "chroot",
                    TARGET_MOUNT,
                    "/sbin/mke2fs",
                    "-q",
                    "-t",
                    &b.fstype,
                    "-U",
                    &b.uuid,
                    &b.boot_part,
                ]
                .map(String::from)
                .to_vec(),
                stdin: None,
            },
            expect: vec![Check::HasFilesystem {
                device: b.boot_part.clone(),
                uuid: b.uuid.clone(),
            }],
        });
    }
    v.push(Step {
        title: format!(
            "Copy /boot{} to {} and mount it as the target's /boot",
            b.old_device
                .as_deref()
                .map(|d| format!(" from {d}"))
                .unwrap_or_default(),
            b.boot_part
        ),
        why: format!(
            "kernels, initramfs images and GRUB's files, with their modes, owners and links; the original is mounted read-only and not changed. {} marks a finished copy, so a resumed run does not copy again",
            super::spare_boot::COPY_MARKER
        ),
        action: Action::CopyBoot {
            target_root: TARGET_MOUNT.into(),
            from_device: b.old_device.clone(),
            to_device: b.boot_part.clone(),
            fstype: b.fstype.clone(),
        },
        expect: vec![],
    });
    let edit = t.files.get("etc/fstab").and_then(|before| {
        crate::boot::fstab::retarget_boot(before, &b.uuid)
            .filter(|after| after != before)
            .map(|after| FileDiff {
                path: "etc/fstab".into(),
                before: Some(before.clone()),
                after,
            })
    });
    v.push(Step {
        title: format!("Point the target's /boot in /etc/fstab at UUID={}", b.uuid),
        why: format!(
            "the system mounts the spare's /boot from now on (it was {}); the old file is kept as /etc/fstab.luksify-backup",
            b.fstab_spec
        ),
        action: Action::RetargetBoot {
            target_root: TARGET_MOUNT.into(),
            new_uuid: b.uuid.clone(),
            edit,
        },
        expect: vec![],
    });
    v
}

//! The second half, done once the data sits inside the container: make the
//! target system able to unlock itself at boot, then verify that it can.

use super::layout::Layout;
use super::step::{Action, Step};
use crate::boot::preview::Preview;
use crate::probe::Snapshot;
use crate::probe::target::resolve_spec;

pub const TARGET_MOUNT: &str = "/run/luksify/target";

pub fn steps(snap: &Snapshot, l: &Layout, boot: Preview) -> Vec<Step> {
    let t = l.target;
    let (vg, lv) = t.root_lv.split_once('/').unwrap_or((&l.vg, ""));
    let boot_device = t
        .fstab
        .iter()
        .find(|e| e.mount_point == "/boot")
        .and_then(|e| resolve_spec(snap, &e.spec));
    let use_target_generator = match t.initramfs_generator.as_deref() {
        Some("initramfs-tools") => t.has_cryptsetup_initramfs,
        Some("dracut") => true,
        _ => false,
    };
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
    vec![
        Step {
            title: format!("Mount the target system ({}) at {TARGET_MOUNT}", t.root_lv),
            why: "its initramfs and boot configuration are updated from inside".into(),
            action: Action::MountTarget {
                root_device: format!("/dev/{vg}/{lv}"),
                boot_device,
                mount_point: TARGET_MOUNT.into(),
            },
            expect: vec![],
        },
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
    ]
}

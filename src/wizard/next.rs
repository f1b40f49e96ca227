//! The last thing the wizard says: exactly what to do now.

use std::fmt::Write;

use crate::plan::{Action, Plan, Strategy};
use crate::probe::Snapshot;

/// Is `path` on a filesystem that lives in RAM (the live system's own)?
pub fn in_ram(snap: &Snapshot, path: &str) -> bool {
    snap.mounts
        .iter()
        .filter(|m| {
            m.mount_point == "/"
                || path == m.mount_point
                || path.starts_with(&format!("{}/", m.mount_point))
        })
        .max_by_key(|m| m.mount_point.len())
        .is_some_and(|m| {
            matches!(
                m.fstype.as_str(),
                "rootfs" | "tmpfs" | "ramfs" | "overlay" | "squashfs"
            )
        })
}

/// What the unlock prompt at boot will look like: luksify's own hook
/// (initramfs/luksify-unlock) when it added the unlock, else the generator's.
pub fn unlock_prompt(generator: Option<&str>, mapper_name: &str, injected: bool) -> String {
    match generator {
        _ if injected => format!("Passphrase to unlock {mapper_name} (attempt 1 of 3):"),
        // systemd-cryptsetup asks when the image has systemd; dracut's
        // scripted crypt module leaves the prompt to cryptsetup.
        Some("dracut") => format!(
            "Please enter passphrase for disk ... ({mapper_name}):  (or, in an initramfs without systemd, cryptsetup's  Enter passphrase for /dev/...:)"
        ),
        _ => format!("Please unlock disk {mapper_name}:"),
    }
}

/// Whether luksify adds the unlock to the initramfs itself in this plan.
fn injects(p: &Plan) -> bool {
    p.steps.iter().any(|s| {
        matches!(
            s.action,
            Action::Initramfs {
                use_target_generator: false,
                ..
            }
        )
    })
}

pub struct Outcome<'a> {
    pub plan: &'a Plan,
    pub generator: Option<&'a str>,
    pub header_backup: &'a str,
    pub backups_in_ram: bool,
    pub recovery: bool,
}

pub fn text(o: &Outcome) -> String {
    let p = o.plan;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nDone. Volume group {} now lives inside the LUKS container on {} (UUID {}).\n\nWhat to do now:",
        p.vg, p.container, p.luks_uuid
    );
    let dir = std::path::Path::new(o.header_backup)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| ".".into());
    let mut n = 0;
    let mut step = |s: &mut String, text: String| {
        n += 1;
        let _ = writeln!(s, "  {n}. {text}");
    };
    if o.backups_in_ram {
        step(
            &mut s,
            format!(
                "Copy the backups in {dir} (LUKS header {}, VG metadata {}.vg) to a USB stick or another machine NOW: they are in the live system's memory and vanish at reboot.",
                o.header_backup, p.vg
            ),
        );
    } else {
        step(
            &mut s,
            format!(
                "Keep the backups in {dir} (LUKS header {}, VG metadata {}.vg) somewhere safe, away from this machine.",
                o.header_backup, p.vg
            ),
        );
    }
    match p.strategy {
        Strategy::SpareReturn => step(
            &mut s,
            format!(
                "{} is empty again: you may shut down and detach it.",
                p.spare
            ),
        ),
        Strategy::SpareKeep => step(
            &mut s,
            format!(
                "The data now lives on {}, with its own /boot and GRUB: boot from it (detach the original disk, or put {} first in the boot order). {} is no longer used by {}.",
                p.spare, p.spare, p.original_pv, p.vg
            ),
        ),
    }
    step(
        &mut s,
        "Remove the live medium and reboot into the installed system.".into(),
    );
    step(
        &mut s,
        format!(
            "Before root is mounted it asks:  {}  Type the passphrase and Enter (nothing is echoed).",
            unlock_prompt(o.generator, &p.mapper_name, injects(p))
        ),
    );
    if o.recovery {
        step(
            &mut s,
            "If the passphrase is ever lost, the recovery passphrase you wrote down opens the same prompt.".into(),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Choices, plan};

    use crate::wizard::seed_fixture as fixture;

    #[test]
    fn ram_or_disk() {
        let s = fixture();
        assert!(in_ram(&s, "/root/vg0.hdr"));
        assert!(!in_ram(&s, "/mnt/target/boot/vg0.hdr"));
    }

    #[test]
    fn spare_return_says_detach_reboot_prompt_and_backups() {
        let s = fixture();
        let p = plan(
            &s,
            &Choices {
                spare: Some("/dev/vdb".into()),
                strategy: Some(Strategy::SpareReturn),
                header_backup: Some("/root/k/vg0.hdr".into()),
                ..Choices::default()
            },
        )
        .unwrap();
        let t = text(&Outcome {
            plan: &p,
            generator: Some("initramfs-tools"),
            header_backup: "/root/k/vg0.hdr",
            backups_in_ram: true,
            recovery: true,
        });
        assert!(
            t.contains(
                "Copy the backups in /root/k (LUKS header /root/k/vg0.hdr, VG metadata vg0.vg)"
            ),
            "{t}"
        );
        assert!(t.contains("vanish at reboot"), "{t}");
        assert!(
            t.contains("/dev/vdb is empty again: you may shut down and detach it."),
            "{t}"
        );
        // The seed target has no cryptsetup-initramfs: luksify's own hook asks.
        assert!(
            t.contains(&format!(
                "Passphrase to unlock {} (attempt 1 of 3):",
                p.mapper_name
            )),
            "{t}"
        );
        assert!(t.contains("recovery passphrase"), "{t}");
    }

    #[test]
    fn with_cryptsetup_initramfs_the_prompt_is_its_own() {
        let mut s = fixture();
        s.target.as_mut().unwrap().has_cryptsetup_initramfs = true;
        let choices = Choices {
            spare: Some("/dev/vdb".into()),
            strategy: Some(Strategy::SpareReturn),
            header_backup: Some("/root/k/vg0.hdr".into()),
            ..Choices::default()
        };
        let p = plan(&s, &choices).unwrap();
        let t = text(&Outcome {
            plan: &p,
            generator: Some("initramfs-tools"),
            header_backup: "/root/k/vg0.hdr",
            backups_in_ram: true,
            recovery: false,
        });
        assert!(
            t.contains(&format!("Please unlock disk {}:", p.mapper_name)),
            "{t}"
        );
    }

    #[test]
    fn spare_keep_says_boot_from_the_spare() {
        let mut s = fixture();
        // dracut unlocks by itself: its own prompt.
        s.target.as_mut().unwrap().initramfs_generator = Some("dracut".into());
        let p = plan(
            &s,
            &Choices {
                spare: Some("/dev/vdb".into()),
                strategy: Some(Strategy::SpareKeep),
                header_backup: Some("/media/usb/vg0.hdr".into()),
                ..Choices::default()
            },
        )
        .unwrap();
        let t = text(&Outcome {
            plan: &p,
            generator: Some("dracut"),
            header_backup: "/media/usb/vg0.hdr",
            backups_in_ram: false,
            recovery: false,
        });
        assert!(t.contains("boot from it (detach the original disk"), "{t}");
        assert!(t.contains("Keep the backups in /media/usb"), "{t}");
        assert!(t.contains("Please enter passphrase for disk"), "{t}");
        assert!(t.contains("Enter passphrase for /dev/"), "{t}");
        assert!(!t.contains("recovery"), "{t}");
    }
}

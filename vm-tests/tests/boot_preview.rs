//! `plan` shows the bootloader diffs from a snapshot alone: the probe records
//! every look the boot engine takes at the mounted target, and the plan
//! replays them on a shadow. Checked on the VM target's real Debian root
//! (GRUB 2, initramfs-tools, Debian's /etc/default/grub and dpkg lists): the
//! shadow gives exactly the edits and commands the real root gives. No guest.

use std::path::Path;

use luksify::boot::{BootRequest, plan_boot_changes, preview, target_fs};
use luksify::probe::FsAccess;
use luksify::sys::process::Cmd;
use vm_tests::target_disk;

const UUID: &str = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";

fn req(uuid: &str) -> BootRequest {
    BootRequest {
        luks_uuid: uuid.into(),
        mapper_name: format!("luks-{uuid}"),
        vg: target_disk::VG.into(),
        root_lv: "root".into(),
        flavour: None,
        initrd_path: None,
        discard: false,
    }
}

#[test]
fn shadow_of_the_real_target_gives_the_same_boot_changes() {
    let cached = target_disk::root().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // Hard links: nothing here writes to the root's files.
    Cmd::new("cp")
        .arg("-al")
        .arg(&cached)
        .arg(&root)
        .run()
        .unwrap();
    let kver = std::fs::read_dir(root.join("lib/modules"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    // grub-mkconfig writes this inside the guest when the disk is laid out.
    std::fs::write(
        root.join("boot/grub/grub.cfg"),
        format!(
            "set default=\"0\"\nmenuentry 'Debian GNU/Linux' --class debian {{\n\
             \tlinux\t/vmlinuz-{kver} root=/dev/mapper/vg0-root ro console=ttyS0\n\
             \tinitrd\t/initrd.img-{kver}\n}}\n"
        ),
    )
    .unwrap();

    // As the probe does: a placeholder UUID, the looks kept.
    let (_, view) = target_fs::recording(|| {
        plan_boot_changes(&root, &req("00000000-0000-4000-8000-000000000000"))
    });
    assert!(
        view.iter().any(
            |a| matches!(a, FsAccess::Read { path, found: Some(_) } if path == "/etc/default/grub")
        ),
        "{view:#?}"
    );
    // Through the snapshot's JSON, as `probe --json` then `plan --snapshot`.
    let view: Vec<FsAccess> = serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();

    let edits = same_changes(&root, &view, &req(UUID));
    assert_eq!(edits, ["etc/crypttab"]);

    // A generator that needs kernel parameters (dracut's rd.luks.uuid):
    // GRUB's defaults change and grub.cfg is regenerated, on the shadow too.
    let mut dracut = req(UUID);
    dracut.flavour = Some(luksify::boot::Flavour::Dracut);
    let edits = same_changes(&root, &view, &dracut);
    assert!(edits.len() >= 2, "{edits:?}");
}

/// The paths the shadow's changes touch, after checking they are the real root's.
fn same_changes(root: &Path, view: &[FsAccess], req: &BootRequest) -> Vec<String> {
    let real = plan_boot_changes(root, req).unwrap();
    let shown = preview::from_view(view, req, "/run/luksify/target").unwrap();
    assert!(shown.complete);
    let real_edits: Vec<(String, Option<String>, String)> = real
        .edits
        .iter()
        .map(|e| {
            (
                e.path.to_string_lossy().trim_start_matches('/').to_string(),
                e.before
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                String::from_utf8_lossy(&e.after).into_owned(),
            )
        })
        .collect();
    let shown_edits: Vec<(String, Option<String>, String)> = shown
        .edits
        .iter()
        .map(|d| (d.path.clone(), d.before.clone(), d.after.clone()))
        .collect();
    assert_eq!(shown_edits, real_edits);
    let real_commands: Vec<String> = real
        .commands
        .iter()
        .map(|c| c.display(Path::new("/run/luksify/target")))
        .collect();
    assert_eq!(shown.commands, real_commands);
    if shown_edits.iter().any(|e| e.0.contains("grub")) {
        assert!(
            shown.commands.iter().any(|c| c.contains("grub")),
            "GRUB's defaults change but nothing regenerates grub.cfg: {:?}",
            shown.commands
        );
    }
    shown_edits.into_iter().map(|e| e.0).collect()
}

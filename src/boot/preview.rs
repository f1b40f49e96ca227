//! The boot-configuration changes `plan` shows from a snapshot alone.
//!
//! While the probe had the target mounted it recorded every look the boot
//! engine took at it (`TargetOs::boot_view`). Here those looks rebuild a
//! shadow of the target in a private temporary directory — the files read,
//! empty stand-ins for what was only checked or listed — and the same engine
//! runs on it with the real request, so the plan shows the same diffs and
//! commands the runner will compute on the mounted target.

use std::fs;
use std::path::Path;

use super::{BootRefusal, BootRequest, Flavour, crypttab};
use crate::plan::FileDiff;
use crate::probe::FsAccess;

/// What the plan shows for the boot-configuration step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preview {
    pub edits: Vec<FileDiff>,
    /// Commands run in a chroot of the target after the edits, as typed.
    pub commands: Vec<String>,
    /// False when only crypttab could be computed (no boot view recorded).
    pub complete: bool,
}

pub fn planned_edits(
    _snap: &crate::probe::Snapshot,
    l: &crate::plan::layout::Layout,
) -> Result<Preview, BootRefusal> {
    let t = l.target;
    let (vg, lv) = t.root_lv.split_once('/').unwrap_or((&l.vg, ""));
    let mut req = BootRequest {
        luks_uuid: l.luks_uuid.clone(),
        mapper_name: l.mapper_name.clone(),
        vg: vg.into(),
        root_lv: lv.into(),
        flavour: None,
        initrd_path: None,
        discard: false,
    };
    if let Some(view) = &t.boot_view {
        return from_view(view, &req, crate::plan::target_steps::TARGET_MOUNT);
    }
    let flavour = match t.initramfs_generator.as_deref() {
        Some("dracut") => Flavour::Dracut,
        Some("mkinitcpio") => Flavour::MkinitcpioEncrypt,
        Some("nash") => Flavour::Nash,
        _ => Flavour::InitramfsTools,
    };
    req.flavour = Some(flavour);
    Ok(Preview {
        edits: crypttab::edit(&t.crypttab, &req, flavour)?
            .map(|after| FileDiff {
                path: "etc/crypttab".into(),
                before: (!t.crypttab.is_empty()).then(|| t.crypttab.clone()),
                after,
            })
            .into_iter()
            .collect(),
        commands: Vec::new(),
        complete: false,
    })
}

/// Runs the boot engine on a shadow of the target rebuilt from `view`.
pub fn from_view(
    view: &[FsAccess],
    req: &BootRequest,
    mount_point: &str,
) -> Result<Preview, BootRefusal> {
    let shadow = tempfile::Builder::new()
        .prefix("luksify-boot-preview.")
        .tempdir()
        .map_err(|source| BootRefusal::Read {
            path: std::env::temp_dir(),
            source,
        })?;
    build_shadow(shadow.path(), view).map_err(|source| BootRefusal::Read {
        path: shadow.path().to_path_buf(),
        source,
    })?;
    let changes = super::plan_boot_changes(shadow.path(), req)?;
    Ok(Preview {
        edits: changes
            .edits
            .iter()
            .map(|e| FileDiff {
                path: e.path.to_string_lossy().trim_start_matches('/').to_string(),
                before: e
                    .before
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                after: String::from_utf8_lossy(&e.after).into_owned(),
            })
            .collect(),
        commands: changes
            .commands
            .iter()
            .map(|c| c.display(Path::new(mount_point)))
            .collect(),
        complete: true,
    })
}

/// Files read get their content (at the path the target's symlinks led
/// to, with a link from the path asked for); what was found by a check or a
/// listing gets an empty stand-in; what was not found stays absent.
fn build_shadow(root: &Path, view: &[FsAccess]) -> std::io::Result<()> {
    let host = |p: &str| root.join(p.trim_start_matches('/'));
    let parent = |p: &Path| -> std::io::Result<()> {
        match p.parent() {
            Some(d) => fs::create_dir_all(d),
            None => Ok(()),
        }
    };
    for a in view {
        match a {
            FsAccess::Read {
                path,
                found: Some((real, content)),
            } => {
                let h = host(real);
                parent(&h)?;
                fs::write(&h, content)?;
                if real != path && fs::symlink_metadata(host(path)).is_err() {
                    parent(&host(path))?;
                    std::os::unix::fs::symlink(real, host(path))?;
                }
            }
            FsAccess::IsDir { path, yes: true } => fs::create_dir_all(host(path))?,
            FsAccess::List { path, names } if !names.is_empty() => fs::create_dir_all(host(path))?,
            _ => {}
        }
    }
    for a in view {
        let stand_ins: Vec<String> = match a {
            FsAccess::Exists { path, yes: true } => vec![path.clone()],
            FsAccess::List { path, names } => names
                .iter()
                .map(|n| format!("{}/{n}", path.trim_end_matches('/')))
                .collect(),
            _ => continue,
        };
        for p in stand_ins {
            let h = host(&p);
            if fs::symlink_metadata(&h).is_err() {
                parent(&h)?;
                fs::write(&h, b"")?;
            }
        }
    }
    Ok(())
}

//! Boot configuration of the target: kernel command line, GRUB legacy, GRUB 2,
//! BLS entries, systemd-boot, crypttab, fstab. Nothing here writes while
//! planning: [`plan_boot_changes`] reads the target and returns every change
//! as a [`FileEdit`] (shown as a diff) plus the commands to run in a chroot;
//! [`apply_boot_changes`] carries them out.

pub mod bls;
pub mod cli;
pub mod crypttab;
pub mod detect;
pub mod file_edit;
pub mod flavour_params;
pub mod fstab;
pub mod grub2;
pub mod grub_legacy;
pub mod kargs;
pub mod preview;
pub mod systemd_boot;
pub mod target_fs;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use detect::{Bootloader, DetectError, Detected};
pub use file_edit::{Applied, ChangedSincePlanning, FileEdit};
pub use flavour_params::Flavour;
pub use kargs::{Cmdline, InvalidParam};

use crate::sys::process::{Cmd, shell_quote};

/// What the boot configuration must point at after the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRequest {
    /// UUID of the LUKS container holding the PV.
    pub luks_uuid: String,
    /// Device-mapper name the unlocked container gets (`/dev/mapper/NAME`).
    pub mapper_name: String,
    pub vg: String,
    pub root_lv: String,
    /// The initramfs generator; detected from the target when `None`.
    pub flavour: Option<Flavour>,
    /// A new initrd (target path, same directory as the current one) for the
    /// cloned GRUB legacy entry; `None` keeps the entry's initrd.
    pub initrd_path: Option<PathBuf>,
    /// Pass discards (TRIM) through the container; off unless asked, since it
    /// reveals which blocks are free.
    pub discard: bool,
}

/// A program to run inside the target (`chroot ROOT argv...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChrootCommand {
    pub argv: Vec<String>,
    pub why: String,
}

impl ChrootCommand {
    /// The command as typed by a person, for the plan.
    pub fn display(&self, root: &Path) -> String {
        std::iter::once("chroot".to_string())
            .chain(std::iter::once(shell_quote(&root.to_string_lossy())))
            .chain(self.argv.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn to_cmd(&self, root: &Path) -> Cmd {
        Cmd::new("chroot").arg(root).args(&self.argv)
    }
}

/// Everything to change in the target's boot configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootChanges {
    pub detected: Detected,
    pub edits: Vec<FileEdit>,
    /// Run after the edits, in order.
    pub commands: Vec<ChrootCommand>,
    /// What a sysadmin should know: what stays valid, what was left alone.
    pub notes: Vec<String>,
}

impl BootChanges {
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && self.commands.is_empty()
    }

    fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Adds an edit, merging with an earlier edit of the same file (BLS
    /// entries and systemd-boot may both reach /etc/kernel/cmdline).
    fn push_edit(&mut self, e: FileEdit) {
        if let Some(prev) = self.edits.iter_mut().find(|p| p.path == e.path) {
            prev.after = e.after;
            prev.why = format!("{}; {}", prev.why, e.why);
        } else {
            self.edits.push(e);
        }
    }
}

/// Why luksify will not change the boot configuration.
#[derive(Debug, thiserror::Error)]
pub enum BootRefusal {
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("cannot read {path} in the target: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Config { path: PathBuf, problem: String },
    #[error(transparent)]
    Param(#[from] InvalidParam),
    #[error("invalid request: {0}")]
    Request(String),
}

impl BootRefusal {
    fn config(path: impl Into<PathBuf>, problem: impl Into<String>) -> BootRefusal {
        BootRefusal::Config {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

fn validate(req: &BootRequest) -> Result<(), BootRefusal> {
    let u = &req.luks_uuid;
    let uuid_ok = u.len() == 36
        && u.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if !uuid_ok {
        return Err(BootRefusal::Request(format!(
            "{u:?} is not a LUKS UUID (8-4-4-4-12 hex digits, as `cryptsetup luksUUID` prints)"
        )));
    }
    // These end up in crypttab fields, kernel parameters and shell-quoted
    // config values; LVM and dm names never need anything else.
    let name_ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c))
    };
    for (what, v) in [
        ("mapper name", &req.mapper_name),
        ("volume group", &req.vg),
        ("logical volume", &req.root_lv),
    ] {
        if !name_ok(v) {
            return Err(BootRefusal::Request(format!(
                "{what} {v:?} has characters luksify will not put into boot configuration (allowed: letters, digits, + _ . -)"
            )));
        }
    }
    if let Some(p) = &req.initrd_path
        && (!p.is_absolute() || p.file_name().is_none())
    {
        return Err(BootRefusal::Request(format!(
            "initrd path {} must be an absolute path inside the target",
            p.display()
        )));
    }
    Ok(())
}

/// Reads the target mounted at `root` and computes every boot configuration
/// change the request needs. Writes nothing. Running it again after the
/// changes were applied yields no edits and no commands.
pub fn plan_boot_changes(root: &Path, req: &BootRequest) -> Result<BootChanges, BootRefusal> {
    validate(req)?;
    let detected = detect::detect(root, req.flavour)?;
    let flavour = detected.flavour;
    let mut ch = BootChanges {
        notes: detected.evidence.clone(),
        detected: detected.clone(),
        edits: Vec::new(),
        commands: Vec::new(),
    };
    crypttab::plan(root, req, flavour, &mut ch)?;
    match &detected.bootloader {
        Bootloader::GrubLegacy { config } => {
            grub_legacy::plan(root, config, req, flavour, &mut ch)?
        }
        Bootloader::Grub2 { config, bls } => {
            grub2::plan(root, config.as_deref(), *bls, req, flavour, &mut ch)?;
            // After /etc/default/grub: Fedora's grub2-mkconfig rewrites an
            // /etc/kernel/cmdline older than /etc/default/grub, and the one
            // created here should stay exactly as the plan shows it.
            if *bls {
                bls::plan(root, "/boot/loader/entries", req, flavour, &mut ch)?;
            }
        }
        Bootloader::SystemdBoot { esp } => systemd_boot::plan(root, esp, req, flavour, &mut ch)?,
    }
    if let Some(p) = &req.initrd_path
        && !matches!(detected.bootloader, Bootloader::GrubLegacy { .. })
    {
        ch.note(format!(
            "the initrd path {} is only used for a cloned GRUB legacy entry; {} keeps its entries' initrd names, so write the new image under those names",
            p.display(),
            detected.bootloader.name()
        ));
    }
    if flavour == Flavour::Nash {
        ch.note(
            "mkinitrd/nash takes no kernel parameters for this: unlocking and LVM activation are written into the initrd's init script",
        );
    }
    fstab::plan(root, req, &mut ch)?;
    Ok(ch)
}

/// Applies planned changes: every edit (each refuses if its file changed
/// since planning), then the chroot commands. The chroot needs /dev, /proc
/// and /sys mounted inside `root`.
pub fn apply_boot_changes(
    root: &Path,
    ch: &BootChanges,
    mut report: impl FnMut(&str),
) -> anyhow::Result<()> {
    // Refuse before writing anything, so a missing mount never leaves the
    // edits done and grub.cfg stale.
    if !ch.commands.is_empty() && !root.join("proc/self").exists() {
        anyhow::bail!(
            "{}/proc is not mounted, so the target's own tools cannot run in a chroot; mount /dev, /proc and /sys inside {} (mount --rbind) and run again. Nothing was changed",
            root.display(),
            root.display()
        );
    }
    for e in &ch.edits {
        match e.apply(root)? {
            Applied::AlreadyDone => report(&format!("{}: already up to date", e.path.display())),
            Applied::Written { backup: Some(b) } => report(&format!(
                "{}: written (previous content saved as {})",
                e.path.display(),
                b.display()
            )),
            Applied::Written { backup: None } => report(&format!("{}: created", e.path.display())),
        }
    }
    for c in &ch.commands {
        report(&format!("running {}", c.display(root)));
        c.to_cmd(root)
            .run()
            .with_context(|| format!("regenerating boot configuration ({})", c.why))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn req() -> BootRequest {
        BootRequest {
            luks_uuid: "3f5ad593-4546-4a94-a374-bcfb68aa11f7".into(),
            mapper_name: "luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7".into(),
            vg: "vg0".into(),
            root_lv: "root".into(),
            flavour: None,
            initrd_path: None,
            discard: false,
        }
    }

    #[test]
    fn request_validation() {
        assert!(validate(&req()).is_ok());
        let mut r = req();
        r.luks_uuid = "/dev/sda2".into();
        assert!(
            validate(&r)
                .unwrap_err()
                .to_string()
                .contains("not a LUKS UUID")
        );
        let mut r = req();
        r.vg = "vg0 rd.break".into();
        assert!(validate(&r).is_err());
        let mut r = req();
        r.initrd_path = Some("initrd.img".into());
        assert!(validate(&r).is_err());
    }

    #[test]
    fn chroot_command_display() {
        let c = ChrootCommand {
            argv: vec![
                "grub-mkconfig".into(),
                "-o".into(),
                "/boot/grub/grub.cfg".into(),
            ],
            why: "x".into(),
        };
        assert_eq!(
            c.display(Path::new("/mnt/my target")),
            "chroot '/mnt/my target' grub-mkconfig -o /boot/grub/grub.cfg"
        );
    }
}

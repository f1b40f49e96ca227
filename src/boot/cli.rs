//! `luksify boot plan|apply`: the boot configuration step on its own, for a
//! target root that is already mounted (and, for apply, prepared for chroot).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{BootChanges, BootRequest, Flavour, apply_boot_changes, plan_boot_changes};

#[derive(Debug, Clone, clap::Args)]
pub struct BootArgs {
    /// Where the target's root filesystem is mounted (with its /boot, and the ESP if any)
    #[arg(long)]
    pub root: PathBuf,
    /// UUID of the LUKS container (`cryptsetup luksUUID DEVICE`)
    #[arg(long)]
    pub luks_uuid: String,
    /// Volume group holding the root LV
    #[arg(long)]
    pub vg: String,
    /// Root logical volume
    #[arg(long)]
    pub lv: String,
    /// Initramfs generator of the target (detected when omitted)
    #[arg(long, value_enum)]
    pub flavour: Option<Flavour>,
    /// Name of the unlocked container under /dev/mapper [default: luks-UUID]
    #[arg(long)]
    pub mapper_name: Option<String>,
    /// New initrd for the cloned GRUB legacy entry (path inside the target)
    #[arg(long)]
    pub initrd_path: Option<PathBuf>,
    /// Let TRIM through the container (reveals which blocks are unused)
    #[arg(long)]
    pub discard: bool,
    /// Print the plan as JSON instead of diffs
    #[arg(long)]
    pub json: bool,
}

impl BootArgs {
    pub fn request(&self) -> BootRequest {
        BootRequest {
            luks_uuid: self.luks_uuid.clone(),
            mapper_name: self
                .mapper_name
                .clone()
                .unwrap_or_else(|| format!("luks-{}", self.luks_uuid.to_ascii_lowercase())),
            vg: self.vg.clone(),
            root_lv: self.lv.clone(),
            flavour: self.flavour,
            initrd_path: self.initrd_path.clone(),
            discard: self.discard,
        }
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BootCommand {
    /// Show the changes to the target's boot configuration as diffs; writes nothing
    Plan {
        #[command(flatten)]
        args: BootArgs,
    },
    /// Make those changes (backups beside each file), then regenerate in a chroot
    Apply {
        #[command(flatten)]
        args: BootArgs,
    },
}

/// The plan as a sysadmin reads it: what was detected, each diff with its
/// reason, the commands, the notes.
pub fn render(ch: &BootChanges, root: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Target {}: {}, initramfs by {}",
        root.display(),
        ch.detected.bootloader.name(),
        ch.detected.flavour.name()
    );
    if ch.is_empty() {
        s.push_str(
            "\nThe boot configuration already boots the encrypted root: nothing to change.\n",
        );
    }
    for e in &ch.edits {
        let _ = writeln!(s, "\n# {}: {}", e.path.display(), e.why);
        s.push_str(&e.diff());
    }
    if !ch.commands.is_empty() {
        s.push_str("\nThen run:\n");
        for c in &ch.commands {
            let _ = writeln!(s, "  {}    # {}", c.display(root), c.why);
        }
    }
    if !ch.notes.is_empty() {
        s.push_str("\nNotes:\n");
        for n in &ch.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    s
}

pub fn run(cmd: BootCommand) -> anyhow::Result<i32> {
    let (args, apply) = match cmd {
        BootCommand::Plan { args } => (args, false),
        BootCommand::Apply { args } => (args, true),
    };
    let req = args.request();
    let ch = plan_boot_changes(&args.root, &req).with_context(|| {
        format!(
            "planning boot configuration changes for the target at {}",
            args.root.display()
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ch)?);
    } else {
        print!("{}", render(&ch, &args.root));
    }
    if apply {
        apply_boot_changes(&args.root, &ch, |line| eprintln!("{line}"))
            .context("applying boot configuration changes")?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(subcommand)]
        boot: BootCommand,
    }

    #[test]
    fn parses_the_documented_command_line() {
        let t = Top::try_parse_from([
            "boot",
            "plan",
            "--root",
            "/mnt/target",
            "--luks-uuid",
            "3F5AD593-4546-4a94-a374-bcfb68aa11f7",
            "--vg",
            "vg0",
            "--lv",
            "root",
            "--flavour",
            "mkinitcpio-sd-encrypt",
            "--json",
        ])
        .unwrap();
        let BootCommand::Plan { args } = t.boot else {
            panic!("not plan")
        };
        assert!(args.json);
        let r = args.request();
        assert_eq!(r.flavour, Some(Flavour::MkinitcpioSdEncrypt));
        assert_eq!(r.mapper_name, "luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7");
        assert!(Top::try_parse_from(["boot", "apply", "--root", "/x"]).is_err());
    }
}

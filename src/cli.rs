//! Command-line definitions (clap derive). `cargo xtask` renders the man page
//! and shell completions from these.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::{Choices, LuksOptions, LuksVersion, Pbkdf, Strategy};

#[derive(Debug, Parser)]
#[command(
    name = "luksify",
    version,
    about = "Encrypt an existing LVM root with LUKS, without reinstalling",
    long_about = "Encrypt an existing Linux installation whose root lives on LVM, from a live system.\n\n\
luksify moves the volume group onto a LUKS container with pvmove, makes the target's initramfs able \
to unlock it, updates crypttab and the boot configuration, and verifies the result before you reboot. \
Run `luksify plan` first: it shows every step and file change without touching anything.\n\n\
BACK UP YOUR DATA FIRST. luksify refuses anything it cannot do safely, but a disk can fail mid-move."
)]
pub struct Cli {
    /// Print every command luksify runs, before it runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what is on this machine (disks, LVM, LUKS, the target OS). Read-only.
    Probe(ProbeArgs),
    /// Print the complete migration plan, with commands and file diffs, without changing anything.
    Plan(PlanArgs),
    /// Carry out the migration (or resume an interrupted one).
    Migrate(MigrateArgs),
    /// Tell where a migration of this machine stands, from what is on the disks.
    Status(StatusArgs),
    /// Show or apply the boot-configuration changes (crypttab, kernel command line, bootloader) for a target.
    #[command(subcommand)]
    Boot(crate::boot::cli::BootCommand),
    /// Read, change and check initramfs images.
    #[command(subcommand)]
    Initrd(crate::initrd::cli::InitrdCommand),
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Print the snapshot as JSON (usable with `plan --snapshot`).
    #[arg(long)]
    pub json: bool,
    /// Also save every file and command output the probe read to FILE, for test fixtures.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Replay a recording made with --record instead of probing this machine.
    #[arg(long, value_name = "FILE", conflicts_with = "record")]
    pub replay: Option<PathBuf>,
    /// Do not mount logical volumes (read-only) to look for the target system.
    #[arg(long)]
    pub no_target: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub choices: ChoiceArgs,
    /// Plan against a snapshot saved with `luksify probe --json` instead of probing.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub choices: ChoiceArgs,
    /// Do not ask for confirmation. Every required choice must then be given as a flag.
    #[arg(long)]
    pub yes: bool,
    /// Read the passphrase from standard input (one line) instead of prompting.
    #[arg(long, conflicts_with = "key_file")]
    pub passphrase_stdin: bool,
    /// Read the passphrase from FILE (all of its bytes).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Rehearse: ask every question, show the plan, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rehearse against a snapshot saved with `luksify probe --json` (needs --dry-run).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub snapshot: Option<PathBuf>,
    /// Also add a generated recovery passphrase in a second keyslot (shown once, to write down).
    #[arg(long, conflicts_with = "no_recovery_passphrase")]
    pub recovery_passphrase: bool,
    /// Do not offer a recovery passphrase.
    #[arg(long)]
    pub no_recovery_passphrase: bool,
    /// Read speed in MiB/s for the time estimates, instead of measuring it
    /// [with --snapshot: 100, an assumed figure].
    #[arg(long, value_name = "MIB_PER_S")]
    pub read_speed: Option<u32>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// Read a snapshot saved with `luksify probe --json` instead of probing.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
}

/// The person's choices; every one of them can also be answered in the wizard.
#[derive(Debug, Args, Clone)]
pub struct ChoiceArgs {
    /// Volume group to encrypt [default: the one holding the target's root filesystem].
    #[arg(long, value_name = "VG")]
    pub vg: Option<String>,
    /// Spare disk or partition that holds the data during the move.
    #[arg(long, value_name = "DEVICE")]
    pub spare: Option<String>,
    /// spare-return: encrypt the original partition and move the data back (the spare is freed);
    /// spare-keep: encrypt the spare and leave the data there; the spare (a whole disk) also gets
    /// its own /boot and GRUB and boots without the original disk (BIOS, GRUB 2, ext2/3/4 /boot).
    #[arg(long, value_enum)]
    pub strategy: Option<Strategy>,
    /// Cipher for the LUKS container.
    #[arg(long, default_value = "aes-xts-plain64")]
    pub cipher: String,
    /// Key size in bits (512 for aes-xts means AES-256).
    #[arg(long, default_value_t = 512)]
    pub key_size: u32,
    #[arg(long, value_enum, default_value = "luks2")]
    pub luks_version: LuksVersion,
    /// Key derivation function.
    #[arg(long, value_enum, default_value = "argon2id")]
    pub pbkdf: Pbkdf,
    /// Milliseconds the key derivation should take [default: libcryptsetup's, 2000].
    #[arg(long, value_name = "MS")]
    pub iter_time: Option<u32>,
    /// Name of the opened container under /dev/mapper [default: luks-<UUID>].
    #[arg(long, value_name = "NAME")]
    pub mapper_name: Option<String>,
    /// Where to save the LUKS header backup; the VG metadata backup goes beside it.
    /// Must not be on a disk being changed.
    #[arg(long, value_name = "PATH")]
    pub header_backup: Option<String>,
    /// Destroy whatever the spare holds (partition table, filesystem, PV, LUKS).
    #[arg(long)]
    pub wipe_spare: bool,
}

impl ChoiceArgs {
    pub fn to_choices(&self) -> Choices {
        Choices {
            vg: self.vg.clone(),
            spare: self.spare.clone(),
            strategy: self.strategy,
            luks: LuksOptions {
                version: self.luks_version,
                cipher: self.cipher.clone(),
                key_size_bits: self.key_size,
                pbkdf: self.pbkdf,
                iter_time_ms: self.iter_time,
            },
            mapper_name: self.mapper_name.clone(),
            header_backup: self.header_backup.clone(),
            wipe_spare: self.wipe_spare,
        }
    }
}

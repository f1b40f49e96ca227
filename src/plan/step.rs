//! The plan is data: the dry-run renderer prints this value and the runner
//! executes the same value, so the two cannot drift apart.

use serde::{Deserialize, Serialize};

use super::choices::{LuksOptions, Strategy};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub strategy: Strategy,
    pub vg: String,
    /// The PV being encrypted (spare-return) or emptied (spare-keep).
    pub original_pv: String,
    pub spare: String,
    /// The device that becomes the LUKS container.
    pub container: String,
    pub luks_uuid: String,
    pub mapper_name: String,
    /// Where the migration stood when planned; None for a fresh start.
    pub resumed: Option<String>,
    pub steps: Vec<Step>,
    /// Things the person should know that are not steps.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub title: String,
    pub why: String,
    pub action: Action,
    /// What must be true on the disks after the step; checked by re-probing.
    pub expect: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A program run as shown. `stdin` is a non-secret script (sfdisk).
    Command {
        argv: Vec<String>,
        stdin: Option<String>,
    },
    /// pvmove with progress; `source` None resumes interrupted moves.
    PvMove {
        vg: String,
        source: Option<String>,
        dest: Option<String>,
    },
    VgMetadataBackup {
        vg: String,
        path: Option<String>,
    },
    LuksFormat {
        device: String,
        uuid: String,
        options: LuksOptions,
        /// The logical sector size of the data's current home, kept so that
        /// filesystems never see a larger sector than they were made with.
        sector_size: u32,
        label: String,
    },
    LuksHeaderBackup {
        device: String,
        path: Option<String>,
    },
    LuksOpen {
        device: String,
        uuid: String,
        name: String,
    },
    MountTarget {
        root_device: String,
        boot_device: Option<String>,
        mount_point: String,
    },
    Initramfs {
        target_root: String,
        kernels: Vec<String>,
        generator: Option<String>,
        /// The target's own generator already knows cryptsetup: regenerate with it.
        use_target_generator: bool,
        luks_uuid: String,
        mapper_name: String,
        vg: String,
        root_lv: String,
    },
    BootConfig {
        target_root: String,
        luks_uuid: String,
        mapper_name: String,
        vg: String,
        root_lv: String,
        generator: Option<String>,
        /// The edits as computed from the snapshot, shown by dry-run; the
        /// runner recomputes them on the mounted target and says so if they differ.
        edits: Vec<FileDiff>,
        /// Commands run in a chroot of the target after the edits (GRUB's
        /// regeneration), as typed.
        #[serde(default)]
        commands: Vec<String>,
        /// False when the snapshot held only crypttab (replayed, no boot view):
        /// then `edits` is crypttab's change alone.
        #[serde(default)]
        complete: bool,
    },
    /// spare-keep: the new /boot mounted at the target's /boot and, unless
    /// an earlier run finished that, the original /boot's files copied in
    /// (modes, owners, links), the original mounted read-only meanwhile.
    CopyBoot {
        target_root: String,
        /// The original /boot; None once fstab names the new one.
        from_device: Option<String>,
        to_device: String,
        fstype: String,
    },
    /// spare-keep: the /boot line of the target's fstab names the new
    /// filesystem by UUID (a FileEdit: diff, backup, atomic).
    RetargetBoot {
        target_root: String,
        new_uuid: String,
        /// The edit as computed from the snapshot's fstab, shown by dry-run;
        /// None when the snapshot holds no fstab text.
        edit: Option<FileDiff>,
    },
    /// spare-keep: GRUB installed on the spare disk from the target's own
    /// grub-install, and its configuration regenerated on the new /boot.
    GrubInstall {
        target_root: String,
        disk: String,
        boot_uuid: String,
    },
    UnmountTarget {
        mount_point: String,
    },
    Verify {
        target_root: String,
        luks_uuid: String,
        vg: String,
        root_lv: String,
    },
}

/// A file change as the plan shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDiff {
    pub path: String,
    pub before: Option<String>,
    pub after: String,
}

/// A fact about the disks that the runner checks after a step by probing
/// again; never trusting an exit code alone (a bare pvmove exits 0 on an
/// inactive VG having moved nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    PvInVg {
        pv: String,
        vg: String,
    },
    PvNotInVg {
        pv: String,
        vg: String,
    },
    IsPv {
        device: String,
    },
    NotPv {
        device: String,
    },
    PvEmpty {
        pv: String,
    },
    NoPvmove {
        vg: String,
    },
    NoSignature {
        device: String,
    },
    IsLuks {
        device: String,
        uuid: String,
    },
    /// A filesystem (ext2/3/4) with this UUID.
    HasFilesystem {
        device: String,
        uuid: String,
    },
    MappingOpen {
        name: String,
        device: String,
    },
    VgTagged {
        vg: String,
        tag: String,
    },
    VgNotTagged {
        vg: String,
        tag: String,
    },
    AllLvsActive {
        vg: String,
    },
}

//! The real runner: executes each step, then probes the disks again and
//! checks the step's expected facts. Before each disk step it plans afresh and
//! refuses if the disks no longer call for that step.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{checks, dracut_target, inject_target, persist_unlock, pvmove, spare_boot};
use crate::boot;
use crate::plan::{self, Action, Choices, Plan, Step};
use crate::probe::Snapshot;
use crate::probe::collect::collect;
use crate::probe::source::RealSource;
use crate::sys::process::Cmd;
use crate::sys::secret::Passphrase;
use crate::sys::{atomic_file, luks};

pub struct Runner {
    first: Snapshot,
    choices: Choices,
    passphrase: Option<Passphrase>,
    /// A second passphrase for its own keyslot, written with the first.
    recovery: Option<Passphrase>,
}

impl Runner {
    pub fn new(first: Snapshot, choices: Choices, passphrase: Option<Passphrase>) -> Self {
        Runner {
            first,
            choices,
            passphrase,
            recovery: None,
        }
    }

    /// Adds `recovery` as a second keyslot when the container is formatted.
    pub fn with_recovery(mut self, recovery: Option<Passphrase>) -> Self {
        self.recovery = recovery;
        self
    }

    /// The disks as they are now; the target part does not change while
    /// extents move, so it is taken from the first probe.
    fn reprobe(&self) -> Result<Snapshot> {
        let mut s = collect(&mut RealSource, false).context("probing the disks again")?;
        s.target = self.first.target.clone();
        Ok(s)
    }

    /// Refuses, before the first write, a plan with a step this build cannot carry out.
    pub fn check_supported(plan: &Plan) -> Result<()> {
        for s in &plan.steps {
            if let Action::Initramfs { kernels, .. } = &s.action
                && kernels.is_empty()
            {
                bail!(
                    "the target has no kernel with both /boot/vmlinuz-VERSION and /lib/modules/VERSION, so luksify cannot tell which initramfs must unlock the root. Nothing was changed"
                );
            }
        }
        Ok(())
    }
}

impl super::Executor for Runner {
    fn execute(&mut self, plan: &Plan) -> Result<()> {
        let total = plan.steps.len();
        let started = std::time::Instant::now();
        for (i, step) in plan.steps.iter().enumerate() {
            println!(
                "[{}/{total}] {}   (elapsed {})",
                i + 1,
                step.title,
                elapsed(started.elapsed())
            );
            if changes_disks(&step.action) && i > 0 {
                self.precondition(step)?;
            }
            self.run_step(step)
                .with_context(|| {
                    format!(
                        "step {} of {total} ({}) failed; nothing further was done. Fix the cause, then run `luksify migrate` again with the same choices: it resumes from what is on the disks",
                        i + 1,
                        step.title
                    )
                })?;
            if !step.expect.is_empty() {
                let now = self.reprobe()?;
                let unmet = checks::unmet(&now, &step.expect);
                if !unmet.is_empty() {
                    bail!(
                        "step {} of {total} ({}) ran but the disks do not show its result: {}. Nothing further was done; run `luksify status`, then `luksify plan` with the same choices to see what remains",
                        i + 1,
                        step.title,
                        unmet.join("; ")
                    );
                }
            }
        }
        println!("All {total} steps done in {}.", elapsed(started.elapsed()));
        Ok(())
    }
}

/// `1:02:03` / `2:03`: readable on a serial console, no unicode.
pub fn elapsed(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Runner {
    fn precondition(&self, step: &Step) -> Result<()> {
        let now = self.reprobe()?;
        let fresh = plan::plan(&now, &self.choices).map_err(|r| {
            anyhow::anyhow!("the disks changed while migrating and luksify now refuses: {r}")
        })?;
        match fresh.steps.iter().find(|s| changes_disks(&s.action)) {
            Some(next) if next.action == step.action => Ok(()),
            Some(next) => bail!(
                "the disks no longer call for `{}` (planning now says `{}` comes next); stopping before changing anything else. Run `luksify plan` with the same choices to see the remaining steps, then `luksify migrate` to carry them out",
                step.title,
                next.title
            ),
            None => bail!("planning now finds nothing left to do; stopping"),
        }
    }

    fn passphrase(&self) -> Result<&Passphrase> {
        self.passphrase
            .as_ref()
            .context("this step needs the passphrase, but none was read")
    }

    fn run_step(&self, step: &Step) -> Result<()> {
        match &step.action {
            Action::Command { argv, stdin } => {
                let mut c = lvm_env(Cmd::new(&argv[0]).args(&argv[1..]));
                if let Some(s) = stdin {
                    c = c.stdin_bytes(s.clone().into_bytes());
                }
                c.run()?;
            }
            Action::PvMove { source, dest, .. } => pvmove::run(source.as_deref(), dest.as_deref())?,
            Action::VgMetadataBackup { vg, path } => {
                let path = path
                    .as_deref()
                    .context("no path for the VG metadata backup")?;
                lvm_env(Cmd::new("lvm").args(["vgcfgbackup", "-f", path, vg])).run()?;
                atomic_file::sync_dir(Path::new(path).parent().unwrap_or(Path::new(".")))?;
            }
            Action::LuksFormat {
                device,
                uuid,
                options,
                sector_size,
                label,
            } => {
                let recovery_slot = luks::format(
                    &luks::FormatSpec {
                        device: Path::new(device),
                        uuid,
                        options,
                        sector_size: *sector_size,
                        label,
                    },
                    self.passphrase()?,
                    self.recovery.as_ref(),
                )?;
                if let Some(slot) = recovery_slot {
                    println!("  recovery passphrase added in keyslot {slot}");
                }
            }
            Action::LuksHeaderBackup { device, path } => {
                let path = path
                    .as_deref()
                    .context("no path for the LUKS header backup")?;
                luks::header_backup(Path::new(device), Path::new(path))?;
            }
            Action::LuksOpen { device, name, .. } => {
                luks::open(Path::new(device), name, self.passphrase()?)?
            }
            Action::MountTarget {
                root_device,
                boot_device,
                mount_point,
            } => mount_target(root_device, boot_device.as_deref(), mount_point)?,
            Action::Initramfs {
                target_root,
                kernels,
                generator,
                use_target_generator,
                luks_uuid,
                mapper_name,
                vg,
                root_lv,
            } => {
                if !use_target_generator {
                    let u = inject_target::Unlock {
                        luks_uuid,
                        mapper_name: Some(mapper_name),
                        vg,
                        root_lv,
                        cipher: &self.choices.luks.cipher,
                    };
                    return inject_all(Path::new(target_root), generator.as_deref(), kernels, &u);
                }
                match generator.as_deref() {
                    Some("dracut") => {
                        let root = Path::new(target_root);
                        dracut_target::install_conf(root)?;
                        println!("  wrote {}", dracut_target::CONF_PATH);
                        dracut_target::rebuild(root, kernels, |image| {
                            println!("  {image}: rebuilt by the target's dracut")
                        })?;
                    }
                    _ => {
                        Cmd::new("chroot")
                            .args([target_root.as_str(), "update-initramfs", "-u", "-k", "all"])
                            .run()?;
                    }
                }
            }
            Action::BootConfig {
                target_root,
                luks_uuid,
                mapper_name,
                vg,
                root_lv,
                edits: planned,
                complete,
                ..
            } => {
                let root = Path::new(target_root);
                let req = boot::BootRequest {
                    luks_uuid: luks_uuid.clone(),
                    mapper_name: mapper_name.clone(),
                    vg: vg.clone(),
                    root_lv: root_lv.clone(),
                    flavour: None,
                    initrd_path: None,
                    discard: false,
                };
                let changes = boot::plan_boot_changes(root, &req)?;
                if *complete {
                    let differ = super::boot_drift::differences(planned, &changes.edits);
                    if !differ.is_empty() {
                        println!(
                            "  NOTE: the mounted target needs other boot changes than the plan showed ({}); these are the ones applied:",
                            differ.join(", ")
                        );
                    }
                }
                for e in &changes.edits {
                    print!("{}", e.diff());
                }
                boot::apply_boot_changes(root, &changes, |m| println!("  {m}"))?;
            }
            Action::Verify {
                target_root,
                luks_uuid,
                vg,
                root_lv,
            } => verify(
                Path::new(target_root),
                &inject_target::Unlock {
                    luks_uuid,
                    mapper_name: None,
                    vg,
                    root_lv,
                    cipher: &self.choices.luks.cipher,
                },
            )?,
            Action::CopyBoot {
                target_root,
                from_device,
                to_device,
                fstype,
            } => spare_boot::copy_boot(target_root, from_device.as_deref(), to_device, fstype)?,
            Action::RetargetBoot {
                target_root,
                new_uuid,
                ..
            } => spare_boot::retarget_fstab(target_root, new_uuid)?,
            Action::GrubInstall {
                target_root,
                disk,
                boot_uuid,
            } => spare_boot::grub_install(target_root, disk, boot_uuid)?,
            Action::UnmountTarget { mount_point } => super::mounts::unmount_tree(mount_point)?,
        }
        Ok(())
    }
}

/// The target's generator cannot unlock LUKS: luksify's engine adds the
/// unlock to each kernel's image, after checking that it can for all of them.
fn inject_all(
    root: &Path,
    generator: Option<&str>,
    kernels: &[String],
    u: &inject_target::Unlock,
) -> Result<()> {
    let images = inject_target::preflight(root, generator, kernels)?;
    for (k, image) in &images {
        let shown = Path::new("/").join(image.strip_prefix(root).unwrap_or(image));
        match inject_target::inject_image(root, image, k, u)? {
            inject_target::Outcome::AlreadyUnlocks => {
                println!(
                    "  {}: already unlocks this container; left as is",
                    shown.display()
                )
            }
            inject_target::Outcome::Injected { added, backup } => println!(
                "  {}: added cryptsetup, the dm-crypt modules and the unlock hook ({added} files); the original is kept as {}",
                shown.display(),
                Path::new("/")
                    .join(backup.strip_prefix(root).unwrap_or(&backup))
                    .display()
            ),
        }
    }
    if generator == Some("initramfs-tools")
        && let Some((_, first)) = images.first()
    {
        let conf = inject_target::unlock_conf_of(first)?
            .context("the new initramfs holds no unlock configuration")?;
        for path in persist_unlock::install(root, &conf)? {
            println!("  wrote {path}");
        }
        println!(
            "  the target's own update-initramfs (a kernel update) now adds the same unlock to every image it builds"
        );
    }
    Ok(())
}

/// Steps that change LVM or LUKS state, whose preconditions are re-checked.
fn changes_disks(a: &Action) -> bool {
    matches!(
        a,
        Action::Command { .. }
            | Action::PvMove { .. }
            | Action::LuksFormat { .. }
            | Action::LuksOpen { .. }
    )
}

pub(super) fn lvm_env(c: Cmd) -> Cmd {
    // lvm complains about every inherited file descriptor otherwise.
    c.env("LVM_SUPPRESS_FD_WARNINGS", "1")
}

fn mount_target(root: &str, boot: Option<&str>, mp: &str) -> Result<()> {
    std::fs::create_dir_all(mp).with_context(|| format!("creating {mp}"))?;
    // Each mount on its own: an earlier run may have stopped half-way, and
    // edits must never land in the root filesystem's empty /boot.
    let mounted = spare_boot::is_mounted;
    if !mounted(mp) {
        Cmd::new("mount").args([root, mp]).run()?;
    }
    if let Some(b) = boot {
        let point = format!("{mp}/boot");
        if !mounted(&point) {
            Cmd::new("mount").args([b, &point]).run()?;
        }
    }
    for fs in ["dev", "proc", "sys", "run"] {
        let point = format!("{mp}/{fs}");
        if !mounted(&point) {
            Cmd::new("mount")
                .args(["--bind", &format!("/{fs}"), &point])
                .run()?;
        }
    }
    Ok(())
}

fn verify(root: &Path, u: &inject_target::Unlock) -> Result<()> {
    let luks_uuid = u.luks_uuid;
    let crypttab = std::fs::read_to_string(root.join("etc/crypttab")).unwrap_or_default();
    if !crypttab.contains(&format!("UUID={luks_uuid}")) {
        bail!("the target's /etc/crypttab does not name UUID={luks_uuid}");
    }
    let mut kernels: Vec<String> = std::fs::read_dir(root.join("boot"))
        .context("listing the target's /boot")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("vmlinuz-")
                .map(String::from)
        })
        .collect();
    kernels.sort();
    if kernels.is_empty() {
        bail!("the target's /boot holds no kernel (vmlinuz-*)");
    }
    for k in &kernels {
        // Debian's, dracut's and old Red Hat mkinitrd's names.
        let image = inject_target::image_names(None, k)
            .into_iter()
            .find(|img| root.join(img.trim_start_matches('/')).exists())
            .with_context(|| format!("kernel {k} has no initramfs in the target's /boot"))?;
        let host = root.join(image.trim_start_matches('/'));
        let img = crate::initrd::Image::open(&host)?;
        let ours = inject_target::carries_luksify_unlock(&img);
        let exists = |p: &str| boot::target_fs::exists(root, p);
        if ours && !has_lister(exists) {
            // mkinitrd/nash ships no lister; luksify's engine reads the image.
            println!(
                "  {image}: the target has no lsinitramfs or lsinitrd to list it; luksify's own reader checks it"
            );
        } else {
            let lister = lister_for(&image, exists);
            let listing = Cmd::new("chroot")
                .arg(root)
                .args([lister, image.as_str()])
                .run()
                .with_context(|| format!("listing {image} with the target's own {lister}"))?
                .stdout_str();
            let builtin =
                std::fs::read_to_string(root.join(format!("lib/modules/{k}/modules.builtin")))
                    .unwrap_or_default()
                    .contains("/dm-crypt.ko");
            let missing = missing_for_unlock(&listing, builtin);
            if !missing.is_empty() {
                bail!(
                    "{image} cannot unlock the root: it lacks {}. Do not reboot; run `luksify migrate` again once this is fixed",
                    missing.join(", ")
                );
            }
            println!("  {image}: has cryptsetup, a crypttab and the dm-crypt module");
        }
        // luksify's own unlock: its engine checks every piece of it too.
        if ours {
            let v = inject_target::verdict(&img, u)?;
            if !v.ok() {
                bail!(
                    "{image} cannot unlock the root: {}. Do not reboot; run `luksify migrate` again once this is fixed",
                    v.to_text().trim_end()
                );
            }
            println!("  {image}: `luksify initrd verify` passes");
        }
    }
    Ok(())
}

const LISTERS: [&str; 2] = ["lsinitramfs", "lsinitrd"];
const LISTER_DIRS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

/// Whether the target has a program that lists initramfs images.
fn has_lister(exists: impl Fn(&str) -> bool) -> bool {
    LISTERS
        .iter()
        .any(|l| LISTER_DIRS.iter().any(|d| exists(&format!("{d}/{l}"))))
}

/// The target's own lister for `image`: initramfs-tools' lsinitramfs for
/// Debian's name, dracut's lsinitrd for Red Hat's, and whichever the target
/// has otherwise (Debian's dracut writes Debian's name and has only lsinitrd).
fn lister_for(image: &str, exists: impl Fn(&str) -> bool) -> &'static str {
    let has = |name: &str| {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .any(|d| exists(&format!("{d}/{name}")))
    };
    let (preferred, other) = if image.contains("/initrd.img-") {
        ("lsinitramfs", "lsinitrd")
    } else {
        ("lsinitrd", "lsinitramfs")
    };
    if !has(preferred) && has(other) {
        other
    } else {
        preferred
    }
}

/// What an initramfs listing lacks to unlock LUKS at boot.
pub fn missing_for_unlock(listing: &str, dm_crypt_builtin: bool) -> Vec<&'static str> {
    let has = |suffix: &str| listing.lines().any(|l| l.trim_end().ends_with(suffix));
    let mut missing = Vec::new();
    if !has("sbin/cryptsetup") {
        missing.push("cryptsetup");
    }
    if !(has("cryptroot/crypttab") || has("etc/crypttab")) {
        missing.push("a crypttab");
    }
    if !(dm_crypt_builtin || has("dm-crypt.ko") || has("dm-crypt.ko.xz") || has("dm-crypt.ko.zst"))
    {
        missing.push("the dm-crypt module");
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lister_is_the_one_the_target_has() {
        let deb = "/boot/initrd.img-6.1.0-28-amd64";
        let rh = "/boot/initramfs-6.1.0-28-amd64.img";
        let itools = |p: &str| p == "/usr/bin/lsinitramfs";
        let dracut = |p: &str| p == "/usr/bin/lsinitrd";
        assert_eq!(lister_for(deb, itools), "lsinitramfs");
        // Debian's dracut: Debian's name, dracut's lister.
        assert_eq!(lister_for(deb, dracut), "lsinitrd");
        assert_eq!(lister_for(rh, dracut), "lsinitrd");
        assert_eq!(lister_for(rh, itools), "lsinitramfs");
        // Neither found: the name's own lister, whose failure says which.
        assert_eq!(lister_for(deb, |_| false), "lsinitramfs");
        assert!(has_lister(itools) && has_lister(dracut));
        // CentOS 5's mkinitrd/nash has none.
        assert!(!has_lister(
            |p: &str| p == "/sbin/nash" || p == "/sbin/mkinitrd"
        ));
    }

    #[test]
    fn unlock_needs_cryptsetup_crypttab_and_dm_crypt() {
        let debian = "usr/sbin/cryptsetup\ncryptroot/crypttab\nusr/lib/modules/6.1.0-28-amd64/kernel/drivers/md/dm-crypt.ko\n";
        assert!(missing_for_unlock(debian, false).is_empty());
        assert_eq!(
            missing_for_unlock("sbin/cryptsetup\netc/crypttab\n", true),
            Vec::<&str>::new()
        );
        assert_eq!(
            missing_for_unlock("usr/sbin/lvm\n", false),
            ["cryptsetup", "a crypttab", "the dm-crypt module"]
        );
    }

    #[test]
    fn elapsed_reads_on_a_serial_console() {
        use std::time::Duration;
        assert_eq!(elapsed(Duration::from_secs(7)), "0:07");
        assert_eq!(elapsed(Duration::from_secs(3723)), "1:02:03");
    }
}

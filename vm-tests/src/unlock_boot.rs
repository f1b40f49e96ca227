//! The proof a migration worked: the target disk boots alone through its own
//! GRUB, asks for the passphrase, unlocks, and the target's boot-check
//! (`target_disk/boot-check.sh`) finds the file tree intact, root on the
//! LUKS container and swap working.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::console::Console;
use crate::qemu::{Guest, GuestBuilder};
use crate::target_disk::TargetDisk;

/// initramfs-tools' cryptroot prompt, as the target prints it.
pub const UNLOCK_PROMPT: &str = "Please unlock disk [^:]+: ";

/// The prompt of luksify's own unlock (initramfs/luksify-unlock) at `attempt`.
pub fn luksify_prompt(attempt: u32) -> String {
    format!(r"Passphrase to unlock \S+ \(attempt {attempt} of 3\): ")
}

/// At luksify's unlock prompt: a wrong passphrase first, which must be
/// refused, then `passphrase` at the second attempt.
pub fn refused_then_unlocked(c: &mut Console, passphrase: &str) -> Result<()> {
    c.send_secret_after(
        &luksify_prompt(1),
        b"not-the-passphrase",
        Duration::from_secs(300),
    )?;
    c.wait_for(
        "luksify: that passphrase did not unlock",
        Duration::from_secs(120),
    )?;
    c.send_secret_after(
        &luksify_prompt(2),
        passphrase.as_bytes(),
        Duration::from_secs(60),
    )?;
    Ok(())
}

/// Boots `target` (SeaBIOS → GRUB → kernel → initramfs), alone or with a
/// second disk attached. After spare-keep the spare is the disk to boot: it
/// carries the data, its own /boot and GRUB.
pub fn boot_target(name: &str, target: &Path, spare: Option<&Path>) -> Result<Guest> {
    let mut b = GuestBuilder::new(name).disk_with_serial(target, "target");
    if let Some(s) = spare {
        b = b.disk_with_serial(s, "spare");
    }
    b.start()
}

/// Boots `target`, types `passphrase` at the unlock prompt and returns
/// boot-check's report once the guest powered itself off.
pub fn boot_and_unlock(name: &str, target: &Path, passphrase: &str) -> Result<BootCheck> {
    let mut g = boot_target(name, target, None)?;
    g.console().send_secret_after(
        UNLOCK_PROMPT,
        passphrase.as_bytes(),
        Duration::from_secs(300),
    )?;
    let report = wait_report(&mut g)?;
    Ok(report)
}

/// Waits for boot-check's report and for the guest to power off.
pub fn wait_report(g: &mut Guest) -> Result<BootCheck> {
    let m = g
        .console()
        .wait_for("BOOTCHECK: end", Duration::from_secs(300))?;
    let text = String::from_utf8_lossy(&m.before).replace('\r', "");
    g.wait_exit(Duration::from_secs(60))?;
    Ok(BootCheck { text })
}

/// What boot-check printed.
#[derive(Debug, Clone)]
pub struct BootCheck {
    pub text: String,
}

impl BootCheck {
    pub fn from_text(text: &str) -> Self {
        BootCheck {
            text: text.replace('\r', ""),
        }
    }

    /// Every property of a migrated seed target: root is vg0-root, the known
    /// tree's sums match, swap works, and vg0 sits in the dm-crypt container
    /// `luks-<luks_uuid>` (any `luks-*` container when not given). The error
    /// lists what failed, with the report.
    pub fn verify_migrated(&self, luks_uuid: Option<&str>) -> Result<()> {
        let t = &self.text;
        let mut failed = self.target_failures();
        let dm = format!("BOOTCHECK-DM: luks-{}", luks_uuid.unwrap_or(""));
        if !t.lines().any(|l| {
            l.starts_with(&dm)
                && (luks_uuid.is_none() || l[dm.len()..].starts_with(": "))
                && l.contains(" crypt aes-xts-plain64 ")
        }) {
            failed.push(format!(
                "no dm-crypt mapping luks-{}",
                luks_uuid.unwrap_or("*")
            ));
        }
        if !t
            .lines()
            .any(|l| l.starts_with("BOOTCHECK-LSBLK: ") && l.contains(" crypt"))
        {
            failed.push("lsblk shows no crypt device".into());
        }
        if !failed.is_empty() {
            bail!(
                "the migrated target booted, but {}:\n{t}",
                failed.join("; ")
            );
        }
        Ok(())
    }

    /// The target as built, before any migration: root vg0-root, the known
    /// tree's sums, swap, and no dm-crypt anywhere.
    pub fn verify_unencrypted(&self) -> Result<()> {
        let mut failed = self.target_failures();
        if self.text.contains(" crypt ") {
            failed.push("a dm-crypt device is active".into());
        }
        if !failed.is_empty() {
            bail!(
                "the unencrypted target booted, but {}:\n{}",
                failed.join("; "),
                self.text
            );
        }
        Ok(())
    }

    /// What is true of every target boot, encrypted or not, that failed.
    fn target_failures(&self) -> Vec<String> {
        let t = &self.text;
        let mut failed = Vec::new();
        if !t.contains("BOOTCHECK: root /dev/mapper/vg0-root") {
            failed.push("root is not /dev/mapper/vg0-root".to_string());
        }
        if !t.contains("BOOTCHECK: sums ok") {
            failed.push("the known file tree's sha256 sums do not match".into());
        }
        if !t.contains("BOOTCHECK: swap /dev/") {
            failed.push("swap did not come on".into());
        }
        failed
    }
}

/// Boots a private copy of `disk` as built (no migration) through its GRUB
/// and returns boot-check's report, which must come `within` the limit.
pub fn boot_unencrypted(name: &str, disk: &TargetDisk, within: Duration) -> Result<BootCheck> {
    let dir = tempfile::tempdir()?;
    let img = dir.path().join("target.img");
    disk.copy_to(&img)?;
    let mut g = boot_target(name, &img, None)?;
    let m = g.console().wait_for("BOOTCHECK: end", within)?;
    let text = String::from_utf8_lossy(&m.before).replace('\r', "");
    g.wait_exit(Duration::from_secs(60))?;
    Ok(BootCheck { text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_report_passes_and_a_plain_root_fails() {
        let good = "BOOTCHECK: start\nBOOTCHECK: root /dev/mapper/vg0-root\nBOOTCHECK: sums ok\n\
                    BOOTCHECK-DM: luks-abc: 0 100 crypt aes-xts-plain64 :64:logon:x 0 252:2 4096\n\
                    BOOTCHECK-LSBLK: `-luks-abc crypt\nBOOTCHECK: swap /dev/dm-3 partition 65532 0 -2\n";
        BootCheck::from_text(good)
            .verify_migrated(Some("abc"))
            .unwrap();
        BootCheck::from_text(good).verify_migrated(None).unwrap();
        let err = BootCheck::from_text(good)
            .verify_migrated(Some("other"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no dm-crypt mapping luks-other"), "{err}");
        let plain = "BOOTCHECK: root /dev/mapper/vg0-root\nBOOTCHECK: sums ok\nBOOTCHECK: swap /dev/dm-1 x\n";
        let err = BootCheck::from_text(plain)
            .verify_migrated(None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lsblk shows no crypt device"), "{err}");
        assert!(err.contains("no dm-crypt mapping luks-*"), "{err}");
        BootCheck::from_text(plain).verify_unencrypted().unwrap();
        let err = BootCheck::from_text(good)
            .verify_unencrypted()
            .unwrap_err()
            .to_string();
        assert!(err.contains("a dm-crypt device is active"), "{err}");
    }
}

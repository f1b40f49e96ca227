//! Helpers of the migration scenarios.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use vm_tests::console::Console;
use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, LiveEnv, PROMPT};
use vm_tests::luksify_bin;
use vm_tests::qemu::{Guest, GuestBuilder};
use vm_tests::target_disk::{self, TargetDisk};

/// Booting the live guest to its shell.
const BOOT: Duration = Duration::from_secs(120);

/// Stores `secret` in the guest file `path` by typing it on the console
/// (echo is off), so it appears in no command line and no console log.
pub fn store_secret(c: &mut Console, path: &str, secret: &str, timeout: Duration) {
    c.send_line(&format!(
        "printf '@@%s@@\\n' SECRET-PROMPT; head -n 1 > '{path}'; printf '@@%s@@\\n' \"SECRET-STORED:$?\""
    ))
    .unwrap();
    c.send_secret_after("@@SECRET-PROMPT@@\r?\n", secret.as_bytes(), timeout)
        .unwrap();
    c.wait_for("@@SECRET-STORED:0@@", timeout).unwrap();
}

/// What a migration scenario starts from: the live environment with a fresh
/// release luksify, a private copy of the cached seed target disk and an
/// empty sparse spare.
pub struct Scenario {
    pub disk: TargetDisk,
    pub live: LiveEnv,
    pub target: PathBuf,
    pub spare: PathBuf,
    // Holds the disk images; removed on drop.
    _dir: tempfile::TempDir,
}

impl Scenario {
    /// `spare_mib`: the spare's size given the target's root LV size in MiB.
    pub fn new(spare_mib: impl FnOnce(u64) -> u64) -> Scenario {
        Scenario::of_variant(target_disk::Variant::WithCryptsetupInitramfs, spare_mib)
    }

    /// [`Scenario::new`] on the target disk of another [`target_disk::Variant`].
    pub fn of_variant(
        variant: target_disk::Variant,
        spare_mib: impl FnOnce(u64) -> u64,
    ) -> Scenario {
        let kernel = GuestKernel::debian_current().unwrap();
        let disk = target_disk::build_variant(&kernel, variant).unwrap();
        let luksify = luksify_bin::release().unwrap();
        let live = live_env::build(&kernel, &[luksify]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.img");
        let spare = dir.path().join("spare.img");
        disk.copy_to(&target).unwrap();
        disk::create_sparse(&spare, spare_mib(disk.root_mib) * MIB).unwrap();
        Scenario {
            disk,
            live,
            target,
            spare,
            _dir: dir,
        }
    }

    /// Boots the live guest with the target and the spare attached, up to
    /// its shell with the marker protocol on.
    pub fn boot_live(&self, name: &str) -> Guest {
        let mut g = GuestBuilder::new(name)
            .kernel(&self.live.kernel)
            .initrd(&self.live.initrd)
            .append(&self.live.append)
            .disk_with_serial(&self.target, "target")
            .disk_with_serial(&self.spare, "spare")
            .start()
            .unwrap();
        let c = g.console();
        c.wait_for("luksify-live: ready", BOOT).unwrap();
        c.init_shell(PROMPT, BOOT).unwrap();
        g
    }
}

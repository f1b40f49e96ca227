//! Helpers of the migration scenarios.
#![allow(dead_code)]

pub mod spare_keep;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vm_tests::console::Console;
use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::kernel_update::{self, SecondKernel};
use vm_tests::live_env::{self, LiveEnv, PROMPT};
use vm_tests::luksify_bin;
use vm_tests::qemu::{Guest, GuestBuilder};
use vm_tests::target_disk::{self, TargetDisk};
use vm_tests::unlock_boot::BootCheck;

use crate::common::{PASSPHRASE, sh};

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
    /// The kernel of the live guest and of the target disk.
    pub kernel: GuestKernel,
    pub variant: target_disk::Variant,
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
            kernel,
            variant,
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

/// What unlocks the target's root at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlock {
    /// luksify's injected unlock, kept by its initramfs-tools hook.
    Luksify,
    /// The target's cryptsetup-initramfs, from the crypttab luksify wrote.
    CryptsetupInitramfs,
    /// The target's dracut, from luksify's /etc/dracut.conf.d/90-luksify.conf
    /// (crypt and lvm modules, crypttab) and GRUB's rd.luks.uuid.
    Dracut,
}

impl Unlock {
    /// The line the target's generator prints when the kernel's postinst
    /// (/etc/kernel/postinst.d) has it build the new kernel's image.
    fn generating(self, release: &str) -> String {
        match self {
            Unlock::Luksify | Unlock::CryptsetupInitramfs => {
                format!("update-initramfs: Generating /boot/initrd.img-{release}")
            }
            Unlock::Dracut => format!("dracut: Generating /boot/initrd.img-{release}"),
        }
    }
}

/// Issue 6 item 4, a kernel update after the migration: a live guest
/// unlocks the migrated `target`, mounts it and installs `second` with the
/// target's own dpkg in a chroot. Its postinst runs the target's
/// update-initramfs (whatever unlock the target is configured for must land
/// in the new image: checked per `unlock`) and update-grub, whose
/// default entry must be the new kernel.
pub fn update_kernel(
    name: &str,
    live: &LiveEnv,
    target: &Path,
    uuid: &str,
    second: &SecondKernel,
    unlock: Unlock,
) {
    let t = Instant::now();
    let mut g = GuestBuilder::new(name)
        .kernel(&live.kernel)
        .initrd(&live.initrd)
        .append(&live.append)
        .disk_with_serial(target, "target")
        .disk_snapshot(&second.disk, "kernel")
        .start()
        .unwrap();
    let c = g.console();
    c.wait_for("luksify-live: ready", BOOT).unwrap();
    c.init_shell(PROMPT, BOOT).unwrap();
    store_secret(c, "/root/pass", PASSPHRASE, BOOT);
    sh(
        c,
        &format!("cryptsetup open /dev/vda2 luks-{uuid} < /root/pass && rm /root/pass"),
    );
    sh(c, "vgchange -ay vg0");
    sh(
        c,
        "mkdir -p /t && mount /dev/vg0/root /t && mount /dev/vda1 /t/boot && \
         for f in dev proc sys run; do mount --bind /$f /t/$f; done",
    );
    let rel = &second.release;
    let out =
        kernel_update::install(c, second, "/t", "/dev/vdb", Duration::from_secs(1200)).unwrap();
    let dpkg = &out.text;
    eprintln!("dpkg -i {} ({:.1?}):\n{dpkg}", second.deb_name, t.elapsed());
    assert_eq!(out.code, 0, "installing the second kernel failed:\n{dpkg}");
    // Its postinst ran the target's generators (/etc/kernel/postinst.d).
    assert!(dpkg.contains(&unlock.generating(rel)), "{dpkg}");
    assert!(
        dpkg.contains("Generating grub configuration file"),
        "{dpkg}"
    );
    match unlock {
        Unlock::Luksify => {
            let verify = sh(
                c,
                &format!(
                    "luksify initrd verify /t/boot/initrd.img-{rel} --luks-uuid {uuid} --vg vg0"
                ),
            );
            assert!(verify.contains("can unlock LUKS UUID"), "{verify}");
        }
        Unlock::CryptsetupInitramfs => {
            // `initrd verify` knows luksify's unlock only; the target's
            // lsinitramfs shows cryptsetup-initramfs's pieces are in.
            let list = sh(c, &format!("chroot /t lsinitramfs /boot/initrd.img-{rel}"));
            for part in [
                "cryptroot/crypttab",
                "scripts/local-top/cryptroot",
                "sbin/cryptsetup",
            ] {
                assert!(
                    list.lines().any(|l| l.ends_with(part)),
                    "no {part} in the new image:\n{list}"
                );
            }
        }
        Unlock::Dracut => {
            // The target's lsinitrd: dracut's crypt and lvm modules and the
            // crypttab naming the container are in the new image.
            let list = sh(c, &format!("chroot /t lsinitrd /boot/initrd.img-{rel}"));
            for part in [" etc/crypttab", "sbin/cryptsetup", "sbin/lvm"] {
                assert!(
                    list.lines().any(|l| l.contains(part)),
                    "no {part} in the new image:\n{list}"
                );
            }
            let crypttab = sh(
                c,
                &format!("chroot /t lsinitrd -f etc/crypttab /boot/initrd.img-{rel}"),
            );
            assert!(crypttab.contains(uuid), "{crypttab}");
        }
    }
    // GRUB's default entry (GRUB_DEFAULT=0, the first) is the newest kernel
    // by dpkg's version order, in which `6.1.0-N-cloud-amd64` follows
    // `6.1.0-N-amd64` (and any older N): the new kernel is the default as
    // after a real update, with no grub-set-default.
    let grub_cfg = sh(c, "cat /t/boot/grub/grub.cfg");
    assert_eq!(
        kernel_update::grub_default_kernel(&grub_cfg).as_deref(),
        Some(rel.as_str()),
        "the new kernel is not GRUB's default entry:\n{grub_cfg}"
    );
    // Unmounting writes back the new kernel, its modules and image (over
    // 100 MB through dm-crypt under TCG): on a loaded machine that took
    // more than sh's two minutes once.
    let out = c
        .exec(
            "for f in run sys proc dev boot; do umount /t/$f; done; umount /t && vgchange -an vg0",
            Duration::from_secs(900),
        )
        .unwrap();
    assert_eq!(
        out.code,
        0,
        "unmounting the target failed: {}",
        out.stderr_str()
    );
    sh(c, &format!("cryptsetup close luks-{uuid}"));
    g.poweroff(BOOT).unwrap();
}

/// Boots `target` alone through its GRUB, checks the kernel's banner names
/// `second`, types the passphrase at `prompt` and returns boot-check's report.
pub fn boot_new_kernel(
    name: &str,
    target: &Path,
    second: &SecondKernel,
    prompt: &str,
) -> BootCheck {
    let mut g = GuestBuilder::new(name)
        .disk_with_serial(target, "target")
        .start()
        .unwrap();
    let c = g.console();
    // The kernel's banner on the serial console names the running kernel.
    // The space after the release: the console may deliver the banner in
    // pieces, and the match must not stop at a piece's end ("6").
    let banner = c
        .wait_for(r"Linux version (\S+) ", Duration::from_secs(300))
        .unwrap();
    assert_eq!(banner.groups[0].as_deref(), Some(second.release.as_str()));
    c.send_secret_after(prompt, PASSPHRASE.as_bytes(), Duration::from_secs(300))
        .unwrap();
    vm_tests::unlock_boot::wait_report(&mut g).unwrap()
}

/// Issue 6 item 4 end to end, after a migrated boot: [`update_kernel`]
/// installs `second` on the scenario's target, then [`boot_new_kernel`]
/// boots it through GRUB and unlocks at `prompt`; the report must show a
/// migrated boot into container `uuid`. Guests are named after `name`;
/// `t0` is when the scenario began, for the timing line.
pub fn kernel_update_boots(
    s: &Scenario,
    name: &str,
    uuid: &str,
    unlock: Unlock,
    prompt: &str,
    t0: Instant,
) -> BootCheck {
    let second = SecondKernel::debian_cloud().unwrap();
    assert_ne!(second.release, s.kernel.release);
    let t_update = Instant::now();
    update_kernel(
        &format!("{name}-kernel-update"),
        &s.live,
        &s.target,
        uuid,
        &second,
        unlock,
    );
    let update_time = t_update.elapsed();
    let t_boot = Instant::now();
    let report = boot_new_kernel(
        &format!("{name}-boot-new-kernel"),
        &s.target,
        &second,
        prompt,
    );
    eprintln!(
        "timings: kernel install in the live guest {update_time:.1?}, boot of {}+unlock+check {:.1?}, total {:.1?}",
        second.release,
        t_boot.elapsed(),
        t0.elapsed()
    );
    report.verify_migrated(Some(uuid)).unwrap();
    assert!(!report.text.contains(PASSPHRASE));
    report
}

/// Runs `luksify migrate --yes` (spare-return onto /dev/vdb, the passphrase
/// from /root/pass on stdin, fast test key derivation) at the live guest's
/// shell, through the console so the log shows progress, each line stamped
/// with the guest's uptime to time the steps. Fails unless it exits 0 with
/// the passphrase nowhere in its output; returns that output and how long
/// it took.
pub fn migrate_yes(c: &mut Console, timeout: Duration) -> (String, Duration) {
    migrate_yes_with(c, "spare-return", timeout)
}

/// [`migrate_yes`] with another `--strategy`.
pub fn migrate_yes_with(c: &mut Console, strategy: &str, timeout: Duration) -> (String, Duration) {
    let started = Instant::now();
    let (_, text) = c
        .run(
            &format!(
                "{{ luksify migrate --yes --spare /dev/vdb --strategy {strategy} \
                 --header-backup /root/vg0.luks-header --passphrase-stdin \
                 --pbkdf pbkdf2 --iter-time 100 < /root/pass 2>&1; echo \"luksify-exit=$?\"; }} \
                 | while IFS= read -r l; do echo \"[$(cut -d' ' -f1 /proc/uptime)] $l\"; done"
            ),
            timeout,
        )
        .unwrap();
    let code = text.lines().find_map(|l| {
        l.split_once("luksify-exit=")
            .map(|(_, c)| c.trim().to_string())
    });
    let took = started.elapsed();
    eprintln!("luksify migrate ({took:.1?}):\n{text}");
    assert_eq!(
        code.as_deref(),
        Some("0"),
        "luksify migrate failed:\n{text}"
    );
    assert!(!text.contains(PASSPHRASE));
    (text, took)
}

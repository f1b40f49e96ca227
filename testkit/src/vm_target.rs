//! The root file system of a bootable VM target: a debootstrapped Debian 12
//! with its kernel, LVM, cryptsetup-initramfs and GRUB installed, and an
//! initramfs already built for the unencrypted layout. The disk layout
//! (partitions, VG, GRUB in the MBR) is made by the VM harness; this is only
//! the file tree that goes onto it.

use std::fs;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cache::{cached_dir, fnv1a};
use crate::debian::{
    base_root, chroot_env, copy_base_for_apt, debian_mirror, kernel_version, with_deb_cache,
};
use crate::mounts::ChrootMounts;
use crate::run::run;

/// What the VM target carries. cryptsetup-initramfs makes initramfs-tools
/// able to unlock LUKS by itself (issue 6 item 5); grub-pc is the BIOS GRUB.
pub const VM_TARGET_PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "lvm2",
    "cryptsetup",
    "cryptsetup-initramfs",
    "initramfs-tools",
    "grub-pc",
    "e2fsprogs",
    "util-linux",
    "busybox",
];

/// The same target without cryptsetup-initramfs: only the cryptsetup program
/// (cryptsetup-bin), so initramfs-tools cannot unlock LUKS by itself and
/// luksify must add the unlock to the image (issue 5's seed flow proper).
pub const VM_TARGET_PACKAGES_NO_CRYPTSETUP_INITRAMFS: &[&str] = &[
    "linux-image-amd64",
    "lvm2",
    "cryptsetup-bin",
    "initramfs-tools",
    "grub-pc",
    "e2fsprogs",
    "util-linux",
    "busybox",
];

/// The target whose initramfs generator is dracut (Debian 12's dracut 059:
/// the crypt, lvm and dm modules are all in dracut-core; dracut conflicts
/// with initramfs-tools). No systemd: the base is minbase, so dracut builds
/// its scripted init, whose crypt module asks for the passphrase itself.
pub const VM_TARGET_PACKAGES_DRACUT: &[&str] = &[
    "linux-image-amd64",
    "lvm2",
    "cryptsetup",
    "dracut",
    "grub-pc",
    "e2fsprogs",
    "util-linux",
    "busybox",
];

const RECIPE: &str = "debian-vm-target v1";

/// Keeps grub-pc's postinst from installing GRUB onto one of the build
/// host's disks: the harness runs grub-install inside the guest.
const DEBCONF: &str = "grub-pc grub-pc/install_devices multiselect\n\
grub-pc grub-pc/install_devices_empty boolean true\n";

/// Returns CACHE/debian-vm-target-HASH/root. `files` (path relative to the
/// root, content, mode) are written before the initramfs is built, so the
/// caller's fstab, GRUB defaults and init scripts are part of the key.
pub fn debian_vm_target(files: &[(&str, &[u8], u32)]) -> Result<PathBuf> {
    debian_vm_target_with(files, VM_TARGET_PACKAGES)
}

/// Like [`debian_vm_target`] with other packages (part of the cache key).
pub fn debian_vm_target_with(files: &[(&str, &[u8], u32)], packages: &[&str]) -> Result<PathBuf> {
    let base = base_root()?;
    let mirror = debian_mirror();
    let mut key = format!(
        "{RECIPE}\nbase={}\npackages={}\n",
        base.display(),
        packages.join(" ")
    );
    for (path, data, mode) in files {
        key.push_str(&format!(
            "{path} {mode:o} {} {:016x}\n",
            data.len(),
            fnv1a(data)
        ));
    }
    let dir = cached_dir("debian-vm-target", &key, |tmp| {
        let root = tmp.join("root");
        copy_base_for_apt(&base, &root, &mirror)?;
        fs::write(root.join("tmp/debconf.sel"), DEBCONF)?;
        for (path, data, mode) in files {
            let p = root.join(path.trim_start_matches('/'));
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&p, data)?;
            run("chmod", [format!("{mode:o}"), p.display().to_string()])?;
        }
        let env = [
            ("DEBIAN_FRONTEND", "noninteractive"),
            ("INITRD", "No"),
            ("LC_ALL", "C"),
            ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        ];
        with_deb_cache(|debs| {
            let _mounts = ChrootMounts::new(&root, Some(debs))?;
            chroot_env(&root, ["debconf-set-selections", "/tmp/debconf.sel"], &env)?;
            chroot_env(&root, ["apt-get", "-q", "update"], &env)?;
            let mut install = vec!["apt-get", "-q", "-y", "--no-install-recommends", "install"];
            install.extend(packages);
            chroot_env(&root, install, &env)?;
            Ok(())
        })?;
        let kver = kernel_version(&root)?;
        let dracut = packages.contains(&"dracut");
        {
            let _mounts = ChrootMounts::new(&root, None)?;
            if dracut {
                // What Debian's /etc/kernel/postinst.d/dracut runs (skipped
                // above by INITRD=No), with the root's /etc/dracut.conf.d.
                let image = format!("/boot/initrd.img-{kver}");
                chroot_env(&root, ["dracut", "--force", &image, &kver], &env)?;
            } else {
                chroot_env(&root, ["update-initramfs", "-c", "-k", &kver], &env)?;
            }
        }
        fs::remove_file(root.join("usr/sbin/policy-rc.d"))?;
        fs::remove_file(root.join("tmp/debconf.sel"))?;
        let _ = fs::remove_dir_all(root.join("var/lib/apt/lists"));
        fs::create_dir_all(root.join("var/lib/apt/lists/partial"))?;
        let hook = "usr/share/initramfs-tools/hooks/cryptroot";
        let with_hook = packages.contains(&"cryptsetup-initramfs");
        for needed in [
            format!("boot/initrd.img-{kver}"),
            format!("boot/vmlinuz-{kver}"),
            "usr/sbin/grub-install".into(),
            "usr/sbin/cryptsetup".into(),
        ]
        .into_iter()
        .chain(with_hook.then(|| hook.to_string()))
        {
            if !root.join(&needed).exists() {
                bail!("{needed} is missing from the VM target root");
            }
        }
        if dracut && root.join("usr/sbin/mkinitramfs").exists() {
            bail!("initramfs-tools is in a VM target root built with dracut");
        }
        if !with_hook && root.join(hook).exists() {
            bail!("{hook} is in a VM target root built without cryptsetup-initramfs");
        }
        eprintln!("testkit: VM target root has kernel {kver}");
        Ok(())
    })?;
    Ok(dir.join("root"))
}

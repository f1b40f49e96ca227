//! A second kernel for a migrated target to install, as the kernel update
//! the day after a migration (issue 6 item 4): Debian's cloud flavour of
//! bookworm's current kernel. It is a real `linux-image-*` package whose
//! postinst runs the target's own generators through /etc/kernel/postinst.d
//! (update-initramfs, then update-grub), so the image it gets is built only
//! from what luksify left configured in the target. Its config has
//! virtio_pci, virtio_blk and dm-crypt as modules and ext4 and crc32c
//! built in, which the target's `MODULES=list` copes with.
//!
//! The .deb (27 MB) reaches the guest on a small ext4 disk image made on the
//! host with `mke2fs -d` (no mount needed), cached by the package version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use luksify::sys::process::Cmd;

use crate::console::Console;
use crate::{cache, debian_pkgs};

/// The metapackage naming the flavour's current kernel image package.
pub const METAPACKAGE: &str = "linux-image-cloud-amd64";
/// Where [`install`] mounts the disk inside the target's root.
const MOUNT_DIR: &str = "/mnt/luksify-kernel-deb";
const DISK_KIND: &str = "kernel-update-disk";
const RECIPE: &str = "kernel-update-disk v1";

#[derive(Debug, Clone)]
pub struct SecondKernel {
    /// e.g. `6.1.0-57-cloud-amd64`: `uname -r` once it runs.
    pub release: String,
    /// The .deb's file name on the disk.
    pub deb_name: String,
    /// An ext4 image holding only the .deb (cached: attach it with
    /// `GuestBuilder::disk_snapshot`).
    pub disk: PathBuf,
}

impl SecondKernel {
    /// Resolves the cloud flavour's current kernel and puts its .deb on a
    /// disk image. Offline, a disk made earlier is used.
    pub fn debian_cloud() -> Result<SecondKernel> {
        match Self::fetch() {
            Ok(k) => Ok(k),
            Err(e) => match Self::newest_cached()? {
                Some(k) => {
                    eprintln!(
                        "vm-tests: using the cached second kernel {} because the current one is unavailable: {e:#}",
                        k.release
                    );
                    Ok(k)
                }
                None => Err(e),
            },
        }
    }

    fn fetch() -> Result<SecondKernel> {
        let meta = debian_pkgs::resolve(METAPACKAGE)?;
        let name = debian_pkgs::depends_names(&meta.depends)
            .into_iter()
            .find(|n| n.starts_with("linux-image-"))
            .with_context(|| {
                format!("{METAPACKAGE} {} depends on no kernel image", meta.version)
            })?;
        let pkg = debian_pkgs::resolve(&name)?;
        let deb = debian_pkgs::deb(&pkg)?;
        let key = cache::key_of(&[RECIPE.as_bytes(), deb.display().to_string().as_bytes()]);
        let dir = cache::entry(DISK_KIND, &key, |dir| make_disk(&deb, &name, dir))?;
        Self::from_entry(&dir)
    }

    fn from_entry(dir: &Path) -> Result<SecondKernel> {
        let release = std::fs::read_to_string(dir.join("release"))
            .with_context(|| format!("reading {}/release", dir.display()))?
            .trim()
            .to_string();
        let deb_name = std::fs::read_to_string(dir.join("deb-name"))?
            .trim()
            .to_string();
        Ok(SecondKernel {
            release,
            deb_name,
            disk: dir.join("disk.img"),
        })
    }

    fn newest_cached() -> Result<Option<SecondKernel>> {
        let dir = cache::root()?.join(DISK_KIND);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(None);
        };
        let mut found: Vec<SecondKernel> = entries
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| Self::from_entry(&e.path()).ok())
            .collect();
        found.sort_by(|a, b| a.deb_name.cmp(&b.deb_name));
        Ok(found.pop())
    }
}

fn make_disk(deb: &Path, package: &str, dir: &Path) -> Result<()> {
    let staging = dir.join("content");
    std::fs::create_dir(&staging)?;
    let deb_name = deb
        .file_name()
        .context("the .deb has no file name")?
        .to_string_lossy()
        .into_owned();
    std::fs::copy(deb, staging.join(&deb_name))
        .with_context(|| format!("copying {}", deb.display()))?;
    let mib = std::fs::metadata(deb)?.len().div_ceil(crate::disk::MIB) + 16;
    Cmd::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "kernel-deb", "-d"])
        .arg(&staging)
        .arg(dir.join("disk.img"))
        .arg(format!("{mib}M"))
        .run()
        .context("making the kernel package's disk image")?;
    std::fs::remove_dir_all(&staging)?;
    let release = package.strip_prefix("linux-image-").unwrap_or(package);
    std::fs::write(dir.join("release"), format!("{release}\n"))?;
    std::fs::write(dir.join("deb-name"), format!("{deb_name}\n"))?;
    Ok(())
}

/// In a live guest where the target's root is mounted at `root` (its /boot,
/// /dev, /proc, /sys and /run mounted inside), installs the kernel from the
/// disk `device` with the target's own dpkg in a chroot, as `apt-get
/// upgrade` would.
pub fn install(
    c: &mut Console,
    kernel: &SecondKernel,
    root: &str,
    device: &str,
    timeout: Duration,
) -> Result<Installed> {
    let mnt = format!("{root}{MOUNT_DIR}");
    let out = c.exec(
        &format!("mkdir -p {mnt} && mount -o ro {device} {mnt}"),
        Duration::from_secs(60),
    )?;
    if out.code != 0 {
        bail!(
            "mounting the kernel package's disk {device} failed:\n{}",
            out.stderr_str()
        );
    }
    // A clean environment: the live shell's is not the target's. Each line
    // gets the guest's uptime, so the log shows where the time goes
    // (unpacking, update-initramfs, update-grub); the pipe loses dpkg's exit
    // status, hence the marker line.
    let out = c.exec(
        &format!(
            "{{ chroot {root} /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
             DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
             dpkg -i {MOUNT_DIR}/{} 2>&1; echo \"dpkg-exit=$?\"; }} \
             | while IFS= read -r l; do echo \"[$(cut -d' ' -f1 /proc/uptime)] $l\"; done",
            kernel.deb_name
        ),
        timeout,
    )?;
    c.exec(
        &format!("umount {mnt} && rmdir {mnt}"),
        Duration::from_secs(60),
    )?;
    let text = out.stdout_str();
    let code = text
        .lines()
        .find_map(|l| l.split_once("dpkg-exit=").map(|(_, c)| c.trim().parse()))
        .transpose()
        .context("reading dpkg's exit status")?
        .unwrap_or(-1);
    Ok(Installed { code, text })
}

/// What [`install`] saw.
#[derive(Debug, Clone)]
pub struct Installed {
    /// dpkg's exit status (-1 when the shell never reported one).
    pub code: i32,
    /// dpkg's output (stdout and stderr), each line prefixed with the
    /// guest's uptime.
    pub text: String,
}

/// The kernel of grub.cfg's default entry (`GRUB_DEFAULT=0`: the first
/// `linux` line), from the text of grub.cfg.
pub fn grub_default_kernel(grub_cfg: &str) -> Option<String> {
    grub_cfg
        .lines()
        .map(str::trim_start)
        .find(|l| l.split_whitespace().next() == Some("linux"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.rsplit('/').next())
        .and_then(|f| f.strip_prefix("vmlinuz-"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_kernel_is_the_first_linux_line() {
        let cfg = "menuentry 'Debian GNU/Linux' {\n\
                   \tlinux16 /x\n\
                   \techo\t'Loading Linux 6.1.0-57-cloud-amd64 ...'\n\
                   \tlinux\t/vmlinuz-6.1.0-57-cloud-amd64 root=/dev/mapper/vg0-root ro\n}\n\
                   submenu 'Advanced' {\n\
                   \tlinux\t/vmlinuz-6.1.0-57-amd64 root=/dev/mapper/vg0-root ro\n}\n";
        assert_eq!(
            grub_default_kernel(cfg).as_deref(),
            Some("6.1.0-57-cloud-amd64")
        );
        assert_eq!(grub_default_kernel("set default=0\n"), None);
    }
}

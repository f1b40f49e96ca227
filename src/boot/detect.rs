//! Which bootloader and which initramfs generator the TARGET uses, judged
//! from the target's own files (never the live system's). Package databases
//! win over loose files: a removed-but-not-purged package leaves its
//! configuration behind (/etc/initramfs-tools after switching to dracut).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::flavour_params::Flavour;
use super::target_fs;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Bootloader {
    /// GRUB 0.9x: /boot/grub/grub.conf or menu.lst.
    GrubLegacy { config: String },
    /// GRUB 2; `bls` when entries live in /boot/loader/entries (Fedora, RHEL ≥ 8).
    Grub2 { config: Option<String>, bls: bool },
    /// systemd-boot; `esp` is the ESP's mount point inside the target.
    SystemdBoot { esp: String },
}

impl Bootloader {
    pub fn name(&self) -> String {
        match self {
            Bootloader::GrubLegacy { config } => format!("GRUB legacy ({config})"),
            Bootloader::Grub2 { config, bls } => format!(
                "GRUB 2 ({}{})",
                config.as_deref().unwrap_or("no grub.cfg yet"),
                if *bls { ", BLS entries" } else { "" }
            ),
            Bootloader::SystemdBoot { esp } => format!("systemd-boot (ESP at {esp})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detected {
    pub bootloader: Bootloader,
    pub flavour: Flavour,
    /// What the decision rests on, for the plan.
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error(
        "found no bootloader configuration in the target (looked for {looked}); is the target's /boot mounted inside it?"
    )]
    NoBootloader { looked: String },
    #[error(
        "the target has more than one bootloader ({}); luksify will not guess which one boots the machine. Remove the unused one from the target first",
        .found.join("; ")
    )]
    ConflictingBootloaders { found: Vec<String> },
    #[error(
        "found no initramfs generator in the target (looked for {looked}); install the distribution's generator in the target or pass --flavour"
    )]
    NoGenerator { looked: String },
    #[error(
        "the target has more than one initramfs generator installed ({}); pass --flavour to say which one builds its initramfs",
        .found.join("; ")
    )]
    ConflictingGenerators { found: Vec<String> },
    #[error(
        "the target's fstab mounts the EFI system partition at {mountpoint}, but {mountpoint} inside the target is empty; mount the ESP there and run again"
    )]
    EspNotMounted { mountpoint: String },
    #[error(
        "the target's fstab mounts a separate /boot ({device}), but /boot inside the target is empty; mount it there and run again (its kernels, initramfs images and boot entries are what luksify edits)"
    )]
    BootNotMounted { device: String },
}

const BIN_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

fn find_bin(root: &Path, name: &str) -> Option<String> {
    BIN_DIRS
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| target_fs::exists(root, p))
}

/// Installed Debian packages, from dpkg's per-package file lists.
fn dpkg_installed(root: &Path, pkg: &str) -> bool {
    let info = "/var/lib/dpkg/info";
    target_fs::exists(root, &format!("{info}/{pkg}.list"))
        || target_fs::list_dir(root, info)
            .iter()
            .any(|f| f.starts_with(&format!("{pkg}:")) && f.ends_with(".list"))
}

fn has_dpkg(root: &Path) -> bool {
    target_fs::list_dir(root, "/var/lib/dpkg/info")
        .iter()
        .any(|f| f.ends_with(".list"))
}

fn pacman_installed(root: &Path, pkg: &str) -> bool {
    target_fs::list_dir(root, "/var/lib/pacman/local")
        .iter()
        .any(|d| {
            // Directories are NAME-VERSION-RELEASE; the name itself may contain dashes.
            d.strip_prefix(pkg)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|r| r.matches('-').count() == 1)
        })
}

fn has_pacman(root: &Path) -> bool {
    !target_fs::list_dir(root, "/var/lib/pacman/local").is_empty()
}

/// The initramfs generator. `forced` (from --flavour) skips detection.
pub fn detect_flavour(root: &Path, evidence: &mut Vec<String>) -> Result<Flavour, DetectError> {
    let mut found: Vec<(Flavour, String)> = Vec::new();
    if has_dpkg(root) {
        if dpkg_installed(root, "initramfs-tools") {
            found.push((
                Flavour::InitramfsTools,
                "dpkg: initramfs-tools installed".into(),
            ));
        }
        if dpkg_installed(root, "dracut") || dpkg_installed(root, "dracut-core") {
            found.push((Flavour::Dracut, "dpkg: dracut installed".into()));
        }
    } else if has_pacman(root) {
        if pacman_installed(root, "mkinitcpio") {
            found.push((
                mkinitcpio_flavour(root),
                "pacman: mkinitcpio installed".into(),
            ));
        }
        if pacman_installed(root, "dracut") {
            found.push((Flavour::Dracut, "pacman: dracut installed".into()));
        }
    } else {
        if let Some(b) = find_bin(root, "mkinitramfs")
            && target_fs::is_dir(root, "/etc/initramfs-tools")
        {
            found.push((
                Flavour::InitramfsTools,
                format!("{b} and /etc/initramfs-tools"),
            ));
        }
        if let Some(b) = find_bin(root, "dracut") {
            found.push((Flavour::Dracut, b));
        }
        if let Some(b) = find_bin(root, "mkinitcpio") {
            found.push((mkinitcpio_flavour(root), b));
        }
        // RHEL 6's mkinitrd is a wrapper around dracut; only nash means the
        // old generator.
        if let Some(b) = find_bin(root, "nash")
            && let Some(m) = find_bin(root, "mkinitrd")
        {
            found.push((Flavour::Nash, format!("{m} and {b}")));
        }
    }
    match found.len() {
        0 => Err(DetectError::NoGenerator {
            looked: "mkinitramfs + /etc/initramfs-tools, dracut, mkinitcpio, mkinitrd + nash, and the dpkg/pacman package lists".into(),
        }),
        1 => {
            let (f, why) = found.remove(0);
            evidence.push(format!("initramfs generator {}: {why}", f.name()));
            Ok(f)
        }
        _ => Err(DetectError::ConflictingGenerators {
            found: found.into_iter().map(|(f, w)| format!("{} ({w})", f.name())).collect(),
        }),
    }
}

/// mkinitcpio's systemd-based images use sd-encrypt, busybox ones encrypt.
fn mkinitcpio_flavour(root: &Path) -> Flavour {
    let mut hooks = String::new();
    let mut files = vec!["/etc/mkinitcpio.conf".to_string()];
    files.extend(
        target_fs::list_dir(root, "/etc/mkinitcpio.conf.d")
            .into_iter()
            .filter(|f| f.ends_with(".conf"))
            .map(|f| format!("/etc/mkinitcpio.conf.d/{f}")),
    );
    for f in files {
        if let Ok(Some((_, b))) = target_fs::read(root, &f) {
            for line in String::from_utf8_lossy(&b).lines() {
                if let Some(v) = line.trim_start().strip_prefix("HOOKS=") {
                    hooks = v.to_string();
                }
            }
        }
    }
    let words: Vec<&str> = hooks
        .split(|c: char| c.is_whitespace() || "()\"'".contains(c))
        .collect();
    if words.contains(&"systemd") || words.contains(&"sd-encrypt") {
        Flavour::MkinitcpioSdEncrypt
    } else {
        Flavour::MkinitcpioEncrypt
    }
}

const ESP_CANDIDATES: &[&str] = &["/efi", "/boot/efi", "/boot"];

fn systemd_boot_esp(root: &Path) -> Option<String> {
    ESP_CANDIDATES.iter().find_map(|esp| {
        let efi = target_fs::list_dir(root, &format!("{esp}/EFI/systemd"));
        let sd = efi.iter().any(|f| f.starts_with("systemd-boot"));
        (sd && target_fs::is_dir(root, &format!("{esp}/loader"))).then(|| esp.to_string())
    })
}

/// The device of a separate /boot the target's fstab mounts at boot, when
/// /boot inside the target is empty: planning would miss the boot loader's
/// files, or worse, find only the tools and plan against nothing.
fn unmounted_boot(root: &Path) -> Option<String> {
    let (_, fstab) = target_fs::read(root, "/etc/fstab").ok()??;
    String::from_utf8_lossy(&fstab).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || f[0].starts_with('#') || f[1] != "/boot" {
            return None;
        }
        let noauto = f
            .get(3)
            .is_some_and(|o| o.split(',').any(|o| o == "noauto"));
        (!noauto && target_fs::list_dir(root, "/boot").is_empty()).then(|| f[0].to_string())
    })
}

/// vfat mount points from the target's fstab that are empty inside the target.
pub(crate) fn unmounted_esp(root: &Path) -> Option<String> {
    let (_, fstab) = target_fs::read(root, "/etc/fstab").ok()??;
    String::from_utf8_lossy(&fstab).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || f[0].starts_with('#') || f[2] != "vfat" {
            return None;
        }
        let mp = f[1];
        (ESP_CANDIDATES.contains(&mp) && target_fs::list_dir(root, mp).is_empty())
            .then(|| mp.to_string())
    })
}

pub fn detect_bootloader(
    root: &Path,
    evidence: &mut Vec<String>,
) -> Result<Bootloader, DetectError> {
    let mut found: Vec<(Bootloader, String)> = Vec::new();

    let grub2_cfg = ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"]
        .into_iter()
        .find(|p| target_fs::exists(root, p))
        .map(str::to_string);
    let grub2_tool = ["grub2-mkconfig", "grub-mkconfig", "update-grub"]
        .iter()
        .find_map(|t| find_bin(root, t));
    let legacy_cfg = ["/boot/grub/grub.conf", "/boot/grub/menu.lst"]
        .into_iter()
        .find(|p| target_fs::exists(root, p))
        .map(str::to_string);
    let bls = target_fs::list_dir(root, "/boot/loader/entries")
        .iter()
        .any(|f| f.ends_with(".conf"));

    let (grub2, legacy) = if has_dpkg(root) {
        let g2 = [
            "grub-pc",
            "grub-efi-amd64",
            "grub-efi-ia32",
            "grub-efi-arm64",
            "grub2-common",
        ]
        .into_iter()
        .find(|p| dpkg_installed(root, p));
        let gl = ["grub-legacy", "grub"]
            .into_iter()
            .find(|p| dpkg_installed(root, p));
        (
            g2.map(|p| format!("dpkg: {p} installed")),
            gl.map(|p| format!("dpkg: {p} installed")),
        )
    } else {
        // GRUB 2 has no `grub` shell binary; GRUB legacy has no grub-mkconfig.
        let g2 = grub2_tool.clone().or(grub2_cfg.clone());
        let gl = legacy_cfg
            .as_ref()
            .filter(|_| g2.is_none() || find_bin(root, "grub").is_some())
            .cloned();
        (g2, gl)
    };
    if let Some(why) = grub2 {
        found.push((
            Bootloader::Grub2 {
                config: grub2_cfg.clone(),
                bls,
            },
            why,
        ));
    }
    if let Some(why) = legacy {
        match &legacy_cfg {
            Some(cfg) => found.push((
                Bootloader::GrubLegacy {
                    config: cfg.clone(),
                },
                why,
            )),
            None => evidence.push(format!("{why}, but no grub.conf/menu.lst: ignored")),
        }
    }
    if let Some(esp) = systemd_boot_esp(root) {
        found.push((
            Bootloader::SystemdBoot { esp: esp.clone() },
            format!("{esp}/EFI/systemd/systemd-boot*.efi and {esp}/loader"),
        ));
    }
    match found.len() {
        0 => {
            if let Some(mountpoint) = unmounted_esp(root) {
                return Err(DetectError::EspNotMounted { mountpoint });
            }
            Err(DetectError::NoBootloader {
                looked: "/boot/grub/grub.conf, /boot/grub/menu.lst, /boot/grub/grub.cfg, /boot/grub2/grub.cfg, grub-mkconfig, systemd-boot on /efi, /boot/efi or /boot".into(),
            })
        }
        1 => {
            let (b, why) = found.remove(0);
            evidence.push(format!("bootloader {}: {why}", b.name()));
            Ok(b)
        }
        _ => Err(DetectError::ConflictingBootloaders {
            found: found
                .into_iter()
                .map(|(b, w)| format!("{} ({w})", b.name()))
                .collect(),
        }),
    }
}

/// Bootloader and generator; `forced` (from --flavour) replaces generator detection.
pub fn detect(root: &Path, forced: Option<Flavour>) -> Result<Detected, DetectError> {
    let mut evidence = Vec::new();
    if let Some(device) = unmounted_boot(root) {
        return Err(DetectError::BootNotMounted { device });
    }
    let bootloader = detect_bootloader(root, &mut evidence)?;
    let flavour = match forced {
        Some(f) => {
            evidence.push(format!(
                "initramfs generator {}: given on the command line",
                f.name()
            ));
            f
        }
        None => detect_flavour(root, &mut evidence)?,
    };
    Ok(Detected {
        bootloader,
        flavour,
        evidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(root: &Path, p: &str, content: &str) {
        let h = root.join(p.trim_start_matches('/'));
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        fs::write(h, content).unwrap();
    }

    #[test]
    fn dpkg_lists_beat_leftover_files() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(r, "/etc/initramfs-tools/initramfs.conf", "MODULES=most\n");
        touch(r, "/usr/sbin/mkinitramfs", "");
        touch(r, "/usr/bin/dracut", "");
        touch(r, "/var/lib/dpkg/info/dracut.list", "/usr/bin/dracut\n");
        touch(r, "/var/lib/dpkg/info/grub-pc.list", "");
        touch(r, "/boot/grub/grub.cfg", "");
        touch(r, "/boot/grub/menu.lst", "");
        let d = detect(r, None).unwrap();
        assert_eq!(d.flavour, Flavour::Dracut);
        assert!(matches!(d.bootloader, Bootloader::Grub2 { bls: false, .. }));
    }

    #[test]
    fn two_generators_are_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(r, "/boot/grub2/grub.cfg", "");
        touch(r, "/usr/bin/dracut", "");
        touch(r, "/usr/bin/mkinitcpio", "");
        let e = detect(r, None).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DetectError::ConflictingGenerators { .. }));
        assert!(
            msg.contains("dracut") && msg.contains("mkinitcpio") && msg.contains("--flavour"),
            "{msg}"
        );
        assert_eq!(
            detect(r, Some(Flavour::Dracut)).unwrap().flavour,
            Flavour::Dracut
        );
    }

    #[test]
    fn grub2_and_systemd_boot_together_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(r, "/boot/grub/grub.cfg", "");
        touch(r, "/usr/sbin/grub-mkconfig", "");
        touch(r, "/boot/efi/EFI/systemd/systemd-bootx64.efi", "MZ");
        touch(r, "/boot/efi/loader/loader.conf", "timeout 3\n");
        let e = detect_bootloader(r, &mut vec![]).unwrap_err().to_string();
        assert!(
            e.contains("GRUB 2") && e.contains("systemd-boot (ESP at /boot/efi)"),
            "{e}"
        );
    }

    #[test]
    fn nothing_found_is_refused() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            detect(t.path(), None),
            Err(DetectError::NoBootloader { .. })
        ));
    }

    #[test]
    fn unmounted_esp_is_named() {
        let t = tempfile::tempdir().unwrap();
        touch(
            t.path(),
            "/etc/fstab",
            "UUID=ABCD-1234  /boot/efi  vfat  umask=0077  0 1\n",
        );
        fs::create_dir_all(t.path().join("boot/efi")).unwrap();
        assert_eq!(
            detect(t.path(), None).unwrap_err(),
            DetectError::EspNotMounted {
                mountpoint: "/boot/efi".into()
            }
        );
    }

    #[test]
    fn unmounted_boot_is_refused_before_guessing() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // The tools are on the root filesystem; the configuration is not.
        touch(r, "/usr/sbin/grub2-mkconfig", "");
        touch(r, "/usr/bin/dracut", "");
        touch(
            r,
            "/etc/fstab",
            "/dev/mapper/vg0-root / xfs defaults 0 0
UUID=7a1f2c3d /boot xfs defaults 0 0
",
        );
        fs::create_dir_all(r.join("boot")).unwrap();
        let e = detect(r, None).unwrap_err();
        assert_eq!(
            e,
            DetectError::BootNotMounted {
                device: "UUID=7a1f2c3d".into()
            }
        );
        assert!(e.to_string().contains("mount it there"), "{e}");
        touch(r, "/boot/grub2/grub.cfg", "");
        assert!(detect(r, None).is_ok());
        // A /boot that is not mounted at boot either is not expected here.
        fs::remove_dir_all(r.join("boot")).unwrap();
        fs::create_dir_all(r.join("boot")).unwrap();
        touch(
            r,
            "/etc/fstab",
            "/dev/sda1 /boot ext2 noauto 0 0
",
        );
        assert!(!matches!(
            detect(r, None),
            Err(DetectError::BootNotMounted { .. })
        ));
    }

    #[test]
    fn mkinitcpio_hooks_choose_the_unlock_hook() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(
            r,
            "/etc/mkinitcpio.conf",
            "# HOOKS=(base systemd)\nHOOKS=(base udev autodetect block filesystems)\n",
        );
        assert_eq!(mkinitcpio_flavour(r), Flavour::MkinitcpioEncrypt);
        touch(
            r,
            "/etc/mkinitcpio.conf.d/10-sd.conf",
            "HOOKS=(base systemd autodetect sd-vconsole block)\n",
        );
        assert_eq!(mkinitcpio_flavour(r), Flavour::MkinitcpioSdEncrypt);
    }

    #[test]
    fn pacman_names_with_dashes() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(
            t.path()
                .join("var/lib/pacman/local/mkinitcpio-busybox-1.36.1-1"),
        )
        .unwrap();
        assert!(!pacman_installed(t.path(), "mkinitcpio"));
        fs::create_dir_all(t.path().join("var/lib/pacman/local/mkinitcpio-39.2-2")).unwrap();
        assert!(pacman_installed(t.path(), "mkinitcpio"));
    }
}

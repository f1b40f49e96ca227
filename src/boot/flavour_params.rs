//! What each initramfs generator needs on the kernel command line to unlock
//! the LUKS container and find the root LV inside it.

use serde::{Deserialize, Serialize};

use super::BootRequest;
use super::kargs::{Cmdline, InvalidParam};

/// The initramfs generator of the target, and for mkinitcpio which of its two
/// unlocking hooks is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// Debian/Ubuntu initramfs-tools with cryptsetup-initramfs.
    InitramfsTools,
    /// dracut (Fedora, RHEL ≥ 6, SUSE, Debian with dracut).
    Dracut,
    /// mkinitcpio with the busybox `encrypt` hook (Arch default).
    MkinitcpioEncrypt,
    /// mkinitcpio with the systemd `sd-encrypt` hook.
    MkinitcpioSdEncrypt,
    /// Red Hat's old mkinitrd + nash (RHEL/CentOS ≤ 5): the unlock is baked into init.
    Nash,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::InitramfsTools => "initramfs-tools",
            Flavour::Dracut => "dracut",
            Flavour::MkinitcpioEncrypt => "mkinitcpio (encrypt hook)",
            Flavour::MkinitcpioSdEncrypt => "mkinitcpio (sd-encrypt hook)",
            Flavour::Nash => "mkinitrd/nash",
        }
    }
}

/// One change to a command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum ParamChange {
    /// Exactly one `key=value` (replaces other values).
    Set { key: String, value: String },
    /// `key=value` present at least once (repeatable keys). `same` lists
    /// other spellings that already mean the same thing.
    Add {
        key: String,
        value: String,
        same: Vec<String>,
    },
    /// Remove this exact parameter (bare when `value` is None).
    Remove { key: String, value: Option<String> },
}

impl ParamChange {
    pub fn key(&self) -> &str {
        match self {
            ParamChange::Set { key, .. }
            | ParamChange::Add { key, .. }
            | ParamChange::Remove { key, .. } => key,
        }
    }
}

/// Applies `changes` to `c`; returns whether anything changed.
pub fn apply(c: &mut Cmdline, changes: &[ParamChange]) -> Result<bool, InvalidParam> {
    let mut changed = false;
    for ch in changes {
        changed |= match ch {
            ParamChange::Set { key, value } => c.set(key, Some(value))?,
            ParamChange::Add { key, value, same } => {
                let present = c
                    .values(key)
                    .iter()
                    .any(|v| v.is_some_and(|v| v == value || same.iter().any(|s| s == v)));
                if present {
                    false
                } else {
                    c.add(key, Some(value))?
                }
            }
            ParamChange::Remove { key, value } => c.remove_exact(key, value.as_deref()),
        };
    }
    Ok(changed)
}

/// The device-mapper name of an LV: dashes inside VG and LV names are
/// doubled so the single dash between them stays unambiguous
/// (`my-vg`/`root` → `my--vg-root`).
pub fn mapper_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

pub fn mapper_device(vg: &str, lv: &str) -> String {
    format!("/dev/mapper/{}", mapper_name(vg, lv))
}

/// The (VG, LV) a device path names, if it is one of LVM's own names:
/// `/dev/mapper/VG-LV` or `/dev/VG/LV`.
pub fn lv_of_device(dev: &str) -> Option<(String, String)> {
    if let Some(name) = dev.strip_prefix("/dev/mapper/") {
        let mut vg = String::new();
        let mut chars = name.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '-' {
                if chars.peek() == Some(&'-') {
                    chars.next();
                    vg.push('-');
                } else {
                    let lv: String = chars.collect::<String>().replace("--", "-");
                    return (!vg.is_empty() && !lv.is_empty()).then_some((vg, lv));
                }
            } else {
                vg.push(c);
            }
        }
        return None;
    }
    let rest = dev.strip_prefix("/dev/")?;
    let (vg, lv) = rest.split_once('/')?;
    if vg.is_empty() || lv.is_empty() || lv.contains('/') || ["disk", "md", "mapper"].contains(&vg)
    {
        return None;
    }
    Some((vg.to_string(), lv.to_string()))
}

/// The kernel parameters `flavour` needs, given the command line they will
/// be applied to (old dracut spells its options differently, and a resume
/// device on the VG needs activating too).
pub fn kernel_params(flavour: Flavour, req: &BootRequest, existing: &Cmdline) -> Vec<ParamChange> {
    let uuid = req.luks_uuid.to_ascii_lowercase();
    let root = ParamChange::Set {
        key: "root".into(),
        value: mapper_device(&req.vg, &req.root_lv),
    };
    let set = |k: &str, v: String| ParamChange::Set {
        key: k.into(),
        value: v,
    };
    let add = |k: &str, v: String, same: Vec<String>| ParamChange::Add {
        key: k.into(),
        value: v,
        same,
    };
    let remove = |k: &str, v: Option<&str>| ParamChange::Remove {
        key: k.into(),
        value: v.map(str::to_string),
    };
    match flavour {
        // cryptroot reads crypttab (copied into the image); root= tells
        // local-top which device to wait for.
        Flavour::InitramfsTools => vec![root],
        Flavour::Dracut => {
            let resume_lv = resume_lv_on(existing, &req.vg);
            // dracut before 0.13 (RHEL 6) only knows the rd_* spellings, and
            // RHEL 6's installer writes rd_NO_LUKS, which would skip our disk.
            let legacy = existing.iter().any(|(k, _)| k.starts_with("rd_"));
            let (luks_key, lv_key) = if legacy {
                ("rd_LUKS_UUID", "rd_LVM_LV")
            } else {
                ("rd.luks.uuid", "rd.lvm.lv")
            };
            let mut v = vec![
                root,
                remove("rd_NO_LUKS", None),
                remove("rd_NO_LVM", None),
                remove("rd.luks", Some("0")),
                remove("rd.lvm", Some("0")),
                // Anaconda writes luks-UUID; dracut strips the prefix, so
                // either spelling already present is fine.
                add(luks_key, format!("luks-{uuid}"), vec![uuid.clone()]),
            ];
            // rd.lvm.vg=VG already activates every LV of the VG, root and
            // swap included; rd.lvm.lv would only repeat part of it.
            let whole_vg = existing.contains("rd.lvm.vg", Some(&req.vg))
                || existing.contains("rd_LVM_VG", Some(&req.vg));
            if !whole_vg {
                v.push(add(lv_key, format!("{}/{}", req.vg, req.root_lv), vec![]));
                if let Some(lv) = resume_lv.filter(|lv| *lv != req.root_lv) {
                    v.push(add(lv_key, format!("{}/{lv}", req.vg), vec![]));
                }
            }
            v
        }
        Flavour::MkinitcpioEncrypt => {
            // The encrypt hook handles a single cryptdevice=DEV:NAME[:OPTIONS].
            let opts = if req.discard { ":allow-discards" } else { "" };
            vec![
                set(
                    "cryptdevice",
                    format!("UUID={uuid}:{}{opts}", req.mapper_name),
                ),
                root,
            ]
        }
        Flavour::MkinitcpioSdEncrypt => {
            let mut v = vec![add(
                "rd.luks.name",
                format!("{uuid}={}", req.mapper_name),
                vec![],
            )];
            if req.discard {
                v.push(add("rd.luks.options", format!("{uuid}=discard"), vec![]));
            }
            v.push(root);
            v
        }
        Flavour::Nash => vec![],
    }
}

/// The LV in `vg` that `resume=` points at, if any.
pub fn resume_lv_on(c: &Cmdline, vg: &str) -> Option<String> {
    let dev = c.get("resume")??;
    lv_of_device(dev).filter(|(v, _)| v == vg).map(|(_, lv)| lv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> BootRequest {
        BootRequest {
            luks_uuid: "0E5A1C2B-1111-4222-8333-444455556666".into(),
            mapper_name: "cryptlvm".into(),
            vg: "my-vg".into(),
            root_lv: "root".into(),
            flavour: None,
            initrd_path: None,
            discard: false,
        }
    }

    fn applied(f: Flavour, line: &str) -> String {
        let mut c = Cmdline::parse(line);
        let p = kernel_params(f, &req(), &c);
        apply(&mut c, &p).unwrap();
        c.to_string()
    }

    #[test]
    fn mapper_names_double_dashes() {
        assert_eq!(
            mapper_device("my-vg", "lv-root"),
            "/dev/mapper/my--vg-lv--root"
        );
        assert_eq!(
            lv_of_device("/dev/mapper/my--vg-lv--root"),
            Some(("my-vg".into(), "lv-root".into()))
        );
        assert_eq!(
            lv_of_device("/dev/VolGroup00/LogVol01"),
            Some(("VolGroup00".into(), "LogVol01".into()))
        );
        assert_eq!(lv_of_device("/dev/sda2"), None);
        assert_eq!(lv_of_device("/dev/disk/by-uuid"), None);
        assert_eq!(lv_of_device("/dev/mapper/control"), None);
    }

    #[test]
    fn per_flavour() {
        let l = "BOOT_IMAGE=/vmlinuz ro quiet";
        assert_eq!(
            applied(Flavour::InitramfsTools, l),
            format!("{l} root=/dev/mapper/my--vg-root")
        );
        assert_eq!(
            applied(Flavour::MkinitcpioEncrypt, "root=UUID=x rw"),
            "root=/dev/mapper/my--vg-root rw cryptdevice=UUID=0e5a1c2b-1111-4222-8333-444455556666:cryptlvm"
        );
        assert_eq!(
            applied(Flavour::MkinitcpioSdEncrypt, "rw"),
            "rw rd.luks.name=0e5a1c2b-1111-4222-8333-444455556666=cryptlvm root=/dev/mapper/my--vg-root"
        );
        assert_eq!(
            applied(Flavour::Nash, "ro root=/dev/VolGroup00/LogVol00"),
            "ro root=/dev/VolGroup00/LogVol00"
        );
    }

    #[test]
    fn discard_for_the_hooks_that_read_it_from_the_command_line() {
        let mut r = req();
        r.discard = true;
        let mut c = Cmdline::parse("rw");
        let p = kernel_params(Flavour::MkinitcpioEncrypt, &r, &c);
        apply(&mut c, &p).unwrap();
        assert_eq!(
            c.get("cryptdevice"),
            Some(Some(
                "UUID=0e5a1c2b-1111-4222-8333-444455556666:cryptlvm:allow-discards"
            ))
        );
        let mut c = Cmdline::parse("rw");
        let p = kernel_params(Flavour::MkinitcpioSdEncrypt, &r, &c);
        apply(&mut c, &p).unwrap();
        assert_eq!(
            c.get("rd.luks.options"),
            Some(Some("0e5a1c2b-1111-4222-8333-444455556666=discard"))
        );
    }

    #[test]
    fn dracut_modern_and_legacy() {
        assert_eq!(
            applied(
                Flavour::Dracut,
                "root=/dev/mapper/my--vg-root ro rd.lvm.lv=my-vg/root resume=/dev/mapper/my--vg-swap rd.luks=0 rhgb quiet"
            ),
            "root=/dev/mapper/my--vg-root ro rd.lvm.lv=my-vg/root resume=/dev/mapper/my--vg-swap rhgb quiet \
             rd.luks.uuid=luks-0e5a1c2b-1111-4222-8333-444455556666 rd.lvm.lv=my-vg/swap"
        );
        assert_eq!(
            applied(
                Flavour::Dracut,
                "ro root=/dev/mapper/my--vg-root rd_LVM_LV=my-vg/root rd_NO_LUKS LANG=en_US.UTF-8 rd_NO_MD"
            ),
            "ro root=/dev/mapper/my--vg-root rd_LVM_LV=my-vg/root LANG=en_US.UTF-8 rd_NO_MD \
             rd_LUKS_UUID=luks-0e5a1c2b-1111-4222-8333-444455556666"
        );
        // rd.lvm.vg= of our VG already activates root and swap.
        let l = "root=/dev/mapper/my--vg-root ro rd.lvm.vg=my-vg resume=/dev/mapper/my--vg-swap";
        assert_eq!(
            applied(Flavour::Dracut, l),
            format!("{l} rd.luks.uuid=luks-0e5a1c2b-1111-4222-8333-444455556666")
        );
        // Another VG's rd.lvm.vg= does not.
        assert!(applied(Flavour::Dracut, "ro rd.lvm.vg=other").ends_with(" rd.lvm.lv=my-vg/root"));
        // The bare-UUID spelling already present counts.
        let l = "root=/dev/mapper/my--vg-root rd.luks.uuid=0e5a1c2b-1111-4222-8333-444455556666 rd.lvm.lv=my-vg/root";
        assert_eq!(applied(Flavour::Dracut, l), l);
    }
}

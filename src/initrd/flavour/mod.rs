//! Initramfs generators ("flavours"): recognising which one built an image,
//! from the image's own content, and teaching it to unlock the root's LUKS
//! container by UUID and activate the volume group, each in the place that
//! generator runs such things. One file per flavour.

pub mod busybox;
pub mod dracut;
pub mod initramfs_tools;
pub mod mkinitcpio;
pub mod nash;

use anyhow::{Result, bail};

use super::image::Image;
use super::inimage;

/// The scripts that go into images (initramfs/ at the repo root).
pub const UNLOCK_SCRIPT: &str = include_str!("../../../initramfs/luksify-unlock");
/// Where the unlock script goes (resolved through the image's usr-merge links).
pub const UNLOCK_PATH: &str = "sbin/luksify-unlock";
pub const UNLOCK_CONF: &str = "etc/luksify/unlock.conf";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    InitramfsTools,
    Dracut { systemd: bool },
    Mkinitcpio,
    Nash,
    Busybox,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::InitramfsTools => "initramfs-tools",
            Flavour::Dracut { systemd: true } => "dracut (systemd)",
            Flavour::Dracut { systemd: false } => "dracut",
            Flavour::Mkinitcpio => "mkinitcpio",
            Flavour::Nash => "nash",
            Flavour::Busybox => "busybox",
        }
    }

    /// Parses a --flavour value; "dracut" is resolved against the image
    /// (systemd or not) by the caller. None means auto.
    pub fn parse(s: &str, img: &Image) -> Result<Option<Flavour>> {
        Ok(Some(match s {
            "auto" => return Ok(None),
            "initramfs-tools" => Flavour::InitramfsTools,
            "dracut" => Flavour::Dracut {
                systemd: dracut::has_systemd(img),
            },
            "mkinitcpio" => Flavour::Mkinitcpio,
            "nash" => Flavour::Nash,
            "busybox" => Flavour::Busybox,
            other => bail!(
                "unknown flavour {other:?}: use auto, initramfs-tools, dracut, mkinitcpio, nash or busybox"
            ),
        }))
    }
}

/// Which generator built the image, judged by files only it ships.
pub fn detect(img: &Image) -> Flavour {
    if inimage::exists(img, "conf/initramfs.conf")
        && (inimage::is_dir(img, "scripts") || inimage::exists(img, "scripts/functions"))
    {
        return Flavour::InitramfsTools;
    }
    if dracut::is_dracut(img) {
        return Flavour::Dracut {
            systemd: dracut::has_systemd(img),
        };
    }
    if inimage::exists(img, "buildconfig") && inimage::is_dir(img, "hooks") {
        return Flavour::Mkinitcpio;
    }
    if nash::is_nash(img) {
        return Flavour::Nash;
    }
    Flavour::Busybox
}

/// What the unlock needs to know. Every field is checked to be safe inside
/// a single-quoted shell string and a crypttab/cmdline word.
#[derive(Debug, Clone)]
pub struct Settings {
    pub luks_uuid: String,
    pub vg: String,
    pub lv: Option<String>,
    /// The dm-crypt mapping name; `luks-UUID` unless asked otherwise (what
    /// dracut and systemd call it too).
    pub mapper: String,
    /// Kernel modules the unlock script loads first, in order.
    pub modules: Vec<String>,
}

impl Settings {
    pub fn new(luks_uuid: &str, vg: &str, lv: Option<&str>, mapper: Option<&str>) -> Result<Self> {
        let uuid = luks_uuid.to_ascii_lowercase();
        if uuid.len() != 36
            || !uuid.chars().enumerate().all(|(i, c)| {
                matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
            })
        {
            bail!(
                "{luks_uuid:?} is not a LUKS UUID (like 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0); see `cryptsetup luksUUID DEVICE`"
            );
        }
        let lvm_name = |what: &str, n: &str| -> Result<()> {
            if n.is_empty()
                || n.starts_with('-')
                || n.len() > 127
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c))
            {
                bail!(
                    "{what} {n:?} is not a valid LVM/device-mapper name (letters, digits, + _ . -)"
                );
            }
            Ok(())
        };
        lvm_name("volume group", vg)?;
        if let Some(lv) = lv {
            lvm_name("logical volume", lv)?;
        }
        let mapper = mapper.map_or_else(|| format!("luks-{uuid}"), str::to_string);
        lvm_name("mapper name", &mapper)?;
        Ok(Settings {
            luks_uuid: uuid,
            vg: vg.to_string(),
            lv: lv.map(str::to_string),
            mapper,
            modules: Vec::new(),
        })
    }

    /// /dev/mapper/VG-LV, with device-mapper's doubling of `-` in names.
    pub fn root_device(&self) -> Option<String> {
        self.lv.as_ref().map(|lv| {
            format!(
                "/dev/mapper/{}-{}",
                self.vg.replace('-', "--"),
                lv.replace('-', "--")
            )
        })
    }

    /// The unlock script's configuration file.
    pub fn unlock_conf(&self) -> String {
        format!(
            "# Written by luksify: which LUKS container holds the root volume group.\n\
             LUKSIFY_UUID='{}'\nLUKSIFY_NAME='{}'\nLUKSIFY_VG='{}'\nLUKSIFY_MODULES='{}'\n",
            self.luks_uuid,
            self.mapper,
            self.vg,
            self.modules.join(" ")
        )
    }

    /// A crypttab line for the container.
    pub fn crypttab_line(&self) -> String {
        format!("{} UUID={} none luks\n", self.mapper, self.luks_uuid)
    }
}

/// Adds the shared unlock script and its configuration.
pub fn add_unlock_script(img: &mut Image, s: &Settings) -> Result<()> {
    img.add_file(UNLOCK_PATH, UNLOCK_SCRIPT.as_bytes().to_vec(), 0o755)?;
    img.add_file(UNLOCK_CONF, s.unlock_conf().into_bytes(), 0o644)?;
    Ok(())
}

/// Whether the image carries the unlock script and a configuration naming
/// this UUID and VG; the problem otherwise.
pub fn check_unlock_script(img: &Image, s: &Settings) -> Result<(), String> {
    if inimage::read(img, UNLOCK_PATH).is_none() {
        return Err(format!("the unlock script /{UNLOCK_PATH} is missing"));
    }
    let conf = inimage::text(img, UNLOCK_CONF)
        .ok_or_else(|| format!("the unlock configuration /{UNLOCK_CONF} is missing"))?;
    if !conf.contains(&format!("LUKSIFY_UUID='{}'", s.luks_uuid)) {
        return Err(format!(
            "/{UNLOCK_CONF} does not name LUKS UUID {}",
            s.luks_uuid
        ));
    }
    if !conf.contains(&format!("LUKSIFY_VG='{}'", s.vg)) {
        return Err(format!("/{UNLOCK_CONF} does not activate VG {}", s.vg));
    }
    Ok(())
}

/// A flavour-specific finding for `verify`.
#[derive(Debug, Clone)]
pub struct HookCheck {
    pub item: String,
    pub problem: Option<String>,
}

impl HookCheck {
    pub fn of(item: impl Into<String>, r: Result<(), String>) -> Self {
        HookCheck {
            item: item.into(),
            problem: r.err(),
        }
    }
}

/// Puts the flavour's hook and configuration into the image.
pub fn apply(f: Flavour, img: &mut Image, s: &Settings) -> Result<Vec<String>> {
    match f {
        Flavour::InitramfsTools => initramfs_tools::apply(img, s),
        Flavour::Dracut { systemd } => dracut::apply(img, s, systemd),
        Flavour::Mkinitcpio => mkinitcpio::apply(img, s),
        Flavour::Nash => nash::apply(img, s),
        Flavour::Busybox => busybox::apply(img, s),
    }
}

/// Whether the flavour's hook and configuration are in place.
pub fn check(f: Flavour, img: &Image, s: &Settings) -> Vec<HookCheck> {
    match f {
        Flavour::InitramfsTools => initramfs_tools::check(img, s),
        Flavour::Dracut { systemd } => dracut::check(img, s, systemd),
        Flavour::Mkinitcpio => mkinitcpio::check(img, s),
        Flavour::Nash => nash::check(img, s),
        Flavour::Busybox => busybox::check(img, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_refuse_unsafe_names_and_double_dashes() {
        let s = Settings::new(
            "0F1E2D3C-4b5a-6978-8796-a5b4c3d2e1f0",
            "my-vg",
            Some("root"),
            None,
        )
        .unwrap();
        assert_eq!(s.mapper, "luks-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
        assert_eq!(s.root_device().unwrap(), "/dev/mapper/my--vg-root");
        assert!(Settings::new("not-a-uuid", "vg", None, None).is_err());
        assert!(
            Settings::new(
                "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                "vg'; reboot",
                None,
                None
            )
            .is_err()
        );
        assert!(
            Settings::new(
                "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                "vg",
                None,
                Some("a b")
            )
            .is_err()
        );
    }
}

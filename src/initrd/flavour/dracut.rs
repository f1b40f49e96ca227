//! dracut, scripted or with systemd: both read /etc/crypttab inside the image
//! and rd.luks.uuid / rd.lvm.vg from /etc/cmdline.d/*.conf (dracut-lib's
//! getcmdline joins those before /proc/cmdline), so the boot entry need not
//! carry them. The unlocking itself is dracut's: its crypt module
//! (cryptroot-ask) or systemd-cryptsetup, whichever the image has.

use anyhow::{Result, bail};

use super::{HookCheck, Settings};
use crate::initrd::image::Image;
use crate::initrd::inimage;

const CMDLINE: &str = "etc/cmdline.d/90-luksify.conf";
const CRYPTTAB: &str = "etc/crypttab";

pub fn is_dracut(img: &Image) -> bool {
    ["usr/lib/dracut", "lib/dracut"]
        .iter()
        .any(|d| inimage::is_dir(img, d))
        || inimage::exists(img, "usr/lib/dracut-lib.sh")
        || inimage::exists(img, "lib/dracut-lib.sh")
}

pub fn has_systemd(img: &Image) -> bool {
    ["usr/lib/systemd/systemd", "lib/systemd/systemd"]
        .iter()
        .any(|p| inimage::read(img, p).is_some())
}

/// Whether the image can unlock LUKS the dracut way; the problem otherwise.
fn crypt_support(img: &Image, systemd: bool) -> Result<(), String> {
    let scripted = inimage::exists(img, "usr/lib/dracut/hooks/cmdline/30-parse-crypt.sh")
        && inimage::read(img, "sbin/cryptroot-ask").is_some();
    let sd = [
        "usr/lib/systemd/systemd-cryptsetup",
        "lib/systemd/systemd-cryptsetup",
    ]
    .iter()
    .any(|p| inimage::read(img, p).is_some());
    match (systemd, sd, scripted) {
        (true, true, _) | (false, _, true) => Ok(()),
        (true, false, _) => {
            Err("dracut's systemd-cryptsetup is missing (built without the crypt module)".into())
        }
        (false, _, false) => {
            Err("dracut's crypt module (30-parse-crypt.sh, cryptroot-ask) is missing".into())
        }
    }
}

fn cmdline(s: &Settings) -> String {
    let mut words = vec![format!("rd.luks.uuid={}", s.luks_uuid)];
    if s.mapper != format!("luks-{}", s.luks_uuid) {
        words.push(format!("rd.luks.name={}={}", s.luks_uuid, s.mapper));
    }
    words.push(format!("rd.lvm.vg={}", s.vg));
    if let Some(root) = s.root_device() {
        words.push(format!("root={root}"));
    }
    words.join(" ") + "\n"
}

pub fn apply(img: &mut Image, s: &Settings, systemd: bool) -> Result<Vec<String>> {
    if let Err(why) = crypt_support(img, systemd) {
        bail!(
            "this dracut image cannot unlock LUKS: {why}; rebuild it with `dracut --add crypt` \
             (cryptsetup installed in the target) and inject again"
        );
    }
    let tab = inimage::text(img, CRYPTTAB).unwrap_or_default();
    if !tab.contains(&format!("UUID={}", s.luks_uuid)) {
        img.add_file(CRYPTTAB, (tab + &s.crypttab_line()).into_bytes(), 0o644)?;
    }
    img.add_file(CMDLINE, cmdline(s).into_bytes(), 0o644)?;
    Ok(vec![format!(
        "dracut{}: /{CRYPTTAB} and /{CMDLINE} name the container; dracut unlocks it",
        if systemd { " (systemd)" } else { "" }
    )])
}

fn cmdline_names(img: &Image, s: &Settings) -> Result<(), String> {
    let words: Vec<String> = inimage::children(img, "etc/cmdline.d")
        .iter()
        .filter(|n| n.ends_with(".conf"))
        .filter_map(|n| inimage::text(img, &format!("etc/cmdline.d/{n}")))
        .flat_map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let uuid = words.iter().any(|w| {
        w.strip_prefix("rd.luks.uuid=")
            .map(|u| u.trim_start_matches("luks-"))
            .is_some_and(|u| u.eq_ignore_ascii_case(&s.luks_uuid))
    });
    if !uuid {
        return Err(format!("no rd.luks.uuid={} in /etc/cmdline.d", s.luks_uuid));
    }
    if !words.iter().any(|w| w == &format!("rd.lvm.vg={}", s.vg)) {
        return Err(format!("no rd.lvm.vg={} in /etc/cmdline.d", s.vg));
    }
    Ok(())
}

pub fn check(img: &Image, s: &Settings, systemd: bool) -> Vec<HookCheck> {
    let tab = match inimage::text(img, CRYPTTAB) {
        Some(t) if t.contains(&format!("UUID={}", s.luks_uuid)) => Ok(()),
        Some(_) => Err(format!("/{CRYPTTAB} does not name UUID={}", s.luks_uuid)),
        None => Err(format!("/{CRYPTTAB} is missing")),
    };
    let lvm = if inimage::exists(img, "usr/lib/dracut/hooks/cmdline/30-parse-lvm.sh")
        || inimage::exists(img, "lib/dracut/hooks/cmdline/30-parse-lvm.sh")
    {
        Ok(())
    } else {
        Err("dracut's lvm module (30-parse-lvm.sh) is missing".into())
    };
    vec![
        HookCheck::of("dracut crypt support", crypt_support(img, systemd)),
        HookCheck::of("crypttab entry", tab),
        HookCheck::of(
            "rd.luks.uuid / rd.lvm.vg in /etc/cmdline.d",
            cmdline_names(img, s),
        ),
        HookCheck::of("dracut lvm module", lvm),
    ]
}

//! Arch's mkinitcpio: a runtime hook in /hooks, named in the image's /config
//! HOOKS before lvm2, so the container is open when lvm2 activates volumes.

use anyhow::{Result, bail};

use super::{HookCheck, Settings, add_unlock_script, check_unlock_script};
use crate::initrd::image::Image;
use crate::initrd::inimage;

pub const HOOK: &str = include_str!("../../../initramfs/mkinitcpio-hook");
const CONFIG: &str = "config";

/// The HOOKS line with `luksify` placed before lvm2 (or last).
fn with_hook(line: &str) -> String {
    let Some((key, value)) = line.split_once('=') else {
        return line.to_string();
    };
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
    let inner = value.trim_matches(|c| c == '"' || c == '\'' || c == '(' || c == ')');
    let mut hooks: Vec<&str> = inner
        .split_whitespace()
        .filter(|h| *h != "luksify")
        .collect();
    let at = hooks
        .iter()
        .position(|h| *h == "lvm2")
        .unwrap_or(hooks.len());
    hooks.insert(at, "luksify");
    let q = quote.map(String::from).unwrap_or_default();
    format!("{key}={q}{}{q}", hooks.join(" "))
}

pub fn apply(img: &mut Image, s: &Settings) -> Result<Vec<String>> {
    let Some(config) = inimage::text(img, CONFIG) else {
        bail!("this mkinitcpio image has no /config naming its HOOKS");
    };
    if !config.lines().any(|l| l.starts_with("HOOKS=")) {
        bail!("/config of this mkinitcpio image has no HOOKS= line");
    }
    add_unlock_script(img, s)?;
    img.add_file("hooks/luksify", HOOK.as_bytes().to_vec(), 0o644)?;
    let new: String = config
        .lines()
        .map(|l| if l.starts_with("HOOKS=") { with_hook(l) } else { l.to_string() } + "\n")
        .collect();
    img.add_file(CONFIG, new.into_bytes(), 0o644)?;
    Ok(vec!["mkinitcpio: hook luksify runs before lvm2".into()])
}

pub fn check(img: &Image, s: &Settings) -> Vec<HookCheck> {
    let hook = match inimage::text(img, CONFIG) {
        _ if inimage::read(img, "hooks/luksify").is_none() => {
            Err("/hooks/luksify is missing".into())
        }
        Some(c)
            if c.lines().any(|l| {
                l.starts_with("HOOKS=") && {
                    let w: Vec<&str> = l
                        .split(|c: char| c.is_whitespace() || "=\"'()".contains(c))
                        .collect();
                    let me = w.iter().position(|h| *h == "luksify");
                    let lvm = w.iter().position(|h| *h == "lvm2");
                    me.is_some() && (lvm.is_none() || me < lvm)
                }
            }) =>
        {
            Ok(())
        }
        _ => Err("/config HOOKS does not run luksify before lvm2".into()),
    };
    vec![
        HookCheck::of("mkinitcpio hook", hook),
        HookCheck::of(
            "unlock script and its configuration",
            check_unlock_script(img, s),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn hook_goes_before_lvm2() {
        assert_eq!(
            super::with_hook("HOOKS='udev lvm2 filesystems'"),
            "HOOKS='udev luksify lvm2 filesystems'"
        );
        assert_eq!(super::with_hook("HOOKS=\"udev\""), "HOOKS=\"udev luksify\"");
    }
}

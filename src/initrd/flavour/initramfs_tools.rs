//! Debian/Ubuntu initramfs-tools: a scripts/local-top script, listed first in
//! scripts/local-top/ORDER (the file init runs instead of resolving PREREQs
//! when it exists), so the container is open before lvm2's own scripts and
//! the root wait look for the volume group. cryptroot/crypttab records the
//! container the way cryptsetup-initramfs would.

use anyhow::Result;

use super::{HookCheck, Settings, add_unlock_script, check_unlock_script};
use crate::initrd::image::Image;
use crate::initrd::inimage;

pub const HOOK: &str = include_str!("../../../initramfs/initramfs-tools-local-top");
const HOOK_PATH: &str = "scripts/local-top/luksify";
const ORDER: &str = "scripts/local-top/ORDER";
const CRYPTTAB: &str = "cryptroot/crypttab";

fn order_lines() -> String {
    format!("/{HOOK_PATH} \"$@\"\n[ -e /conf/param.conf ] && . /conf/param.conf\n")
}

/// ORDER with our script first, and only once when injecting again.
fn new_order(old: &str) -> String {
    let mut out = order_lines();
    let mut ours = false;
    for l in old.lines() {
        let param = l.starts_with("[ -e /conf/param.conf ]");
        if l.contains(HOOK_PATH) || (ours && param) {
            ours = !param;
            continue;
        }
        ours = false;
        out.push_str(l);
        out.push('\n');
    }
    out
}

pub fn apply(img: &mut Image, s: &Settings) -> Result<Vec<String>> {
    add_unlock_script(img, s)?;
    img.add_file(HOOK_PATH, HOOK.as_bytes().to_vec(), 0o755)?;
    let old = inimage::text(img, ORDER).unwrap_or_default();
    img.add_file(ORDER, new_order(&old).into_bytes(), 0o644)?;
    let tab = inimage::text(img, CRYPTTAB).unwrap_or_default();
    if !tab.contains(&s.luks_uuid) {
        img.add_file(CRYPTTAB, (tab + &s.crypttab_line()).into_bytes(), 0o644)?;
    }
    let mut notes = vec![format!(
        "initramfs-tools: /{HOOK_PATH} runs first in local-top"
    )];
    if let Some(root) = s.root_device() {
        notes.push(format!("boot with root={root}"));
    }
    Ok(notes)
}

pub fn check(img: &Image, s: &Settings) -> Vec<HookCheck> {
    let hook = if inimage::read(img, HOOK_PATH).is_none() {
        Err(format!("the local-top hook /{HOOK_PATH} is missing"))
    } else if !inimage::text(img, ORDER).is_some_and(|o| o.contains(&format!("/{HOOK_PATH}"))) {
        Err(format!("/{ORDER} does not run /{HOOK_PATH}"))
    } else {
        Ok(())
    };
    vec![
        HookCheck::of("initramfs-tools local-top hook", hook),
        HookCheck::of(
            "unlock script and its configuration",
            check_unlock_script(img, s),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_gets_our_script_first_and_once() {
        let debian =
            "/scripts/local-top/lvm2 \"$@\"\n[ -e /conf/param.conf ] && . /conf/param.conf\n";
        let once = super::new_order(debian);
        assert_eq!(once, super::order_lines() + debian);
        assert_eq!(super::new_order(&once), once);
        assert_eq!(super::new_order(""), super::order_lines());
    }
}

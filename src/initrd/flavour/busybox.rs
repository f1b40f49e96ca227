//! A generic busybox image: its /init is kept as /init.luksify-orig and a
//! wrapper takes its place, which unlocks by UUID and then hands over.

use anyhow::{Result, bail};

use super::{HookCheck, Settings, add_unlock_script, check_unlock_script};
use crate::initrd::image::Image;
use crate::initrd::inimage;

pub const WRAPPER: &str = include_str!("../../../initramfs/busybox-init");
const ORIG: &str = "init.luksify-orig";

pub fn apply(img: &mut Image, s: &Settings) -> Result<Vec<String>> {
    add_unlock_script(img, s)?;
    let current = inimage::read(img, "init");
    match current {
        // Injecting twice keeps the first original.
        Some(f) if f.data == WRAPPER.as_bytes() => {}
        Some(f) => {
            img.add_file(ORIG, f.data, f.mode & 0o7777)?;
            img.add_file("init", WRAPPER.as_bytes().to_vec(), 0o755)?;
        }
        None => bail!("the image has no /init to wrap; is it an initramfs the kernel can boot?"),
    }
    Ok(vec![format!(
        "busybox: /init wraps the original, kept as /{ORIG}"
    )])
}

pub fn check(img: &Image, s: &Settings) -> Vec<HookCheck> {
    let wrapper = match inimage::text(img, "init") {
        Some(t) if t.contains("luksify-unlock") && inimage::read(img, ORIG).is_some() => Ok(()),
        Some(_) => Err("/init does not run luksify-unlock before the original init".into()),
        None => Err("/init is missing".into()),
    };
    vec![
        HookCheck::of("/init wrapper", wrapper),
        HookCheck::of(
            "unlock script and its configuration",
            check_unlock_script(img, s),
        ),
    ]
}

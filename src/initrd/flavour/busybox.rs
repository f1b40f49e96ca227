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
        // Injecting again (by this or an older luksify, whose wrapper may
        // read differently) keeps the first original: saving a wrapper as
        // the original would make it exec itself forever.
        Some(f) if is_wrapped(img, &f.data) => {
            if f.data != WRAPPER.as_bytes() {
                img.add_file("init", WRAPPER.as_bytes().to_vec(), 0o755)?;
            }
        }
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

/// Whether `init` (the image's /init) is a luksify wrapper over a kept original.
fn is_wrapped(img: &Image, init: &[u8]) -> bool {
    init.windows(b"luksify-unlock".len())
        .any(|w| w == b"luksify-unlock")
        && inimage::read(img, ORIG).is_some()
}

pub fn check(img: &Image, s: &Settings) -> Vec<HookCheck> {
    let wrapper = match inimage::text(img, "init") {
        Some(t) if is_wrapped(img, t.as_bytes()) => Ok(()),
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

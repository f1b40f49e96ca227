//! Legacy Red Hat images whose /init is a nash script. After `mkblkdevs`
//! (when /dev holds the block devices) the container is opened by its UUID
//! and the real VG activated. nash has no shell loop, so the prompt is the
//! unlock script run by the image's sh when there is one.

use anyhow::{Result, bail};

use super::{HookCheck, Settings, add_unlock_script, check_unlock_script};
use crate::initrd::image::Image;
use crate::initrd::inimage;

pub fn is_nash(img: &Image) -> bool {
    inimage::text(img, "init")
        .is_some_and(|t| t.starts_with("#!/bin/nash") && t.contains("mkblkdevs"))
}

fn marker(s: &Settings) -> String {
    format!(
        "# luksify: unlock LUKS UUID {} and activate VG {}",
        s.luks_uuid, s.vg
    )
}

pub fn apply(img: &mut Image, s: &Settings) -> Result<Vec<String>> {
    let Some(init) = inimage::read(img, "init") else {
        bail!("this nash image has no /init");
    };
    let text = String::from_utf8_lossy(&init.data).into_owned();
    if inimage::read(img, "bin/sh").is_none() {
        bail!(
            "this nash image has no /bin/sh to run the passphrase prompt; add busybox to it first"
        );
    }
    add_unlock_script(img, s)?;
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if line.contains("luksify") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if !done && line.trim() == "mkblkdevs" {
            out.push_str(&format!(
                "{}\n/bin/sh /{}\nlvm vgscan\nlvm vgchange -ay {}\nmkblkdevs\n",
                marker(s),
                super::UNLOCK_PATH,
                s.vg
            ));
            done = true;
        }
    }
    if !done {
        bail!("the nash /init has no `mkblkdevs` line to put the unlock after");
    }
    img.add_file("init", out.into_bytes(), init.mode & 0o7777)?;
    Ok(vec![
        "nash: unlock and vgchange inserted after mkblkdevs".into(),
    ])
}

pub fn check(img: &Image, s: &Settings) -> Vec<HookCheck> {
    let hook = match inimage::text(img, "init") {
        Some(t) if t.contains(&marker(s)) => Ok(()),
        _ => Err("/init does not unlock the container after mkblkdevs".into()),
    };
    vec![
        HookCheck::of("nash init", hook),
        HookCheck::of(
            "unlock script and its configuration",
            check_unlock_script(img, s),
        ),
    ]
}

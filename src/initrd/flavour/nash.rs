//! Legacy Red Hat images whose /init is a nash script. After `mkblkdevs`
//! (when /dev holds the block devices) the container is opened by its UUID
//! and the real VG activated. nash has no shell loop, so the prompt is the
//! unlock script run by the image's sh when there is one.
//!
//! CentOS 5's mkinitrd writes `mkblkdevs` twice: once before the storage
//! drivers are loaded (no disk yet) and once after them, just before
//! `lvm vgscan`. The unlock goes after the last one before the first `lvm`
//! line, where the seed put it by hand ("before `echo Scanning and
//! configuring dmraid supported devices`"). Its lvm lines carry
//! `--ignorelockingfailure`, as mkinitrd's own do: the initrd has no
//! writable lock directory.

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
    let Some(out) = insert_unlock(&text, s) else {
        bail!("the nash /init has no `mkblkdevs` line to put the unlock after");
    };
    img.add_file("init", out.into_bytes(), init.mode & 0o7777)?;
    Ok(vec![
        "nash: unlock and vgchange inserted after mkblkdevs".into(),
    ])
}

/// `init` without an earlier run's lines, with the unlock after the
/// `mkblkdevs` that comes last before the first `lvm` command (the last one
/// when there is no lvm line); None without any `mkblkdevs`.
fn insert_unlock(init: &str, s: &Settings) -> Option<String> {
    // The luksify lines are the marker comment and the lines it introduces;
    // an earlier run's are dropped and written again.
    let mut lines: Vec<&str> = Vec::new();
    let mut skip = 0;
    for line in init.lines() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if line.starts_with("# luksify: unlock LUKS UUID") {
            skip = ADDED_AFTER_MARKER;
            continue;
        }
        lines.push(line);
    }
    let first_lvm = lines
        .iter()
        .position(|l| l.trim_start().starts_with("lvm "))
        .unwrap_or(lines.len());
    let at = lines[..first_lvm]
        .iter()
        .rposition(|l| l.trim() == "mkblkdevs")?;
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        if i == at {
            out.push_str(&format!(
                "{}\n/bin/sh /{}\nlvm vgscan --ignorelockingfailure\nlvm vgchange -ay --ignorelockingfailure {}\nmkblkdevs\n",
                marker(s),
                super::UNLOCK_PATH,
                s.vg
            ));
        }
    }
    Some(out)
}

/// Lines written after the marker comment by [`insert_unlock`].
const ADDED_AFTER_MARKER: usize = 4;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of CentOS 5's mkinitrd /init (2.6.18-53.el5), shortened.
    const CENTOS5_INIT: &str = "#!/bin/nash\n\
mount -t proc /proc /proc\n\
echo Creating block device nodes.\n\
mkblkdevs\n\
echo \"Loading ata_piix.ko module\"\n\
insmod /lib/ata_piix.ko\n\
echo \"Loading dm-mod.ko module\"\n\
insmod /lib/dm-mod.ko\n\
echo Waiting for driver initialization.\n\
stabilized --hash --interval 250 /proc/scsi/scsi\n\
mkblkdevs\n\
echo Scanning and configuring dmraid supported devices\n\
echo Scanning logical volumes\n\
lvm vgscan --ignorelockingfailure\n\
echo Activating logical volumes\n\
lvm vgchange -ay --ignorelockingfailure  VolGroup00\n\
mkblkdevs\n\
mkrootdev -t ext3 -o defaults,ro /dev/VolGroup00/LogVol00\n\
switchroot\n";

    fn settings() -> Settings {
        Settings::new(
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "VolGroup00",
            Some("LogVol00"),
            None,
        )
        .unwrap()
    }

    #[test]
    fn the_unlock_follows_the_mkblkdevs_after_the_drivers() {
        let s = settings();
        let out = insert_unlock(CENTOS5_INIT, &s).unwrap();
        let (before, after) = out.split_once("# luksify: unlock").unwrap();
        // The disk driver is loaded before the unlock looks for the disk.
        assert!(before.contains("insmod /lib/ata_piix.ko"), "{out}");
        assert!(before.ends_with("/proc/scsi/scsi\nmkblkdevs\n"), "{out}");
        assert!(
            after.contains(
                "\n/bin/sh /sbin/luksify-unlock\nlvm vgscan --ignorelockingfailure\n\
                 lvm vgchange -ay --ignorelockingfailure VolGroup00\nmkblkdevs\n\
                 echo Scanning and configuring dmraid"
            ),
            "{out}"
        );
        // Again: the same text, not a second copy.
        assert_eq!(insert_unlock(&out, &s).unwrap(), out);
        // An init with one mkblkdevs and no lvm line gets it there.
        let short = "#!/bin/nash\nmkblkdevs\nswitchroot\n";
        let one = insert_unlock(short, &s).unwrap();
        assert!(
            one.starts_with("#!/bin/nash\nmkblkdevs\n# luksify"),
            "{one}"
        );
        assert!(one.ends_with("mkblkdevs\nswitchroot\n"), "{one}");
        assert!(insert_unlock("#!/bin/nash\nswitchroot\n", &s).is_none());
    }
}

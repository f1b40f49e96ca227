//! /etc/crypttab: one line for the root container, appended; every other line
//! (comments, spacing, other devices) is left exactly as it was.
//!
//! The type is always written as `luks`: Debian's cryptsetup treats a line
//! without a type as plain dm-crypt, which would "open" the container with
//! the passphrase as a raw key and hand garbage to LVM.

use std::path::Path;

use super::flavour_params::Flavour;
use super::{BootChanges, BootRefusal, BootRequest, FileEdit, target_fs};

const PATH: &str = "/etc/crypttab";

/// The options our line carries for this flavour.
pub fn options(req: &BootRequest, flavour: Flavour) -> Vec<&'static str> {
    let mut o = vec!["luks"];
    if req.discard {
        o.push("discard");
    }
    // Debian's cryptroot hook only puts devices it can trace to / into the
    // image; inside a chroot on a live CD it may not manage, so say it.
    if flavour == Flavour::InitramfsTools {
        o.push("initramfs");
    }
    o
}

fn is_our_source(source: &str, uuid: &str) -> bool {
    let u = source
        .strip_prefix("UUID=")
        .or_else(|| source.strip_prefix("/dev/disk/by-uuid/"));
    u.is_some_and(|u| u.trim_matches('"').eq_ignore_ascii_case(uuid))
}

/// The new crypttab text, or `None` when a correct line is already there.
pub fn edit(
    text: &str,
    req: &BootRequest,
    flavour: Flavour,
) -> Result<Option<String>, BootRefusal> {
    let wanted = options(req, flavour);
    let mut uses_tabs = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        uses_tabs |= line.contains('\t');
        let f: Vec<&str> = t.split_whitespace().collect();
        let (name, source) = (f[0], f.get(1).copied().unwrap_or(""));
        let opts: Vec<&str> = f.get(3).map(|o| o.split(',').collect()).unwrap_or_default();
        let ours = is_our_source(source, &req.luks_uuid);
        if ours && name != req.mapper_name {
            return Err(BootRefusal::config(
                PATH,
                format!(
                    "line {} already opens the container as {name:?}, but the boot configuration is being planned for {:?}; use --mapper-name {name} or remove that line",
                    n + 1,
                    req.mapper_name
                ),
            ));
        }
        if !ours && name == req.mapper_name {
            return Err(BootRefusal::config(
                PATH,
                format!(
                    "line {} already uses the name {name:?} for {source}; choose another --mapper-name",
                    n + 1
                ),
            ));
        }
        if ours {
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|w| !opts.contains(w))
                .collect();
            if !missing.is_empty() {
                return Err(BootRefusal::config(
                    PATH,
                    format!(
                        "line {} for the root container lacks the option(s) {}; luksify leaves existing lines alone, so add them (or remove the line) and run again",
                        n + 1,
                        missing.join(",")
                    ),
                ));
            }
            return Ok(None);
        }
    }
    let sep = if uses_tabs { "\t" } else { " " };
    let line = [
        req.mapper_name.as_str(),
        &format!("UUID={}", req.luks_uuid.to_ascii_lowercase()),
        "none",
        &wanted.join(","),
    ]
    .join(sep);
    let mut out = text.to_string();
    if out.is_empty() {
        out.push_str("# <target name>\t<source device>\t\t<key file>\t<options>\n");
    } else if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&line);
    out.push('\n');
    Ok(Some(out))
}

pub fn plan(
    root: &Path,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    if matches!(
        flavour,
        Flavour::MkinitcpioEncrypt | Flavour::MkinitcpioSdEncrypt
    ) {
        // Arch's crypttab says not to list the root device: mkinitcpio
        // unlocks it from the kernel command line.
        ch.note(format!(
            "{PATH} is left alone: mkinitcpio unlocks the root container from the kernel command line"
        ));
        return Ok(());
    }
    let (path, before) = match target_fs::read(root, PATH)? {
        Some((p, b)) => (p, Some(b)),
        None => (PATH.into(), None),
    };
    let text = String::from_utf8_lossy(before.as_deref().unwrap_or_default()).into_owned();
    match edit(&text, req, flavour)? {
        Some(after) => {
            let why = format!(
                "unlock the root container (LUKS UUID {}) as /dev/mapper/{}{}",
                req.luks_uuid,
                req.mapper_name,
                if flavour == Flavour::InitramfsTools {
                    "; `initramfs` makes Debian's cryptroot hook put it into the initramfs"
                } else {
                    ""
                }
            );
            if let Some(e) = FileEdit::if_changed(path, before, after.into_bytes(), why) {
                ch.push_edit(e);
            }
        }
        None => ch.note(format!("{PATH} already has a line for the root container")),
    }
    if !req.discard {
        ch.note("discards (TRIM) are not passed through the container; pass --discard to allow them (this reveals which blocks are unused)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::tests::req;

    const DEBIAN: &str = "# <target name>\t<source device>\t\t<key file>\t<options>\n\
                          swap_crypt\t/dev/sdb1\t/dev/urandom\tswap,cipher=aes-xts-plain64,size=256\n";

    #[test]
    fn appends_with_luks_and_initramfs_keeping_the_rest() {
        let out = edit(DEBIAN, &req(), Flavour::InitramfsTools)
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            format!(
                "{DEBIAN}luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7\tUUID=3f5ad593-4546-4a94-a374-bcfb68aa11f7\tnone\tluks,initramfs\n"
            )
        );
        assert_eq!(edit(&out, &req(), Flavour::InitramfsTools).unwrap(), None);
    }

    #[test]
    fn discard_only_when_asked_and_no_initramfs_for_dracut() {
        let mut r = req();
        r.discard = true;
        let out = edit("", &r, Flavour::Dracut).unwrap().unwrap();
        assert!(out.ends_with(" none luks,discard\n"), "{out}");
        assert!(out.starts_with("# <target name>"));
        let out = edit("x /dev/sdc1 none luks", &req(), Flavour::Dracut)
            .unwrap()
            .unwrap();
        assert!(out.starts_with("x /dev/sdc1 none luks\nluks-"), "{out}");
    }

    #[test]
    fn conflicts_are_refused() {
        let other_name = "cryptroot UUID=3F5AD593-4546-4A94-A374-BCFB68AA11F7 none luks\n";
        let e = edit(other_name, &req(), Flavour::Dracut)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--mapper-name cryptroot"), "{e}");
        let taken = "luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7 /dev/sdc1 none luks\n";
        assert!(edit(taken, &req(), Flavour::Dracut).is_err());
        let lacking = "luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7 /dev/disk/by-uuid/3f5ad593-4546-4a94-a374-bcfb68aa11f7 none luks\n";
        let e = edit(lacking, &req(), Flavour::InitramfsTools)
            .unwrap_err()
            .to_string();
        assert!(e.contains("initramfs"), "{e}");
        assert_eq!(edit(lacking, &req(), Flavour::Dracut).unwrap(), None);
        let mut with_discard = req();
        with_discard.discard = true;
        let e = edit(lacking, &with_discard, Flavour::Dracut)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks the option(s) discard"), "{e}");
    }
}

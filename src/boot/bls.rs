//! Boot Loader Specification entries (/boot/loader/entries/*.conf, written by
//! kernel-install for GRUB's blscfg and for systemd-boot), the GRUB
//! environment block that holds `$kernelopts` on RHEL 8-era systems, and
//! /etc/kernel/cmdline, from which kernel-install builds future entries.

use std::path::Path;

use super::flavour_params::{Flavour, apply, kernel_params};
use super::kargs::Cmdline;
use super::{BootChanges, BootRefusal, BootRequest, FileEdit, target_fs};

/// Edits every `options` line of an entry. Returns the new text (None when
/// unchanged) and whether the entry defers to `$kernelopts`.
pub fn edit_entry(
    text: &str,
    req: &BootRequest,
    flavour: Flavour,
) -> Result<(Option<String>, bool), BootRefusal> {
    let mut out = String::with_capacity(text.len() + 128);
    let mut uses_kernelopts = false;
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let eol = &line[body.len()..];
        let indent_len = body.len() - body.trim_start().len();
        let rest = &body[indent_len..];
        let is_options = rest
            .strip_prefix("options")
            .is_some_and(|r| r.is_empty() || r.starts_with(char::is_whitespace));
        if !is_options {
            out.push_str(line);
            continue;
        }
        let after_key = &rest["options".len()..];
        let sep_len = after_key.len() - after_key.trim_start().len();
        let value = &after_key[sep_len..];
        if value.contains("$kernelopts") || value.contains("${kernelopts}") {
            uses_kernelopts = true;
            out.push_str(line);
            continue;
        }
        let mut c = Cmdline::parse(value);
        let params = kernel_params(flavour, req, &c);
        if apply(&mut c, &params)? {
            changed = true;
        }
        let sep = if sep_len == 0 {
            " "
        } else {
            &after_key[..sep_len]
        };
        out.push_str(&body[..indent_len]);
        out.push_str("options");
        out.push_str(sep);
        out.push_str(&c.to_string());
        out.push_str(eol);
    }
    Ok((changed.then_some(out), uses_kernelopts))
}

/// Edits the `kernelopts` variable of a GRUB environment block, keeping it
/// exactly as long as it was (GRUB reads a fixed 1024-byte block).
pub fn edit_grubenv(
    block: &[u8],
    req: &BootRequest,
    flavour: Flavour,
) -> Result<Option<Vec<u8>>, String> {
    let text = std::str::from_utf8(block).map_err(|_| "not valid UTF-8".to_string())?;
    let Some(body) = text.strip_prefix("# GRUB Environment Block\n") else {
        return Err("does not start with \"# GRUB Environment Block\"".into());
    };
    let mut vars: Vec<String> = Vec::new();
    for line in body.split('\n') {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        vars.push(line.to_string());
    }
    let Some(i) = vars.iter().position(|v| v.starts_with("kernelopts=")) else {
        return Err("has no kernelopts variable, but a boot entry uses $kernelopts".into());
    };
    let mut c = Cmdline::parse(&vars[i]["kernelopts=".len()..]);
    let params = kernel_params(flavour, req, &c);
    if !apply(&mut c, &params).map_err(|e| e.to_string())? {
        return Ok(None);
    }
    vars[i] = format!("kernelopts={c}");
    let mut out = String::from("# GRUB Environment Block\n");
    for v in &vars {
        out.push_str(v);
        out.push('\n');
    }
    if out.len() > block.len() {
        return Err(format!(
            "the new kernelopts do not fit into the {}-byte block",
            block.len()
        ));
    }
    let pad = block.len() - out.len();
    out.extend(std::iter::repeat_n('#', pad));
    Ok(Some(out.into_bytes()))
}

/// Edits /etc/kernel/cmdline if the target has one.
pub fn plan_kernel_cmdline(
    root: &Path,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    match target_fs::read(root, "/etc/kernel/cmdline")? {
        Some((path, before)) => {
            let text = String::from_utf8_lossy(&before);
            let mut c = Cmdline::parse(&text);
            let params = kernel_params(flavour, req, &c);
            apply(&mut c, &params)?;
            if let Some(e) = FileEdit::if_changed(
                path,
                Some(before.clone()),
                c.to_string().into_bytes(),
                "kernel-install copies this command line into entries for future kernels",
            ) {
                ch.push_edit(e);
            }
        }
        None => ch.note(
            "/etc/kernel/cmdline does not exist: entries for future kernels take the running system's /proc/cmdline, which carries these parameters once the machine has booted from the encrypted root",
        ),
    }
    Ok(())
}

/// Every entry in `dir` (a target path), plus grubenv and /etc/kernel/cmdline.
pub fn plan(
    root: &Path,
    dir: &str,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    plan_entries(root, dir, req, flavour, ch)?;
    plan_kernel_cmdline(root, req, flavour, ch)
}

/// Every entry in `dir` (a target path), plus grubenv when they use `$kernelopts`.
pub fn plan_entries(
    root: &Path,
    dir: &str,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    let mut kernelopts = false;
    let mut entries = 0;
    for name in target_fs::list_dir(root, dir) {
        if !name.ends_with(".conf") {
            continue;
        }
        let Some((path, before)) = target_fs::read(root, &format!("{dir}/{name}"))? else {
            continue;
        };
        entries += 1;
        let (after, ko) = edit_entry(&String::from_utf8_lossy(&before), req, flavour)?;
        kernelopts |= ko;
        if let Some(after) = after
            && let Some(e) = FileEdit::if_changed(
                path,
                Some(before),
                after.into_bytes(),
                format!("kernel parameters for {}", flavour.name()),
            )
        {
            ch.push_edit(e);
        }
    }
    if entries == 0 {
        ch.note(format!("no boot entries in {dir}"));
    }
    if kernelopts {
        let env = "/boot/grub2/grubenv";
        let Some((path, before)) = target_fs::read(root, env)? else {
            return Err(BootRefusal::config(
                env,
                "boot entries use $kernelopts but the GRUB environment block is missing",
            ));
        };
        match edit_grubenv(&before, req, flavour) {
            Ok(Some(after)) => {
                if let Some(e) = FileEdit::if_changed(
                    path,
                    Some(before),
                    after,
                    "kernelopts, which the boot entries' `options $kernelopts` expand to",
                ) {
                    ch.push_edit(e);
                }
            }
            Ok(None) => {}
            Err(problem) => return Err(BootRefusal::config(path, problem)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::tests::req;

    #[test]
    fn options_line_edited_in_place() {
        let e = "title Fedora Linux (6.5.6-300.fc39.x86_64) 39 (Server Edition)\n\
                 version 6.5.6-300.fc39.x86_64\n\
                 linux /vmlinuz-6.5.6-300.fc39.x86_64\n\
                 initrd /initramfs-6.5.6-300.fc39.x86_64.img\n\
                 options root=/dev/mapper/vg0-root ro rd.lvm.lv=vg0/root rhgb quiet\n\
                 grub_users $grub_users\n";
        let (out, ko) = edit_entry(e, &req(), Flavour::Dracut).unwrap();
        assert!(!ko);
        let out = out.unwrap();
        assert_eq!(
            out.lines().nth(4).unwrap(),
            "options root=/dev/mapper/vg0-root ro rd.lvm.lv=vg0/root rhgb quiet rd.luks.uuid=luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7"
        );
        assert_eq!(out.lines().count(), 6);
        assert_eq!(edit_entry(&out, &req(), Flavour::Dracut).unwrap().0, None);
    }

    #[test]
    fn kernelopts_goes_to_grubenv_of_the_same_size() {
        let (out, ko) = edit_entry(
            "options $kernelopts $tuned_params\n",
            &req(),
            Flavour::Dracut,
        )
        .unwrap();
        assert!(ko && out.is_none());
        let mut env = String::from(
            "# GRUB Environment Block\nsaved_entry=abc-4.18.0-513.el8.x86_64\nkernelopts=root=/dev/mapper/vg0-root ro rd.lvm.lv=vg0/root rhgb quiet \nboot_success=0\n",
        );
        while env.len() < 1024 {
            env.push('#');
        }
        let new = edit_grubenv(env.as_bytes(), &req(), Flavour::Dracut)
            .unwrap()
            .unwrap();
        assert_eq!(new.len(), 1024);
        let s = String::from_utf8(new.clone()).unwrap();
        assert!(s.contains("\nkernelopts=root=/dev/mapper/vg0-root ro rd.lvm.lv=vg0/root rhgb quiet rd.luks.uuid=luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7 \nboot_success=0\n#"), "{s}");
        assert_eq!(edit_grubenv(&new, &req(), Flavour::Dracut).unwrap(), None);
        assert!(edit_grubenv(b"garbage", &req(), Flavour::Dracut).is_err());
    }
}

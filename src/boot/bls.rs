//! Boot Loader Specification entries (/boot/loader/entries/*.conf, written by
//! kernel-install for GRUB's blscfg and for systemd-boot), the GRUB
//! environment block that holds `$kernelopts` on RHEL 8-era systems, and
//! /etc/kernel/cmdline, from which kernel-install builds future entries.

use std::path::Path;

use super::flavour_params::{Flavour, ParamChange, apply, kernel_params};
use super::kargs::Cmdline;
use super::{BootChanges, BootRefusal, BootRequest, FileEdit, target_fs};

/// Where an `options` line's value sits.
struct OptionsLine {
    index: usize,
    /// Byte offset of the value in the line's body.
    value_at: usize,
}

fn options_line(line: &str) -> Option<usize> {
    let body = line.trim_end_matches(['\n', '\r']);
    let indent_len = body.len() - body.trim_start().len();
    let r = body[indent_len..].strip_prefix("options")?;
    if !(r.is_empty() || r.starts_with(char::is_whitespace)) {
        return None;
    }
    Some(body.len() - r.trim_start().len())
}

/// Which of `params` one `options` line gets. The BLS joins all `options`
/// lines into one command line, so a parameter is replaced (or removed) on
/// the lines that have it and added once, to the last line, only when no
/// line has it: several lines never end up repeating what was added.
fn params_for_line(
    params: &[ParamChange],
    line: &Cmdline,
    joined: &Cmdline,
    last: bool,
) -> Vec<ParamChange> {
    params
        .iter()
        .filter(|p| match p {
            ParamChange::Set { key, .. } => {
                line.contains_key(key) || (last && !joined.contains_key(key))
            }
            ParamChange::Add { key, value, same } => {
                last && !joined
                    .values(key)
                    .iter()
                    .any(|v| v.is_some_and(|v| v == value || same.iter().any(|s| s == v)))
            }
            ParamChange::Remove { .. } => true,
        })
        .cloned()
        .collect()
}

/// Edits the `options` lines of an entry; a boot entry for a kernel
/// (`linux`) without any gets one. Returns the new text (None when
/// unchanged) and whether the entry defers to `$kernelopts`, whose value
/// lives in grubenv and is edited there instead.
pub fn edit_entry(
    text: &str,
    req: &BootRequest,
    flavour: Flavour,
) -> Result<(Option<String>, bool), BootRefusal> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let opts: Vec<OptionsLine> = lines
        .iter()
        .enumerate()
        .filter_map(|(index, l)| options_line(l).map(|value_at| OptionsLine { index, value_at }))
        .collect();
    let value = |o: &OptionsLine, lines: &[String]| -> String {
        lines[o.index].trim_end_matches(['\n', '\r'])[o.value_at..].to_string()
    };
    let values: Vec<String> = opts.iter().map(|o| value(o, &lines)).collect();
    if values
        .iter()
        .any(|v| v.contains("$kernelopts") || v.contains("${kernelopts}"))
    {
        return Ok((None, true));
    }
    if opts.is_empty() {
        if field_of(text, "linux").is_none() {
            return Ok((None, false));
        }
        let mut c = Cmdline::parse("");
        let params = kernel_params(flavour, req, &c);
        if !apply(&mut c, &params)? {
            return Ok((None, false));
        }
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("options {c}\n"));
        return Ok((Some(out), false));
    }
    let joined = Cmdline::parse(&values.join(" "));
    let params = kernel_params(flavour, req, &joined);
    let mut changed = false;
    for (k, o) in opts.iter().enumerate() {
        let mut c = Cmdline::parse(&values[k]);
        let mine = params_for_line(&params, &c, &joined, k + 1 == opts.len());
        if !apply(&mut c, &mine)? {
            continue;
        }
        changed = true;
        let line = &lines[o.index];
        let body = line.trim_end_matches(['\n', '\r']);
        let eol = &line[body.len()..];
        let mut head = body[..o.value_at].to_string();
        if !head.ends_with(char::is_whitespace) {
            head.push(' ');
        }
        lines[o.index] = format!("{head}{c}{eol}");
    }
    Ok((changed.then(|| lines.concat()), false))
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

/// One boot entry as the boot loader will read it once the edits are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    /// File name without `.conf`: what grubenv's `saved_entry` and
    /// loader.conf's `default` name.
    pub id: String,
    pub version: Option<String>,
    /// Every `options` line joined (the BLS concatenates them), with
    /// `$kernelopts` expanded; `None` when the entry has no `options` line.
    pub options: Option<String>,
}

/// The values of an entry's `options` lines, joined by a space.
fn options_of(text: &str) -> Option<String> {
    let mut parts = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(r) = t.strip_prefix("options")
            && (r.is_empty() || r.starts_with(char::is_whitespace))
        {
            parts.push(r.trim().to_string());
        }
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn field_of(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let r = l.trim_start().strip_prefix(key)?;
        r.starts_with(char::is_whitespace)
            .then(|| r.trim().to_string())
    })
}

/// A variable of a GRUB environment block.
pub fn grubenv_var(block: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(block).lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix('='))
            .map(str::to_string)
    })
}

/// Glob match with `*` and `?`, as loader.conf's `default` uses.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Version strings compared the way people (and rpm's vercmp, roughly)
/// do: runs of digits as numbers.
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> Vec<(bool, &str)> {
        let mut v = Vec::new();
        let mut start = 0;
        let b = s.as_bytes();
        for i in 1..=b.len() {
            if i == b.len() || b[i].is_ascii_digit() != b[start].is_ascii_digit() {
                v.push((b[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        v
    }
    let (ra, rb) = (runs(a), runs(b));
    for (x, y) in ra.iter().zip(rb.iter()) {
        let o = match (x.0, y.0) {
            (true, true) => {
                let (tx, ty) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
            }
            _ => x.1.cmp(y.1),
        };
        if o.is_ne() {
            return o;
        }
    }
    ra.len().cmp(&rb.len())
}

fn is_rescue(e: &EntryView) -> bool {
    e.id.contains("rescue") || e.version.as_deref().is_some_and(|v| v.contains("rescue"))
}

/// The entry the machine boots by default: the one `default` names (grubenv's
/// saved_entry, loader.conf's glob), else the newest non-rescue entry, which
/// is what GRUB's blscfg and systemd-boot put first.
pub fn default_entry<'a>(entries: &'a [EntryView], default: Option<&str>) -> Option<&'a EntryView> {
    let with_options = || entries.iter().filter(|e| e.options.is_some());
    if let Some(d) = default
        && let Some(e) =
            with_options().find(|e| glob(d, &e.id) || glob(d, &format!("{}.conf", e.id)))
    {
        return Some(e);
    }
    with_options().filter(|e| !is_rescue(e)).max_by(|a, b| {
        version_cmp(
            a.version.as_deref().unwrap_or(&a.id),
            b.version.as_deref().unwrap_or(&b.id),
        )
    })
}

/// The command line for future kernels, from an entry's options: without
/// what belongs to one boot or one entry (BOOT_IMAGE= and initrd= are added
/// by the boot loader, systemd.machine_id= by kernel-install per entry) and
/// without GRUB variables such as `$tuned_params`, which mean nothing to
/// other readers of this file (ukify, dracut --uefi) and which their owner
/// adds to new entries itself (tuned's 92-tuned.install). kernel-install's
/// own /proc/cmdline fallback drops BOOT_IMAGE= and initrd= likewise.
pub fn future_cmdline(options: &str) -> String {
    let mut c = Cmdline::parse(options.trim());
    let drop: Vec<String> = c
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| {
            ["BOOT_IMAGE", "initrd", "systemd.machine_id"].contains(&k.as_str())
                || k.starts_with('$')
        })
        .collect();
    for k in drop {
        c.remove(&k);
    }
    format!("{}\n", c.to_string().trim())
}

/// /etc/kernel/cmdline: where kernel-install (systemd's 90-loaderentry and
/// Fedora's 20-grub.install alike) takes the options of entries for future
/// kernels. It reads /etc/kernel/cmdline, else /usr/lib/kernel/cmdline, else
/// /proc/cmdline, which on a live CD is the live system's and would make the
/// next kernel update write an entry that cannot boot. So when the target has
/// no /etc/kernel/cmdline, it gets one: the vendor's /usr/lib/kernel/cmdline
/// plus our parameters if there is one, else the default entry's new options.
pub fn plan_kernel_cmdline(
    root: &Path,
    req: &BootRequest,
    flavour: Flavour,
    entries: &[EntryView],
    default: Option<&str>,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    const ETC: &str = "/etc/kernel/cmdline";
    const USR: &str = "/usr/lib/kernel/cmdline";
    if let Some((path, before)) = target_fs::read(root, ETC)? {
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
        return Ok(());
    }
    let path = target_fs::resolve(root, Path::new(ETC));
    if let Some((_, vendor)) = target_fs::read(root, USR)? {
        let text = String::from_utf8_lossy(&vendor);
        let mut c = Cmdline::parse(&text.split_whitespace().collect::<Vec<_>>().join(" "));
        let params = kernel_params(flavour, req, &c);
        if apply(&mut c, &params)? {
            ch.push_edit(FileEdit {
                path,
                before: None,
                after: format!("{c}\n").into_bytes(),
                why: format!(
                    "kernel-install takes the options of future kernels' entries from {ETC}, else from {USR}, which lacks what {} needs; {ETC} overrides it, so it is {USR} plus those parameters",
                    flavour.name()
                ),
            });
        }
        return Ok(());
    }
    let Some(e) = default_entry(entries, default) else {
        ch.note(format!(
            "neither {ETC} nor {USR} exists and no boot entry has an options line to copy: kernel-install would give future kernels the running system's /proc/cmdline, which from a live CD is the live system's. Write the kernel command line into {ETC} in the target before the next kernel update"
        ));
        return Ok(());
    };
    let mut c = Cmdline::parse(&future_cmdline(e.options.as_deref().unwrap_or("")));
    let params = kernel_params(flavour, req, &c);
    apply(&mut c, &params)?;
    ch.push_edit(FileEdit {
        path,
        before: None,
        after: c.to_string().into_bytes(),
        why: format!(
            "neither {ETC} nor {USR} exists, so kernel-install would give future kernels the running system's /proc/cmdline, which from a live CD is the live system's and cannot boot this root; this is the default entry's ({}) new options, without per-boot BOOT_IMAGE=/initrd=",
            e.id
        ),
    });
    Ok(())
}

/// Every entry in `dir` (a target path), plus grubenv and /etc/kernel/cmdline.
/// The default entry is grubenv's `saved_entry` when it names one.
pub fn plan(
    root: &Path,
    dir: &str,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    let entries = plan_entries(root, dir, req, flavour, ch)?;
    let saved = target_fs::read(root, GRUBENV)?.and_then(|(_, b)| grubenv_var(&b, "saved_entry"));
    plan_kernel_cmdline(root, req, flavour, &entries, saved.as_deref(), ch)
}

const GRUBENV: &str = "/boot/grub2/grubenv";

/// Every entry in `dir` (a target path), plus grubenv when they use
/// `$kernelopts`. Returns the entries as they will read after the edits.
pub fn plan_entries(
    root: &Path,
    dir: &str,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<Vec<EntryView>, BootRefusal> {
    let mut kernelopts = false;
    let mut views = Vec::new();
    for name in target_fs::list_dir(root, dir) {
        let Some(id) = name.strip_suffix(".conf") else {
            continue;
        };
        let Some((path, before)) = target_fs::read(root, &format!("{dir}/{name}"))? else {
            continue;
        };
        let text = String::from_utf8_lossy(&before).into_owned();
        let (after, ko) = edit_entry(&text, req, flavour)?;
        kernelopts |= ko;
        let new_text = after.as_deref().unwrap_or(&text);
        views.push(EntryView {
            id: id.to_string(),
            version: field_of(new_text, "version"),
            options: options_of(new_text),
        });
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
    if views.is_empty() {
        ch.note(format!("no boot entries in {dir}"));
    }
    if kernelopts {
        let Some((path, before)) = target_fs::read(root, GRUBENV)? else {
            return Err(BootRefusal::config(
                GRUBENV,
                "boot entries use $kernelopts but the GRUB environment block is missing",
            ));
        };
        let new_block = match edit_grubenv(&before, req, flavour) {
            Ok(Some(after)) => after,
            Ok(None) => before.clone(),
            Err(problem) => return Err(BootRefusal::config(path, problem)),
        };
        let value = grubenv_var(&new_block, "kernelopts").unwrap_or_default();
        for v in &mut views {
            if let Some(o) = &v.options {
                v.options = Some(
                    o.split(' ')
                        .map(|w| match w {
                            "$kernelopts" | "${kernelopts}" => value.trim(),
                            w => w,
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
        }
        if let Some(e) = FileEdit::if_changed(
            path,
            Some(before),
            new_block,
            "kernelopts, which the boot entries' `options $kernelopts` expand to",
        ) {
            ch.push_edit(e);
        }
    }
    Ok(views)
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
    fn view(id: &str, version: Option<&str>, options: Option<&str>) -> EntryView {
        EntryView {
            id: id.into(),
            version: version.map(Into::into),
            options: options.map(Into::into),
        }
    }

    #[test]
    fn default_entry_named_then_newest_non_rescue() {
        let es = [
            view("m-0-rescue", Some("0-rescue-m"), Some("ro rescue")),
            view(
                "m-6.5.6-300.fc39.x86_64",
                Some("6.5.6-300.fc39.x86_64"),
                Some("ro a"),
            ),
            view(
                "m-6.10.2-200.fc39.x86_64",
                Some("6.10.2-200.fc39.x86_64"),
                Some("ro b"),
            ),
            view("handmade", None, None),
        ];
        assert_eq!(
            default_entry(&es, None).unwrap().options.as_deref(),
            Some("ro b")
        );
        assert_eq!(
            default_entry(&es, Some("m-6.5.6-300.fc39.x86_64"))
                .unwrap()
                .id,
            "m-6.5.6-300.fc39.x86_64"
        );
        // loader.conf globs, with or without .conf; a stale name falls back.
        assert_eq!(
            default_entry(&es, Some("m-6.5*.conf"))
                .unwrap()
                .options
                .as_deref(),
            Some("ro a")
        );
        assert_eq!(
            default_entry(&es, Some("gone")).unwrap().options.as_deref(),
            Some("ro b")
        );
        // An entry without options is never the source.
        assert_eq!(default_entry(&es[3..], None), None);
        assert!(glob("a*c?", "abbbcd") && !glob("a*c", "abd") && glob("*", ""));
        assert!(version_cmp("4.18.0-513", "4.18.0-477").is_gt());
        assert!(version_cmp("6.10", "6.9").is_gt());
    }

    #[test]
    fn future_cmdline_drops_per_boot_words() {
        assert_eq!(
            future_cmdline(
                "BOOT_IMAGE=/vmlinuz-6.5 root=/dev/mapper/vg0-root ro initrd=\\initrd.img quiet $tuned_params systemd.machine_id=abc"
            ),
            "root=/dev/mapper/vg0-root ro quiet\n"
        );
    }

    #[test]
    fn grubenv_variables() {
        let b = b"# GRUB Environment Block\nsaved_entry=x-1.0\nkernelopts=root=/dev/sda1 ro \n####";
        assert_eq!(grubenv_var(b, "saved_entry").as_deref(), Some("x-1.0"));
        assert_eq!(
            grubenv_var(b, "kernelopts").as_deref(),
            Some("root=/dev/sda1 ro ")
        );
        assert_eq!(grubenv_var(b, "kernel"), None);
    }

    #[test]
    fn several_options_lines_are_one_command_line() {
        let e = "title x\nlinux /vmlinuz\noptions root=/dev/sda2 ro\noptions quiet rd.lvm.lv=vg0/root\n";
        let out = edit_entry(e, &req(), Flavour::Dracut).unwrap().0.unwrap();
        assert_eq!(
            out,
            "title x\nlinux /vmlinuz\noptions root=/dev/mapper/vg0-root ro\n\
             options quiet rd.lvm.lv=vg0/root rd.luks.uuid=luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7\n"
        );
        assert_eq!(edit_entry(&out, &req(), Flavour::Dracut).unwrap().0, None);
    }

    #[test]
    fn an_entry_without_options_gets_them() {
        let e = "title Arch\nlinux /vmlinuz-linux\ninitrd /initramfs-linux.img";
        let out = edit_entry(e, &req(), Flavour::MkinitcpioSdEncrypt)
            .unwrap()
            .0
            .unwrap();
        assert_eq!(
            out,
            "title Arch\nlinux /vmlinuz-linux\ninitrd /initramfs-linux.img\n\
             options rd.luks.name=3f5ad593-4546-4a94-a374-bcfb68aa11f7=luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7 root=/dev/mapper/vg0-root\n"
        );
        assert_eq!(
            edit_entry(&out, &req(), Flavour::MkinitcpioSdEncrypt)
                .unwrap()
                .0,
            None
        );
        // An EFI program entry (a UKI) carries its own command line.
        assert_eq!(
            edit_entry(
                "title UKI\nefi /EFI/Linux/arch.efi\n",
                &req(),
                Flavour::Dracut
            )
            .unwrap(),
            (None, false)
        );
    }
}

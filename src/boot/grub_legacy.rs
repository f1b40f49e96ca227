//! GRUB legacy (grub.conf / menu.lst): the default entry is cloned into
//! "<title> (encrypted root)" with the new command line and initrd, inserted
//! just before the original. The new entry thus takes the original's index,
//! so `default=N` (and a `default saved` index in /boot/grub/default) now
//! names it without being touched, and the original moves to N+1, where a
//! `fallback` points. Debian's automagic `# kopt=` line gets the same
//! parameters so update-grub keeps them for future kernels.

use std::path::Path;

use super::flavour_params::{Flavour, apply, kernel_params};
use super::kargs::Cmdline;
use super::{BootChanges, BootRefusal, BootRequest, FileEdit, target_fs};

pub const SUFFIX: &str = " (encrypted root)";

/// A line split into its command word and the rest, GRUB legacy style:
/// `default=0`, `default 0` and `default = 0` are the same.
struct Cmd<'a> {
    indent: &'a str,
    word: &'a str,
    sep: &'a str,
    arg: &'a str,
    eol: &'a str,
}

fn split_cmd(line: &str) -> Option<Cmd<'_>> {
    let body = line.trim_end_matches(['\n', '\r']);
    let eol = &line[body.len()..];
    let t = body.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let indent = &body[..body.len() - t.len()];
    let wlen = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let word = &t[..wlen];
    let rest = &t[wlen..];
    let arg = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '=');
    // At most one '=' belongs to the separator.
    let sep_len = rest.len() - arg.len();
    let sep = &rest[..sep_len];
    if sep.matches('=').count() > 1 {
        return None;
    }
    Some(Cmd {
        indent,
        word,
        sep,
        arg,
        eol,
    })
}

struct Menu<'a> {
    lines: Vec<&'a str>,
    /// Each entry: first line (`title`) .. one past its last command line.
    entries: Vec<(usize, usize)>,
}

fn parse(text: &str) -> Menu<'_> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut entries = Vec::new();
    let mut cur: Option<(usize, usize)> = None;
    for (i, l) in lines.iter().enumerate() {
        match split_cmd(l) {
            Some(c) if c.word == "title" => {
                entries.extend(cur.take());
                cur = Some((i, i + 1));
            }
            Some(_) => {
                if let Some(e) = cur.as_mut() {
                    e.1 = i + 1;
                }
            }
            None => {}
        }
    }
    entries.extend(cur);
    Menu { lines, entries }
}

/// The default entry's index, and whether it comes from `default saved`.
fn default_index(m: &Menu, saved: Option<usize>) -> Result<usize, String> {
    let first = m.entries.first().map(|e| e.0).unwrap_or(m.lines.len());
    for l in &m.lines[..first] {
        if let Some(c) = split_cmd(l)
            && c.word == "default"
        {
            let a = c.arg.split_whitespace().next().unwrap_or("");
            if a == "saved" {
                return Ok(saved.unwrap_or(0));
            }
            return a
                .parse()
                .map_err(|_| format!("cannot understand `{}`", l.trim_end()));
        }
    }
    Ok(0)
}

/// Rewrites the arguments of a `kernel` line; returns the new line.
fn edit_kernel_line(
    line: &str,
    req: &BootRequest,
    flavour: Flavour,
) -> Result<String, BootRefusal> {
    let c = split_cmd(line).expect("kernel line");
    // Skip --type=... style options, then the kernel path.
    let mut rest = c.arg;
    let mut head_len = 0;
    loop {
        let w = rest.split_whitespace().next().unwrap_or("");
        let wstart = rest.len() - rest.trim_start().len();
        head_len += wstart + w.len();
        rest = &rest[wstart + w.len()..];
        if !w.starts_with("--") {
            break;
        }
    }
    let mut k = Cmdline::parse(rest);
    let params = kernel_params(flavour, req, &k);
    apply(&mut k, &params)?;
    let args = k.to_string();
    let space = if !args.is_empty() && !args.starts_with(char::is_whitespace) {
        " "
    } else {
        ""
    };
    Ok(format!(
        "{}{}{}{}{space}{args}{}",
        c.indent,
        c.word,
        c.sep,
        &c.arg[..head_len],
        c.eol
    ))
}

fn edit_initrd_line(line: &str, initrd: &Path) -> String {
    let c = split_cmd(line).expect("initrd line");
    let path = c.arg.split_whitespace().next().unwrap_or("");
    let tail = &c.arg[path.len()..];
    let name = initrd
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // Keep the directory as GRUB sees it (`/` when /boot is its own partition).
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{}{}{}{dir}{name}{tail}{}", c.indent, c.word, c.sep, c.eol)
}

/// Rewrites one entry's lines: command line, initrd and (when `title` is
/// given) the title.
fn rewrite_entry(
    lines: &[&str],
    title: Option<&str>,
    req: &BootRequest,
    flavour: Flavour,
) -> Result<Vec<String>, BootRefusal> {
    lines
        .iter()
        .map(|l| match split_cmd(l) {
            Some(c) if c.word == "title" => Ok(match title {
                Some(t) => format!("{}{}{}{t}{}", c.indent, c.word, c.sep, c.eol),
                None => l.to_string(),
            }),
            Some(c) if c.word == "kernel" => edit_kernel_line(l, req, flavour),
            Some(c) if c.word == "initrd" => Ok(match &req.initrd_path {
                Some(p) => edit_initrd_line(l, p),
                None => l.to_string(),
            }),
            _ => Ok(l.to_string()),
        })
        .collect()
}

/// Debian's automagic `# kopt=` line: update-grub builds new entries from it.
fn edit_kopt(
    line: &str,
    req: &BootRequest,
    flavour: Flavour,
) -> Result<Option<String>, BootRefusal> {
    let body = line.trim_end_matches(['\n', '\r']);
    let Some(value) = body.strip_prefix("# kopt=") else {
        return Ok(None);
    };
    let mut k = Cmdline::parse(value);
    let params = kernel_params(flavour, req, &k);
    if !apply(&mut k, &params)? {
        return Ok(None);
    }
    Ok(Some(format!("# kopt={k}{}", &line[body.len()..])))
}

/// The new menu text, or None when nothing changes. `saved` is the index
/// in /boot/grub/default for `default saved`.
pub fn edit(
    text: &str,
    saved: Option<usize>,
    req: &BootRequest,
    flavour: Flavour,
    path: &str,
) -> Result<Option<String>, BootRefusal> {
    let m = parse(text);
    if m.entries.is_empty() {
        return Err(BootRefusal::config(path, "has no `title` entries"));
    }
    let d = default_index(&m, saved).map_err(|p| BootRefusal::config(path, p))?;
    let Some(&(start, end)) = m.entries.get(d) else {
        return Err(BootRefusal::config(
            path,
            format!(
                "the default entry is number {d}, but there are only {} entries",
                m.entries.len()
            ),
        ));
    };
    let entry = &m.lines[start..end];
    let title_line = split_cmd(entry[0]).expect("title");
    let title = title_line.arg.trim_end();
    let mut out: Vec<String> = Vec::with_capacity(m.lines.len() + entry.len() + 2);

    if title.ends_with(SUFFIX) {
        // An earlier run made this entry; bring it up to date in place.
        let new = rewrite_entry(entry, None, req, flavour)?;
        out.extend(m.lines[..start].iter().map(|s| s.to_string()));
        out.extend(new);
        out.extend(m.lines[end..].iter().map(|s| s.to_string()));
    } else {
        let new_title = format!("{title}{SUFFIX}");
        let clone = rewrite_entry(entry, Some(&new_title), req, flavour)?;
        if clone[1..] == entry[1..] {
            // Same command line and initrd (nash without a new initrd): a
            // clone would only add a name.
            out.extend(m.lines.iter().map(|s| s.to_string()));
            return finish(&out, text, req, flavour);
        }
        let has_fallback = m.lines[..m.entries[0].0]
            .iter()
            .any(|l| split_cmd(l).is_some_and(|c| c.word == "fallback"));
        // Debian separates entries with a blank line, anaconda does not.
        let blank_between = start > 0 && m.lines[start - 1].trim().is_empty();
        let mut default_line: Option<usize> = None;
        for (i, l) in m.lines.iter().enumerate() {
            if i == start {
                out.extend(clone.iter().cloned());
                if !clone.last().is_some_and(|l| l.ends_with('\n')) {
                    out.last_mut().expect("clone is not empty").push('\n');
                }
                if blank_between {
                    out.push("\n".into());
                }
            }
            match split_cmd(l) {
                Some(c) if i < m.entries[0].0 && c.word == "fallback" => {
                    // Entries at or after the insertion point moved down one.
                    let shifted: Vec<String> = c
                        .arg
                        .split_whitespace()
                        .map(|n| match n.parse::<usize>() {
                            Ok(n) if n >= d => (n + 1).to_string(),
                            _ => n.to_string(),
                        })
                        .collect();
                    out.push(format!(
                        "{}{}{}{}{}",
                        c.indent,
                        c.word,
                        c.sep,
                        shifted.join(" "),
                        c.eol
                    ));
                }
                Some(c) if i < m.entries[0].0 && c.word == "default" => {
                    default_line = Some(out.len());
                    out.push(l.to_string());
                    if !has_fallback {
                        let eol = if c.eol.is_empty() { "\n" } else { c.eol };
                        if c.eol.is_empty() {
                            out.last_mut().expect("just pushed").push('\n');
                        }
                        out.push(format!("{}fallback{}{}{eol}", c.indent, c.sep, d + 1));
                    }
                }
                _ => out.push(l.to_string()),
            }
        }
        if default_line.is_none() && !has_fallback {
            // Default 0 implied; say where to fall back, before the entries.
            let at = out
                .iter()
                .position(|l| split_cmd(l).is_some_and(|c| c.word == "title"))
                .unwrap_or(0);
            out.insert(at, format!("fallback {}\n", d + 1));
        }
    }
    finish(&out, text, req, flavour)
}

/// Applies the `# kopt=` edit and reports whether anything changed.
fn finish(
    out: &[String],
    text: &str,
    req: &BootRequest,
    flavour: Flavour,
) -> Result<Option<String>, BootRefusal> {
    let mut text_out = String::new();
    for l in out {
        match edit_kopt(l, req, flavour)? {
            Some(k) => text_out.push_str(&k),
            None => text_out.push_str(l),
        }
    }
    Ok((text_out != text).then_some(text_out))
}

pub fn plan(
    root: &Path,
    config: &str,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    let Some((path, before)) = target_fs::read(root, config)? else {
        return Err(BootRefusal::config(config, "disappeared while planning"));
    };
    let text = String::from_utf8_lossy(&before).into_owned();
    let dir = path.parent().unwrap_or(Path::new("/boot/grub"));
    let saved =
        target_fs::read(root, &dir.join("default").to_string_lossy())?.and_then(|(_, b)| {
            String::from_utf8_lossy(&b)
                .lines()
                .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                .and_then(|l| l.trim().parse().ok())
        });
    match edit(&text, saved, req, flavour, config)? {
        Some(after) => {
            if let Some(e) = FileEdit::if_changed(
                path,
                Some(before),
                after.into_bytes(),
                format!(
                    "new default entry{SUFFIX} for {}; the original entry stays as the fallback",
                    flavour.name()
                ),
            ) {
                ch.push_edit(e);
            }
        }
        None => ch.note(format!(
            "{config}: the default entry already boots the encrypted root"
        )),
    }
    if text.contains("### BEGIN AUTOMAGIC KERNELS LIST") {
        ch.note("Debian update-grub (legacy) rebuilds the automagic entries from `# kopt=`, which carries the same parameters; the cloned entry is replaced by regenerated ones on the next kernel update");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::tests::req;

    const CENTOS5: &str = "\
# grub.conf generated by anaconda
#
# Note that you do not have to rerun grub after making changes to this file
# NOTICE:  You have a /boot partition.  This means that
#          all kernel and initrd paths are relative to /boot/, eg.
#          root (hd0,0)
#          kernel /vmlinuz-version ro root=/dev/VolGroup00/LogVol00
#          initrd /initrd-version.img
#boot=/dev/sda
default=0
timeout=5
splashimage=(hd0,0)/grub/splash.xpm.gz
hiddenmenu
title CentOS (2.6.18-398.el5)
\troot (hd0,0)
\tkernel /vmlinuz-2.6.18-398.el5 ro root=/dev/VolGroup00/LogVol00 rhgb quiet
\tinitrd /initrd-2.6.18-398.el5.img
title CentOS (2.6.18-371.el5)
\troot (hd0,0)
\tkernel /vmlinuz-2.6.18-371.el5 ro root=/dev/VolGroup00/LogVol00 rhgb quiet
\tinitrd /initrd-2.6.18-371.el5.img
";

    fn nash_req() -> BootRequest {
        let mut r = req();
        r.vg = "VolGroup00".into();
        r.root_lv = "LogVol00".into();
        r.initrd_path = Some("/boot/initrd-2.6.18-398.el5.luks.img".into());
        r
    }

    #[test]
    fn clones_default_entry_before_itself() {
        let out = edit(
            CENTOS5,
            None,
            &nash_req(),
            Flavour::Nash,
            "/boot/grub/grub.conf",
        )
        .unwrap()
        .unwrap();
        let expect = CENTOS5
            .replace("default=0\n", "default=0\nfallback=1\n")
            .replace(
                "hiddenmenu\n",
                "hiddenmenu\n\
             title CentOS (2.6.18-398.el5) (encrypted root)\n\
             \troot (hd0,0)\n\
             \tkernel /vmlinuz-2.6.18-398.el5 ro root=/dev/VolGroup00/LogVol00 rhgb quiet\n\
             \tinitrd /initrd-2.6.18-398.el5.luks.img\n",
            );
        assert_eq!(out, expect);
        assert_eq!(
            edit(&out, None, &nash_req(), Flavour::Nash, "g").unwrap(),
            None
        );
    }

    #[test]
    fn default_index_and_fallback_shift() {
        let t = "default 1\nfallback 0 1\ntitle A\nkernel /a ro\ntitle B\nkernel --type=linux /b ro quiet\n# trailing comment\n";
        let out = edit(t, None, &req(), Flavour::Dracut, "g")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "default 1\nfallback 0 2\ntitle A\nkernel /a ro\n\
             title B (encrypted root)\nkernel --type=linux /b ro quiet root=/dev/mapper/vg0-root rd.luks.uuid=luks-3f5ad593-4546-4a94-a374-bcfb68aa11f7 rd.lvm.lv=vg0/root\n\
             title B\nkernel --type=linux /b ro quiet\n# trailing comment\n"
        );
    }

    #[test]
    fn default_saved_uses_the_saved_index() {
        let t = "default saved\ntitle A\nkernel /a ro\ntitle B\nkernel /b ro\n";
        let out = edit(t, Some(1), &req(), Flavour::InitramfsTools, "g")
            .unwrap()
            .unwrap();
        assert!(out.starts_with("default saved\nfallback 2\ntitle A\nkernel /a ro\ntitle B (encrypted root)\nkernel /b ro root=/dev/mapper/vg0-root\n"), "{out}");
    }

    #[test]
    fn kopt_and_refusals() {
        let t = "# kopt=root=/dev/hda1 ro\ntitle A\nkernel /a root=/dev/hda1 ro\n";
        let out = edit(t, None, &req(), Flavour::InitramfsTools, "g")
            .unwrap()
            .unwrap();
        assert!(
            out.starts_with(
                "fallback 1\n# kopt=root=/dev/mapper/vg0-root ro\ntitle A (encrypted root)\n"
            ) || out.starts_with(
                "# kopt=root=/dev/mapper/vg0-root ro\nfallback 1\ntitle A (encrypted root)\n"
            ),
            "{out}"
        );
        assert!(edit("default 5\ntitle A\n", None, &req(), Flavour::Dracut, "g").is_err());
        assert!(edit("timeout 5\n", None, &req(), Flavour::Dracut, "g").is_err());
    }
}

//! The kernel command line as a value that can be edited without disturbing
//! the parts it does not touch.
//!
//! Splitting follows the kernel's own `next_arg()` (lib/cmdline.c): a word ends
//! at unquoted whitespace, a `"` toggles quoting anywhere in the word, the key
//! ends at the first `=`, and quotes around the value (or around the whole
//! word) are not part of it. A bare `--` ends the kernel's parameters; the rest
//! belongs to init and is kept verbatim.
//!
//! Every parameter remembers its original text and the whitespace before it,
//! so printing an unchanged command line gives back the exact input.

use std::fmt;

/// A parameter luksify was asked to write but cannot express on a kernel
/// command line (the kernel has no escape for `"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kernel parameter {key:?}={value:?} cannot be written on a command line: {reason}")]
pub struct InvalidParam {
    pub key: String,
    pub value: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    /// Whitespace before the word, as found.
    lead: String,
    /// The word as found (or as we wrote it).
    raw: String,
    key: String,
    value: Option<String>,
}

/// A parsed kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cmdline {
    params: Vec<Param>,
    /// Everything after the last kernel parameter: trailing whitespace, or the
    /// whitespace before `--` followed by `--` and init's arguments.
    tail: String,
}

impl Cmdline {
    pub fn parse(s: &str) -> Cmdline {
        let mut params = Vec::new();
        let mut rest = s;
        loop {
            let ws_len = rest.len() - rest.trim_start().len();
            let (lead, after_ws) = rest.split_at(ws_len);
            if after_ws.is_empty() {
                return Cmdline {
                    params,
                    tail: rest.to_string(),
                };
            }
            let word_len = word_end(after_ws);
            let raw = &after_ws[..word_len];
            if raw == "--" {
                return Cmdline {
                    params,
                    tail: rest.to_string(),
                };
            }
            let (key, value) = split_word(raw);
            params.push(Param {
                lead: lead.to_string(),
                raw: raw.to_string(),
                key,
                value,
            });
            rest = &after_ws[word_len..];
        }
    }

    /// Keys and values in order (values without their quotes).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.params
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_deref()))
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The value the kernel (and most initramfs scripts) act on: the last
    /// occurrence wins. `Some(None)` is a bare flag.
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value.as_deref())
    }

    /// Every value given for `key`, in order (rd.luks.uuid and rd.lvm.lv repeat).
    pub fn values(&self, key: &str) -> Vec<Option<&str>> {
        self.params
            .iter()
            .filter(|p| p.key == key)
            .map(|p| p.value.as_deref())
            .collect()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.params.iter().any(|p| p.key == key)
    }

    /// Whether exactly `key` (bare, when `value` is None) or `key=value` is present.
    pub fn contains(&self, key: &str, value: Option<&str>) -> bool {
        self.params
            .iter()
            .any(|p| p.key == key && p.value.as_deref() == value)
    }

    /// Arguments after `--`, handed to init.
    pub fn init_args(&self) -> Option<&str> {
        let t = self.tail.trim_start();
        t.strip_prefix("--").map(|r| r.trim_start())
    }

    /// Makes `key` appear exactly once with `value`: the first occurrence is
    /// rewritten in place, later ones are dropped, and a missing key is
    /// appended. Returns whether anything changed.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> Result<bool, InvalidParam> {
        let raw = render(key, value)?;
        let mut changed = false;
        let mut seen = false;
        let mut i = 0;
        while i < self.params.len() {
            if self.params[i].key != key {
                i += 1;
                continue;
            }
            if seen {
                self.remove_at(i);
                changed = true;
                continue;
            }
            seen = true;
            if self.params[i].value.as_deref() != value {
                let p = &mut self.params[i];
                p.raw = raw.clone();
                p.value = value.map(str::to_string);
                changed = true;
            }
            i += 1;
        }
        if !seen {
            self.push(key, value, raw);
            changed = true;
        }
        Ok(changed)
    }

    /// Appends `key=value` unless that exact pair is already present (for
    /// repeatable keys). Returns whether anything changed.
    pub fn add(&mut self, key: &str, value: Option<&str>) -> Result<bool, InvalidParam> {
        let raw = render(key, value)?;
        if self.contains(key, value) {
            return Ok(false);
        }
        self.push(key, value, raw);
        Ok(true)
    }

    /// Removes every occurrence of `key`, whatever its value. Only whole
    /// parameters named `key` go: `quiet` never matches `quiet=1`'s neighbour
    /// `loglevel=quiet` or `rootflags=` when removing `root`.
    pub fn remove(&mut self, key: &str) -> bool {
        self.remove_where(|p| p.key == key)
    }

    /// Removes occurrences of exactly `key` (bare) or `key=value`.
    pub fn remove_exact(&mut self, key: &str, value: Option<&str>) -> bool {
        self.remove_where(|p| p.key == key && p.value.as_deref() == value)
    }

    fn remove_where(&mut self, pred: impl Fn(&Param) -> bool) -> bool {
        let mut changed = false;
        let mut i = 0;
        while i < self.params.len() {
            if pred(&self.params[i]) {
                self.remove_at(i);
                changed = true;
            } else {
                i += 1;
            }
        }
        changed
    }

    fn remove_at(&mut self, i: usize) {
        let removed = self.params.remove(i);
        // The first word keeps the line's leading whitespace, so that
        // "  a b" minus "a" is "  b", not "   b" or "b".
        if i == 0
            && let Some(next) = self.params.first_mut()
        {
            next.lead = removed.lead;
        }
    }

    fn push(&mut self, key: &str, value: Option<&str>, raw: String) {
        let lead = if self.params.is_empty() { "" } else { " " };
        if !self.tail.is_empty() && !self.tail.starts_with(char::is_whitespace) {
            self.tail.insert(0, ' ');
        }
        self.params.push(Param {
            lead: lead.to_string(),
            raw,
            key: key.to_string(),
            value: value.map(str::to_string),
        });
    }
}

impl fmt::Display for Cmdline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.params {
            f.write_str(&p.lead)?;
            f.write_str(&p.raw)?;
        }
        f.write_str(&self.tail)
    }
}

/// Length of the word at the start of `s` (which starts with a non-space).
fn word_end(s: &str) -> usize {
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() && !in_quote {
            return i;
        }
        if c == '"' {
            in_quote = !in_quote;
        }
    }
    s.len()
}

fn split_word(raw: &str) -> (String, Option<String>) {
    let quoted = raw.starts_with('"');
    let body = if quoted { &raw[1..] } else { raw };
    let strip_end = |s: &str| -> String { s.strip_suffix('"').unwrap_or(s).to_string() };
    match body.find('=') {
        None => {
            let key = if quoted {
                strip_end(body)
            } else {
                body.to_string()
            };
            (key, None)
        }
        Some(eq) => {
            let key = body[..eq].to_string();
            let v = &body[eq + 1..];
            let value = if v.starts_with('"') || quoted {
                strip_end(v.strip_prefix('"').unwrap_or(v))
            } else {
                v.to_string()
            };
            (key, Some(value))
        }
    }
}

fn render(key: &str, value: Option<&str>) -> Result<String, InvalidParam> {
    let bad = |reason| InvalidParam {
        key: key.to_string(),
        value: value.unwrap_or("").to_string(),
        reason,
    };
    if key.is_empty() || key == "--" {
        return Err(bad("the key is empty or `--`"));
    }
    if key.contains(|c: char| c.is_whitespace() || c == '=' || c == '"') {
        return Err(bad("the key contains whitespace, `=` or `\"`"));
    }
    match value {
        None => Ok(key.to_string()),
        Some(v) if v.contains('"') => Err(bad("the value contains `\"`")),
        Some(v) if v.is_empty() || v.contains(char::is_whitespace) => Ok(format!("{key}=\"{v}\"")),
        Some(v) => Ok(format!("{key}={v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) {
        assert_eq!(Cmdline::parse(s).to_string(), s);
    }

    #[test]
    fn unchanged_lines_print_back_exactly() {
        for s in [
            "",
            "   ",
            "BOOT_IMAGE=/vmlinuz-6.1.0-13-amd64 root=/dev/mapper/vg0-root ro quiet",
            "  ro\troot=UUID=1234   quiet  ",
            r#"ro console=ttyS0,115200n8 "dyndbg=file drivers/x.c +p" quiet"#,
            r#"root=/dev/sda1 acpi_osi="Windows 2015" -- single emergency"#,
            "ro -- ",
            "--",
            "a==b =c \"",
        ] {
            round(s);
        }
    }

    #[test]
    fn splits_like_the_kernel() {
        let c = Cmdline::parse(
            r#"root=/dev/mapper/vg-root acpi_osi="Windows 2015" "x=y z" quiet rd.lvm.lv=vg/root rd.lvm.lv=vg/swap -- -s init=1"#,
        );
        assert_eq!(c.get("acpi_osi"), Some(Some("Windows 2015")));
        assert_eq!(c.get("x"), Some(Some("y z")));
        assert_eq!(c.get("quiet"), Some(None));
        assert_eq!(c.values("rd.lvm.lv"), [Some("vg/root"), Some("vg/swap")]);
        assert_eq!(c.init_args(), Some("-s init=1"));
        assert!(
            !c.contains_key("init"),
            "init=1 after -- is init's, not the kernel's"
        );
    }

    #[test]
    fn last_occurrence_wins() {
        let c = Cmdline::parse("root=/dev/sda1 ro root=/dev/mapper/vg-root");
        assert_eq!(c.get("root"), Some(Some("/dev/mapper/vg-root")));
    }

    #[test]
    fn set_replaces_in_place_without_touching_lookalikes() {
        let mut c = Cmdline::parse("ro rootflags=subvol=@ root=UUID=abc quiet rootfstype=ext4");
        assert!(c.set("root", Some("/dev/mapper/vg-root")).unwrap());
        assert_eq!(
            c.to_string(),
            "ro rootflags=subvol=@ root=/dev/mapper/vg-root quiet rootfstype=ext4"
        );
        assert!(!c.set("root", Some("/dev/mapper/vg-root")).unwrap());
    }

    #[test]
    fn set_collapses_repeats_and_appends_missing() {
        let mut c = Cmdline::parse("root=/dev/sda1 ro root=/dev/sda2 -- single");
        c.set("root", Some("/dev/mapper/vg-root")).unwrap();
        c.set("cryptdevice", Some("UUID=u:cryptlvm")).unwrap();
        assert_eq!(
            c.to_string(),
            "root=/dev/mapper/vg-root ro cryptdevice=UUID=u:cryptlvm -- single"
        );
    }

    #[test]
    fn remove_takes_only_whole_parameters() {
        let mut c = Cmdline::parse("quiet loglevel=quiet quiet=1 splash quiet");
        assert!(c.remove_exact("quiet", None));
        assert_eq!(c.to_string(), "loglevel=quiet quiet=1 splash");
        assert!(c.remove("quiet"));
        assert_eq!(c.to_string(), "loglevel=quiet splash");
        assert!(!c.remove("quie"));
    }

    #[test]
    fn remove_first_keeps_leading_space() {
        let mut c = Cmdline::parse("  a   b c");
        c.remove("a");
        assert_eq!(c.to_string(), "  b c");
    }

    #[test]
    fn add_is_idempotent_and_keeps_init_args_last() {
        let mut c = Cmdline::parse("ro rd.lvm.lv=vg/root -- single");
        assert!(c.add("rd.lvm.lv", Some("vg/swap")).unwrap());
        assert!(!c.add("rd.lvm.lv", Some("vg/root")).unwrap());
        assert_eq!(
            c.to_string(),
            "ro rd.lvm.lv=vg/root rd.lvm.lv=vg/swap -- single"
        );
    }

    #[test]
    fn add_to_empty_and_before_bare_init_args() {
        let mut c = Cmdline::parse("");
        c.add("ro", None).unwrap();
        assert_eq!(c.to_string(), "ro");
        let mut c = Cmdline::parse("-- single");
        c.add("ro", None).unwrap();
        assert_eq!(c.to_string(), "ro -- single");
    }

    #[test]
    fn values_with_spaces_are_quoted_and_quotes_refused() {
        let mut c = Cmdline::parse("ro");
        c.set("acpi_osi", Some("Windows 2015")).unwrap();
        assert_eq!(c.to_string(), r#"ro acpi_osi="Windows 2015""#);
        assert_eq!(
            Cmdline::parse(&c.to_string()).get("acpi_osi"),
            Some(Some("Windows 2015"))
        );
        assert!(c.set("x", Some("a\"b")).is_err());
        assert!(c.set("a b", None).is_err());
    }

    /// A tiny deterministic generator: property tests without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    fn random_cmdline(r: &mut Rng) -> String {
        const WS: &[&str] = &[" ", " ", "  ", "\t", " \t "];
        const WORDS: &[&str] = &[
            "ro",
            "quiet",
            "quiet=1",
            "root=/dev/mapper/vg--x-root",
            "rootflags=subvol=@",
            "root=UUID=0b5e-11",
            r#"acpi_osi="Windows 2015""#,
            r#""a=b c""#,
            "rd.lvm.lv=vg/root",
            "rd.lvm.lv=vg/swap",
            "x==",
            "=v",
            "é=ü",
            "--",
            "single",
            "init=/bin/sh",
        ];
        let n = r.next() % 9;
        let mut s = String::new();
        if r.next().is_multiple_of(3) {
            s.push_str(r.pick(WS));
        }
        for i in 0..n {
            if i > 0 {
                s.push_str(r.pick(WS));
            }
            s.push_str(r.pick(WORDS));
        }
        if r.next().is_multiple_of(3) {
            s.push_str(r.pick(WS));
        }
        s
    }

    #[test]
    fn property_round_trip_and_edits_are_local() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let s = random_cmdline(&mut r);
            let c = Cmdline::parse(&s);
            assert_eq!(c.to_string(), s, "round trip");

            // Setting a key leaves every other parameter and init's args alone.
            let mut e = c.clone();
            e.set("root", Some("/dev/mapper/vg-root")).unwrap();
            let again = Cmdline::parse(&e.to_string());
            assert_eq!(
                again.get("root"),
                Some(Some("/dev/mapper/vg-root")),
                "{s:?}"
            );
            assert_eq!(again.values("root").len(), 1);
            let others = |c: &Cmdline| -> Vec<(String, Option<String>)> {
                c.iter()
                    .filter(|(k, _)| *k != "root")
                    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                    .collect()
            };
            assert_eq!(others(&again), others(&c), "{s:?}");
            assert_eq!(again.init_args(), c.init_args(), "{s:?}");

            // Removing a key removes only that key.
            let mut d = c.clone();
            d.remove("quiet");
            let d2 = Cmdline::parse(&d.to_string());
            assert!(!d2.contains_key("quiet"), "{s:?}");
            assert_eq!(
                d2.iter().count(),
                c.iter().filter(|(k, _)| *k != "quiet").count()
            );

            // Adding is idempotent.
            let mut a = c.clone();
            a.add("rd.luks.uuid", Some("luks-1")).unwrap();
            let once = a.to_string();
            a.add("rd.luks.uuid", Some("luks-1")).unwrap();
            assert_eq!(a.to_string(), once);
            assert_eq!(Cmdline::parse(&once), a, "{s:?}");
        }
    }
}

//! Debian packages fetched with the host's apt and unpacked with `dpkg -x`
//! into the cache, one directory per package version. Once unpacked, a
//! package is never downloaded again, so cached runs work offline.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use luksify::sys::process::Cmd;

use crate::cache;

/// The cache directory kind holding unpacked packages.
pub const UNPACKED_KIND: &str = "debian-unpacked";

/// A package name pinned to the version apt would install now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The raw `Depends:` field of that version.
    pub depends: String,
}

/// Asks the host's apt which version of `name` it would install. The answer
/// is remembered until apt's package lists change: without a pkgcache.bin
/// (Docker-style hosts) every `apt-cache` call re-reads all lists (~1.5 s).
pub fn resolve(name: &str) -> Result<Resolved> {
    let memo = cache::root()?
        .join("apt-resolved")
        .join(cache::sanitize(name));
    let stamp = lists_stamp();
    if let Ok(text) = std::fs::read_to_string(&memo)
        && let Some((first, record)) = text.split_once('\n')
        && first == stamp
        && let Ok(r) = parse_control(record)
    {
        return Ok(r);
    }
    let out = Cmd::new("apt-cache")
        .args(["show", "--no-all-versions", name])
        .run()
        .with_context(|| {
            format!("looking up Debian package {name} (is apt's package list current? try `apt-get update`)")
        })?;
    let record = out.stdout_str();
    let resolved =
        parse_control(&record).with_context(|| format!("reading apt-cache's record for {name}"))?;
    if let Some(dir) = memo.parent() {
        std::fs::create_dir_all(dir)?;
        luksify::sys::atomic_file::write_atomic(
            &memo,
            format!("{stamp}\n{record}").as_bytes(),
            0o644,
        )?;
    }
    Ok(resolved)
}

/// Changes whenever `apt-get update` or a sources change could change what
/// apt resolves.
fn lists_stamp() -> String {
    let mut stamp = String::from("lists:");
    for dir in [
        "/var/lib/apt/lists",
        "/etc/apt/sources.list.d",
        "/etc/apt/preferences.d",
    ] {
        let mut newest = (0i64, 0i64);
        let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
        for m in entries
            .filter_map(|e| e.metadata().ok())
            .chain(std::fs::metadata(dir).ok())
        {
            use std::os::unix::fs::MetadataExt;
            newest = newest.max((m.mtime(), m.mtime_nsec()));
        }
        stamp.push_str(&format!(" {}.{}", newest.0, newest.1));
    }
    stamp
}

/// Parses the first stanza of a Debian control record.
pub fn parse_control(text: &str) -> Result<Resolved> {
    let field = |key: &str| -> Option<String> {
        let prefix = format!("{key}:");
        let stanza = text.split("\n\n").next().unwrap_or("");
        stanza
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().to_string())
    };
    let name = field("Package").context("no Package field")?;
    let version = field("Version").context("no Version field")?;
    let arch = field("Architecture").unwrap_or_else(|| "all".into());
    let depends = field("Depends").unwrap_or_default();
    Ok(Resolved {
        name,
        version,
        arch,
        depends,
    })
}

/// The names in a `Depends:` field, alternatives and version limits dropped
/// (the first alternative of each group is taken).
pub fn depends_names(depends: &str) -> Vec<String> {
    depends
        .split(',')
        .filter_map(|group| group.split('|').next())
        .filter_map(|alt| alt.split_whitespace().next())
        .map(|n| n.split(':').next().unwrap_or(n).to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// What a directory of an unpacked package is called: name, version and arch,
/// plus a tag for any preparation step that ran on it.
fn dir_key(pkg: &Resolved, tag: &str) -> String {
    let base = cache::sanitize(&format!("{}_{}_{}", pkg.name, pkg.version, pkg.arch));
    if tag.is_empty() {
        base
    } else {
        format!("{base}+{}", cache::sanitize(tag))
    }
}

/// Downloads and unpacks `pkg` (cached). `prepare` runs on the unpacked tree
/// before it becomes visible in the cache (e.g. `depmod`); `tag` names it in
/// the cache key so a changed preparation gets a fresh entry.
pub fn unpacked(
    pkg: &Resolved,
    tag: &str,
    prepare: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    cache::entry(UNPACKED_KIND, &dir_key(pkg, tag), |dir| {
        let dl = dir.join(".download");
        std::fs::create_dir(&dl)?;
        let deb = download(pkg, &dl)?;
        let root = dir.join("root");
        Cmd::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(&root)
            .run()
            .with_context(|| format!("unpacking {}", deb.display()))?;
        std::fs::remove_dir_all(&dl)?;
        prepare(&root)
    })
    .map(|d| d.join("root"))
}

/// The cache directory kind holding package files as downloaded.
pub const DEB_KIND: &str = "debian-deb";

/// `pkg`'s .deb file itself (cached), for a guest to install with dpkg.
pub fn deb(pkg: &Resolved) -> Result<PathBuf> {
    let dir = cache::entry(DEB_KIND, &dir_key(pkg, ""), |dir| {
        download(pkg, dir).map(|_| ())
    })?;
    only_deb(&dir)
}

/// `apt-get download` of exactly `pkg`'s version into the empty `dir`.
fn download(pkg: &Resolved, dir: &Path) -> Result<PathBuf> {
    // apt-get download only writes into the current directory.
    Cmd::new("sh")
        .args(["-c", r#"cd "$1" && exec apt-get -q download "$2""#, "sh"])
        .arg(dir)
        .arg(format!("{}:{}={}", pkg.name, pkg.arch, pkg.version))
        .run()
        .with_context(|| {
            format!(
                "downloading {} {} from the Debian mirror",
                pkg.name, pkg.version
            )
        })?;
    only_deb(dir)
}

fn only_deb(dir: &Path) -> Result<PathBuf> {
    let debs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    let [deb] = debs.as_slice() else {
        bail!(
            "{} holds {} .deb files instead of one",
            dir.display(),
            debs.len()
        );
    };
    Ok(deb.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_record_fields() {
        let text = "Package: linux-image-amd64\nSource: linux-signed-amd64 (6.1.192+2)\nVersion: 6.1.192-2\n\
                    Architecture: amd64\nDepends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\nDescription: x\n\n\
                    Package: other\nVersion: 9\n";
        let r = parse_control(text).unwrap();
        assert_eq!(r.name, "linux-image-amd64");
        assert_eq!(r.version, "6.1.192-2");
        assert_eq!(r.arch, "amd64");
        assert_eq!(depends_names(&r.depends), ["linux-image-6.1.0-56-amd64"]);
    }

    #[test]
    fn depends_take_first_alternative_without_versions() {
        assert_eq!(
            depends_names("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any"),
            ["libc6", "debconf", "perl"]
        );
        assert!(depends_names("").is_empty());
    }

    #[test]
    fn cache_dir_names_are_path_safe() {
        let r = Resolved {
            name: "x".into(),
            version: "1:2.3".into(),
            arch: "amd64".into(),
            depends: String::new(),
        };
        assert_eq!(dir_key(&r, ""), "x_1_2.3_amd64");
        assert_eq!(dir_key(&r, "depmod"), "x_1_2.3_amd64+depmod");
    }
}

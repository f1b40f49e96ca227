//! Paths inside a target root directory (e.g. /mnt/target), resolved the way
//! the target's own kernel would resolve them if it were `/`: absolute symlinks
//! start again at the root and `..` never climbs above it. Nothing here can
//! reach a file outside the root, whatever the root's symlinks say.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Linux gives up after 40 symlinks (ELOOP); so do we.
const MAX_SYMLINKS: usize = 40;

/// A symlink met on the way, to recreate elsewhere: `path` (absolute, inside
/// the root) holds `target` exactly as the link stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symlink {
    pub path: PathBuf,
    pub target: PathBuf,
}

/// Where a path inside the root really leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Absolute path inside the root, free of symlinks.
    pub real: PathBuf,
    /// Every symlink followed, in the order met; recreating them all next to
    /// `real` makes the original path work again.
    pub symlinks: Vec<Symlink>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{path}: does not exist in {root}")]
    NotFound { root: PathBuf, path: PathBuf },
    #[error("{path}: more than {MAX_SYMLINKS} symlinks in {root} (loop?)")]
    Loop { root: PathBuf, path: PathBuf },
    #[error("{path}: reading {host}: {source}")]
    Io {
        path: PathBuf,
        host: PathBuf,
        source: std::io::Error,
    },
}

/// Host path of an absolute in-root path.
pub fn host_path(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

/// Resolves `path` (absolute or relative to the root's `/`) inside `root`,
/// following every symlink, including the last component's.
pub fn resolve(root: &Path, path: &Path) -> Result<Resolved, ResolveError> {
    let mut symlinks = Vec::new();
    let mut done = PathBuf::from("/");
    // Components still to walk, in reverse so that pop() gives the next one.
    let mut todo: Vec<OsString> = rev_components(path);
    let mut followed = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&name);
        let host = host_path(root, &candidate);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ResolveError::NotFound {
                    root: root.to_path_buf(),
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
                return Err(ResolveError::NotFound {
                    root: root.to_path_buf(),
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(ResolveError::Io {
                    path: path.to_path_buf(),
                    host,
                    source,
                });
            }
        };
        if !meta.file_type().is_symlink() {
            done = candidate;
            continue;
        }
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(ResolveError::Loop {
                root: root.to_path_buf(),
                path: path.to_path_buf(),
            });
        }
        let target = fs::read_link(&host).map_err(|source| ResolveError::Io {
            path: path.to_path_buf(),
            host: host.clone(),
            source,
        })?;
        let link = Symlink {
            path: candidate,
            target: target.clone(),
        };
        if !symlinks.contains(&link) {
            symlinks.push(link);
        }
        if target.is_absolute() {
            done = PathBuf::from("/");
        }
        todo.extend(rev_components(&target));
    }
    Ok(Resolved {
        real: done,
        symlinks,
    })
}

/// Normal and `..` components of `p`, last first; `/` and `.` vanish.
fn rev_components(p: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

/// Whether `path` exists inside the root (after symlinks).
pub fn exists(root: &Path, path: &Path) -> bool {
    resolve(root, path).is_ok_and(|r| host_path(root, &r.real).exists())
}

/// Names in an in-root directory matching a shell pattern, sorted (as
/// glob(3) sorts), resolved inside the root. Supports `*`, `?` and `[...]`
/// in every component.
pub fn glob(root: &Path, pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for comp in pattern.components() {
        let Component::Normal(c) = comp else {
            continue;
        };
        let mut next = Vec::new();
        for dir in &found {
            if !is_wild(c.as_bytes()) {
                next.push(dir.join(c));
                continue;
            }
            let Ok(real) = resolve(root, dir) else {
                continue;
            };
            let Ok(entries) = fs::read_dir(host_path(root, &real.real)) else {
                continue;
            };
            let mut names: Vec<OsString> = entries
                .flatten()
                .map(|e| e.file_name())
                .filter(|n| !n.as_bytes().starts_with(b".") || c.as_bytes().starts_with(b"."))
                .filter(|n| fnmatch(c.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| exists(root, p));
    found
}

fn is_wild(s: &[u8]) -> bool {
    s.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Shell pattern match of one path component (no `/` inside).
pub fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| fnmatch(&pat[1..], &name[i..])),
        Some(b'?') => !name.is_empty() && fnmatch(&pat[1..], &name[1..]),
        Some(b'[') => {
            let Some(close) = pat.iter().skip(2).position(|&b| b == b']').map(|p| p + 2) else {
                return name.first() == Some(&b'[') && fnmatch(&pat[1..], &name[1..]);
            };
            let Some(&ch) = name.first() else {
                return false;
            };
            let mut set = &pat[1..close];
            let negate = matches!(set.first(), Some(b'!' | b'^'));
            if negate {
                set = &set[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= ch && ch <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == ch;
                    i += 1;
                }
            }
            hit != negate && fnmatch(&pat[close + 1..], &name[1..])
        }
        Some(&b) => name.first() == Some(&b) && fnmatch(&pat[1..], &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::write(root.join("usr/lib/libz.so.1.3"), b"z").unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/lib/libz.so.1.3", root.join("usr/lib/libz.so.1")).unwrap();
        // A link that would leave the root on the host ends at the root's /etc.
        symlink("/../../../../etc", root.join("escape")).unwrap();
        let r = resolve(root, Path::new("/lib/libz.so.1")).unwrap();
        assert_eq!(r.real, Path::new("/usr/lib/libz.so.1.3"));
        assert_eq!(
            r.symlinks,
            [
                Symlink {
                    path: "/lib".into(),
                    target: "usr/lib".into()
                },
                Symlink {
                    path: "/usr/lib/libz.so.1".into(),
                    target: "/lib/libz.so.1.3".into()
                },
            ]
        );
        let e = resolve(root, Path::new("/escape/passwd")).unwrap_err();
        assert!(matches!(e, ResolveError::NotFound { .. }), "{e}");
        fs::create_dir(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), b"").unwrap();
        assert_eq!(
            resolve(root, Path::new("/escape/passwd")).unwrap().real,
            Path::new("/etc/passwd")
        );
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        let e = resolve(t.path(), Path::new("/a")).unwrap_err();
        assert!(matches!(e, ResolveError::Loop { .. }), "{e}");
    }

    #[test]
    fn patterns() {
        assert!(fnmatch(b"*.conf", b"x86_64-linux-gnu.conf"));
        assert!(!fnmatch(b"*.conf", b"x.conf.dpkg-old"));
        assert!(fnmatch(b"lib[a-c]?.so", b"libbx.so"));
        assert!(!fnmatch(b"lib[!a-c].so", b"liba.so"));
    }

    #[test]
    fn glob_is_sorted_and_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("usr/etc/d")).unwrap();
        symlink("/usr/etc", root.join("etc")).unwrap();
        for n in ["b.conf", "a.conf", "c.txt"] {
            fs::write(root.join("usr/etc/d").join(n), b"").unwrap();
        }
        assert_eq!(
            glob(root, Path::new("/etc/d/*.conf")),
            [
                PathBuf::from("/etc/d/a.conf"),
                PathBuf::from("/etc/d/b.conf")
            ]
        );
    }
}

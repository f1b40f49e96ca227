//! Reading the target's files as the target would see them: the target is
//! mounted somewhere (e.g. /mnt/target) and its absolute symlinks
//! (`/etc/grub.conf -> /boot/grub/grub.conf`, `/sbin -> usr/sbin`) must
//! resolve inside it, never on the live system.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::BootRefusal;
use crate::probe::FsAccess;

thread_local! {
    static RECORDING: RefCell<Option<Vec<FsAccess>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns, with its result, every look it took at the target
/// through this module: the probe keeps them so `plan` can compute the same
/// boot changes later without the target mounted.
pub fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<FsAccess>) {
    RECORDING.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = f();
    let log = RECORDING
        .with(|r| r.borrow_mut().take())
        .unwrap_or_default();
    (out, log)
}

fn note(a: impl FnOnce() -> FsAccess) {
    RECORDING.with(|r| {
        if let Some(log) = r.borrow_mut().as_mut() {
            log.push(a());
        }
    });
}

/// Resolves `path` (absolute inside the target) following symlinks as a
/// chroot would. Returns the target-absolute path of the real file; missing
/// components are kept literally.
pub fn resolve(root: &Path, path: &Path) -> PathBuf {
    let mut todo: Vec<PathBuf> = rev_components(path);
    let mut cur = PathBuf::from("/");
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c.as_os_str() == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        let host = host(root, &next);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && hops < 40 => {
                hops += 1;
                let Ok(link) = fs::read_link(&host) else {
                    cur = next;
                    continue;
                };
                if link.is_absolute() {
                    cur = PathBuf::from("/");
                }
                todo.extend(rev_components(&link));
            }
            _ => cur = next,
        }
    }
    cur
}

fn rev_components(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

/// The host path of a target-absolute path (no symlink resolution).
pub fn host(root: &Path, target_path: &Path) -> PathBuf {
    root.join(target_path.strip_prefix("/").unwrap_or(target_path))
}

/// Whether `path` exists in the target (following the target's symlinks).
pub fn exists(root: &Path, path: &str) -> bool {
    let yes = host(root, &resolve(root, Path::new(path))).exists();
    note(|| FsAccess::Exists {
        path: path.into(),
        yes,
    });
    yes
}

pub fn is_dir(root: &Path, path: &str) -> bool {
    let yes = host(root, &resolve(root, Path::new(path))).is_dir();
    note(|| FsAccess::IsDir {
        path: path.into(),
        yes,
    });
    yes
}

/// Reads a target file: `Ok(None)` when it does not exist. The returned
/// path is the resolved one, which is where an edit must be written.
pub fn read(root: &Path, path: &str) -> Result<Option<(PathBuf, Vec<u8>)>, BootRefusal> {
    let real = resolve(root, Path::new(path));
    let out = match fs::read(host(root, &real)) {
        Ok(b) => Ok(Some((real, b))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BootRefusal::Read { path: real, source }),
    };
    if let Ok(found) = &out {
        note(|| FsAccess::Read {
            path: path.into(),
            found: found.as_ref().map(|(p, b)| {
                (
                    p.to_string_lossy().into_owned(),
                    String::from_utf8_lossy(b).into_owned(),
                )
            }),
        });
    }
    out
}

/// Names in a target directory (sorted, so plans are stable); empty if absent.
pub fn list_dir(root: &Path, dir: &str) -> Vec<String> {
    let real = host(root, &resolve(root, Path::new(dir)));
    let mut v: Vec<String> = fs::read_dir(real)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    note(|| FsAccess::List {
        path: dir.into(),
        names: v.clone(),
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_stay_inside_the_target() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("boot/grub")).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("usr/sbin")).unwrap();
        fs::write(r.join("boot/grub/grub.conf"), "x").unwrap();
        symlink("/boot/grub/grub.conf", r.join("etc/grub.conf")).unwrap();
        symlink("./grub.conf", r.join("boot/grub/menu.lst")).unwrap();
        symlink("usr/sbin", r.join("sbin")).unwrap();
        fs::write(r.join("usr/sbin/nash"), "").unwrap();
        assert_eq!(
            resolve(r, Path::new("/etc/grub.conf")),
            Path::new("/boot/grub/grub.conf")
        );
        assert_eq!(
            resolve(r, Path::new("/boot/grub/menu.lst")),
            Path::new("/boot/grub/grub.conf")
        );
        assert!(exists(r, "/sbin/nash"));
        assert!(!exists(r, "/sbin/dracut"));
        // A link pointing above / stays at /.
        symlink("../../../../etc", r.join("boot/up")).unwrap();
        assert_eq!(
            resolve(r, Path::new("/boot/up/passwd")),
            Path::new("/etc/passwd")
        );
        // Loops end.
        symlink("loop", r.join("loop")).unwrap();
        let _ = resolve(r, Path::new("/loop/x"));
    }
}

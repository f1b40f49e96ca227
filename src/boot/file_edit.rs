//! One planned change to one file of the target: what it held when we looked,
//! what it will hold, and why. Shown as a unified diff in a dry run, applied
//! atomically by the runner.
//!
//! Backups: before the first change to a file its old content is saved beside
//! it as `FILE.luksify-backup`. An existing backup is never overwritten: the
//! oldest one is the pristine, pre-luksify file a sysadmin will want back. If it
//! holds something other than what we are about to replace (a second luksify
//! run after the file was changed again), the current content goes to the
//! first free `FILE.luksify-backup.N` instead, so no state is ever lost.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::sys::atomic_file::write_atomic;

/// Mode for files that did not exist before (crypttab and friends are
/// world-readable on every distribution we handle).
const NEW_FILE_MODE: u32 = 0o644;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEdit {
    /// Absolute path inside the target (symlinks already resolved), e.g. `/etc/crypttab`.
    pub path: PathBuf,
    /// Content when planned; `None` when the file is to be created.
    #[serde(with = "opt_text")]
    pub before: Option<Vec<u8>>,
    #[serde(with = "text")]
    pub after: Vec<u8>,
    pub why: String,
}

/// The file is no longer what the plan was computed from.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} changed since the plan was made; not overwriting it. Run the plan again to see the current differences"
)]
pub struct ChangedSincePlanning {
    pub path: PathBuf,
}

/// What [`FileEdit::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The file already had the new content.
    AlreadyDone,
    /// Written; the old content (if any) is in `backup`.
    Written { backup: Option<PathBuf> },
}

impl FileEdit {
    /// An edit, or `None` when `after` equals `before`.
    pub fn if_changed(
        path: impl Into<PathBuf>,
        before: Option<Vec<u8>>,
        after: Vec<u8>,
        why: impl Into<String>,
    ) -> Option<FileEdit> {
        if before.as_deref() == Some(after.as_slice()) {
            return None;
        }
        Some(FileEdit {
            path: path.into(),
            before,
            after,
            why: why.into(),
        })
    }

    /// Unified diff (3 lines of context) with `a/` and `b/` paths like git.
    pub fn diff(&self) -> String {
        let rel = self.path.to_string_lossy();
        let rel = rel.trim_start_matches('/');
        let old = self
            .before
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let new = String::from_utf8_lossy(&self.after);
        let old_name = if self.before.is_some() {
            format!("a/{rel}")
        } else {
            "/dev/null".to_string()
        };
        let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &format!("b/{rel}"))
            .missing_newline_hint(true)
            .to_string();
        diff.split_inclusive('\n').map(shorten_padding).collect()
    }

    /// Where this edit lands on the host when the target is mounted at `root`.
    pub fn host_path(&self, root: &Path) -> PathBuf {
        root.join(self.path.strip_prefix("/").unwrap_or(&self.path))
    }

    /// Applies the edit to the target mounted at `root`. Refuses (with
    /// [`ChangedSincePlanning`] in the chain) when the file is neither what
    /// was planned from nor already the result.
    pub fn apply(&self, root: &Path) -> Result<Applied> {
        let host = self.host_path(root);
        let current = match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                // Planning resolves symlinks; a link here now means someone
                // changed the layout, and renaming over it would break it.
                return Err(ChangedSincePlanning {
                    path: self.path.clone(),
                })
                .context(format!("{} is now a symbolic link", host.display()));
            }
            Ok(_) => Some(fs::read(&host).with_context(|| format!("reading {}", host.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("looking at {}", host.display())),
        };
        if current.as_deref() == Some(self.after.as_slice()) {
            return Ok(Applied::AlreadyDone);
        }
        if current != self.before {
            return Err(ChangedSincePlanning {
                path: self.path.clone(),
            }
            .into());
        }
        let backup = match &current {
            Some(old) => Some(self.save_backup(&host, old)?),
            None => {
                create_parent(&host)?;
                None
            }
        };
        write_atomic(&host, &self.after, NEW_FILE_MODE)
            .with_context(|| format!("writing the new {}", self.path.display()))?;
        Ok(Applied::Written { backup })
    }

    fn save_backup(&self, host: &Path, old: &[u8]) -> Result<PathBuf> {
        let name = host
            .file_name()
            .context("a file to edit has no name")?
            .to_string_lossy()
            .into_owned();
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(host)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(NEW_FILE_MODE)
        };
        for n in 0..1000u32 {
            let candidate = if n == 0 {
                host.with_file_name(format!("{name}.luksify-backup"))
            } else {
                host.with_file_name(format!("{name}.luksify-backup.{n}"))
            };
            match fs::read(&candidate) {
                Ok(existing) if existing == old => return Ok(candidate),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    write_atomic(&candidate, old, mode).with_context(|| {
                        format!(
                            "saving a backup of {} as {}",
                            host.display(),
                            candidate.display()
                        )
                    })?;
                    return Ok(candidate);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("reading {}", candidate.display()));
                }
            }
        }
        bail!(
            "{} already has 1000 luksify backups; remove old ones first",
            host.display()
        )
    }
}

/// A file to be created may be the first in its directory (/etc/kernel on a
/// target that never had kernel-install configured): make the directories,
/// and flush the entry of the topmost new one to disk.
fn create_parent(host: &Path) -> Result<()> {
    let Some(dir) = host.parent() else {
        return Ok(());
    };
    let mut top = dir;
    while let Some(up) = top.parent()
        && !up.exists()
    {
        top = up;
    }
    if dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(up) = top.parent() {
        fs::File::open(up)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("flushing {} to disk", up.display()))?;
    }
    Ok(())
}

/// GRUB's environment block is padded with hundreds of `#`; a diff line of
/// nothing but padding says how long it is instead of showing it.
fn shorten_padding(line: &str) -> String {
    let (sign, rest) = line.split_at(line.len().min(1));
    let body = rest.trim_end_matches('\n');
    if body.len() > 80 && body.bytes().all(|b| b == b'#') {
        let eol = &rest[body.len()..];
        format!("{sign}#… ({} padding characters){eol}", body.len())
    } else {
        line.to_string()
    }
}

/// Contents appear in the JSON plan as readable text when they are UTF-8
/// (every configuration file we edit), as a byte array otherwise.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Bytes(Vec<u8>),
}

impl Content {
    fn from_bytes(b: &[u8]) -> Content {
        match std::str::from_utf8(b) {
            Ok(s) => Content::Text(s.to_string()),
            Err(_) => Content::Bytes(b.to_vec()),
        }
    }
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Content::Text(s) => s.into_bytes(),
            Content::Bytes(b) => b,
        }
    }
}

mod text {
    use super::Content;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        Content::from_bytes(b).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(Content::deserialize(d)?.into_bytes())
    }
}

mod opt_text {
    use super::Content;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        b.as_deref().map(Content::from_bytes).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Content>::deserialize(d)?.map(Content::into_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(before: Option<&str>, after: &str) -> FileEdit {
        FileEdit {
            path: "/etc/crypttab".into(),
            before: before.map(|b| b.as_bytes().to_vec()),
            after: after.as_bytes().to_vec(),
            why: "test".into(),
        }
    }

    fn target() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        t
    }

    #[test]
    fn diff_shows_the_change() {
        let d = edit(Some("# comment\nold\n"), "# comment\nold\nnew\n").diff();
        assert!(
            d.starts_with("--- a/etc/crypttab\n+++ b/etc/crypttab\n"),
            "{d}"
        );
        assert!(d.contains("\n+new\n") && d.contains("\n old\n"), "{d}");
        let d = edit(None, "x\n").diff();
        assert!(d.starts_with("--- /dev/null\n"), "{d}");
        let pad = "#".repeat(900);
        let d = edit(
            Some(&format!("a=1\n{pad}")),
            &format!("a=22\n{}", &pad[1..]),
        )
        .diff();
        assert!(d.contains("\n-#… (900 padding characters)\n"), "{d}");
        assert!(d.contains("\n+#… (899 padding characters)\n"), "{d}");
    }

    #[test]
    fn applies_with_backup_and_twice_is_a_no_op() {
        let t = target();
        let f = t.path().join("etc/crypttab");
        fs::write(&f, "old\n").unwrap();
        let e = edit(Some("old\n"), "new\n");
        let bk = t.path().join("etc/crypttab.luksify-backup");
        assert_eq!(
            e.apply(t.path()).unwrap(),
            Applied::Written {
                backup: Some(bk.clone())
            }
        );
        assert_eq!(fs::read_to_string(&f).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(&bk).unwrap(), "old\n");
        assert_eq!(e.apply(t.path()).unwrap(), Applied::AlreadyDone);
        assert_eq!(fs::read_to_string(&bk).unwrap(), "old\n");
    }

    #[test]
    fn refuses_when_changed_since_planning() {
        let t = target();
        let f = t.path().join("etc/crypttab");
        fs::write(&f, "edited by hand\n").unwrap();
        let err = edit(Some("old\n"), "new\n").apply(t.path()).unwrap_err();
        assert!(
            err.downcast_ref::<ChangedSincePlanning>().is_some(),
            "{err:#}"
        );
        assert_eq!(fs::read_to_string(&f).unwrap(), "edited by hand\n");
        // A file to be created that appeared meanwhile is also refused.
        assert!(edit(None, "new\n").apply(t.path()).is_err());
    }

    #[test]
    fn creates_new_files_without_backup() {
        let t = target();
        let r = edit(None, "new\n").apply(t.path()).unwrap();
        assert_eq!(r, Applied::Written { backup: None });
        assert_eq!(
            fs::read_to_string(t.path().join("etc/crypttab")).unwrap(),
            "new\n"
        );
    }

    #[test]
    fn creates_missing_directories_for_new_files() {
        let t = target();
        let mut e = edit(None, "ro quiet\n");
        e.path = "/etc/kernel/cmdline".into();
        assert_eq!(
            e.apply(t.path()).unwrap(),
            Applied::Written { backup: None }
        );
        assert_eq!(
            fs::read_to_string(t.path().join("etc/kernel/cmdline")).unwrap(),
            "ro quiet\n"
        );
        assert_eq!(e.apply(t.path()).unwrap(), Applied::AlreadyDone);
    }

    #[test]
    fn keeps_an_older_differing_backup() {
        let t = target();
        let f = t.path().join("etc/crypttab");
        fs::write(&f, "second\n").unwrap();
        fs::write(t.path().join("etc/crypttab.luksify-backup"), "pristine\n").unwrap();
        let r = edit(Some("second\n"), "third\n").apply(t.path()).unwrap();
        let n1 = t.path().join("etc/crypttab.luksify-backup.1");
        assert_eq!(
            r,
            Applied::Written {
                backup: Some(n1.clone())
            }
        );
        assert_eq!(
            fs::read_to_string(t.path().join("etc/crypttab.luksify-backup")).unwrap(),
            "pristine\n"
        );
        assert_eq!(fs::read_to_string(n1).unwrap(), "second\n");
    }

    #[test]
    fn refuses_a_symlink_where_a_file_was_planned() {
        let t = target();
        fs::write(t.path().join("etc/real"), "old\n").unwrap();
        std::os::unix::fs::symlink("real", t.path().join("etc/crypttab")).unwrap();
        assert!(edit(Some("old\n"), "new\n").apply(t.path()).is_err());
        assert_eq!(
            fs::read_to_string(t.path().join("etc/real")).unwrap(),
            "old\n"
        );
    }

    #[test]
    fn serde_round_trip() {
        let e = edit(Some("a\n"), "b\n");
        let j = serde_json::to_string(&e).unwrap();
        assert!(j.contains(r#""after":"b\n""#), "{j}");
        assert_eq!(serde_json::from_str::<FileEdit>(&j).unwrap(), e);
        let mut bin = edit(None, "");
        bin.after = vec![0xff, 0];
        let j = serde_json::to_string(&bin).unwrap();
        assert_eq!(serde_json::from_str::<FileEdit>(&j).unwrap(), bin);
    }
}

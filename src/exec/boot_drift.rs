//! Whether the boot changes computed on the mounted target are the ones the
//! plan showed from the snapshot: the person approved those.

use crate::boot::FileEdit;
use crate::plan::FileDiff;

/// Paths whose planned and actual changes differ, including files only one
/// side changes; empty when the plan showed exactly what is applied.
pub fn differences(planned: &[FileDiff], actual: &[FileEdit]) -> Vec<String> {
    let actual: Vec<FileDiff> = actual
        .iter()
        .map(|e| FileDiff {
            path: e.path.to_string_lossy().trim_start_matches('/').to_string(),
            before: e
                .before
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            after: String::from_utf8_lossy(&e.after).into_owned(),
        })
        .collect();
    let mut out: Vec<String> = planned
        .iter()
        .filter(|p| !actual.contains(p))
        .chain(actual.iter().filter(|a| !planned.contains(a)))
        .map(|d| format!("/{}", d.path))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn edit(path: &str, after: &str) -> FileEdit {
        FileEdit {
            path: PathBuf::from(path),
            before: Some(b"old\n".to_vec()),
            after: after.as_bytes().to_vec(),
            why: String::new(),
        }
    }

    fn diff(path: &str, after: &str) -> FileDiff {
        FileDiff {
            path: path.trim_start_matches('/').into(),
            before: Some("old\n".into()),
            after: after.into(),
        }
    }

    #[test]
    fn same_changes_show_no_difference() {
        let actual = [
            edit("/etc/crypttab", "new\n"),
            edit("/etc/default/grub", "g\n"),
        ];
        let planned = [
            diff("/etc/crypttab", "new\n"),
            diff("/etc/default/grub", "g\n"),
        ];
        assert!(differences(&planned, &actual).is_empty());
    }

    #[test]
    fn changed_missing_and_extra_files_are_named_once() {
        let actual = [
            edit("/etc/crypttab", "other\n"),
            edit("/etc/kernel/cmdline", "x\n"),
        ];
        let planned = [
            diff("/etc/crypttab", "new\n"),
            diff("/etc/default/grub", "g\n"),
        ];
        assert_eq!(
            differences(&planned, &actual),
            ["/etc/crypttab", "/etc/default/grub", "/etc/kernel/cmdline"]
        );
    }
}

//! Boot configuration: crypttab, kernel command line, bootloader entries.

use crate::plan::FileDiff;
use crate::plan::layout::Layout;
use crate::probe::Snapshot;

/// The file edits the boot-configuration step will make, computed from the
/// files captured in the snapshot.
pub fn planned_edits(_snap: &Snapshot, l: &Layout) -> Vec<FileDiff> {
    let before = l.target.crypttab.clone();
    let line = format!("{} UUID={} none luks", l.mapper_name, l.luks_uuid);
    if before
        .lines()
        .any(|x| x.split_whitespace().next() == Some(&l.mapper_name))
    {
        return vec![];
    }
    let mut after = before.clone();
    if !after.is_empty() && !after.ends_with('\n') {
        after.push('\n');
    }
    after.push_str(&line);
    after.push('\n');
    vec![FileDiff {
        path: "etc/crypttab".into(),
        before: (!before.is_empty()).then_some(before),
        after,
    }]
}

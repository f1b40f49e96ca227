//! Taking down a mounted target tree without `umount -R`, which busybox's
//! umount (the one on many live systems) lacks.

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, umount2};

/// Mount points at `mp` or below it in a /proc/self/mountinfo text, deepest
/// first (the order they must be unmounted in), each once.
pub fn mounts_at_or_below(mountinfo: &str, mp: &str) -> Vec<String> {
    let mp = mp.trim_end_matches('/');
    let below = format!("{mp}/");
    let mut found: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(crate::probe::mountinfo::unescape_octal)
        .filter(|m| m == mp || m.starts_with(&below))
        .collect();
    // Stable: a point mounted twice keeps its stacking order, top last, and
    // is then unmounted as many times as it is mounted.
    found.sort_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
    found.reverse();
    found.sort_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
    found
}

/// Unmounts everything at or below `mp`, deepest first.
pub fn unmount_tree(mp: &str) -> Result<()> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    for m in mounts_at_or_below(&info, mp) {
        umount2(m.as_str(), MntFlags::empty()).with_context(|| {
            format!("unmounting {m}; something still uses it (a shell inside it?). Leave it, then run `luksify migrate` again")
        })?;
    }
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let left = mounts_at_or_below(&info, mp);
    if !left.is_empty() {
        bail!("still mounted after unmounting: {}", left.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 0:20 / / rw - rootfs rootfs rw
30 22 254:2 / /run/luksify/target rw - ext4 /dev/mapper/vg0-root rw
31 30 252:1 / /run/luksify/target/boot rw - ext4 /dev/vda1 rw
32 30 0:5 / /run/luksify/target/dev rw - devtmpfs devtmpfs rw
33 30 0:4 / /run/luksify/target/proc rw - proc proc rw
34 22 0:6 / /run/luksify/target-other rw - tmpfs tmpfs rw
35 30 0:7 / /run/luksify/target/with\\040space rw - tmpfs tmpfs rw
";

    #[test]
    fn deepest_first_and_nothing_beside() {
        let m = mounts_at_or_below(INFO, "/run/luksify/target/");
        assert_eq!(m.last().map(String::as_str), Some("/run/luksify/target"));
        assert_eq!(m.len(), 5, "{m:?}");
        assert!(m.contains(&"/run/luksify/target/with space".to_string()));
        assert!(!m.iter().any(|p| p.contains("target-other")));
    }

    #[test]
    fn nothing_mounted_is_empty() {
        assert!(mounts_at_or_below(INFO, "/mnt").is_empty());
    }
}

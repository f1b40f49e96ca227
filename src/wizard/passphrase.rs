//! Judging a typed passphrase, and making a recovery passphrase.

use std::io::Read;

use anyhow::{Context, Result};
use zeroize::Zeroizing;

/// Below this many characters the wizard warns and asks again whether to keep it.
pub const MIN_CHARS: usize = 12;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Empty,
    Short(usize),
    Fine,
}

pub fn judge(p: &str) -> Verdict {
    match p.chars().count() {
        0 => Verdict::Empty,
        n if n < MIN_CHARS => Verdict::Short(n),
        _ => Verdict::Fine,
    }
}

/// Crockford's base32 alphabet in lower case: no i, l, o, u, so nothing is
/// misread when copied by hand, and 32 symbols divide a byte evenly.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const GROUPS: usize = 8;
const GROUP_LEN: usize = 5;

/// Eight groups of five characters: 200 bits from the kernel's random source.
pub fn generate_recovery() -> Result<Zeroizing<String>> {
    let mut raw = Zeroizing::new([0u8; GROUPS * GROUP_LEN]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw[..]))
        .context("reading /dev/urandom for the recovery passphrase")?;
    let mut s = Zeroizing::new(String::with_capacity(GROUPS * (GROUP_LEN + 1)));
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % GROUP_LEN == 0 {
            s.push('-');
        }
        s.push(ALPHABET[usize::from(b & 31)] as char);
    }
    Ok(s)
}

/// The group a person types back to show they wrote the passphrase down.
pub fn last_group(p: &str) -> &str {
    p.rsplit('-').next().unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(judge(""), Verdict::Empty);
        assert_eq!(judge("hunter2"), Verdict::Short(7));
        assert_eq!(judge("ééééééééééé"), Verdict::Short(11));
        assert_eq!(judge("correct horse battery"), Verdict::Fine);
    }

    #[test]
    fn recovery_shape_and_randomness() {
        let a = generate_recovery().unwrap();
        let b = generate_recovery().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), GROUPS * GROUP_LEN + GROUPS - 1);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), GROUPS);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == GROUP_LEN && g.bytes().all(|c| ALPHABET.contains(&c)))
        );
        assert_eq!(last_group(&a), groups[7]);
    }
}

//! Passphrases: held in memory that is wiped on drop, never printed, never
//! turned into a string that could reach argv, the environment or a log.

use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// A passphrase or key-file content. `Debug` shows nothing of it and there is
/// no `Display`, so it cannot be formatted into a message by accident.
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Passphrase(Zeroizing::new(bytes))
    }

    /// The bytes, for the one place that hands them to libcryptsetup or a
    /// child's stdin.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads one line, as `cryptsetup` does for a passphrase on stdin: the
    /// trailing newline is not part of it.
    pub fn read_line(mut input: impl BufRead) -> Result<Self> {
        let mut buf = Zeroizing::new(Vec::new());
        input
            .read_until(b'\n', &mut buf)
            .context("reading the passphrase from standard input")?;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.is_empty() {
            bail!("the passphrase read from standard input is empty");
        }
        Ok(Passphrase(buf))
    }

    /// Reads a key file whole, byte for byte, as `cryptsetup --key-file` does.
    pub fn read_key_file(path: &Path) -> Result<Self> {
        let mut buf = Zeroizing::new(Vec::new());
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .with_context(|| format!("reading key file {}", path.display()))?;
        if buf.is_empty() {
            bail!("key file {} is empty", path.display());
        }
        Ok(Passphrase(buf))
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_line_drops_only_the_newline() {
        let p = Passphrase::read_line(&b"  a \"$x'\n"[..]).unwrap();
        assert_eq!(p.expose(), b"  a \"$x'");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Passphrase::from_bytes(b"hunter2".to_vec());
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn empty_stdin_is_refused() {
        assert!(Passphrase::read_line(&b"\n"[..]).is_err());
    }
}

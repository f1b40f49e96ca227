//! Archive path normalization. Names inside an image are relative to the future
//! root; "./usr/bin", "/usr/bin" and "usr//bin" all mean "usr/bin". Paths asked for
//! by our own callers must not contain ".." (nothing in an image needs it, and a
//! normalized name then always stays inside the image's root).

use super::error::ArchiveError;

/// Normalizes a path given to the edit API; refuses "..", NUL and the empty path.
pub fn normalize(path: &str) -> Result<Vec<u8>, ArchiveError> {
    let bad = |problem: &str| ArchiveError::BadPath {
        path: path.to_string(),
        problem: problem.to_string(),
    };
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(bad(
                    "contains a \"..\" component; give the path inside the image as it is meant",
                ));
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return Err(bad("names the image root, not an entry"));
    }
    Ok(out.join("/").into_bytes())
}

/// Normalizes a name read from an archive, for lookups only: drops "", "."
/// components and leading slashes but keeps ".." (which then never matches a path
/// from [`normalize`]). The root ("." or "/") becomes the empty name.
pub fn normalize_archive_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for c in name.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    out
}

/// Components of a byte path, skipping empty and "." ones.
pub fn components(p: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// The parent of a normalized name ("" for top-level names).
pub fn parent(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => &p[..i],
        None => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_dot_slash_and_slashes_are_stripped() {
        assert_eq!(normalize("./usr//bin/").unwrap(), b"usr/bin");
        assert_eq!(normalize("/etc/crypttab").unwrap(), b"etc/crypttab");
        assert_eq!(normalize("././a/./b").unwrap(), b"a/b");
    }

    #[test]
    fn dotdot_nul_and_root_are_refused() {
        assert!(normalize("../etc/passwd").is_err());
        assert!(normalize("a/../../b").is_err());
        assert!(normalize("a\0b").is_err());
        assert!(normalize("/").is_err());
        assert!(normalize("./").is_err());
    }

    #[test]
    fn archive_names_keep_dotdot_so_they_never_match_a_checked_path() {
        assert_eq!(normalize_archive_name(b"./a/../b"), b"a/../b");
        assert_eq!(normalize_archive_name(b"."), b"");
        assert_eq!(normalize_archive_name(b"/x//y"), b"x/y");
    }

    #[test]
    fn parent_of_names() {
        assert_eq!(parent(b"a/b/c"), b"a/b");
        assert_eq!(parent(b"a"), b"");
    }
}

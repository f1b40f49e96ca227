//! The target root's /etc/ld.so.conf, read the way ldconfig reads it:
//! `include` lines (globs, relative to the including file's directory),
//! `hwcap` lines ignored, directories separated by blanks, `:` or `,`.

use std::path::{Path, PathBuf};

use super::inroot;

/// Nested includes deeper than this are a loop in the configuration.
const MAX_DEPTH: usize = 16;

/// Library directories from ROOT/etc/ld.so.conf and everything it includes,
/// in order, first occurrence kept. A missing file means no directories.
pub fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read(root, Path::new("/etc/ld.so.conf"), 0, &mut dirs);
    dirs
}

fn read(root: &Path, file: &Path, depth: usize, dirs: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(real) = inroot::resolve(root, file) else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(inroot::host_path(root, &real.real)) else {
        return;
    };
    let base = file.parent().unwrap_or(Path::new("/"));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => {
                for pat in words {
                    for f in inroot::glob(root, &base.join(pat)) {
                        read(root, &f, depth + 1, dirs);
                    }
                }
            }
            Some("hwcap") => {}
            _ => {
                for d in line.split([' ', '\t', ':', ',']).filter(|d| !d.is_empty()) {
                    // Old ldconfig syntax "dir=TYPE" names a library type.
                    let d = PathBuf::from(d.split('=').next().unwrap_or(d));
                    if d.is_absolute() && !dirs.contains(&d) {
                        dirs.push(d);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn includes_globs_relative_paths_and_comments() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("etc/ld.so.conf.d")).unwrap();
        fs::write(
            root.join("etc/ld.so.conf"),
            "# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/a:/opt/b, /opt/c\ninclude self.conf\n",
        )
        .unwrap();
        fs::write(
            root.join("etc/ld.so.conf.d/x86_64-linux-gnu.conf"),
            "/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu # trailing\nhwcap 0 nosegneg\n",
        )
        .unwrap();
        fs::write(root.join("etc/ld.so.conf.d/a.conf"), "/opt/first\n").unwrap();
        fs::write(root.join("etc/ld.so.conf.d/a.conf.dpkg-old"), "/nope\n").unwrap();
        // Including itself must not loop forever.
        fs::write(root.join("etc/self.conf"), "/opt/self\ninclude self.conf\n").unwrap();
        let dirs: Vec<String> = library_dirs(root)
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        assert_eq!(
            dirs,
            [
                "/opt/first",
                "/usr/local/lib/x86_64-linux-gnu",
                "/lib/x86_64-linux-gnu",
                "/opt/a",
                "/opt/b",
                "/opt/c",
                "/opt/self"
            ]
        );
    }
}

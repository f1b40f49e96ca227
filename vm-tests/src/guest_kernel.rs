//! The guest kernel: Debian 12's current `linux-image-6.1.0-*-amd64`,
//! unpacked, with `depmod` run so the host's kmod can compute load orders.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use luksify::sys::process::Cmd;

use crate::debian_pkgs;

/// The modules the live environment needs, by the names modprobe knows.
pub const LIVE_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "ext4",
    "dm-mod",
    "dm-crypt",
    "dm-mirror",
    "dm-log",
    "dm-region-hash",
    "xts",
    "ecb",
    "aesni-intel",
    "af_alg",
    "algif_skcipher",
    "algif_hash",
    "sha256-ssse3",
];

#[derive(Debug, Clone)]
pub struct GuestKernel {
    /// e.g. `6.1.0-56-amd64`
    pub release: String,
    /// The Debian package version, e.g. `6.1.192-2`.
    pub package_version: String,
    /// The unpacked package: `boot/`, `lib/modules/<release>/`.
    pub root: PathBuf,
}

impl GuestKernel {
    /// Resolves the kernel bookworm currently ships (through the
    /// `linux-image-amd64` metapackage) and unpacks it into the cache. When
    /// that fails (offline, mirror trouble) a kernel unpacked earlier is used.
    pub fn debian_current() -> Result<GuestKernel> {
        match Self::fetch_current() {
            Ok(k) => Ok(k),
            Err(e) => match Self::newest_cached()? {
                Some(k) => {
                    eprintln!(
                        "vm-tests: using cached kernel {} {} because the current one is unavailable: {e:#}",
                        k.release, k.package_version
                    );
                    Ok(k)
                }
                None => Err(e),
            },
        }
    }

    /// The newest kernel already in the cache, if any.
    pub fn newest_cached() -> Result<Option<GuestKernel>> {
        let dir = crate::cache::root()?.join(debian_pkgs::UNPACKED_KIND);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(None);
        };
        let mut found: Vec<(String, String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let rest = name
                    .strip_prefix("linux-image-")?
                    .strip_suffix(&format!("_amd64+{PREPARED_TAG}"))?;
                let (release, version) = rest.split_once('_')?;
                Some((
                    release.to_string(),
                    version.to_string(),
                    e.path().join("root"),
                ))
            })
            .collect();
        found.sort_by_key(|k| natural_key(&k.0));
        Ok(found
            .pop()
            .map(|(release, package_version, root)| GuestKernel {
                release,
                package_version,
                root,
            }))
    }

    fn fetch_current() -> Result<GuestKernel> {
        let meta = debian_pkgs::resolve("linux-image-amd64")?;
        let name = debian_pkgs::depends_names(&meta.depends)
            .into_iter()
            .find(|n| n.starts_with("linux-image-"))
            .with_context(|| {
                format!(
                    "linux-image-amd64 {} depends on no kernel image",
                    meta.version
                )
            })?;
        let pkg = debian_pkgs::resolve(&name)?;
        let release = name
            .strip_prefix("linux-image-")
            .unwrap_or(&name)
            .to_string();
        let rel = release.clone();
        let root = debian_pkgs::unpacked(&pkg, PREPARED_TAG, |root| {
            // The .deb ships no modules.dep: dpkg's postinst normally makes it.
            Cmd::new("depmod").arg("-b").arg(root).arg(&rel).run()?;
            extract_pvh_vmlinux(root, &rel)
        })?;
        let k = GuestKernel {
            release,
            package_version: pkg.version,
            root,
        };
        if !k.vmlinuz().is_file() {
            bail!("{} has no {}", name, k.vmlinuz().display());
        }
        Ok(k)
    }

    pub fn vmlinuz(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("vmlinuz-{}", self.release))
    }

    /// The uncompressed ELF kernel. QEMU boots it through its PVH entry
    /// point, skipping the bzImage's XZ decompressor, which under TCG takes
    /// about 6 s of every boot.
    pub fn vmlinux(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("vmlinux-{}", self.release))
    }

    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.release)
    }

    /// The module files to load, in order, for `names` and their
    /// dependencies; built-in ones are left out, each file appears once.
    pub fn load_order(&self, names: &[&str]) -> Result<Vec<PathBuf>> {
        let mut order: Vec<PathBuf> = Vec::new();
        for name in names {
            let out = Cmd::new("modprobe")
                .arg("-d")
                .arg(&self.root)
                .args(["-S", &self.release, "--show-depends", name])
                .run()
                .with_context(|| format!("finding kernel module {name} in {}", self.release))?;
            for path in parse_show_depends(&out.stdout_str()) {
                if !order.contains(&path) {
                    order.push(path);
                }
            }
        }
        Ok(order)
    }

    /// Path of a module file relative to the modules dir (where the live
    /// environment puts it).
    pub fn relative_module_path<'a>(&self, path: &'a Path) -> Result<&'a Path> {
        path.strip_prefix(self.modules_dir()).with_context(|| {
            format!(
                "{} is not under {}",
                path.display(),
                self.modules_dir().display()
            )
        })
    }
}

/// What preparation the cached kernel tree got (part of its cache key).
const PREPARED_TAG: &str = "depmod-pvh";

/// Writes boot/vmlinux-<release>: the XZ payload of the bzImage, which is
/// the kernel's ELF image.
fn extract_pvh_vmlinux(root: &Path, release: &str) -> Result<()> {
    let bz = root.join("boot").join(format!("vmlinuz-{release}"));
    let data = std::fs::read(&bz).with_context(|| format!("reading {}", bz.display()))?;
    let start = data
        .windows(6)
        .position(|w| w == b"\xfd7zXZ\0")
        .with_context(|| format!("{} holds no XZ-compressed kernel", bz.display()))?;
    let out = Cmd::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin_bytes(data[start..].to_vec())
        .run()
        .with_context(|| format!("decompressing the kernel in {}", bz.display()))?;
    if !out.stdout.starts_with(b"\x7fELF") {
        bail!("the XZ payload of {} is not an ELF kernel", bz.display());
    }
    let dest = root.join("boot").join(format!("vmlinux-{release}"));
    std::fs::write(&dest, &out.stdout).with_context(|| format!("writing {}", dest.display()))
}

/// Orders `6.1.0-9-amd64` before `6.1.0-56-amd64`.
fn natural_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// `insmod PATH [params]` lines become paths; `builtin NAME` lines are skipped
/// (the kernel already has those).
pub fn parse_show_depends(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.strip_prefix("insmod "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_sort_numerically() {
        assert!(natural_key("6.1.0-9-amd64") < natural_key("6.1.0-56-amd64"));
        assert!(natural_key("6.1.0-56-amd64") < natural_key("6.10.0-1-amd64"));
    }

    #[test]
    fn show_depends_keeps_insmods_and_drops_builtins() {
        let text = "builtin crc32c\ninsmod /r/lib/modules/k/kernel/fs/jbd2/jbd2.ko \n\
                    insmod /r/lib/modules/k/kernel/fs/ext4/ext4.ko opt=1\n";
        assert_eq!(
            parse_show_depends(text),
            [
                PathBuf::from("/r/lib/modules/k/kernel/fs/jbd2/jbd2.ko"),
                PathBuf::from("/r/lib/modules/k/kernel/fs/ext4/ext4.ko")
            ]
        );
    }
}

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
    /// `linux-image-amd64` metapackage) and unpacks it into the cache.
    pub fn debian_current() -> Result<GuestKernel> {
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
        let root = debian_pkgs::unpacked(&pkg, "depmod", |root| {
            // The .deb ships no modules.dep: dpkg's postinst normally makes it.
            Cmd::new("depmod").arg("-b").arg(root).arg(&rel).run()?;
            Ok(())
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

//! `luksify migrate`'s initramfs step on a dracut target, with Debian's real
//! dracut in a copy of the testkit's dracut root: the image is rebuilt beside
//! the old one and renamed over it (keeping its permissions), with the crypt
//! module and the crypttab; a /boot without room for that is refused before
//! dracut runs, and when dracut fails anyway (here: /boot fills up while it
//! writes, after which dracut deletes the file it was writing) the old image
//! is still there.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use luksify::exec::dracut_target::{self, NEW_SUFFIX};
use luksify::initrd::{Image, inimage};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use testkit::{Flavour, RootCopy, kernel_version};

const CRYPTTAB: &str = "luks-root UUID=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 none luks\n";

/// A smaller image than Debian's generic default, built in seconds, and
/// uncompressed, so that its size (about 60 MiB) is sure to exceed what a
/// small /boot holds; the crypt, dm and lvm modules come from luksify's own
/// configuration.
const FAST: &str = "hostonly=\"no\"\n\
drivers=\"dm-mod ext4 virtio_blk\"\n\
omit_dracutmodules+=\" systemd systemd-initrd systemd-udevd dracut-systemd \"\n\
compress=\"cat\"\n";

fn write(p: &Path, data: &[u8], mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tmpfs of `size` over `dir` while it lives, `dir`'s own files set aside.
struct SmallFs {
    dir: PathBuf,
    aside: tempfile::TempDir,
}

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> SmallFs {
        let aside = tempfile::tempdir_in(dir.parent().unwrap()).unwrap();
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            fs::rename(e.path(), aside.path().join(e.file_name())).unwrap();
        }
        let opts = format!("size={size}");
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap();
        SmallFs {
            dir: dir.to_path_buf(),
            aside,
        }
    }
}

impl Drop for SmallFs {
    // No panics here: a failed assertion is already unwinding through it.
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.dir, MntFlags::empty()) {
            eprintln!("unmounting {}: {e}", self.dir.display());
            return;
        }
        for e in fs::read_dir(self.aside.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Err(err) = fs::rename(e.path(), self.dir.join(e.file_name())) {
                eprintln!("moving {} back: {err}", e.path().display());
            }
        }
    }
}

#[test]
fn dracut_rebuilds_beside_the_old_image_and_a_failure_leaves_the_old_one() {
    let mut copy = RootCopy::new(Flavour::Dracut).unwrap();
    let root = copy.path();
    let kver = kernel_version(&root).unwrap();
    write(
        &root.join("etc/dracut.conf.d/00-test-fast.conf"),
        FAST.as_bytes(),
        0o644,
    );
    write(&root.join("etc/crypttab"), CRYPTTAB.as_bytes(), 0o644);
    dracut_target::install_conf(&root).unwrap();
    copy.mount().unwrap();
    let boot = root.join("boot");
    let image = boot.join(format!("initrd.img-{kver}"));
    let new = boot.join(format!("initrd.img-{kver}{NEW_SUFFIX}"));
    let kernels = vec![kver.clone()];
    let untouched = |_: &str| panic!("no image may be replaced");

    // No room for a new image beside the old one: refused before dracut runs,
    // also counting the room an interrupted run's unfinished new image takes.
    {
        let _small = SmallFs::mount(&boot, "8m");
        let old = vec![7u8; 3 << 20];
        write(&image, &old, 0o644);
        write(&new, b"left by an interrupted run", 0o600);
        let e = dracut_target::rebuild(&root, &kernels, untouched).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("the target's dracut needs about 19 MiB"),
            "{text}"
        );
        assert!(text.contains("run `luksify migrate` again"), "{text}");
        assert_eq!(fs::read(&image).unwrap(), old);
        // A refusal changes nothing, not even what an earlier run left.
        assert_eq!(fs::read(&new).unwrap(), b"left by an interrupted run");
    }

    // Room by the estimate, but dracut's image is larger: its copy fails
    // and dracut deletes the file it wrote to. That was not the image.
    {
        let _small = SmallFs::mount(&boot, "24m");
        let old = vec![7u8; 1 << 20];
        write(&image, &old, 0o644);
        let e = dracut_target::rebuild(&root, &kernels, untouched).unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("the target's dracut building"), "{text}");
        assert!(text.contains("No space left on device"), "{text}");
        assert!(text.contains("was left as it was"), "{text}");
        assert_eq!(fs::read(&image).unwrap(), old);
        assert!(!new.exists());
    }

    // Room enough: dracut's image replaces the old one, with its permissions;
    // what an interrupted run left is not taken for it.
    write(&image, b"old", 0o644);
    write(&new, b"left by an interrupted run", 0o600);
    let mut done = Vec::new();
    dracut_target::rebuild(&root, &kernels, |i| done.push(i.to_string())).unwrap();
    assert_eq!(done, vec![format!("/boot/initrd.img-{kver}")]);
    assert!(!new.exists());
    let meta = fs::metadata(&image).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert!(
        meta.len() > 24 << 20,
        "the image no longer overflows the small /boot above"
    );
    let img = Image::open(&image).unwrap();
    assert_eq!(
        inimage::text(&img, "etc/crypttab").as_deref(),
        Some(CRYPTTAB)
    );
    let names: Vec<String> = img
        .original_names()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let has = |want: &str| names.iter().any(|n| n.contains(want));
    assert!(
        has("usr/sbin/cryptsetup"),
        "cryptsetup missing from dracut's image"
    );
    assert!(has("/dm-crypt.ko"), "dm-crypt missing from dracut's image");
    assert!(has("usr/lib/dracut/hooks"), "not a dracut image");
}

//! `luksify migrate`'s initramfs step on a target without
//! cryptsetup-initramfs, on real images Debian's mkinitramfs built (testkit,
//! cached): the image gains luksify's unlock, the original is kept once, the
//! new image passes the engine's verify and the checks the Verify step runs
//! on the target's own lsinitramfs listing; running again (finished, or
//! interrupted before the rename) changes nothing it should not; and the
//! target's own mkinitramfs keeps the unlock afterwards.

use std::fs;
use std::path::Path;

use luksify::exec::inject_target::{self, Outcome, Unlock};
use luksify::exec::persist_unlock;
use luksify::exec::runner::missing_for_unlock;
use luksify::initrd::flavour::{UNLOCK_CONF, UNLOCK_PATH, UNLOCK_SCRIPT};
use luksify::initrd::{Image, inimage};
use testkit::{Generator, lsinitramfs, real_images};

const UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn unlock() -> Unlock<'static> {
    Unlock {
        luks_uuid: UUID,
        mapper_name: Some("luks-root"),
        vg: "vg-sys",
        root_lv: "root",
        cipher: "aes-xts-plain64",
    }
}

fn verdict_on_disk(image: &Path) -> bool {
    let img = Image::open(image).unwrap();
    inject_target::verdict(&img, &unlock()).unwrap().ok()
}

#[test]
fn preflight_names_cryptsetup_bin_and_the_missing_image() {
    let t = tempfile::tempdir().unwrap();
    let kernels = vec!["6.1.0-28-amd64".to_string()];
    fs::create_dir_all(t.path().join("boot")).unwrap();
    let e = inject_target::preflight(t.path(), Some("initramfs-tools"), &kernels).unwrap_err();
    assert!(
        format!("{e:#}").contains("apt-get install cryptsetup-bin"),
        "{e:#}"
    );

    fs::create_dir_all(t.path().join("usr/sbin")).unwrap();
    fs::write(t.path().join("usr/sbin/cryptsetup"), b"").unwrap();
    let e = inject_target::preflight(t.path(), Some("initramfs-tools"), &kernels).unwrap_err();
    assert!(
        format!("{e:#}").contains("/boot/initrd.img-6.1.0-28-amd64"),
        "{e:#}"
    );

    let img = t.path().join("boot/initrd.img-6.1.0-28-amd64");
    fs::write(&img, b"").unwrap();
    let found = inject_target::preflight(t.path(), Some("initramfs-tools"), &kernels).unwrap();
    assert_eq!(found, vec![(kernels[0].clone(), img)]);
}

#[test]
fn inject_keeps_the_original_once_and_never_injects_twice() {
    let images = real_images().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for real in images
        .iter()
        .filter(|i| i.generator == Generator::Mkinitramfs && !i.all_modules)
    {
        seen += 1;
        let name = real
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let dir = work.path().join(&name);
        fs::create_dir_all(&dir).unwrap();
        let image = dir.join(format!("initrd.img-{}", real.kver));
        fs::copy(&real.path, &image).unwrap();
        let original = fs::read(&real.path).unwrap();
        assert!(!verdict_on_disk(&image), "{name}: unlocks before injection");

        let out = inject_target::inject_image(&real.root, &image, &real.kver, &unlock()).unwrap();
        let backup = inject_target::backup_of(&image);
        assert!(
            matches!(&out, Outcome::Injected { backup: b, added } if *b == backup && *added > 0),
            "{name}: {out:?}"
        );
        assert_eq!(fs::read(&backup).unwrap(), original, "{name}: backup");
        assert!(verdict_on_disk(&image), "{name}: verify after injection");
        // What migrate's Verify step reads: the target's own lsinitramfs.
        let listing = lsinitramfs(&image, false).unwrap().join("\n");
        assert_eq!(
            missing_for_unlock(&listing, false),
            Vec::<&str>::new(),
            "{name}"
        );
        assert!(listing.contains("scripts/local-top/luksify"), "{name}");
        let injected = fs::read(&image).unwrap();

        // Finished already: nothing changes.
        let again = inject_target::inject_image(&real.root, &image, &real.kver, &unlock()).unwrap();
        assert_eq!(again, Outcome::AlreadyUnlocks, "{name}");
        assert_eq!(fs::read(&image).unwrap(), injected, "{name}: second run");
        assert_eq!(fs::read(&backup).unwrap(), original, "{name}: backup kept");

        // Interrupted after the backup, before the rename: the image is the
        // original again; the backup is not rewritten, the result is the same.
        fs::write(&image, &original).unwrap();
        let resumed =
            inject_target::inject_image(&real.root, &image, &real.kver, &unlock()).unwrap();
        assert!(
            matches!(resumed, Outcome::Injected { .. }),
            "{name}: {resumed:?}"
        );
        assert_eq!(fs::read(&image).unwrap(), injected, "{name}: resumed");
        assert_eq!(fs::read(&backup).unwrap(), original, "{name}: backup");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("luksify-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
    }
    assert!(seen > 0, "no mkinitramfs image among the real images");
}

/// After the migration, the target's own update-initramfs (a kernel update)
/// must build images that still unlock: the hook and configuration luksify
/// installs in the target make Debian's real mkinitramfs add the same unlock.
#[test]
fn update_initramfs_after_migrate_keeps_the_unlock() {
    let images = real_images().unwrap();
    let real = images
        .iter()
        .find(|i| i.generator == Generator::Mkinitramfs && !i.all_modules && !i.early_microcode)
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join(format!("initrd.img-{}", real.kver));
    fs::copy(&real.path, &image).unwrap();
    inject_target::inject_image(&real.root, &image, &real.kver, &unlock()).unwrap();
    let conf = inject_target::unlock_conf_of(&image).unwrap().unwrap();

    let (bytes, _root) = testkit::mkinitramfs_after(|root| {
        persist_unlock::install(root, &conf)?;
        // The target had no unlock in its initramfs before.
        assert!(
            !root
                .join("usr/share/initramfs-tools/hooks/cryptroot")
                .exists()
        );
        Ok(())
    })
    .unwrap();
    let rebuilt = Image::parse(bytes).unwrap();
    let v = inject_target::verdict(&rebuilt, &unlock()).unwrap();
    assert!(v.ok(), "{}", v.to_text());
    assert_eq!(inimage::text(&rebuilt, UNLOCK_CONF), Some(conf));
    assert_eq!(
        inimage::text(&rebuilt, UNLOCK_PATH).as_deref(),
        Some(UNLOCK_SCRIPT)
    );
    let order = inimage::text(&rebuilt, "scripts/local-top/ORDER").unwrap();
    assert!(order.contains("/scripts/local-top/luksify"), "{order}");
    let tab = inimage::text(&rebuilt, "cryptroot/crypttab").unwrap();
    assert_eq!(tab, format!("luks-root UUID={UUID} none luks\n"));
}

//! The artefacts are what they claim to be, judged by Debian's own tools.
//! Cold (no cache): debootstrap + apt + all images, several minutes.

use testkit::{
    Compression, Flavour, Generator, debian_root, kernel_version, lsinitramfs, real_images,
};

#[test]
fn roots_have_kernel_lvm_cryptsetup_and_their_generator() {
    for (flavour, generator) in [
        (Flavour::InitramfsTools, "usr/sbin/mkinitramfs"),
        (Flavour::Dracut, "usr/bin/dracut"),
    ] {
        let root = debian_root(flavour).unwrap();
        let kver = kernel_version(&root).unwrap();
        for f in [
            "usr/sbin/cryptsetup",
            "usr/sbin/lvm",
            "usr/bin/busybox",
            generator,
            &format!("boot/vmlinuz-{kver}"),
            &format!("lib/modules/{kver}/modules.dep"),
        ] {
            assert!(root.join(f).exists(), "{flavour:?} root lacks {f}");
        }
        assert!(
            !root
                .join("usr/share/initramfs-tools/hooks/cryptroot")
                .exists(),
            "cryptsetup-initramfs must not be installed"
        );
    }
}

#[test]
fn images_have_the_claimed_layout() {
    let images = real_images().unwrap();
    assert!(images.len() >= 10);
    for img in &images {
        let data = std::fs::read(&img.path).unwrap();
        let name = img.path.display();
        // An early microcode segment is an uncompressed newc cpio.
        assert_eq!(data.starts_with(b"070701"), img.early_microcode, "{name}");
        let listing = lsinitramfs(&img.path, false).unwrap();
        let has_ucode = listing
            .iter()
            .any(|l| l.starts_with("kernel/x86/microcode/") && l.ends_with(".bin"));
        assert_eq!(has_ucode, img.early_microcode, "{name}");
        assert!(
            listing
                .iter()
                .any(|l| l == "init" || l == "bin/busybox" || l == "usr/bin/busybox"),
            "{name}: {listing:?}"
        );
        match img.generator {
            Generator::Mkinitramfs | Generator::Dracut | Generator::DracutSystemd => {
                let dep = format!("usr/lib/modules/{}/modules.dep", img.kver);
                assert!(
                    listing.iter().any(|l| *l == dep
                        || l.ends_with(&format!("lib/modules/{}/modules.dep", img.kver))),
                    "{name} has no module index"
                );
            }
            Generator::Busybox | Generator::BusyboxCrcHardlinks => {}
        }
        if img.generator == Generator::DracutSystemd {
            assert!(
                listing.iter().any(|l| l.ends_with("systemd/systemd")),
                "{name}"
            );
        }
        if let Generator::Busybox | Generator::BusyboxCrcHardlinks = img.generator {
            let magic = testkit::run(
                "sh",
                [
                    "-c",
                    &format!("gzip -dc '{}' | head -c 6", img.path.display()),
                ],
            )
            .unwrap();
            let crc = img.generator == Generator::BusyboxCrcHardlinks;
            assert_eq!(magic, if crc { "070702" } else { "070701" }, "{name}");
            // cpio -tv (lsinitramfs -l) shows the link count in column 2.
            let long = lsinitramfs(&img.path, true).unwrap();
            let sh = long
                .iter()
                .find(|l| l.ends_with(" bin/sh") || l.contains(" bin/sh "))
                .unwrap();
            let nlink: u32 = sh.split_whitespace().nth(1).unwrap().parse().unwrap();
            assert_eq!(nlink, if crc { 6 } else { 1 }, "{name}: {sh}");
        }
        // The main segment's compression, by the magic bytes the kernel uses.
        let main = main_segment(&data);
        let magic: &[u8] = match img.compression {
            Compression::Gzip => b"\x1f\x8b",
            Compression::Zstd => b"\x28\xb5\x2f\xfd",
            Compression::Xz => b"\xfd7zXZ\0",
            Compression::Lz4 => b"\x02\x21\x4c\x18",
        };
        assert!(
            main.starts_with(magic),
            "{name}: {:02x?}",
            &main[..8.min(main.len())]
        );
    }
}

/// Skips the leading uncompressed cpio archives (each up to its
/// TRAILER!!! and zero padding): mkinitramfs puts one per microcode vendor.
fn main_segment(mut data: &[u8]) -> &[u8] {
    while data.starts_with(b"0707") {
        let t = data
            .windows(10)
            .position(|w| w == b"TRAILER!!!")
            .expect("early cpio has a trailer");
        let mut i = t + 10;
        while i < data.len() && data[i] == 0 {
            i += 1;
        }
        data = &data[i..];
    }
    data
}

#[test]
fn unmkinitramfs_unpacks_early_and_main_parts() {
    let images = real_images().unwrap();
    let t = tempfile::tempdir().unwrap();
    for img in images
        .iter()
        .filter(|i| i.generator == Generator::Mkinitramfs && i.compression == Compression::Lz4)
    {
        let dest = t.path().join(img.path.file_name().unwrap());
        testkit::unmkinitramfs(&img.path, &dest).unwrap();
        let main = if img.early_microcode {
            let early = dest.join("early/kernel/x86/microcode");
            assert!(early.is_dir(), "{}", early.display());
            dest.join("main")
        } else {
            dest.clone()
        };
        assert!(main.join("init").is_file(), "{}", main.display());
        assert!(main.join("scripts/local").is_file());
    }
}

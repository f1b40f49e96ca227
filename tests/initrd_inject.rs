//! `luksify initrd inject` and `verify` on real images that Debian's
//! mkinitramfs and dracut built (testkit, cached), judged by readers that are
//! not ours: Debian's unmkinitramfs/lsinitramfs, GNU cpio and the real
//! decompressors. Every original entry must come out unchanged (content,
//! mode, owner, link target, hard links) except the few files injection must
//! edit; `verify` must pass after and fail before, naming what is missing.

#[path = "support/initrd_oracle.rs"]
mod initrd_oracle;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use initrd_oracle::{Tree, decompress_tool, gnu_names};
use luksify::initrd::Image;
use testkit::{Generator, RealImage, lsinitramfs, real_images, unmkinitramfs};

const UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const VG: &str = "vg-sys";

fn luksify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_luksify"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `luksify initrd inject INPUT --root ROOT --luks-uuid UUID --vg VG EXTRA... -o OUT`.
fn run_inject(input: &Path, root: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "initrd",
        "inject",
        input.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--luks-uuid",
        UUID,
        "--vg",
        VG,
    ];
    args.extend_from_slice(extra);
    args.extend(["-o", out.to_str().unwrap()]);
    luksify(&args)
}

/// [`run_inject`] without extra options, which must succeed.
fn inject(input: &Path, root: &Path, out: &Path) {
    let (code, _, err) = run_inject(input, root, out, &[]);
    assert_eq!(code, 0, "{err}");
}

fn verify(image: &Path) -> (i32, String) {
    let (code, out, err) = luksify(&[
        "initrd",
        "verify",
        image.to_str().unwrap(),
        "--luks-uuid",
        UUID,
        "--vg",
        VG,
    ]);
    (code, out + &err)
}

/// Files injection has to edit rather than add.
fn may_change(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    name == "init" || name.ends_with("scripts/local-top/ORDER") || file.starts_with("modules.")
}

/// The unpacked main archive: unmkinitramfs puts it in main/ when an early
/// segment precedes it.
fn main_dir(dir: &Path, img: &RealImage) -> PathBuf {
    if img.early_microcode {
        dir.join("main")
    } else {
        dir.to_path_buf()
    }
}

fn check_one(img: &RealImage, work: &Path) {
    let t0 = Instant::now();
    let name = img.path.file_name().unwrap().to_string_lossy().into_owned();
    let out = work.join(&name);

    let (code, text) = verify(&img.path);
    assert_eq!(code, 4, "{name}: verify of the original must fail:\n{text}");
    let expect_missing = match img.generator {
        Generator::Dracut | Generator::DracutSystemd => "crypttab",
        _ => "cryptsetup",
    };
    assert!(text.contains(expect_missing), "{name}: {text}");

    let (code, _, err) = run_inject(&img.path, &img.root, &out, &["--lv", "root"]);
    assert_eq!(code, 0, "{name}: inject failed: {err}");
    let (code, text) = verify(&out);
    assert_eq!(code, 0, "{name}: verify after inject:\n{text}");

    // The default rewrite leaves one main archive; the real decompressor and
    // GNU cpio must read it whole, injected files included.
    let new = fs::read(&out).unwrap();
    let main_seg = Image::parse(new.clone())
        .unwrap()
        .segments()
        .last()
        .unwrap()
        .clone();
    let body = new[main_seg.offset as usize..(main_seg.offset + main_seg.length) as usize].to_vec();
    let names = gnu_names(decompress_tool(main_seg.compression, body));
    assert!(
        names
            .iter()
            .any(|n| n == "etc/luksify/unlock.conf" || n == "etc/cmdline.d/90-luksify.conf"),
        "{name}: GNU cpio does not see the injected files"
    );

    // Debian's own readers.
    let listed = lsinitramfs(&out, false).unwrap();
    let want = match img.generator {
        Generator::Dracut | Generator::DracutSystemd => "etc/cmdline.d/90-luksify.conf",
        Generator::Mkinitramfs => "scripts/local-top/luksify",
        _ => "init.luksify-orig",
    };
    assert!(
        listed.iter().any(|l| l == want),
        "{name}: lsinitramfs lacks {want}"
    );

    let before_dir = work.join(format!("{name}.before"));
    let after_dir = work.join(format!("{name}.after"));
    unmkinitramfs(&img.path, &before_dir).unwrap();
    unmkinitramfs(&out, &after_dir).unwrap();
    let before = Tree::snapshot(&before_dir);
    let after = Tree::snapshot(&after_dir);
    let mut problems = Vec::new();
    for (k, want) in &before.0 {
        let rel = k.strip_prefix("main/").unwrap_or(k);
        match after.0.get(k) {
            None => problems.push(format!("{k} disappeared")),
            Some(got) if got != want && !may_change(rel) => problems.push(format!(
                "{k} changed: {} {:o} {}:{} {}B -> {} {:o} {}:{} {}B",
                want.kind,
                want.mode,
                want.uid,
                want.gid,
                want.content.len(),
                got.kind,
                got.mode,
                got.uid,
                got.gid,
                got.content.len()
            )),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));

    // What the boot will run is what initramfs/ holds.
    let main = main_dir(&after_dir, img);
    let dracut = matches!(img.generator, Generator::Dracut | Generator::DracutSystemd);
    if !dracut {
        let unlock = fs::read_to_string(main.join("sbin/luksify-unlock")).unwrap();
        assert_eq!(unlock, include_str!("../initramfs/luksify-unlock"));
    }
    let conf = fs::read_to_string(main.join("etc/luksify/unlock.conf")).ok();
    match img.generator {
        Generator::Mkinitramfs => {
            let order = fs::read_to_string(main.join("scripts/local-top/ORDER")).unwrap();
            assert!(
                order.starts_with("/scripts/local-top/luksify \"$@\"\n"),
                "{order}"
            );
            let conf = conf.unwrap();
            assert!(conf.contains(&format!("LUKSIFY_UUID='{UUID}'")), "{conf}");
            assert!(conf.contains("dm_crypt"), "{conf}");
            assert!(main.join("usr/sbin/cryptsetup").exists());
        }
        Generator::Dracut | Generator::DracutSystemd => {
            let tab = fs::read_to_string(main.join("etc/crypttab")).unwrap();
            assert_eq!(tab, format!("luks-{UUID} UUID={UUID} none luks\n"));
            let cmd = fs::read_to_string(main.join("etc/cmdline.d/90-luksify.conf")).unwrap();
            assert_eq!(
                cmd,
                format!("rd.luks.uuid={UUID} rd.lvm.vg={VG} root=/dev/mapper/vg--sys-root\n")
            );
        }
        Generator::Busybox | Generator::BusyboxCrcHardlinks => {
            let init = fs::read_to_string(main.join("init")).unwrap();
            assert_eq!(init, include_str!("../initramfs/busybox-init"));
            let orig_init = fs::read(before_dir.join("init")).unwrap();
            assert_eq!(fs::read(main.join("init.luksify-orig")).unwrap(), orig_init);
        }
    }
    // The cipher's modules are the kernel's files as shipped.
    let kdir = format!("lib/modules/{}", img.kver);
    let dep = fs::read_to_string(main.join(&kdir).join("modules.dep")).unwrap();
    let line = dep
        .lines()
        .find(|l| l.starts_with("kernel/drivers/md/dm-crypt.ko"))
        .unwrap_or_else(|| panic!("{name}: dm-crypt not in modules.dep"));
    let rel = line.split(':').next().unwrap();
    assert_eq!(
        fs::read(main.join(&kdir).join(rel)).unwrap(),
        fs::read(img.root.join(&kdir).join(rel)).unwrap()
    );
    eprintln!("{name}: {:.1}s", t0.elapsed().as_secs_f64());
}

#[test]
fn inject_then_verify_on_every_real_image() {
    let images = real_images().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Two workers: the machine has two cores.
    let (a, b): (Vec<_>, Vec<_>) = images.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    std::thread::scope(|s| {
        for part in [a, b] {
            let work = work.path();
            s.spawn(move || {
                for (_, img) in part {
                    check_one(img, work);
                }
            });
        }
    });
}

/// --overlay: the original bytes stay a prefix, and the one appended
/// segment is what the real decompressor and GNU cpio read.
#[test]
fn overlay_appends_one_segment_that_gnu_cpio_reads() {
    let images = real_images().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for img in images.iter().filter(|i| {
        !i.early_microcode
            && matches!(i.generator, Generator::Mkinitramfs | Generator::Dracut)
            && !matches!(i.compression, testkit::Compression::Lz4)
    }) {
        let out = dir.path().join(img.path.file_name().unwrap());
        let (code, _, err) = run_inject(&img.path, &img.root, &out, &["--overlay"]);
        assert_eq!(code, 0, "{err}");
        let orig = fs::read(&img.path).unwrap();
        let new = fs::read(&out).unwrap();
        assert!(new.starts_with(&orig), "{}: not an overlay", out.display());
        let parsed = Image::parse(new.clone()).unwrap();
        let last = parsed.segments().last().unwrap();
        assert!(last.offset as usize >= orig.len());
        let names = gnu_names(decompress_tool(
            last.compression,
            new[last.offset as usize..].to_vec(),
        ));
        assert!(
            names
                .iter()
                .any(|n| n == "etc/luksify/unlock.conf" || n == "etc/cmdline.d/90-luksify.conf"),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n == "init"),
            "an overlay must not repeat untouched files"
        );
        assert_eq!(verify(&out).0, 0);
    }
}

#[test]
fn bad_input_gets_one_line_with_the_offset_and_writes_nothing() {
    let images = real_images().unwrap();
    let img = images
        .iter()
        .find(|i| i.generator == Generator::Mkinitramfs && !i.early_microcode)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let raw = fs::read(&img.path).unwrap();
    let truncated = dir.path().join("truncated.img");
    fs::write(&truncated, &raw[..raw.len() / 2]).unwrap();
    let garbage = dir.path().join("garbage.img");
    fs::write(&garbage, b"this is not an initramfs\n").unwrap();
    for bad in [&truncated, &garbage] {
        let out = dir.path().join("out.img");
        let (code, _, err) = run_inject(bad, &img.root, &out, &[]);
        assert_ne!(code, 0);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("byte"), "{err}");
        assert!(!out.exists());
        let (code, text) = verify(bad);
        assert_ne!(code, 0);
        assert!(text.contains("byte"), "{text}");
    }
    // Refuses to replace its input unless asked, then keeps the original.
    let copy = dir.path().join("initrd.img");
    fs::copy(&img.path, &copy).unwrap();
    let args = |extra: &[&str]| {
        let mut v = vec![
            "initrd".to_string(),
            "inject".into(),
            copy.display().to_string(),
            "--root".into(),
            img.root.display().to_string(),
            "--luks-uuid".into(),
            UUID.into(),
            "--vg".into(),
            VG.into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a = args(&["-o", copy.to_str().unwrap()]);
    let (code, _, err) = luksify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("--in-place"), "{err}");
    assert_eq!(fs::read(&copy).unwrap(), raw);
    let a = args(&["--in-place"]);
    let (code, _, err) = luksify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(dir.path().join("initrd.img.orig")).unwrap(), raw);
    assert_eq!(verify(&copy).0, 0);
    // Unsafe names never reach a shell script.
    let a = args(&["-o", "/dev/null/x", "--mapper", "x';reboot;'"]);
    let (code, _, err) = luksify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(code, 0);
    assert!(err.contains("mapper name"), "{err}");
}

#[test]
fn hook_scripts_are_shellcheck_clean() {
    for e in fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/initramfs")).unwrap() {
        let p = e.unwrap().path();
        let out = Command::new("shellcheck")
            .args(["-s", "sh"])
            .arg(&p)
            .output()
            .expect("shellcheck is installed (xtask/apt/initrd-inject.txt)");
        assert!(
            out.status.success(),
            "{}:\n{}",
            p.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Injecting into an already injected image changes nothing that Debian's
/// unmkinitramfs can see (no second ORDER line, crypttab line or wrapper).
#[test]
fn injecting_twice_is_the_same_as_once() {
    let images = real_images().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for img in images.iter().filter(|i| {
        !i.early_microcode
            && matches!(i.compression, testkit::Compression::Gzip)
            && matches!(i.generator, Generator::Mkinitramfs | Generator::Busybox)
    }) {
        let mut trees = Vec::new();
        let mut input = img.path.clone();
        for n in 1..=2 {
            let out = dir.path().join(format!(
                "{n}-{}",
                img.path.file_name().unwrap().to_string_lossy()
            ));
            inject(&input, &img.root, &out);
            let unpacked = dir
                .path()
                .join(format!("{}.d", out.file_name().unwrap().to_string_lossy()));
            unmkinitramfs(&out, &unpacked).unwrap();
            trees.push(Tree::snapshot(&unpacked));
            input = out;
        }
        trees[0].assert_same(&trees[1]);
    }
}

/// An image an older luksify wrapped, whose wrapper reads differently from
/// today's: injecting again refreshes the wrapper and keeps the image's own
/// init as the original (saving the old wrapper as the original would make
/// the new one exec a wrapper that execs itself).
#[test]
fn injecting_over_an_older_busybox_wrapper_keeps_the_real_init() {
    let img = real_images()
        .unwrap()
        .into_iter()
        .find(|i| i.generator == Generator::Busybox)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.img");
    inject(&img.path, &img.root, &first);
    let mut older = Image::open(&first).unwrap();
    let old_wrapper = "#!/bin/sh\n/sbin/luksify-unlock || exit 1\nexec /init.luksify-orig \"$@\"\n";
    older
        .add_file("init", old_wrapper.as_bytes().to_vec(), 0o755)
        .unwrap();
    let older_path = dir.path().join("older.img");
    let w = luksify::initrd::write(&older, &Default::default()).unwrap();
    fs::write(&older_path, w.bytes).unwrap();

    let again = dir.path().join("again.img");
    inject(&older_path, &img.root, &again);
    let original = Image::open(&img.path).unwrap();
    let again = Image::open(&again).unwrap();
    let read = |i: &Image, p: &str| luksify::initrd::inimage::read(i, p).unwrap().data;
    assert_eq!(read(&again, "init.luksify-orig"), read(&original, "init"));
    assert_eq!(
        read(&again, "init"),
        include_str!("../initramfs/busybox-init").as_bytes()
    );
}

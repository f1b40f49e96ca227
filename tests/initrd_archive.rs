//! The archive engine against real tools. Images are made at test time by GNU cpio
//! and the real compressors; after our overlay or rewrite, GNU cpio (and the
//! compressors' own decoders) read the result back into a temporary directory, which
//! must equal the source tree with the same edits applied by the filesystem itself.
//! Nothing here trusts our reader to judge our writer.
//!
//! The oracles live in support/initrd_oracle.rs so tests on images from real
//! generators (mkinitramfs, dracut) can reuse them.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use luksify::initrd::{
    ArchiveError, CompressOptions, Compression, Image, Method, ReadOptions, WriteMode,
    WriteOptions, list, write,
};

#[path = "support/initrd_oracle.rs"]
mod initrd_oracle;
use initrd_oracle::*;

/// A source tree with what initramfs images hold: nested directories, files of
/// several modes and owners, a setuid binary, relative and absolute symlinks,
/// a usr-merge `lib -> usr/lib`, a three-way hard link, an empty file, a fifo,
/// and a file big enough to span several lzo/xz blocks.
fn make_tree(dir: &Path) {
    let mkdir = |p: &str, mode: u32| {
        let d = dir.join(p);
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
    };
    let file = |p: &str, data: &[u8], mode: u32| {
        let f = dir.join(p);
        fs::write(&f, data).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
    };
    mkdir("etc", 0o755);
    mkdir("usr/lib/modules", 0o755);
    mkdir("usr/bin", 0o755);
    mkdir("scripts/local-top", 0o755);
    mkdir("root", 0o700);
    file("etc/hostname", b"oldhost\n", 0o644);
    file("etc/shadow", b"root:*:19000::::::\n", 0o640);
    file("etc/empty", b"", 0o644);
    file("init", b"#!/bin/sh\nexec /sbin/init\n", 0o755);
    file("usr/bin/busybox", b"\x7fELF busybox pretend binary", 0o755);
    fs::hard_link(dir.join("usr/bin/busybox"), dir.join("usr/bin/sh")).unwrap();
    fs::hard_link(dir.join("usr/bin/busybox"), dir.join("usr/bin/mount")).unwrap();
    file("usr/bin/su", b"setuid", 0o4755);
    file(
        "scripts/local-top/ORDER",
        b"/scripts/local-top/lvm2 \"$@\"\n",
        0o644,
    );
    let mut x = 0x9e37_79b9u32;
    let big: Vec<u8> = (0..1_200_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Half compressible, half noise.
            if i % 2 == 0 {
                (i / 1000) as u8
            } else {
                x as u8
            }
        })
        .collect();
    file("usr/lib/modules/dm-crypt.ko", &big, 0o644);
    symlink("usr/lib", dir.join("lib")).unwrap();
    symlink("usr/bin", dir.join("bin")).unwrap();
    symlink("/proc/self/mounts", dir.join("etc/mtab")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("etc/initctl"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    if is_root() {
        std::os::unix::fs::chown(dir.join("etc/shadow"), Some(0), Some(42)).unwrap();
        std::os::unix::fs::chown(dir.join("root"), Some(1000), Some(1000)).unwrap();
    }
}

/// The edits an injector makes: a new config file, a replaced one, a hook directory
/// with a script, a new symlink, and a library written through `lib -> usr/lib`.
const INJECT: &[Op] = &[
    Op::File("etc/crypttab", b"cryptroot UUID=1234 none luks\n", 0o644),
    Op::File("./etc/hostname", b"newhost\n", 0o644),
    Op::Dir("scripts/local-top", 0o755),
    Op::File(
        "/scripts/local-top/luksify",
        b"#!/bin/sh\ncryptsetup open\n",
        0o755,
    ),
    Op::File("usr/sbin/cryptsetup", b"\x7fELF cryptsetup", 0o755),
    Op::Symlink("sbin", "usr/sbin"),
    Op::File("lib/libcryptsetup.so.12", b"\x7fELF lib", 0o644),
    Op::File("conf/conf.d/cryptroot", b"target=cryptroot\n", 0o600),
];

struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    work: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        make_tree(&src);
        let work = tmp.path().to_path_buf();
        Fixture {
            _tmp: tmp,
            src,
            work,
        }
    }

    /// The source tree with `ops` applied by the filesystem.
    fn expected(&self, ops: &[Op]) -> Tree {
        let exp = self.work.join("expected");
        sh(
            r#"cp -a "$1" "$2""#,
            &[self.src.to_str().unwrap(), exp.to_str().unwrap()],
            Vec::new(),
        );
        apply_to_dir(&exp, ops);
        let t = Tree::snapshot(&exp);
        fs::remove_dir_all(&exp).unwrap();
        t
    }

    fn fresh_dir(&self, name: &str) -> PathBuf {
        let d = self.work.join(name);
        fs::create_dir(&d).unwrap();
        d
    }
}

fn our_names(img: &Image) -> Vec<String> {
    list(img)
        .segments
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.name.clone()))
        .filter(|n| n != ".")
        .collect()
}

fn opts(mode: WriteMode) -> WriteOptions {
    WriteOptions {
        mode,
        compression: None,
        compress: CompressOptions::default(),
    }
}

/// Reads what cpio + the real compressor made; overlays INJECT and checks with GNU
/// cpio; rewrites INJECT and checks again.
fn round_trip(c: Compression, format: &str) {
    let fx = Fixture::new();
    let cpio = cpio_create(&fx.src, format);
    let raw = compress_tool(c, cpio.clone());

    // Reading: same names as GNU cpio, same content as the files.
    let img = Image::parse(raw.clone()).unwrap();
    assert_eq!(img.segments().len(), 1);
    assert_eq!(img.segments()[0].compression, c);
    assert_eq!(our_names(&img), gnu_names(cpio.clone()));
    let hostname = img.lookup("etc/hostname").unwrap().unwrap();
    assert_eq!(hostname.data(), b"oldhost\n");
    let big = img.lookup("lib/modules/dm-crypt.ko").unwrap().unwrap();
    assert_eq!(
        big.data(),
        fs::read(fx.src.join("usr/lib/modules/dm-crypt.ko")).unwrap()
    );
    let expected = fx.expected(INJECT);

    // Overlay (not possible after lz4 legacy: rewrite is chosen instead).
    let mut edited = img.clone();
    apply_to_image(&mut edited, INJECT);
    let w = write(&edited, &opts(WriteMode::Auto)).unwrap();
    if c == Compression::Lz4 {
        assert_eq!(w.method, Method::Rewrite, "lz4 legacy has no end marker");
        assert!(w.rewrite_reasons[0].contains("lz4"));
    } else {
        assert_eq!(w.method, Method::Overlay);
        assert_eq!(
            &w.bytes[..raw.len()],
            &raw[..],
            "overlay must keep the image as a prefix"
        );
        let tail = &w.bytes[raw.len()..];
        let start = tail.iter().position(|&b| b != 0).unwrap();
        assert!(start < 4, "only alignment padding before the new segment");
        let out = fx.fresh_dir("overlay");
        extract_into(cpio.clone(), &out);
        extract_into(decompress_tool(c, tail[start..].to_vec()), &out);
        expected.assert_same(&Tree::snapshot(&out));
    }

    // Rewrite with the same compression: one stream the real decompressor reads.
    let w = write(&edited, &opts(WriteMode::Rewrite)).unwrap();
    assert_eq!(w.method, Method::Rewrite);
    assert_eq!(
        Compression::detect(&w.bytes).unwrap_or(Compression::None),
        c
    );
    let plain = decompress_tool(c, w.bytes.clone());
    // Untouched entries are byte-identical records in the new archive.
    let seg = &img.segments()[0];
    for e in seg.entries.iter().filter(|e| !e.is_trailer()) {
        let n = e.name_lossy();
        if [
            "etc/hostname",
            "./etc/hostname",
            "scripts/local-top",
            "./scripts/local-top",
        ]
        .contains(&n.as_str())
        {
            continue;
        }
        let rec = seg.record_bytes(e).unwrap();
        assert!(
            plain.windows(rec.len()).any(|w| w == rec),
            "record of {n} changed"
        );
    }
    let out = fx.fresh_dir("rewrite");
    extract_into(plain, &out);
    expected.assert_same(&Tree::snapshot(&out));
}

macro_rules! round_trips {
    ($($name:ident: $c:expr, $fmt:expr;)*) => {$(
        #[test]
        fn $name() {
            round_trip($c, $fmt);
        }
    )*};
}

round_trips! {
    newc_uncompressed: Compression::None, "newc";
    newc_gzip: Compression::Gzip, "newc";
    newc_bzip2: Compression::Bzip2, "newc";
    newc_xz: Compression::Xz, "newc";
    newc_lzma: Compression::Lzma, "newc";
    newc_lzo: Compression::Lzo, "newc";
    newc_lz4_legacy_forces_rewrite: Compression::Lz4, "newc";
    newc_zstd: Compression::Zstd, "newc";
    crc_gzip: Compression::Gzip, "crc";
    crc_zstd: Compression::Zstd, "crc";
}

#[test]
fn replacing_a_symlink_forces_a_rewrite_that_gnu_cpio_reads() {
    let fx = Fixture::new();
    let cpio = cpio_create(&fx.src, "newc");
    let raw = compress_tool(Compression::Zstd, cpio);
    let mut img = Image::parse(raw).unwrap();
    let ops = [
        Op::Symlink("etc/mtab", "../proc/mounts"),
        Op::File("usr/bin/sh", b"dash", 0o755),
    ];
    apply_to_image(&mut img, &ops);
    let w = write(&img, &opts(WriteMode::Auto)).unwrap();
    assert_eq!(w.method, Method::Rewrite);
    assert!(
        w.rewrite_reasons.iter().any(|r| r.contains("symlink")),
        "{:?}",
        w.rewrite_reasons
    );
    assert!(
        w.rewrite_reasons.iter().any(|r| r.contains("hard-linked")),
        "{:?}",
        w.rewrite_reasons
    );
    let out = fx.fresh_dir("out");
    extract_into(decompress_tool(Compression::Zstd, w.bytes), &out);
    // usr/bin/sh left the hard-link set; busybox and mount still share their data.
    fx.expected(&ops).assert_same(&Tree::snapshot(&out));
}

#[test]
fn removing_entries_rewrites_and_keeps_the_rest() {
    let fx = Fixture::new();
    let raw = compress_tool(Compression::Gzip, cpio_create(&fx.src, "newc"));
    let mut img = Image::parse(raw).unwrap();
    // usr/bin/mount is the last link of its set: it carries the data in newc.
    let ops = [Op::Remove("usr/bin/mount"), Op::Remove("scripts")];
    apply_to_image(&mut img, &ops);
    let w = write(&img, &opts(WriteMode::Auto)).unwrap();
    assert_eq!(w.method, Method::Rewrite);
    let out = fx.fresh_dir("out");
    extract_into(decompress_tool(Compression::Gzip, w.bytes), &out);
    fx.expected(&ops).assert_same(&Tree::snapshot(&out));
}

#[test]
fn rewrite_can_change_the_compression() {
    let fx = Fixture::new();
    let raw = compress_tool(Compression::Gzip, cpio_create(&fx.src, "newc"));
    let mut img = Image::parse(raw).unwrap();
    apply_to_image(&mut img, INJECT);
    for c in [Compression::Xz, Compression::Lz4, Compression::Zstd] {
        let o = WriteOptions {
            compression: Some(c),
            ..opts(WriteMode::Auto)
        };
        let w = write(&img, &o).unwrap();
        assert_eq!(Compression::detect(&w.bytes), Some(c));
        if c == Compression::Xz {
            // The kernel's xz decoder only knows CRC32: check with xz itself.
            let f = fx.work.join("check.xz");
            fs::write(&f, &w.bytes).unwrap();
            let info = sh(
                r#"xz --robot --list "$1""#,
                &[f.to_str().unwrap()],
                Vec::new(),
            );
            assert!(
                String::from_utf8_lossy(&info).contains("CRC32"),
                "{}",
                String::from_utf8_lossy(&info)
            );
        }
        let out = fx.fresh_dir(&format!("out-{c}"));
        extract_into(decompress_tool(c, w.bytes), &out);
        fx.expected(INJECT).assert_same(&Tree::snapshot(&out));
    }
}

/// early microcode (uncompressed) + zstd main + zero padding + gzip extra segment,
/// as mkinitramfs and dracut lay them out.
#[test]
fn multi_segment_image_overlay_and_rewrite() {
    let fx = Fixture::new();
    let early_dir = fx.work.join("early");
    fs::create_dir_all(early_dir.join("kernel/x86/microcode")).unwrap();
    fs::write(
        early_dir.join("kernel/x86/microcode/GenuineIntel.bin"),
        vec![0xab; 5000],
    )
    .unwrap();
    let extra_dir = fx.work.join("extra");
    fs::create_dir_all(extra_dir.join("conf")).unwrap();
    fs::write(extra_dir.join("conf/extra"), b"from the second segment\n").unwrap();

    let early = cpio_create(&early_dir, "newc");
    let main_cpio = cpio_create(&fx.src, "newc");
    let main = compress_tool(Compression::Zstd, main_cpio.clone());
    let extra_cpio = cpio_create(&extra_dir, "newc");
    let extra = compress_tool(Compression::Gzip, extra_cpio.clone());
    let mut raw = early.clone();
    raw.extend_from_slice(&main);
    raw.extend_from_slice(&[0; 13]);
    let extra_at = raw.len();
    raw.extend_from_slice(&extra);

    let img = Image::parse(raw.clone()).unwrap();
    let shape: Vec<(u64, u64, u64, Compression)> = img
        .segments()
        .iter()
        .map(|s| (s.offset, s.length, s.padding, s.compression))
        .collect();
    // GNU cpio pads to 512 bytes: the early segment ends at its trailer, zeros follow.
    let (e, m, x) = (early.len() as u64, main.len() as u64, extra.len() as u64);
    assert_eq!(shape[0].0, 0);
    assert_eq!(shape[0].1 + shape[0].2, e);
    assert_eq!(
        &shape[1..],
        &[
            (e, m, 13, Compression::Zstd),
            (extra_at as u64, x, 0, Compression::Gzip)
        ]
    );
    assert_eq!(shape[0].3, Compression::None);
    assert_eq!(img.main_segment(), 2);

    // What the kernel would build from the original: all three, in order.
    let unpack_original = |dir: &Path| {
        extract_into(early.clone(), dir);
        extract_into(main_cpio.clone(), dir);
        extract_into(extra_cpio.clone(), dir);
    };
    let mut edited = img.clone();
    apply_to_image(&mut edited, INJECT);

    let w = write(&edited, &opts(WriteMode::Auto)).unwrap();
    assert_eq!(w.method, Method::Overlay);
    assert_eq!(&w.bytes[..raw.len()], &raw[..]);
    let tail = &w.bytes[raw.len()..];
    let start = tail.iter().position(|&b| b != 0).unwrap();
    let ov = fx.fresh_dir("overlay");
    unpack_original(&ov);
    extract_into(
        decompress_tool(Compression::Gzip, tail[start..].to_vec()),
        &ov,
    );
    let ov_tree = Tree::snapshot(&ov);

    let w = write(&edited, &opts(WriteMode::Rewrite)).unwrap();
    // Early and zstd segments are untouched: byte-identical prefix with the padding.
    assert_eq!(&w.bytes[..extra_at], &raw[..extra_at]);
    let rw = fx.fresh_dir("rewrite");
    extract_into(early.clone(), &rw);
    extract_into(main_cpio.clone(), &rw);
    extract_into(
        decompress_tool(Compression::Gzip, w.bytes[extra_at..].to_vec()),
        &rw,
    );
    let rw_tree = Tree::snapshot(&rw);

    // Expected: the three trees merged, then the edits.
    let exp = fx.work.join("exp");
    unpack_original(&fx.fresh_dir("exp"));
    apply_to_dir(&exp, INJECT);
    let want = Tree::snapshot(&exp);
    want.assert_same(&ov_tree);
    want.assert_same(&rw_tree);
}

#[test]
fn bad_images_get_one_line_errors_naming_the_offset() {
    let fx = Fixture::new();
    let cpio = cpio_create(&fx.src, "newc");
    let gz = compress_tool(Compression::Gzip, cpio.clone());

    let check = |raw: Vec<u8>, want: &str| {
        let e: ArchiveError = Image::parse(raw).unwrap_err();
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert!(s.contains(want), "{s:?} should contain {want:?}");
    };
    check(
        gz[..gz.len() / 2].to_vec(),
        "segment 0 at byte 0: gzip stream is truncated or corrupt",
    );
    check(
        b"#!/bin/sh\necho not an initramfs\n".to_vec(),
        "byte 0: found bytes 23 21 2f 62",
    );
    check(Vec::new(), "empty");
    let mut garbage = cpio.clone();
    let at = garbage.len();
    garbage.extend_from_slice(b"GARBAGE!");
    check(garbage, &format!("byte {at}: found"));

    // A 4 GiB file size in a tiny archive: an error, not a 4 GiB allocation.
    let mut huge = cpio.clone();
    let first_file = huge
        .windows(6)
        .enumerate()
        .skip(1)
        .find(|(_, w)| *w == b"070701")
        .unwrap()
        .0;
    huge[first_file + 54..first_file + 62].copy_from_slice(b"FFFFF000");
    check(
        compress_tool(Compression::Xz, huge),
        "claims 4294963200 bytes of data",
    );

    // A hostile name is listed but can never be looked up or written through.
    let hostile_dir = fx.fresh_dir("hostile");
    fs::write(hostile_dir.join("aaaaaaaaaaaaaa"), b"x\n").unwrap();
    let mut hostile = sh(
        r#"cd "$1" && echo aaaaaaaaaaaaaa | cpio -o --quiet -H newc"#,
        &[hostile_dir.to_str().unwrap()],
        Vec::new(),
    );
    let at = hostile
        .windows(14)
        .position(|w| w == b"aaaaaaaaaaaaaa")
        .unwrap();
    hostile[at..at + 14].copy_from_slice(b"../../etc/evil");
    let img = Image::parse(hostile).unwrap();
    assert_eq!(our_names(&img), vec!["../../etc/evil".to_string()]);
    assert!(img.lookup("../../etc/evil").is_err());
    assert!(img.lookup("etc/evil").unwrap().is_none());
}

#[test]
fn list_cli_accepts_a_real_image_and_refuses_garbage() {
    let fx = Fixture::new();
    let raw = compress_tool(Compression::Zstd, cpio_create(&fx.src, "crc"));
    let path = fx.work.join("initrd.img");
    fs::write(&path, &raw).unwrap();
    let img = Image::open(&path).unwrap();
    let l = list(&img);
    let json: serde_json::Value = serde_json::from_str(&l.to_json()).unwrap();
    assert_eq!(json["segments"][0]["compression"], "zstd");
    assert_eq!(json["segments"][0]["format"], "crc");
    let entries = json["segments"][0]["entries"].as_array().unwrap();
    let lib = entries.iter().find(|e| e["name"] == "lib").unwrap();
    assert_eq!(lib["link_target"], "usr/lib");
    assert_eq!(lib["kind"], "symlink");
    let su = entries.iter().find(|e| e["name"] == "usr/bin/su").unwrap();
    assert_eq!(su["mode"], "104755");
    assert!(l.to_text().contains(" lib -> usr/lib"));

    use luksify::initrd::cli::{InitrdCommand, run};
    assert_eq!(
        run(InitrdCommand::List {
            image: path,
            json: true
        })
        .unwrap(),
        0
    );
    let bad = fx.work.join("bad.img");
    fs::write(&bad, b"hello world").unwrap();
    let e = run(InitrdCommand::List {
        image: bad,
        json: false,
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("byte 0: found"), "{e:#}");
}

#[test]
fn listing_from_headers_alone_equals_listing_from_a_full_read_on_real_images() {
    // `initrd list` skims (keeps no file contents); what it shows must be what
    // a full read shows, on every image Debian's generators made.
    let headers_only = ReadOptions {
        contents: false,
        ..ReadOptions::default()
    };
    for real in testkit::real_images().unwrap() {
        let full = list(&Image::open(&real.path).unwrap()).to_json();
        let skim = list(&Image::open_with(&real.path, &headers_only).unwrap()).to_json();
        assert!(
            full == skim,
            "{}: the headers-only listing differs from the full one",
            real.path.display()
        );
    }
}

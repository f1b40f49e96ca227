//! Issue 3 item 7: rebuild (read, inject, write) of real initramfs images, side by
//! side in one run with the classic pipeline and with 3cpio.
//!
//!     cargo install threecpio                      # 3cpio, for the comparison
//!     cargo bench --bench initrd_archive           # testkit's real images
//!     LUKSIFY_BENCH_IMAGE=/boot/initrd.img-$(uname -r) cargo bench --bench initrd_archive
//!     LUKSIFY_BENCH_ROUNDS=5 cargo bench --bench initrd_archive
//!
//! Default images: the mkinitramfs zstd image with early microcode and all modules
//! (a 33 MB zstd main segment) and the dracut zstd image, both built by Debian's own
//! generators and cached by testkit (tests/initrd_inject.rs builds the same ones).
//! LUKSIFY_BENCH_IMAGE takes one path or several separated by ':'.
//!
//! Every contender adds the same three files (200 kB, 4 MB, 22 bytes) and
//! compresses the main segment with the same compressor and level (zstd -1 -T0,
//! mkinitramfs' own setting; gzip -1; xz -1 -T0). Uncompressed early segments are
//! kept as they are by everyone (`head -c`), which only helps the external tools.
//! - classic: decompress | cpio -i into a directory, cp the files in,
//!   find | LC_ALL=C sort | cpio -o -H newc | compress.
//! - 3cpio: 3cpio --extract --parts N (the main segment), cp the files in,
//!   3cpio --create from a sorted manifest with "#cpio: zstd -1" (3cpio adds -T0).
//! - overlay: Image::open_with(contents: false) (every header, name and symlink
//!   target is read, file contents are decoded but not kept), add_file x3 (read
//!   from the same files as the tools'), write overlay; the product's `initrd
//!   inject` needs file contents and reads them all.
//! - rewrite: Image::open, add_file x3, write rewrite.
//!
//! Each writes to a file that does not exist yet (the previous round's output is
//! removed outside the timing), so no one is timed freeing an old output's pages.
//!
//! Every contender runs as a fresh process per round, as the CLI does: ours too
//! (this bench re-run as a child), so first-touch memory costs count for everyone
//! and a warm heap from an earlier round flatters no one. CPU is that of the
//! waited-for children. Rounds interleave the contenders so load from other
//! processes hits them alike; ratios are computed per round and reported as ranges.
//! Peak memory is measured in a child process per mode (VmHWM of a process that
//! only reads, injects, writes).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use luksify::initrd::{
    CompressOptions, Compression, Image, Method, ReadOptions, WriteMode, WriteOptions, write_parts,
};
use luksify::sys::process::Cmd;

const LEVEL: i32 = 1;

/// The three files every contender adds, and their modes.
const ADDED: [(&str, u32); 3] = [
    ("usr/sbin/cryptsetup", 0o755),
    ("usr/lib/libcrypto.so.3", 0o644),
    ("etc/crypttab", 0o644),
];

/// Writes the added files under `dir`, where every contender reads them from.
fn write_added(dir: &Path) {
    let payload: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let contents = [
        &payload[..200_000],
        &payload[..],
        b"root UUID=x none luks\n".as_slice(),
    ];
    for ((name, _), data) in ADDED.iter().zip(contents) {
        let f = dir.join(name);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, data).unwrap();
    }
}

/// The bench's "inject": the added files, read from `files` as the tools read them.
fn inject(img: &mut Image, files: &Path) {
    for (name, mode) in ADDED {
        let data = std::fs::read(files.join(name)).expect("reading an added file");
        img.add_file(name, data, mode).unwrap();
    }
}

fn write_opts(mode: WriteMode) -> WriteOptions {
    WriteOptions {
        mode,
        compression: None,
        compress: CompressOptions {
            level: Some(LEVEL),
            ..CompressOptions::default()
        },
    }
}

/// Reads the image file, injects, writes the result to `out` (as the CLI does:
/// an overlay writes the original bytes and its tail without joining them);
/// returns the size written.
fn ours(image: &Path, out: &Path, mode: WriteMode, files: &Path) -> usize {
    let read = ReadOptions {
        contents: mode == WriteMode::Rewrite,
        ..ReadOptions::default()
    };
    let mut img = Image::open_with(image, &read).expect("reading the image");
    inject(&mut img, files);
    let w = write_parts(&img, &write_opts(mode)).expect("write");
    let want = if mode == WriteMode::Overlay {
        Method::Overlay
    } else {
        Method::Rewrite
    };
    assert_eq!(w.method, want);
    let mut f = std::fs::File::create(out).expect("creating the output");
    w.write_to(&mut f).expect("writing the output");
    w.len()
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0.0, |kb| kb as f64 / 1024.0)
}

/// Shell command lines to decompress/compress like the image, at LEVEL.
fn tools(c: Compression) -> Option<(&'static str, &'static str)> {
    Some(match c {
        Compression::Zstd => ("zstd -dc", "zstd -q -1 -T0"),
        Compression::Gzip => ("gzip -dc", "gzip -1"),
        Compression::Xz => ("xz -dc", "xz -1 -T0 --check=crc32"),
        _ => return None,
    })
}

struct External {
    classic: String,
    three: Option<String>,
}

fn externals(img: &Image) -> Option<External> {
    let main = img.main_segment();
    let seg = &img.segments()[main];
    let (dec, enc) = tools(seg.compression)?;
    if main + 1 != img.segments().len() {
        return None;
    }
    let off = seg.offset;
    let classic = format!(
        r#"set -e; d=$(mktemp -d); cd "$d"; tail -c +{start} "$1" | {dec} | cpio -id --quiet --no-absolute-filenames
           cp -a "$2"/. .
           {{ head -c {off} "$1"; find . | LC_ALL=C sort | cpio -o -H newc --quiet | {enc}; }} > "$1.classic"
           cd /; rm -rf "$d""#,
        start = off + 1
    );
    let has_3cpio = Cmd::new("3cpio")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.success());
    let three = has_3cpio.then(|| {
        format!(
            r##"set -e; d=$(mktemp -d)
               3cpio --extract --parts {part} --make-directories -C "$d" "$1"; cp -a "$2"/. "$d"
               {{ echo "#cpio: {c} -{LEVEL}"; cd "$d"; find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort; }} > "$d.manifest"
               {{ head -c {off} "$1"; cd "$d"; 3cpio --create < "$d.manifest"; }} > "$1.3cpio"
               rm -rf "$d" "$d.manifest""##,
            part = main + 1,
            c = seg.compression.name()
        )
    });
    Some(External { classic, three })
}

fn run_sh(script: &str, img: &Path, files: &Path) -> (Duration, f64) {
    time(CHILDREN, || {
        Cmd::new("sh")
            .args([
                "-c",
                script,
                "sh",
                img.to_str().unwrap(),
                files.to_str().unwrap(),
            ])
            .run()
            .expect("external pipeline")
    })
}

/// User + system CPU seconds of this process (all threads) or of its waited-for
/// children (the shell and everything it ran).
fn cpu(who: i32) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut r: nix::libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { nix::libc::getrusage(who, &mut r) };
    let tv = |t: nix::libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Wall and CPU time of `f`; CPU counts this process for ours, children for the
/// external pipelines. Under load from other processes CPU time is the steadier
/// of the two.
fn time<T>(who: i32, f: impl FnOnce() -> T) -> (Duration, f64) {
    let c = cpu(who);
    let t = Instant::now();
    std::hint::black_box(f());
    (t.elapsed(), (cpu(who) - c) * 1e3)
}

const SELF: i32 = nix::libc::RUSAGE_SELF;
const CHILDREN: i32 = nix::libc::RUSAGE_CHILDREN;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn range(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{lo:.1}-{hi:.1}")
}

/// Wall and CPU time of one read + inject + write in a fresh process.
fn ours_in_child(image: &Path, files: &Path, out: &Path, mode: &str) -> (Duration, f64) {
    time(CHILDREN, || {
        Cmd::new(std::env::current_exe().unwrap())
            .env("LUKSIFY_BENCH_RUN", mode)
            .env("LUKSIFY_BENCH_IMAGE", image)
            .env("LUKSIFY_BENCH_FILES", files)
            .env("LUKSIFY_BENCH_OUT", out)
            .run()
            .expect("one-shot child")
    })
}

fn mode_named(mode: &str) -> WriteMode {
    if mode == "overlay" {
        WriteMode::Overlay
    } else {
        WriteMode::Rewrite
    }
}

/// Peak memory of read + inject + write in a fresh process, as a ratio to the
/// uncompressed image.
fn peak_memory(image: &Path, files: &Path, mode: &str) -> String {
    let out = Cmd::new(std::env::current_exe().unwrap())
        .env("LUKSIFY_BENCH_ONESHOT", mode)
        .env("LUKSIFY_BENCH_IMAGE", image)
        .env("LUKSIFY_BENCH_FILES", files)
        .run()
        .expect("one-shot child");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn oneshot(mode: &str, image: &Path, files: &Path) {
    let raw = std::fs::read(image).expect("reading the image");
    let mode = mode_named(mode);
    let plain: usize = Image::parse(raw.clone())
        .unwrap()
        .segments()
        .iter()
        .map(|s| s.data.len())
        .sum();
    drop(raw);
    // The measurement above allocated; VmHWM must only see the flow below.
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");
    let dir = tempfile::tempdir().unwrap();
    let out = ours(image, &dir.path().join("out.img"), mode, files);
    println!(
        "{mode:?}: peak {:.0} MB = {:.2}x the uncompressed image ({} bytes out)",
        peak_rss_mb(),
        peak_rss_mb() * 1048576.0 / plain as f64,
        out
    );
}

fn bench(image: &Path, rounds: usize) {
    let raw = std::fs::read(image).expect("reading the image");
    let img = Image::parse(raw.clone()).expect("parse");
    let plain: usize = img.segments().iter().map(|s| s.data.len()).sum();
    let main = &img.segments()[img.main_segment()];
    println!(
        "\n== {}: {} bytes, {} segment(s), main {} at byte {}, {} bytes uncompressed",
        image.display(),
        raw.len(),
        img.segments().len(),
        main.compression,
        main.offset,
        plain
    );
    // The floors: decoding the main segment into memory, and skimming it (decoding
    // through a window, keeping headers only). CPU time, best of three.
    let input = &raw[main.offset as usize..];
    let c = main.compression;
    let best = |f: &dyn Fn()| {
        (0..3)
            .map(|_| time(SELF, f).1)
            .fold(f64::INFINITY, f64::min)
    };
    let dec = best(&|| {
        luksify::initrd::compression::decompress(c, input, u64::MAX).unwrap();
    });
    let skim = best(&|| {
        let _ = luksify::initrd::skim::skim(c, input, u64::MAX);
    });
    let mut line = format!(
        "main segment alone, best CPU of 3: decompressing into memory {dec:.0} ms, skimming {skim:.0} ms"
    );
    if let Some((tool, _)) = tools(c) {
        let script = format!("tail -c +{} \"$1\" | {tool} > /dev/null", main.offset + 1);
        let cli = (0..3)
            .map(|_| run_sh(&script, image, Path::new("/")).1)
            .fold(f64::INFINITY, f64::min);
        line += &format!(", `{tool} > /dev/null` {cli:.0} ms");
    }
    println!("{line}");
    let ext = externals(&img);
    drop(img);
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("initrd.img");
    std::fs::write(&copy, &raw).unwrap();
    drop(raw);
    let files = tmp.path().join("files");
    write_added(&files);
    // [wall, cpu] ratios: overlay/classic, rewrite/classic, rewrite/3cpio, overlay/3cpio.
    let mut r: [[Vec<f64>; 2]; 4] = Default::default();
    // Every contender writes a file that does not exist yet: replacing the previous
    // round's 50 MB output would time the freeing of its pages too.
    let fresh = |p: PathBuf| {
        let _ = std::fs::remove_file(&p);
        p
    };
    let out = copy.with_extension("img.ours");
    for round in 1..=rounds {
        let ov = ours_in_child(&copy, &files, &fresh(out.clone()), "overlay");
        let rw = ours_in_child(&copy, &files, &fresh(out.clone()), "rewrite");
        let show =
            |name: &str, (w, c): (Duration, f64)| format!("{name} {:.0} ms ({c:.0} ms CPU)", ms(w));
        let mut line = format!(
            "round {round}: {}, {}",
            show("overlay", ov),
            show("rewrite", rw)
        );
        let mut ratio = |k: usize, a: (Duration, f64), b: (Duration, f64)| {
            r[k][0].push(ms(a.0) / ms(b.0));
            r[k][1].push(a.1 / b.1);
        };
        if let Some(e) = &ext {
            fresh(copy.with_extension("img.classic"));
            let c = run_sh(&e.classic, &copy, &files);
            ratio(0, c, ov);
            ratio(1, c, rw);
            line += &format!(", {}", show("classic", c));
            if let Some(three) = &e.three {
                fresh(copy.with_extension("img.3cpio"));
                let t = run_sh(three, &copy, &files);
                ratio(2, t, rw);
                ratio(3, t, ov);
                line += &format!(", {}", show("3cpio", t));
            }
        }
        println!("{line}");
    }
    let both = |v: &[Vec<f64>; 2]| format!("{}x wall, {}x CPU", range(&v[0]), range(&v[1]));
    if ext.is_none() {
        println!("(classic/3cpio only for zstd/gzip/xz images whose main segment is last)");
    } else {
        println!(
            "over {rounds} rounds, overlay is {} faster than the classic pipeline (target >= 10)",
            both(&r[0])
        );
        println!(
            "over {rounds} rounds, rewrite is {} faster than the classic pipeline",
            both(&r[1])
        );
        if r[2][0].is_empty() {
            println!("(3cpio not on PATH: `cargo install threecpio` to compare)");
        } else {
            println!(
                "over {rounds} rounds, rewrite is {} faster than 3cpio (target >= 1.5)",
                both(&r[2])
            );
            println!(
                "over {rounds} rounds, overlay is {} faster than 3cpio",
                both(&r[3])
            );
        }
    }
    for mode in ["overlay", "rewrite"] {
        println!("{}", peak_memory(&copy, &files, mode));
    }
}

fn images() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("LUKSIFY_BENCH_IMAGE") {
        return std::env::split_paths(&list).collect();
    }
    let all = testkit::real_images()
        .expect("building testkit's real images (or set LUKSIFY_BENCH_IMAGE=/path/to/initrd)");
    let pick = |g: testkit::Generator, ucode: bool| {
        all.iter()
            .find(|i| {
                i.generator == g
                    && i.compression == testkit::Compression::Zstd
                    && i.early_microcode == ucode
                    && i.all_modules == ucode
            })
            .map(|i| i.path.clone())
    };
    [
        pick(testkit::Generator::Mkinitramfs, true),
        pick(testkit::Generator::Dracut, false),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn main() {
    if let Some(mode) = std::env::var_os("LUKSIFY_BENCH_RUN") {
        let image = std::env::var_os("LUKSIFY_BENCH_IMAGE").expect("a run needs an image");
        let out = std::env::var_os("LUKSIFY_BENCH_OUT").expect("a run needs an output");
        let files = std::env::var_os("LUKSIFY_BENCH_FILES").expect("a run needs its files");
        let mode = mode_named(&mode.to_string_lossy());
        ours(Path::new(&image), Path::new(&out), mode, Path::new(&files));
        return;
    }
    if let Some(mode) = std::env::var_os("LUKSIFY_BENCH_ONESHOT") {
        let image = std::env::var_os("LUKSIFY_BENCH_IMAGE").expect("one-shot needs an image");
        let files = std::env::var_os("LUKSIFY_BENCH_FILES").expect("one-shot needs its files");
        oneshot(
            &mode.to_string_lossy(),
            Path::new(&image),
            Path::new(&files),
        );
        return;
    }
    let rounds = std::env::var("LUKSIFY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for image in images() {
        bench(&image, rounds);
    }
}

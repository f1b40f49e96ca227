//! Timing of the archive engine alone: read, overlay and rewrite of one image.
//!
//!     cargo bench --bench initrd_archive                       # synthetic zstd image
//!     LUKSIFY_BENCH_IMAGE=/boot/initrd.img-6.1.0-13-amd64 cargo bench --bench initrd_archive
//!     LUKSIFY_BENCH_ONESHOT=rewrite cargo bench --bench initrd_archive   # peak memory only
//!
//! The synthetic image is ~80 MB of /usr/bin packed by GNU cpio and `zstd -q -1 -T0`
//! (mkinitramfs' zstd setting). In the same run it times the classic pipeline
//! (decompress | cpio -i into a directory, copy the same files in, find | cpio -o |
//! compress, same compressor and level) and, when `3cpio` is on PATH, 3cpio's
//! extract + create, and prints the ratios. The full benchmark on real mkinitramfs
//! and dracut images (issue 3 item 7) builds on this.

use std::time::{Duration, Instant};

use luksify::initrd::{
    CompressOptions, Compression, Image, Method, WriteMode, WriteOptions, write,
};
use luksify::sys::process::Cmd;

fn synthetic_image() -> Vec<u8> {
    let script = r#"total=0
        cd / && find usr/bin -maxdepth 1 -type f | LC_ALL=C sort | while read -r f; do
          total=$((total + $(stat -c %s "$f"))); [ "$total" -gt 80000000 ] && break; echo "$f"
        done | cpio -o -H newc --quiet | zstd -q -1 -T0"#;
    Cmd::new("sh")
        .args(["-c", script])
        .run()
        .expect("building the synthetic image")
        .stdout
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Shell command lines to decompress/compress like the image (level 1 for zstd/xz
/// as in the writes above).
fn tools(c: Compression) -> Option<(&'static str, &'static str)> {
    Some(match c {
        Compression::Zstd => ("zstd -dc", "zstd -q -1 -T0"),
        Compression::Gzip => ("gzip -dc", "gzip -1"),
        Compression::Xz => ("xz -dc", "xz -1 -T0 --check=crc32"),
        _ => return None,
    })
}

fn classic_and_3cpio(raw: &[u8], edited: &Image, payload: &[u8], t_read: Duration) {
    let c = edited.segments()[edited.main_segment()].compression;
    let (Some((dec, enc)), true) = (tools(c), edited.segments().len() == 1) else {
        println!("(classic/3cpio comparison only for single-segment zstd/gzip/xz images)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("initrd.img");
    std::fs::write(&img, raw).unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir_all(files.join("usr/sbin")).unwrap();
    std::fs::create_dir_all(files.join("usr/lib")).unwrap();
    std::fs::create_dir_all(files.join("etc")).unwrap();
    std::fs::write(files.join("usr/sbin/cryptsetup"), &payload[..200_000]).unwrap();
    std::fs::write(files.join("usr/lib/libcrypto.so.3"), payload).unwrap();
    std::fs::write(files.join("etc/crypttab"), b"root UUID=x none luks\n").unwrap();
    let run = |script: String| {
        let t = Instant::now();
        Cmd::new("sh")
            .args([
                "-c",
                &script,
                "sh",
                img.to_str().unwrap(),
                files.to_str().unwrap(),
            ])
            .run()
            .expect("pipeline");
        t.elapsed()
    };
    let classic = format!(
        r#"set -e; d=$(mktemp -d); cd "$d"; {dec} < "$1" | cpio -id --quiet --no-absolute-filenames; cp -a "$2"/. .;
           find . | LC_ALL=C sort | cpio -o -H newc --quiet | {enc} > "$1.classic"; cd /; rm -rf "$d""#
    );
    let (t_classic, _) = best_of(3, || run(classic.clone()));
    println!("classic    {:>8.1} ms", t_classic.as_secs_f64() * 1e3);
    let ours = |m: WriteMode| {
        let opts = WriteOptions {
            mode: m,
            compression: None,
            compress: CompressOptions {
                level: Some(1),
                ..CompressOptions::default()
            },
        };
        let (t, _) = best_of(3, || write(edited, &opts).unwrap());
        t + t_read
    };
    let (t_ov, t_rw) = (ours(WriteMode::Overlay), ours(WriteMode::Rewrite));
    println!(
        "ratios vs classic: overlay {:.1}x, rewrite {:.1}x",
        t_classic.as_secs_f64() / t_ov.as_secs_f64(),
        t_classic.as_secs_f64() / t_rw.as_secs_f64()
    );
    if Cmd::new("3cpio")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.success())
    {
        let three = format!(
            r##"set -e; d=$(mktemp -d); 3cpio --extract --make-directories -C "$d" "$1"; cp -a "$2"/. "$d";
               {{ echo "#cpio: {c} -1"; cd "$d"; find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort; }} > "$d.manifest";
               3cpio --create "$1.3cpio" -C "$d" < "$d.manifest"; rm -rf "$d" "$d.manifest""##,
            c = c.name()
        );
        let (t3, _) = best_of(3, || run(three.clone()));
        println!(
            "3cpio      {:>8.1} ms; rewrite {:.2}x faster",
            t3.as_secs_f64() * 1e3,
            t3.as_secs_f64() / t_rw.as_secs_f64()
        );
    } else {
        println!("(3cpio not on PATH: `cargo install threecpio` to compare)");
    }
}

fn main() {
    let raw = match std::env::var_os("LUKSIFY_BENCH_IMAGE") {
        Some(p) => std::fs::read(&p).expect("reading LUKSIFY_BENCH_IMAGE"),
        None => synthetic_image(),
    };
    if let Some(c) = luksify::initrd::Compression::detect(&raw) {
        let (t, d) = best_of(3, || {
            luksify::initrd::compression::decompress(c, &raw, u64::MAX).unwrap()
        });
        println!(
            "decompress only: {:>8.1} ms ({} bytes)",
            t.as_secs_f64() * 1e3,
            d.data.len()
        );
    }
    if let Some(mode) = std::env::var_os("LUKSIFY_BENCH_ONESHOT") {
        // Peak memory of the product's own flow: read, inject, write once.
        let mut img = Image::parse(raw).expect("parse");
        let plain: usize = img.segments().iter().map(|s| s.data.len()).sum();
        img.add_file("etc/crypttab", b"root UUID=x none luks\n".to_vec(), 0o644)
            .unwrap();
        let mode = if mode == "overlay" {
            WriteMode::Overlay
        } else {
            WriteMode::Rewrite
        };
        let w = write(
            &img,
            &WriteOptions {
                mode,
                ..WriteOptions::default()
            },
        )
        .expect("write");
        drop(img);
        println!(
            "one-shot {mode:?}: {} bytes out, peak RSS {} MB = {:.2}x the uncompressed image",
            w.bytes.len(),
            peak_rss_mb(),
            peak_rss_mb() as f64 * 1048576.0 / plain as f64
        );
        return;
    }
    let (t_read, img) = best_of(3, || Image::parse(raw.clone()).expect("parse"));
    let plain: usize = img.segments().iter().map(|s| s.data.len()).sum();
    println!(
        "image: {} bytes, {} segment(s), {} bytes uncompressed",
        raw.len(),
        img.segments().len(),
        plain
    );
    println!("read:      {:>8.1} ms", t_read.as_secs_f64() * 1e3);

    for threads in [1, 2] {
        let data = &img.segments()[img.main_segment()].data;
        let c = img.segments()[img.main_segment()].compression;
        let o = CompressOptions {
            level: Some(1),
            threads,
        };
        let (t, out) = best_of(3, || {
            luksify::initrd::compression::compress(c, data, o).unwrap()
        });
        println!(
            "compress only ({threads} thread(s)): {:>8.1} ms ({} bytes)",
            t.as_secs_f64() * 1e3,
            out.len()
        );
    }
    let mut edited = img.clone();
    let payload: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    edited
        .add_file("usr/sbin/cryptsetup", payload[..200_000].to_vec(), 0o755)
        .unwrap();
    edited
        .add_file("usr/lib/libcrypto.so.3", payload.clone(), 0o644)
        .unwrap();
    edited
        .add_file("etc/crypttab", b"root UUID=x none luks\n".to_vec(), 0o644)
        .unwrap();
    for (label, mode, threads) in [
        ("overlay", WriteMode::Overlay, 0),
        ("rewrite/1", WriteMode::Rewrite, 1),
        ("rewrite/N", WriteMode::Rewrite, 0),
    ] {
        let mut compress = CompressOptions::default();
        if threads == 1 {
            compress.threads = 1;
        }
        compress.level = Some(1);
        let opts = WriteOptions {
            mode,
            compression: None,
            compress,
        };
        let (t, w) = best_of(3, || write(&edited, &opts).expect("write"));
        assert_eq!(
            w.method,
            if mode == WriteMode::Overlay {
                Method::Overlay
            } else {
                Method::Rewrite
            }
        );
        println!(
            "{label:<10} {:>8.1} ms  ({} bytes; read+write {:.1} ms)",
            t.as_secs_f64() * 1e3,
            w.bytes.len(),
            (t + t_read).as_secs_f64() * 1e3
        );
    }
    classic_and_3cpio(&raw, &edited, &payload, t_read);
    println!(
        "peak RSS:  {} MB ({:.2}x uncompressed)",
        peak_rss_mb(),
        peak_rss_mb() as f64 * 1048576.0 / plain as f64
    );
}

//! Timing of the archive engine alone: read, overlay and rewrite of one image.
//!
//!     cargo bench --bench initrd_archive                       # synthetic zstd image
//!     LUKSIFY_BENCH_IMAGE=/boot/initrd.img-6.1.0-13-amd64 cargo bench --bench initrd_archive
//!
//! The synthetic image is ~80 MB of /usr/bin packed by GNU cpio and `zstd -q -1 -T0`
//! (mkinitramfs' zstd setting). The comparisons against the classic pipeline and
//! 3cpio belong to the benchmark of issue 3 item 7; this prints the engine's side.

use std::time::{Duration, Instant};

use luksify::initrd::{CompressOptions, Image, Method, WriteMode, WriteOptions, write};
use luksify::sys::process::Cmd;

fn synthetic_image() -> Vec<u8> {
    let script = r#"total=0
        find /usr/bin -maxdepth 1 -type f | LC_ALL=C sort | while read -r f; do
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
    let (t_read, img) = best_of(3, || Image::parse(raw.clone()).expect("parse"));
    let plain: usize = img.segments().iter().map(|s| s.data.len()).sum();
    println!(
        "image: {} bytes, {} segment(s), {} bytes uncompressed",
        raw.len(),
        img.segments().len(),
        plain
    );
    println!("read:      {:>8.1} ms", t_read.as_secs_f64() * 1e3);

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
    println!(
        "peak RSS:  {} MB ({:.2}x uncompressed)",
        peak_rss_mb(),
        peak_rss_mb() as f64 * 1048576.0 / plain as f64
    );
}

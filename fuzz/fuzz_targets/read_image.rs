//! Feeds arbitrary bytes to the initramfs reader. It must never panic, hang or
//! allocate without bound (the decompressed-size limit is lowered so that a
//! decompression bomb is an error, not an out-of-memory). Whatever it accepts must
//! list, and survive an edit and a write that reads back with the edit in place.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luksify::initrd::{Image, ReadOptions, WriteMode, WriteOptions, list, write};

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions {
        max_decompressed: 16 << 20,
        ..ReadOptions::default()
    };
    // Skimming (no file contents kept) must agree with a full read: never accept
    // what it refuses, and see the same records when both accept.
    let skimmed = Image::parse_with(
        data.to_vec(),
        &ReadOptions {
            contents: false,
            ..opts
        },
    );
    let Ok(img) = Image::parse_with(data.to_vec(), &opts) else {
        assert!(skimmed.is_err(), "accepted by skim only");
        return;
    };
    if let Ok(s) = &skimmed {
        let names = |i: &Image| -> Vec<Vec<u8>> {
            i.segments()
                .iter()
                .flat_map(|s| s.entries.iter().map(|e| e.name.clone()))
                .collect()
        };
        assert_eq!(names(s), names(&img), "skim sees other records");
    }
    let l = list(&img);
    let _ = l.to_text();
    let _ = l.to_json();

    // Writing compresses again: keep that to small images so the fuzzer stays fast.
    if img.segments().iter().map(|s| s.data.len()).sum::<usize>() > 1 << 20 {
        return;
    }
    let mut edited = img.clone();
    if edited
        .add_file("luksify/fuzz", b"x".to_vec(), 0o644)
        .is_err()
    {
        return; // e.g. "luksify" is a file in this image
    }
    for mode in [WriteMode::Auto, WriteMode::Rewrite] {
        let w = write(
            &edited,
            &WriteOptions {
                mode,
                ..WriteOptions::default()
            },
        )
        .expect("write");
        let back = Image::parse_with(w.bytes, &opts).expect("our own output must read back");
        let node = back
            .lookup("luksify/fuzz")
            .expect("valid path")
            .expect("injected file present");
        assert_eq!(node.data(), b"x");
    }
    // Removing an existing entry (hard-link sets re-linked, a rewrite) must stick.
    let victim = img
        .segments()
        .iter()
        .flat_map(|s| s.entries.iter())
        .filter(|e| !e.is_trailer())
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .find(|n| img.lookup(n).is_ok_and(|node| node.is_some()));
    if let Some(victim) = victim {
        let mut edited = img.clone();
        if edited.remove(&victim).unwrap_or(false) {
            let w = write(&edited, &WriteOptions::default()).expect("write");
            let back = Image::parse_with(w.bytes, &opts).expect("our own output must read back");
            assert!(
                back.lookup(&victim).expect("valid path").is_none(),
                "{victim:?} still there"
            );
        }
    }
    // No edit: both writers give back the input bytes exactly.
    let same = write(
        &img,
        &WriteOptions {
            mode: WriteMode::Rewrite,
            ..WriteOptions::default()
        },
    )
    .expect("write");
    assert_eq!(same.bytes, data);
});

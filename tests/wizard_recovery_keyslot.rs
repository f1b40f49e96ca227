//! The recovery passphrase the wizard offers lands in its own keyslot, and
//! both passphrases open the container. Checked on a real LUKS2 header in a
//! file, with cryptsetup itself as the judge.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use luksify::plan::{LuksOptions, Pbkdf};
use luksify::sys::luks;
use luksify::sys::secret::Passphrase;

/// `cryptsetup open --test-passphrase`: exit 0 if the passphrase opens a keyslot.
fn opens(image: &Path, passphrase: &[u8]) -> bool {
    let mut c = Command::new("cryptsetup")
        .args(["open", "--test-passphrase", "--key-file", "-"])
        .arg(image)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running cryptsetup (package cryptsetup-bin)");
    c.stdin.take().unwrap().write_all(passphrase).unwrap();
    c.wait().unwrap().success()
}

#[test]
fn recovery_passphrase_gets_a_second_keyslot() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("container.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    // Cheap key derivation keeps the test fast; the cipher stays the default.
    let options = LuksOptions {
        pbkdf: Pbkdf::Pbkdf2,
        iter_time_ms: Some(10),
        ..LuksOptions::default()
    };
    let main = Passphrase::from_bytes(b"correct horse battery".to_vec());
    let recovery =
        Passphrase::from_bytes(b"0123a-bcdef-ghjkm-npqrs-tvwxy-z0123-45678-9abcd".to_vec());
    luks::format(
        &luks::FormatSpec {
            device: &image,
            uuid: "1fb48152-0b91-8288-b514-04d8445a29a9",
            options: &options,
            sector_size: 512,
            label: "luksify",
        },
        &main,
    )
    .unwrap();
    assert!(!opens(&image, recovery.expose()));

    let slot = luks::add_passphrase(&image, &options, &main, &recovery).unwrap();
    assert_eq!(slot, 1);
    assert!(opens(&image, main.expose()));
    assert!(opens(&image, recovery.expose()));
    assert!(!opens(&image, b"wrong"));

    let wrong = Passphrase::from_bytes(b"not the passphrase".to_vec());
    let other = Passphrase::from_bytes(b"another one entirely".to_vec());
    let err = luks::add_passphrase(&image, &options, &wrong, &other).unwrap_err();
    assert!(
        format!("{err:#}").contains("adding the recovery passphrase"),
        "{err:#}"
    );
    assert!(!opens(&image, other.expose()));
}

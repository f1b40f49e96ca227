//! LUKS formatting as the runner does it: the passphrase and the recovery
//! passphrase the wizard offers land in their own keyslots in one header
//! write, both open the container, and the layout is the one cryptsetup's
//! own luksFormat gives. Checked on real headers in files, with cryptsetup
//! itself as the judge.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use luksify::plan::{LuksOptions, LuksVersion, Pbkdf};
use luksify::sys::luks;
use luksify::sys::secret::Passphrase;

const UUID: &str = "1fb48152-0b91-8288-b514-04d8445a29a9";

/// One format at a time, so "no staging directory is left" is about this one.
static FORMATTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

fn dump(image: &Path) -> String {
    let out = Command::new("cryptsetup")
        .arg("luksDump")
        .arg(image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of a luksDump that describe the layout, not the keys.
fn layout(dump: &str) -> Vec<String> {
    dump.lines()
        .map(str::trim)
        .filter(|l| {
            [
                "Version:",
                "Metadata area:",
                "Keyslots area:",
                "offset:",
                "Payload offset:",
                "length:",
                "sector:",
                "cipher:",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(String::from)
        .collect()
}

fn blank(path: &Path) {
    std::fs::File::create(path)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
}

fn options(version: LuksVersion) -> LuksOptions {
    // Cheap key derivation keeps the test fast; the cipher stays the default.
    LuksOptions {
        version,
        pbkdf: Pbkdf::Pbkdf2,
        iter_time_ms: Some(10),
        ..LuksOptions::default()
    }
}

fn staging_left() -> Vec<String> {
    std::fs::read_dir("/run/luksify")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("luks-format."))
                .collect()
        })
        .unwrap_or_default()
}

fn format_like_cryptsetup(version: LuksVersion) {
    let _one = FORMATTING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("container.img");
    let reference = dir.path().join("reference.img");
    blank(&image);
    blank(&reference);
    let options = options(version);
    let main = Passphrase::from_bytes(b"correct horse battery".to_vec());
    let recovery =
        Passphrase::from_bytes(b"0123a-bcdef-ghjkm-npqrs-tvwxy-z0123-45678-9abcd".to_vec());
    let slot = luks::format(
        &luks::FormatSpec {
            device: &image,
            uuid: UUID,
            options: &options,
            sector_size: 512,
            label: "luksify",
        },
        &main,
        Some(&recovery),
    )
    .unwrap();
    assert_eq!(slot, Some(1));
    assert!(opens(&image, main.expose()));
    assert!(opens(&image, recovery.expose()));
    assert!(!opens(&image, b"wrong"));
    assert!(staging_left().is_empty(), "{:?}", staging_left());

    let v = match version {
        LuksVersion::Luks1 => "luks1",
        LuksVersion::Luks2 => "luks2",
    };
    let sector: &[&str] = match version {
        LuksVersion::Luks1 => &[],
        LuksVersion::Luks2 => &["--sector-size", "512"],
    };
    let mut c = Command::new("cryptsetup")
        .args(sector)
        .args([
            "luksFormat",
            "--batch-mode",
            "--type",
            v,
            "--pbkdf",
            "pbkdf2",
            "--iter-time",
            "10",
        ])
        .args(["--key-file", "-", "--uuid", UUID])
        .arg(&reference)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(main.expose()).unwrap();
    assert!(c.wait().unwrap().success());
    let ours = dump(&image);
    assert!(ours.contains(UUID), "{ours}");
    assert_eq!(layout(&ours), layout(&dump(&reference)), "{ours}");
}

#[test]
fn luks2_format_holds_both_keyslots_and_cryptsetups_layout() {
    format_like_cryptsetup(LuksVersion::Luks2);
}

#[test]
fn luks1_format_holds_both_keyslots_and_cryptsetups_layout() {
    format_like_cryptsetup(LuksVersion::Luks1);
}

#[test]
fn without_recovery_one_keyslot_and_adding_one_later_needs_the_passphrase() {
    let _one = FORMATTING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("container.img");
    blank(&image);
    let options = options(LuksVersion::Luks2);
    let main = Passphrase::from_bytes(b"correct horse battery".to_vec());
    let slot = luks::format(
        &luks::FormatSpec {
            device: &image,
            uuid: UUID,
            options: &options,
            sector_size: 512,
            label: "luksify",
        },
        &main,
        None,
    )
    .unwrap();
    assert_eq!(slot, None);
    assert!(opens(&image, main.expose()));

    let recovery = Passphrase::from_bytes(b"0123a-bcdef-ghjkm".to_vec());
    assert_eq!(
        luks::add_passphrase(&image, &options, &main, &recovery).unwrap(),
        1
    );
    assert!(opens(&image, recovery.expose()));
    let wrong = Passphrase::from_bytes(b"not the passphrase".to_vec());
    let other = Passphrase::from_bytes(b"another one entirely".to_vec());
    let err = luks::add_passphrase(&image, &options, &wrong, &other).unwrap_err();
    assert!(
        format!("{err:#}").contains("adding the recovery passphrase"),
        "{err:#}"
    );
    assert!(!opens(&image, other.expose()));
}

//! initramfs/luksify-unlock finds the container by its LUKS UUID where
//! neither udev's /dev/disk/by-uuid nor util-linux's blkid exist (a nash or
//! bare busybox image): it asks cryptsetup about each block device sysfs
//! lists. The script's own functions run here under dash, on a made-up
//! sysfs and /dev, with a stand-in cryptsetup that knows one LUKS header.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use luksify::initrd::flavour::UNLOCK_SCRIPT;

const UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

/// The script from its first line up to (not including) the line where it
/// starts doing things (`if [ -e "/dev/mapper/...`): settings and functions.
fn functions() -> String {
    let start = UNLOCK_SCRIPT.find("sys_dir=/sys").expect("sys_dir");
    let end = UNLOCK_SCRIPT.find("activate_vg() {").expect("activate_vg");
    UNLOCK_SCRIPT[start..end].to_string()
}

fn write_exe(p: &Path, text: &str) {
    fs::write(p, text).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs find_device with PATH holding only `bin` (plus the shell's own
/// builtins) and returns what it printed: the device, or `none`.
fn find(dir: &Path, bin: &Path) -> String {
    let script = format!(
        "{}\nLUKSIFY_UUID={UUID}\nsys_dir={}/sys\ndev_dir={}/dev\n\
         if find_device; then echo \"$dev\"; else echo none; fi\n",
        functions(),
        dir.display(),
        dir.display()
    );
    let out = Command::new("/usr/bin/dash")
        .args(["-c", &script])
        .env("PATH", bin)
        .output()
        .expect("dash (Debian: /usr/bin/dash)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_container_is_found_by_luks_uuid_through_sysfs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let bin = d.join("bin");
    for p in [
        "bin",
        "dev",
        "sys/class/block/vda",
        "sys/class/block/vda1",
        "sys/class/block/vda2",
        "sys/class/block/dm-0",
    ] {
        fs::create_dir_all(d.join(p)).unwrap();
    }
    for (name, majmin) in [("vda", "254:0"), ("vda1", "254:1"), ("vda2", "254:2")] {
        fs::write(
            d.join(format!("sys/class/block/{name}/dev")),
            format!("{majmin}\n"),
        )
        .unwrap();
        // Nodes already made (a test cannot mknod); the script makes
        // missing ones with mknod.
        fs::write(d.join("dev").join(name), "").unwrap();
    }
    // cryptsetup luksUUID: only vda2 carries a LUKS header.
    write_exe(
        &bin.join("cryptsetup"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = luksUUID ] || exit 2\ncase \"$2\" in */dev/vda2) echo {UUID};; *) echo \"Device $2 is not a valid LUKS device.\" >&2; exit 1;; esac\n"
        ),
    );
    // busybox's blkid ignores -t/-o and lists every device: not an answer.
    write_exe(
        &bin.join("blkid"),
        &format!(
            "#!/bin/sh\necho '/dev/vda1: UUID=\"aaaa\" TYPE=\"ext3\"'\necho '/dev/vda2: UUID=\"{UUID}\" TYPE=\"crypto_LUKS\"'\n"
        ),
    );
    assert_eq!(find(d, &bin), format!("{}/dev/vda2", d.display()));

    // Another UUID: nothing found, and no wrong device taken.
    write_exe(
        &bin.join("cryptsetup"),
        "#!/bin/sh\necho 11111111-2222-4333-8444-555555555555\n",
    );
    assert_eq!(find(d, &bin), "none");

    // A device node /dev lacks and cannot be made is skipped, not fatal.
    fs::remove_file(d.join("dev/vda2")).unwrap();
    write_exe(&bin.join("mknod"), "#!/bin/sh\nexit 1\n");
    assert_eq!(find(d, &bin), "none");
    // mknod makes it: found again.
    write_exe(&bin.join("mknod"), "#!/bin/sh\n: > \"$1\"\n");
    write_exe(
        &bin.join("cryptsetup"),
        &format!("#!/bin/sh\ncase \"$2\" in */dev/vda2) echo {UUID};; *) exit 1;; esac\n"),
    );
    assert_eq!(find(d, &bin), format!("{}/dev/vda2", d.display()));
}

/// cryptsetup's libgcrypt opens /dev/random and /dev/urandom; on a /dev made
/// by hand (nash's tmpfs) the script makes them first, and leaves existing
/// ones alone.
#[test]
fn the_random_nodes_are_made_when_missing() {
    let start = UNLOCK_SCRIPT
        .find("# cryptsetup's crypto backend")
        .expect("the random nodes' comment");
    let end = UNLOCK_SCRIPT[start..].find("waited=0").expect("waited=0") + start;
    let part = &UNLOCK_SCRIPT[start..end];
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let bin = d.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(d.join("dev")).unwrap();
    fs::write(d.join("dev/urandom"), "").unwrap();
    // Records its arguments instead of making a node (a test cannot).
    write_exe(
        &bin.join("mknod"),
        &format!("#!/bin/sh\necho \"$*\" >> {}/made\n", d.display()),
    );
    let script = format!("dev_dir={}/dev\n{part}", d.display());
    let out = Command::new("/usr/bin/dash")
        .args(["-c", &script])
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made = fs::read_to_string(d.join("made")).unwrap();
    assert_eq!(made, format!("{}/dev/random c 1 8\n", d.display()));
}

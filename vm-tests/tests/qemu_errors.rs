//! When QEMU cannot start a guest, the error says why in QEMU's own words.

use std::time::Duration;

use vm_tests::qemu::{Accel, GuestBuilder};

#[test]
fn missing_disk_image_is_reported_with_qemus_message() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("vmlinux");
    std::fs::write(&kernel, b"not a kernel").unwrap();
    let result = GuestBuilder::new("qemu-errors")
        .kernel(&kernel)
        .accel(Accel::Tcg)
        .disk(dir.path().join("no-such-disk.img"))
        .start();
    let msg = match result {
        Err(e) => format!("{e:#}"),
        Ok(mut g) => format!(
            "{:#}",
            g.console()
                .wait_for("never", Duration::from_secs(20))
                .unwrap_err()
        ),
    };
    assert!(msg.contains("no-such-disk.img"), "{msg}");
}

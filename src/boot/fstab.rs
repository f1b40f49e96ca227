//! /etc/fstab and the resume device: nothing to edit. Moving the VG's
//! extents into a LUKS container keeps LV names (/dev/VG/LV,
//! /dev/mapper/VG-LV) and filesystem UUIDs and labels, so every mount keeps
//! working; this module says so in the plan, and warns about what does not
//! follow that rule.

use std::path::Path;

use super::flavour_params::lv_of_device;
use super::{BootChanges, BootRefusal, BootRequest, target_fs};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
}

/// The entries of an fstab (comments, blank and malformed lines skipped).
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or("");
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| Entry {
                device: f[0].to_string(),
                mountpoint: f[1].to_string(),
                fstype: f[2].to_string(),
            })
        })
        .collect()
}

/// What a sysadmin should know about one entry.
pub fn note_for(e: &Entry, vg: &str) -> Option<String> {
    let what = if e.fstype == "swap" {
        "swap".to_string()
    } else {
        e.mountpoint.clone()
    };
    if let Some((v, lv)) = lv_of_device(&e.device) {
        return (v == vg).then(|| {
            format!(
                "fstab: {what} on {} stays valid: the LV {vg}/{lv} keeps its name inside the encrypted container",
                e.device
            )
        });
    }
    let d = &e.device;
    if d.starts_with("/dev/disk/by-id/dm-uuid-LVM-") {
        return Some(format!(
            "fstab: {what} by {d} stays valid: it names an LV by its LVM UUID, which moving extents does not change"
        ));
    }
    if [
        "UUID=",
        "LABEL=",
        "/dev/disk/by-uuid/",
        "/dev/disk/by-label/",
    ]
    .iter()
    .any(|p| d.starts_with(p))
    {
        return Some(format!(
            "fstab: {what} by {d} stays valid: filesystem UUIDs and labels move with the data"
        ));
    }
    if ["/dev/sd", "/dev/vd", "/dev/hd", "/dev/xvd", "/dev/nvme"]
        .iter()
        .any(|p| d.starts_with(p))
    {
        return Some(format!(
            "fstab: {what} is mounted by kernel name {d}; kernel names can change (e.g. while a spare disk is attached). If {d} was a PV of {vg} this mount will fail; consider UUID= instead"
        ));
    }
    None
}

/// The fstab with its /boot line's source replaced by `UUID=new_uuid`, the
/// rest of the line (and every other line) byte for byte; None when there is
/// no /boot line. spare-keep moves /boot to a new filesystem on the spare.
pub fn retarget_boot(text: &str, new_uuid: &str) -> Option<String> {
    let mut found = false;
    let out: String = text
        .split_inclusive('\n')
        .map(|line| {
            let body = line.split('#').next().unwrap_or("");
            let f: Vec<&str> = body.split_whitespace().collect();
            if found || f.len() < 2 || f[1] != "/boot" {
                return line.to_string();
            }
            found = true;
            let indent = &line[..line.len() - line.trim_start().len()];
            let rest = &line[indent.len() + f[0].len()..];
            format!("{indent}UUID={new_uuid}{rest}")
        })
        .collect();
    found.then_some(out)
}

pub fn plan(root: &Path, req: &BootRequest, ch: &mut BootChanges) -> Result<(), BootRefusal> {
    if let Some((_, b)) = target_fs::read(root, "/etc/fstab")? {
        let entries = parse(&String::from_utf8_lossy(&b));
        for e in &entries {
            if let Some(n) = note_for(e, &req.vg) {
                ch.note(n);
            }
        }
        if !entries.iter().any(|e| e.mountpoint == "/boot") {
            ch.note("fstab has no separate /boot: check that the kernel and initrd are not inside the VG being encrypted (the plan refuses that layout)");
        }
    }
    // initramfs-tools keeps the hibernation device in its own file.
    if let Some((p, b)) = target_fs::read(root, "/etc/initramfs-tools/conf.d/resume")? {
        for l in String::from_utf8_lossy(&b).lines() {
            if let Some(dev) = l.trim().strip_prefix("RESUME=") {
                let dev = dev.trim_matches('"');
                let e = Entry {
                    device: dev.to_string(),
                    mountpoint: String::new(),
                    fstype: "swap".into(),
                };
                let n = note_for(&e, &req.vg)
                    .unwrap_or_else(|| format!("resume device {dev} is not on {}", req.vg));
                ch.note(format!(
                    "{}: {}",
                    p.display(),
                    n.trim_start_matches("fstab: ")
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_line_retargeted_alone() {
        let f = "# /boot was on /dev/vda1 during installation\n\
                 /dev/mapper/vg0-root / ext4 errors=remount-ro 0 1\n\
                 UUID=8d6f2c1e-0a51 /boot           ext4    defaults        0       2\n\
                 /dev/vg0/swap_1\tnone\tswap\tsw\t0\t0\n";
        let after = retarget_boot(f, "b007").unwrap();
        assert_eq!(
            after,
            f.replace("UUID=8d6f2c1e-0a51 /boot", "UUID=b007 /boot"),
            "only the source field changes"
        );
        assert_eq!(
            retarget_boot("/dev/vda1\t/boot ext2 defaults 0 2", "x").unwrap(),
            "UUID=x\t/boot ext2 defaults 0 2"
        );
        assert_eq!(
            retarget_boot("/dev/mapper/vg0-root / ext4 defaults 0 1\n", "x"),
            None
        );
        // Already done: the same text again.
        assert_eq!(retarget_boot(&after, "b007").unwrap(), after);
    }

    #[test]
    fn notes_per_kind_of_name() {
        let f = "# /etc/fstab: static file system information.\n\
                 /dev/mapper/vg0-root /               ext4    errors=remount-ro 0       1\n\
                 # /boot was on /dev/vda1 during installation\n\
                 UUID=8d6f2c1e-0a51-4e0b-b8f5-0c3f6a1d2e11 /boot  ext2  defaults  0  2\n\
                 /dev/vg0/swap_1\tnone\tswap\tsw\t0\t0\n\
                 /dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0\n\
                 /dev/mapper/other-data /srv xfs defaults 0 0\n\
                 /dev/sda3  /home ext4 defaults 0 2 # old disk\n";
        let e = parse(f);
        assert_eq!(e.len(), 6);
        let notes: Vec<String> = e.iter().filter_map(|e| note_for(e, "vg0")).collect();
        assert_eq!(notes.len(), 4, "{notes:#?}");
        assert!(notes[0].contains("/ on /dev/mapper/vg0-root stays valid"));
        assert!(notes[1].contains("UUID=8d6f"));
        assert!(notes[2].contains("swap on /dev/vg0/swap_1 stays valid"));
        assert!(
            notes[3].contains("/home is mounted by kernel name /dev/sda3"),
            "{}",
            notes[3]
        );
    }
}

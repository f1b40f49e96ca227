//! Parses `blkid -p -o export DEVICE`: the low-level probe, which reads the
//! device itself rather than a cache that may be stale on a live system.

use std::collections::BTreeMap;

use super::snapshot::Signature;

/// `KEY=value` lines; blkid escapes special characters with backslashes.
pub fn parse_export(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), unescape(v)))
        .collect()
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The content signature (filesystem, PV, LUKS, swap), if blkid found one.
pub fn signature(fields: &BTreeMap<String, String>) -> Option<Signature> {
    let kind = fields.get("TYPE")?.clone();
    Some(Signature {
        kind,
        uuid: fields.get("UUID").cloned(),
        label: fields.get("LABEL").cloned(),
        version: fields.get("VERSION").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_of_a_dos_disk() {
        let f = parse_export(
            "DEVNAME=/dev/vda2\nUUID=3nX2fU-aaaa\nVERSION=LVM2 001\nTYPE=LVM2_member\nUSAGE=raid\nPART_ENTRY_SCHEME=dos\nPART_ENTRY_UUID=a1b2c3d4-02\nPART_ENTRY_TYPE=0x8e\nPART_ENTRY_NUMBER=2\nPART_ENTRY_OFFSET=411648\nPART_ENTRY_SIZE=1685504\n",
        );
        let s = signature(&f).unwrap();
        assert_eq!(s.kind, "LVM2_member");
        assert_eq!(s.version.as_deref(), Some("LVM2 001"));
        assert_eq!(f["PART_ENTRY_TYPE"], "0x8e");
    }

    #[test]
    fn escaped_label() {
        let f = parse_export("LABEL=my\\ disk\nTYPE=ext4\n");
        assert_eq!(signature(&f).unwrap().label.as_deref(), Some("my disk"));
    }

    #[test]
    fn empty_device_has_no_signature() {
        assert_eq!(signature(&parse_export("")), None);
    }
}

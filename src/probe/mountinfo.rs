//! Parses /proc/self/mountinfo, which names the device number of every mount
//! (unlike /proc/mounts, whose sources may be `overlay` or `/dev/root`).

use super::snapshot::Mount;

pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                device_number: l.get(2)?.to_string(),
                mount_point: unescape_octal(l.get(4)?),
                fstype: r.first()?.to_string(),
                source: unescape_octal(r.get(1)?),
            })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash as `\040` style escapes.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_lines() {
        let m = parse(
            "22 1 0:21 / / rw,relatime shared:1 - tmpfs rootfs rw\n36 22 254:1 / /mnt/my\\040target rw - ext4 /dev/mapper/vg0-root rw\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].mount_point, "/mnt/my target");
        assert_eq!(m[1].source, "/dev/mapper/vg0-root");
        assert_eq!(m[1].device_number, "254:1");
        assert_eq!(m[1].fstype, "ext4");
    }
}

//! The newc (070701) and crc (070702) header: 13 fields of 8 hex digits after a
//! 6-byte magic, the NUL-terminated name padded so header+name is a multiple of 4,
//! then the data padded to 4. In crc, `check` is the byte sum of the data.

use std::ops::Range;

use serde::Serialize;

pub const HEADER_LEN: usize = 110;
pub const TRAILER: &[u8] = b"TRAILER!!!";
/// The kernel refuses longer names (PATH_MAX).
pub const MAX_NAME: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpioFormat {
    Newc,
    Crc,
}

impl CpioFormat {
    pub fn magic(self) -> &'static [u8; 6] {
        match self {
            CpioFormat::Newc => b"070701",
            CpioFormat::Crc => b"070702",
        }
    }

    pub fn detect(buf: &[u8]) -> Option<CpioFormat> {
        match buf.get(..6)? {
            b"070701" => Some(CpioFormat::Newc),
            b"070702" => Some(CpioFormat::Crc),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CpioFormat::Newc => "newc",
            CpioFormat::Crc => "crc",
        }
    }
}

impl std::fmt::Display for CpioFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: CpioFormat,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub namesize: u32,
    pub check: u32,
}

pub fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// Parses the 110-byte header at the start of `buf`.
pub fn parse_header(buf: &[u8]) -> Result<Header, String> {
    if buf.len() < HEADER_LEN {
        return Err(format!(
            "truncated cpio header ({} of {HEADER_LEN} bytes)",
            buf.len()
        ));
    }
    let format = CpioFormat::detect(buf).ok_or_else(|| {
        format!(
            "bad cpio magic {:?} (expected 070701 or 070702)",
            String::from_utf8_lossy(&buf[..6])
        )
    })?;
    let mut f = [0u32; 13];
    for (i, v) in f.iter_mut().enumerate() {
        let field = &buf[6 + i * 8..14 + i * 8];
        let s = std::str::from_utf8(field)
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()));
        *v = s
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .ok_or_else(|| {
                format!(
                    "header field {} is not 8 hex digits: {:?}",
                    i + 1,
                    String::from_utf8_lossy(field)
                )
            })?;
    }
    Ok(Header {
        format,
        ino: f[0],
        mode: f[1],
        uid: f[2],
        gid: f[3],
        nlink: f[4],
        mtime: f[5],
        filesize: f[6],
        dev_major: f[7],
        dev_minor: f[8],
        rdev_major: f[9],
        rdev_minor: f[10],
        namesize: f[11],
        check: f[12],
    })
}

pub fn encode_header(h: &Header, out: &mut Vec<u8>) {
    use std::io::Write;
    out.extend_from_slice(h.format.magic());
    for v in [
        h.ino,
        h.mode,
        h.uid,
        h.gid,
        h.nlink,
        h.mtime,
        h.filesize,
        h.dev_major,
        h.dev_minor,
        h.rdev_major,
        h.rdev_minor,
        h.namesize,
        h.check,
    ] {
        write!(out, "{v:08X}").expect("writing to a Vec cannot fail");
    }
}

/// One record located in a buffer: where its name and data are, where it ends.
#[derive(Debug, Clone)]
pub struct Record {
    pub header: Header,
    pub name: Range<usize>,
    pub data: Range<usize>,
    /// One past the record's last padding byte (may equal buf.len() when the final
    /// padding is missing, which only matters for the last record).
    pub end: usize,
}

/// Parses the record at `pos`. Sizes are checked against what is left in `buf`
/// before anything is sliced, so a hostile filesize costs nothing.
pub fn parse_record(buf: &[u8], pos: usize) -> Result<Record, String> {
    let header = parse_header(&buf[pos..])?;
    if header.namesize == 0 || header.namesize > MAX_NAME {
        return Err(format!(
            "name size {} is out of range (1..={MAX_NAME})",
            header.namesize
        ));
    }
    let name_start = pos + HEADER_LEN;
    let name_end = name_start + header.namesize as usize;
    if name_end > buf.len() {
        return Err(format!(
            "name of {} bytes runs past the end of the archive",
            header.namesize
        ));
    }
    if buf[name_end - 1] != 0 {
        return Err("name is not NUL-terminated".into());
    }
    let name = name_start..name_end - 1;
    if buf[name.clone()].contains(&0) {
        return Err("name contains a NUL byte".into());
    }
    let data_start = name_end + pad4(HEADER_LEN + header.namesize as usize);
    let data_end = data_start as u64 + header.filesize as u64;
    if data_end > buf.len() as u64 {
        return Err(format!(
            "entry {:?} claims {} bytes of data but only {} remain",
            String::from_utf8_lossy(&buf[name.clone()]),
            header.filesize,
            buf.len().saturating_sub(data_start)
        ));
    }
    let data_end = data_end as usize;
    let end = (data_end + pad4(header.filesize as usize)).min(buf.len());
    Ok(Record {
        header,
        name,
        data: data_start..data_end,
        end,
    })
}

/// The byte sum the crc format stores in `check`.
pub fn checksum(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |s, &b| s.wrapping_add(b as u32))
}

/// Appends a complete record; name size, file size and (for crc) check are
/// computed from `name` and `data`, the rest taken from `h`.
pub fn encode_record(h: &Header, name: &[u8], data: &[u8], out: &mut Vec<u8>) {
    write_record(h, name, data, out).expect("writing to a Vec cannot fail");
}

/// Writes a complete record as [`encode_record`] does, to any writer (a compressor).
pub fn write_record<W: std::io::Write>(
    h: &Header,
    name: &[u8],
    data: &[u8],
    w: &mut W,
) -> std::io::Result<()> {
    let mut h = *h;
    h.namesize = name.len() as u32 + 1;
    h.filesize = data.len() as u32;
    h.check = match h.format {
        CpioFormat::Newc => 0,
        CpioFormat::Crc => checksum(data),
    };
    let mut head = Vec::with_capacity(HEADER_LEN + name.len() + 4);
    encode_header(&h, &mut head);
    head.extend_from_slice(name);
    head.push(0);
    head.resize(head.len() + pad4(HEADER_LEN + name.len() + 1), 0);
    w.write_all(&head)?;
    w.write_all(data)?;
    w.write_all(&[0u8; 3][..pad4(data.len())])
}

pub fn trailer_header(format: CpioFormat) -> Header {
    Header {
        format,
        ino: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        nlink: 1,
        mtime: 0,
        filesize: 0,
        dev_major: 0,
        dev_minor: 0,
        rdev_major: 0,
        rdev_minor: 0,
        namesize: 0,
        check: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_header() -> Header {
        Header {
            format: CpioFormat::Crc,
            ino: 7,
            mode: 0o100644,
            uid: 1,
            gid: 2,
            nlink: 1,
            mtime: 3,
            filesize: 0,
            dev_major: 8,
            dev_minor: 1,
            rdev_major: 0,
            rdev_minor: 0,
            namesize: 0,
            check: 0,
        }
    }

    #[test]
    fn a_record_round_trips_with_alignment_and_checksum() {
        let mut out = Vec::new();
        encode_record(&file_header(), b"etc/x", b"hello", &mut out);
        assert_eq!(out.len() % 4, 0);
        let r = parse_record(&out, 0).unwrap();
        assert_eq!(&out[r.name.clone()], b"etc/x");
        assert_eq!(&out[r.data.clone()], b"hello");
        assert_eq!(r.end, out.len());
        assert_eq!(r.header.check, checksum(b"hello"));
        assert_eq!(r.header.filesize, 5);
        assert_eq!(r.data.start % 4, 0);
    }

    #[test]
    fn a_huge_filesize_on_a_tiny_buffer_is_an_error_not_an_allocation() {
        let mut out = Vec::new();
        encode_record(&file_header(), b"x", b"", &mut out);
        // filesize is the 7th field.
        out[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"FFFFFFFF");
        let e = parse_record(&out, 0).unwrap_err();
        assert!(e.contains("4294967295 bytes"), "{e}");
    }

    #[test]
    fn garbage_headers_are_named() {
        let mut out = Vec::new();
        encode_record(&file_header(), b"x", b"", &mut out);
        out[10] = b'g';
        assert!(
            parse_record(&out, 0)
                .unwrap_err()
                .contains("not 8 hex digits")
        );
        out[0] = b'1';
        assert!(
            parse_record(&out, 0)
                .unwrap_err()
                .contains("bad cpio magic")
        );
        assert!(
            parse_record(&out[..50], 0)
                .unwrap_err()
                .contains("truncated")
        );
    }

    #[test]
    fn name_must_be_nul_terminated() {
        let mut out = Vec::new();
        encode_record(&file_header(), b"ab", b"", &mut out);
        out[HEADER_LEN + 2] = b'c';
        assert!(
            parse_record(&out, 0)
                .unwrap_err()
                .contains("NUL-terminated")
        );
    }
}

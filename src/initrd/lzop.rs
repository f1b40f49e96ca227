//! The lzop container around LZO1X blocks, as the kernel's `lib/decompress_unlzo.c`
//! reads it. We parse every header variant lzop writes (checksums of compressed and
//! uncompressed data, filter, extra field) and write the simplest one the kernel
//! accepts: version 0x1040, Adler-32 of uncompressed data only, 256 KiB blocks.
//! That choice is forced: `unlzo` skips exactly one 4-byte checksum per block and
//! refuses blocks over 256 KiB, whatever the header flags say.

use super::compression::{DecodeError, Decoded};

pub const MAGIC: [u8; 9] = [0x89, b'L', b'Z', b'O', 0, 0x0d, 0x0a, 0x1a, 0x0a];
/// The kernel refuses blocks larger than this (LZO_BLOCK_SIZE in unlzo).
const BLOCK: usize = 256 * 1024;
/// lzop's own maximum block size; anything above is corrupt.
const MAX_BLOCK: usize = 64 << 20;

const F_ADLER32_D: u32 = 0x1;
const F_ADLER32_C: u32 = 0x2;
const F_H_EXTRA_FIELD: u32 = 0x40;
const F_CRC32_D: u32 = 0x100;
const F_CRC32_C: u32 = 0x200;
const F_H_FILTER: u32 = 0x800;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let s = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| {
                DecodeError::Corrupt(format!("truncated at stream byte {}", self.pos))
            })?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
}

pub fn decode(input: &[u8], limit: u64) -> Result<Decoded, DecodeError> {
    let mut c = Cursor { buf: input, pos: 0 };
    if c.take(9)? != MAGIC {
        return Err(DecodeError::Corrupt("bad lzop magic".into()));
    }
    let version = c.u16()?;
    let _lib_version = c.u16()?;
    if version >= 0x0940 {
        let _needed = c.u16()?;
    }
    let method = c.u8()?;
    if !(1..=3).contains(&method) {
        return Err(DecodeError::Corrupt(format!(
            "lzop method {method} is not LZO1X"
        )));
    }
    if version >= 0x0940 {
        let _level = c.u8()?;
    }
    let flags = c.u32()?;
    if flags & F_H_FILTER != 0 {
        let _filter = c.u32()?;
    }
    let _mode = c.u32()?;
    let _mtime_low = c.u32()?;
    if version >= 0x0940 {
        let _mtime_high = c.u32()?;
    }
    let name_len = c.u8()? as usize;
    c.take(name_len)?;
    let _header_checksum = c.u32()?;
    if flags & F_H_EXTRA_FIELD != 0 {
        let len = c.u32()? as usize;
        c.take(len)?;
        let _ = c.u32()?;
    }

    let mut out = Vec::new();
    loop {
        let dst_len = c.u32()? as usize;
        if dst_len == 0 {
            break;
        }
        let src_len = c.u32()? as usize;
        if dst_len > MAX_BLOCK || src_len == 0 || src_len > dst_len {
            return Err(DecodeError::Corrupt(format!(
                "impossible block sizes {src_len} -> {dst_len} at stream byte {}",
                c.pos
            )));
        }
        for f in [F_ADLER32_D, F_CRC32_D] {
            if flags & f != 0 {
                c.u32()?;
            }
        }
        if src_len < dst_len {
            for f in [F_ADLER32_C, F_CRC32_C] {
                if flags & f != 0 {
                    c.u32()?;
                }
            }
        }
        let block = c.take(src_len)?;
        if (out.len() + dst_len) as u64 > limit {
            return Err(DecodeError::TooLarge);
        }
        let start = out.len();
        if src_len == dst_len {
            out.extend_from_slice(block);
        } else {
            out.resize(start + dst_len, 0);
            lzo1x::decompress(block, &mut out[start..]).map_err(|e| {
                DecodeError::Corrupt(format!("LZO block before stream byte {}: {e:?}", c.pos))
            })?;
        }
    }
    Ok(Decoded {
        data: out,
        consumed: c.pos,
    })
}

pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

pub fn encode(data: &[u8], level: i32) -> Vec<u8> {
    let level = lzo1x::CompressLevel::new(level.clamp(1, 13) as u8);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    out.extend_from_slice(&MAGIC);
    let mut header = Vec::new();
    header.extend_from_slice(&0x1040u16.to_be_bytes()); // version
    header.extend_from_slice(&0x2080u16.to_be_bytes()); // LZO library version
    header.extend_from_slice(&0x0940u16.to_be_bytes()); // version needed to extract
    header.push(1); // method: LZO1X-1 (decoders don't care which LZO1X variant)
    header.push(5); // level
    header.extend_from_slice(&F_ADLER32_D.to_be_bytes());
    header.extend_from_slice(&0o100644u32.to_be_bytes()); // mode
    header.extend_from_slice(&0u32.to_be_bytes()); // mtime low
    header.extend_from_slice(&0u32.to_be_bytes()); // mtime high
    header.push(0); // no file name
    let sum = adler32(&header);
    out.extend_from_slice(&header);
    out.extend_from_slice(&sum.to_be_bytes());
    for chunk in data.chunks(BLOCK) {
        let packed = lzo1x::compress(chunk, level);
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        let stored = packed.len() >= chunk.len();
        let body: &[u8] = if stored { chunk } else { &packed };
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&adler32(chunk).to_be_bytes());
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_the_reference_value() {
        // RFC 1950 example value for "Wikipedia".
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn incompressible_blocks_are_stored() {
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let enc = encode(&data, 3);
        let d = decode(&enc, u64::MAX).unwrap();
        assert_eq!(d.data, data);
        assert_eq!(d.consumed, enc.len());
    }
}

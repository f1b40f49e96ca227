//! The lz4 *legacy* frame, the only lz4 framing the kernel's `unlz4` reads:
//! magic 0x184C2102, then blocks of (u32 LE compressed size, LZ4 block), each
//! decompressing to 8 MiB except the last. There is no end marker: the stream ends
//! where the input ends (which is why nothing may be appended after it), a zero
//! size (zero padding) or, leniently, a size that cannot be a block.

use super::compression::{DecodeError, Decoded};

pub const MAGIC: u32 = 0x184C_2102;
const CHUNK: usize = 8 << 20;

pub fn decode(input: &[u8], limit: u64) -> Result<Decoded, DecodeError> {
    if input.len() < 4 || u32::from_le_bytes(input[..4].try_into().unwrap()) != MAGIC {
        return Err(DecodeError::Corrupt("missing lz4 legacy magic".into()));
    }
    let max_block = lz4_flex::block::get_maximum_output_size(CHUNK);
    let mut out = Vec::new();
    let mut pos = 4;
    while pos < input.len() {
        if input.len() - pos < 4 {
            if input[pos..].iter().all(|&b| b == 0) {
                break;
            }
            return Err(DecodeError::Corrupt(format!(
                "{} stray bytes after the last block",
                input.len() - pos
            )));
        }
        let size = u32::from_le_bytes(input[pos..pos + 4].try_into().unwrap());
        if size == MAGIC {
            pos += 4;
            continue;
        }
        if size == 0 {
            break;
        }
        let size = size as usize;
        if size > max_block {
            return Err(DecodeError::Corrupt(format!(
                "block size {size} at stream byte {pos} is larger than an lz4 block can be"
            )));
        }
        let block = input.get(pos + 4..pos + 4 + size).ok_or_else(|| {
            DecodeError::Corrupt(format!("block at stream byte {pos} is truncated"))
        })?;
        let start = out.len();
        if (start + CHUNK) as u64 > limit.saturating_add(CHUNK as u64) {
            return Err(DecodeError::TooLarge);
        }
        out.resize(start + CHUNK, 0);
        let n = lz4_flex::block::decompress_into(block, &mut out[start..])
            .map_err(|e| DecodeError::Corrupt(format!("block at stream byte {pos}: {e}")))?;
        out.truncate(start + n);
        if out.len() as u64 > limit {
            return Err(DecodeError::TooLarge);
        }
        pos += 4 + size;
    }
    Ok(Decoded {
        data: out,
        consumed: pos,
    })
}

pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    for chunk in data.chunks(CHUNK) {
        let block = lz4_flex::block::compress(chunk);
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bigger_than_one_chunk_stream_round_trips() {
        let data: Vec<u8> = (0..(CHUNK + 12345)).map(|i| (i * 7 % 253) as u8).collect();
        let enc = encode(&data);
        let d = decode(&enc, u64::MAX).unwrap();
        assert_eq!(d.data, data);
        assert_eq!(d.consumed, enc.len());
    }

    #[test]
    fn hostile_block_size_is_refused_without_allocating() {
        let mut enc = MAGIC.to_le_bytes().to_vec();
        enc.extend_from_slice(&0xfff0_0000u32.to_le_bytes());
        assert!(matches!(
            decode(&enc, u64::MAX),
            Err(DecodeError::Corrupt(_))
        ));
    }
}

//! Masking (RFC 6455 §5.3): XOR with a 4-byte key, a machine word at a time.

use bytes::BufMut;

/// XORs `data` with `key`, where `data` starts `offset` bytes into the
/// masked payload (so a payload can be unmasked in pieces as it arrives).
///
/// ```
/// use sansproto::ws::apply_mask;
/// // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
/// let mut data = *b"\x7f\x9f\x4d\x51\x58";
/// apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    // The key as it lines up with `data[0]`.
    let key = u32::from_le_bytes(key)
        .rotate_right(8 * (offset % 4) as u32)
        .to_le_bytes();
    // Every 8-byte chunk, and the remainder, starts at a multiple of 4
    // within `data`, so the key phase is the same in each.
    let k64 = key_word(key);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = word(chunk) ^ k64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(k64.to_ne_bytes()) {
        *b ^= k;
    }
}

/// Copies `src` onto the end of `dst`, masking it with `key` (whose phase
/// at `src[0]` is `offset`) on the way: one pass over the bytes, a 64-byte
/// block at a time. Callers reserve the room first.
#[inline]
pub(crate) fn extend_masked(dst: &mut impl BufMut, src: &[u8], key: [u8; 4], offset: usize) {
    let key = u32::from_le_bytes(key)
        .rotate_right(8 * (offset % 4) as u32)
        .to_le_bytes();
    let pattern = key_block(key);
    let mut blocks = src.chunks_exact(BLOCK);
    for block in &mut blocks {
        dst.put_slice(&xor_block(block, &pattern));
    }
    let rest = blocks.remainder();
    let mut last = [0u8; BLOCK];
    for ((o, s), k) in last.iter_mut().zip(rest).zip(&pattern) {
        *o = s ^ k;
    }
    dst.put_slice(last.get(..rest.len()).unwrap_or_default());
}

/// Bytes masked per step when copying: a few vector registers' worth.
const BLOCK: usize = 64;

/// The key repeated over a block.
#[inline(always)]
fn key_block(key: [u8; 4]) -> [u8; BLOCK] {
    let mut pattern = [0u8; BLOCK];
    for (i, p) in pattern.iter_mut().enumerate() {
        *p = key[i % 4];
    }
    pattern
}

/// One block of `src` (exactly `BLOCK` long) XORed with `pattern`; fixed
/// sizes, so it compiles to a few vector operations and no copy loop.
#[inline(always)]
fn xor_block(src: &[u8], pattern: &[u8; BLOCK]) -> [u8; BLOCK] {
    let mut out = [0u8; BLOCK];
    for ((o, s), k) in out.iter_mut().zip(src).zip(pattern) {
        *o = s ^ k;
    }
    out
}

/// The key repeated over a machine word.
#[inline(always)]
fn key_word(key: [u8; 4]) -> u64 {
    let [a, b, c, d] = key;
    u64::from_ne_bytes([a, b, c, d, a, b, c, d])
}

/// Eight bytes as a native-endian word (`w` is exactly eight long).
#[inline(always)]
fn word(w: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(w);
    u64::from_ne_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_byte_loop_at_every_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..70 {
            for offset in 0..8 {
                let src: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut a = src.clone();
                let mut b = src.clone();
                apply_mask(&mut a, key, offset);
                naive(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_whole() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let src: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut whole = src.clone();
        apply_mask(&mut whole, key, 0);
        for split in [1usize, 3, 5, 17, 400, 999] {
            let mut parts = src.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(parts, whole);
        }
        let mut v = Vec::new();
        extend_masked(&mut v, &src, key, 0);
        assert_eq!(v, whole);
        for len in 0..140 {
            for offset in 0..5 {
                let mut v = b"head".to_vec();
                extend_masked(&mut v, &src[offset..offset + len], key, offset);
                assert_eq!(&v[..4], b"head");
                assert_eq!(v[4..], whole[offset..offset + len]);
                let mut b = bytes::BytesMut::from(&b"head"[..]);
                extend_masked(&mut b, &src[offset..offset + len], key, offset);
                assert_eq!(b[..], v[..]);
            }
        }
    }
}

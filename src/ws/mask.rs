//! Masking (RFC 6455 §5.3): XOR with a 4-byte key, a machine word at a time.

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
    let rot = offset % 4;
    let key = [
        key[rot],
        key[(rot + 1) % 4],
        key[(rot + 2) % 4],
        key[(rot + 3) % 4],
    ];
    if data.len() < 16 {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
        return;
    }
    // Every 8-byte chunk starts at a multiple of 4 within `data`, so the
    // key phase is the same in every chunk.
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&key);
    k[4..].copy_from_slice(&key);
    let k64 = u64::from_ne_bytes(k);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_ne_bytes(w) ^ k64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Copies `src` onto the end of `dst`, masking it with `key` on the way.
#[inline]
pub(crate) fn extend_masked(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4]) {
    let start = dst.len();
    dst.extend_from_slice(src);
    if let Some(tail) = dst.get_mut(start..) {
        apply_mask(tail, key, 0);
    }
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
        extend_masked(&mut v, &src, key);
        assert_eq!(v, whole);
    }
}

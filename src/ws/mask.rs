//! Masking (RFC 6455 §5.3): XOR with a 4-byte key, a 64-byte block at a time.

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
    // Every block, word and remainder starts at a multiple of 4 within
    // `data`, so the key phase is the same in each.
    let key = phase(key, offset);
    if data.len() < BLOCK {
        mask_words(data, key);
    } else {
        mask_blocks(data, key);
    }
}

/// `apply_mask` for payloads of a block or more.
#[inline(never)]
fn mask_blocks(data: &mut [u8], key: [u8; 4]) {
    let pattern = key_block(key);
    let mut blocks = data.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        let masked = xor_block(block, &pattern);
        block.copy_from_slice(&masked);
    }
    mask_words(blocks.into_remainder(), key);
}

/// Masks `data` (whose first byte lines up with `key[0]`) a machine word
/// at a time: the short payloads, and what is left after the blocks.
#[inline(always)]
fn mask_words(data: &mut [u8], key: [u8; 4]) {
    let [a, b, c, d] = key;
    let k8 = [a, b, c, d, a, b, c, d];
    let k64 = u64::from_ne_bytes(k8);
    let mut words = data.chunks_exact_mut(8);
    for w in &mut words {
        let mut v = [0u8; 8];
        v.copy_from_slice(w);
        w.copy_from_slice(&(u64::from_ne_bytes(v) ^ k64).to_ne_bytes());
    }
    for (x, k) in words.into_remainder().iter_mut().zip(k8) {
        *x ^= k;
    }
}

/// Copies `src` onto the end of `dst`, masking it with `key` (whose phase
/// at `src[0]` is `offset`) on the way. Each piece of `src` is copied with
/// the platform's `memcpy` and then masked in place while it is still in
/// the nearest cache: two short passes, which measure faster than one
/// pass that stores each masked block itself (`memcpy` has the widest
/// stores the machine offers). Callers size `dst` for the whole of `src`
/// first.
#[inline]
pub(crate) fn extend_masked<B>(dst: &mut B, src: &[u8], key: [u8; 4], offset: usize)
where
    B: BufMut + AsMut<[u8]>,
{
    let mut offset = offset;
    for piece in src.chunks(COPY_THEN_MASK) {
        let start = dst.as_mut().len();
        dst.put_slice(piece);
        if let Some(copied) = dst.as_mut().get_mut(start..) {
            apply_mask(copied, key, offset);
        }
        offset = offset.wrapping_add(piece.len());
    }
}

/// Bytes copied, then masked, at a time by [`extend_masked`]: well within
/// a first-level data cache.
const COPY_THEN_MASK: usize = 16 << 10;

/// The key as it lines up with a byte `offset` bytes into the payload.
#[inline(always)]
fn phase(key: [u8; 4], offset: usize) -> [u8; 4] {
    u32::from_le_bytes(key)
        .rotate_right(8 * (offset % 4) as u32)
        .to_le_bytes()
}

/// Bytes masked per step when copying: a few vector registers' worth.
const BLOCK: usize = 64;

/// The key repeated over a block.
#[inline(always)]
fn key_block(key: [u8; 4]) -> [u8; BLOCK] {
    let mut pattern = [0u8; BLOCK];
    for quad in pattern.chunks_exact_mut(4) {
        quad.copy_from_slice(&key);
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
    fn copying_masked_across_pieces_equals_the_byte_loop() {
        let key = [0x9a, 0x01, 0xfe, 0x42];
        let src: Vec<u8> = (0..3 * COPY_THEN_MASK as u32 + 7)
            .map(|i| (i * 29 + 3) as u8)
            .collect();
        for offset in 0..5 {
            for len in [
                COPY_THEN_MASK - 1,
                COPY_THEN_MASK,
                COPY_THEN_MASK + 1,
                src.len() - 5,
            ] {
                let piece = &src[offset..offset + len];
                let mut want = piece.to_vec();
                naive(&mut want, key, offset);
                let mut got = vec![7u8];
                extend_masked(&mut got, piece, key, offset);
                assert_eq!(got[0], 7);
                assert!(got[1..] == want[..], "offset {offset} len {len}");
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

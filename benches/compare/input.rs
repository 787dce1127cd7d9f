//! The inputs: masked client frames, multi-byte text, and the tally a
//! correct parser must reach on them.

use sansproto::ws::{encode_frame, OpCode};

/// A client's masking keys: different per frame, as a real client's are.
fn mask_key(i: usize) -> [u8; 4] {
    (i as u32).wrapping_mul(0x9e37_79b9).to_be_bytes()
}

/// Masked client frames, one per payload.
fn client_frames<'a>(opcode: OpCode, payloads: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut wire = Vec::new();
    for (i, payload) in payloads.enumerate() {
        encode_frame(&mut wire, true, 0, opcode, Some(mask_key(i)), payload);
    }
    wire
}

/// Exactly `len` bytes of UTF-8 mixing 1-, 2-, 3- and 4-byte characters,
/// starting `skip` characters into the pattern (so messages differ).
pub fn multibyte_text(len: usize, skip: usize) -> String {
    let mut s = String::with_capacity(len);
    for c in "aé€𝄞 κόσμε ✓ 😀".chars().cycle().skip(skip) {
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(c);
    }
    while s.len() < len {
        s.push('.');
    }
    s
}

/// Received data messages, summarised so that a skipped unmasking or a
/// lost message shows: count, payload bytes, and the sum of every
/// message's last byte.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub messages: usize,
    pub bytes: usize,
    last_bytes: u64,
}

impl Tally {
    #[inline]
    pub fn add(&mut self, payload: &[u8]) {
        self.messages += 1;
        self.bytes += payload.len();
        self.last_bytes += u64::from(payload.last().copied().unwrap_or(0));
    }
}

/// A receive case: the wire bytes and what a correct parser finds in them.
pub struct RecvCase {
    pub opcode: OpCode,
    pub wire: Vec<u8>,
    pub expected: Tally,
}

impl RecvCase {
    pub fn new(opcode: OpCode, payloads: &[Vec<u8>]) -> Self {
        let mut expected = Tally::default();
        for p in payloads {
            expected.add(p);
        }
        Self {
            opcode,
            wire: client_frames(opcode, payloads.iter().map(Vec::as_slice)),
            expected,
        }
    }
}

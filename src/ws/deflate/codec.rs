//! The per-message transform of one connection: compressing outgoing
//! messages and inflating incoming ones (RFC 7692 §7.2).

use super::window::History;
use super::PERMESSAGE_DEFLATE;
use crate::ws::extension::{EncodingKey, Extension, ExtensionError};
use crate::ws::frame::{OpCode, RSV1};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sync flush ends with; stripped on send, appended on receive.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output is produced in steps of this many bytes, so a decompression bomb
/// is caught at most one step past the limit.
const STEP: usize = 32 * 1024;

/// A last frame of at most this many bytes with the tail is inflated from
/// one copy on the stack.
const JOINED_TAIL: usize = 2048;

/// One direction's negotiated parameters.
#[derive(Debug, Clone, Copy)]
pub(super) struct Side {
    pub(super) no_context_takeover: bool,
    pub(super) window_bits: u8,
}

impl Side {
    /// zlib's usable window for a negotiated value (see the `deflate` module docs).
    fn zlib_bits(self) -> u8 {
        self.window_bits.clamp(9, 15)
    }
}

/// The transform of one connection.
pub(super) struct Deflate {
    level: u32,
    threshold: usize,
    /// Without context takeover, what would not shrink goes out as it is.
    skip_incompressible: bool,
    /// This side's compressor.
    out: Side,
    /// The peer's compressor, which this side's decompressor follows.
    inp: Side,
    compress: Option<Compress>,
    inflater: Inflater,
    /// With context takeover on the peer's sends, the last `2^w` bytes
    /// inflated: the window the next stream starts from when the peer ends
    /// one with a final block.
    history: Option<History>,
    /// How many bytes the last message received inflated to: the first
    /// step of the next one's output (messages on a connection tend to be
    /// alike), so a small message is not given a whole step to shrink
    /// from.
    last_inflated: usize,
}

/// The decompressor across a message's frames and between messages.
enum Inflater {
    /// No decompressor: before the first compressed message, after one
    /// without context takeover, or after a final block (the next message
    /// then starts a stream from the kept history).
    Idle,
    /// Inflating; with context takeover the window carries over to the
    /// next message.
    Running(Decompress),
    /// The message's DEFLATE data ended with a final block (BFINAL set,
    /// RFC 7692 §7.2.3.4). All that may follow in the message is the
    /// header byte of the empty stored block the RFC appends there (whose
    /// length fields are the 00 00 ff ff a receiver appends); `padded`
    /// once it has come.
    Ended { padded: bool },
}

impl Deflate {
    pub(super) fn new(level: u32, threshold: usize, out: Side, inp: Side) -> Self {
        Self {
            level,
            threshold,
            skip_incompressible: false,
            out,
            inp,
            compress: None,
            inflater: Inflater::Idle,
            history: (!inp.no_context_takeover).then(|| History::new(1 << inp.zlib_bits())),
            last_inflated: STEP,
        }
    }

    /// With `on`, a message compression would not shrink is sent as it is
    /// when this side compresses without context takeover.
    pub(super) fn skipping_incompressible(mut self, on: bool) -> Self {
        self.skip_incompressible = on;
        self
    }

    /// Inflates `input` straight onto the end of `out`; when the DEFLATE
    /// data ended with a final block, the input left after it (which is
    /// not DEFLATE data). `out` grows by `first` (at most a step), then by
    /// doubling, and never to more than a byte past what `max_out` allows.
    fn inflate<'a>(
        d: &mut Decompress,
        mut input: &'a [u8],
        out: &mut Vec<u8>,
        produced: &mut usize,
        max_out: usize,
        first: usize,
    ) -> Result<Option<&'a [u8]>, ExtensionError> {
        loop {
            if out.len() == out.capacity() {
                let allowed = max_out.saturating_sub(*produced).saturating_add(1);
                out.reserve_exact(out.capacity().max(first).min(allowed));
            }
            let before_in = d.total_in();
            let before_out = d.total_out();
            let status = d
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|e| ExtensionError::InvalidData(format!("inflate: {e}")))?;
            let used = (d.total_in() - before_in) as usize;
            let made = (d.total_out() - before_out) as usize;
            input = input.split_at(used.min(input.len())).1;
            *produced += made;
            if *produced > max_out {
                return Err(ExtensionError::TooBig);
            }
            if status == Status::StreamEnd {
                return Ok(Some(input));
            }
            let full = out.len() == out.capacity();
            if used == 0 && made == 0 && !full {
                if input.is_empty() {
                    return Ok(None);
                }
                return Err(ExtensionError::InvalidData(
                    "inflate made no progress".into(),
                ));
            }
            if input.is_empty() && !full {
                return Ok(None);
            }
        }
    }

    /// Checks what follows a final block in the message: at most one
    /// byte, the header of an empty stored block (BFINAL and BTYPE 0; the
    /// other five bits are padding, which DEFLATE ignores). Anything else
    /// would be peer data no decoder reads, so it fails the message
    /// rather than being dropped unseen. Returns whether that byte has
    /// now come.
    fn after_final(mut padded: bool, rest: &[u8]) -> Result<bool, ExtensionError> {
        for &b in rest {
            if padded || b & 0x07 != 0 {
                return Err(ExtensionError::InvalidData(
                    "data after the final deflate block".into(),
                ));
            }
            padded = true;
        }
        Ok(padded)
    }
}

impl Extension for Deflate {
    fn name(&self) -> &str {
        PERMESSAGE_DEFLATE
    }

    fn rsv_bits(&self) -> u8 {
        RSV1
    }

    fn decode(
        &mut self,
        rsv: u8,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<(), ExtensionError> {
        if rsv & RSV1 == 0 {
            if data.len() > max_out {
                return Err(ExtensionError::TooBig);
            }
            out.extend_from_slice(data);
            return Ok(());
        }
        if matches!(self.inflater, Inflater::Idle) {
            let mut d = Decompress::new_with_window_bits(false, self.inp.zlib_bits());
            // After a final block with context takeover, the new stream
            // starts from the window the last one left (RFC 7692 §7.2.2).
            if let Some(history) = self.history.as_mut().filter(|h| !h.is_empty()) {
                d.set_dictionary(history.contiguous())
                    .map_err(|e| ExtensionError::InvalidData(format!("inflate: {e}")))?;
            }
            self.inflater = Inflater::Running(d);
        }
        let start = out.len();
        let mut produced = 0;
        // Room for a message like the last one and a little more, so that
        // it fits without a second step or a shrink afterwards.
        let first = (self.last_inflated + self.last_inflated / 8 + 64).min(STEP);
        let rest = match &mut self.inflater {
            // A small last frame is inflated with the tail appended in one
            // call, not two: each call has a cost of its own, which for a
            // message of a few KiB is not small.
            Inflater::Running(d) if fin && data.len() <= JOINED_TAIL - TAIL.len() => {
                let mut joined = [0; JOINED_TAIL];
                let len = data.len() + TAIL.len();
                joined[..data.len()].copy_from_slice(data);
                joined[data.len()..len].copy_from_slice(&TAIL);
                Self::inflate(d, &joined[..len], out, &mut produced, max_out, first)?
                    // What is left of the frame's own bytes after a final
                    // block (the appended tail is not the peer's).
                    .map(|rest| &data[data.len() - rest.len().saturating_sub(TAIL.len())..])
            }
            Inflater::Running(d) => {
                match Self::inflate(d, data, out, &mut produced, max_out, first)? {
                    Some(rest) => Some(rest),
                    // The 00 00 ff ff appended: a final block may end in it
                    // (a final empty stored block, whose tail the sender
                    // removed); no peer byte follows then.
                    None if fin => Self::inflate(d, &TAIL, out, &mut produced, max_out, first)?
                        .map(|_| &[][..]),
                    None => None,
                }
            }
            Inflater::Ended { .. } => Some(data),
            Inflater::Idle => None,
        };
        if let Some(rest) = rest {
            let padded = matches!(self.inflater, Inflater::Ended { padded: true });
            let padded = Self::after_final(padded, rest)?;
            self.inflater = Inflater::Ended { padded };
        }
        if let Some(history) = &mut self.history {
            history.push(&out[start..]);
        }
        if fin {
            self.last_inflated = out.len();
        }
        if fin && (self.inp.no_context_takeover || matches!(self.inflater, Inflater::Ended { .. }))
        {
            self.inflater = Inflater::Idle;
        }
        Ok(())
    }

    fn encode(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<u8>, ExtensionError> {
        if opcode.is_control() || payload.len() < self.threshold {
            return Ok(None);
        }
        let (level, bits) = (self.level, self.out.zlib_bits());
        let c = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        });
        let start = out.len();
        out.reserve(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(STEP));
            }
            let before_in = c.total_in();
            let before_out = c.total_out();
            c.compress_vec(input, out, FlushCompress::Sync)
                .map_err(|e| ExtensionError::InvalidData(format!("deflate: {e}")))?;
            let used = (c.total_in() - before_in) as usize;
            input = input.split_at(used.min(input.len())).1;
            let made = c.total_out() - before_out;
            // Done when all input is in and the flush left spare room (or a
            // repeated flush had nothing more to write).
            if input.is_empty() && (out.len() < out.capacity() || made == 0) {
                break;
            }
            if used == 0 && made == 0 && out.len() < out.capacity() {
                return Err(ExtensionError::InvalidData(
                    "deflate made no progress".into(),
                ));
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            out.push(0x00);
        }
        if self.out.no_context_takeover {
            self.compress = None;
            // Each message is a stream of its own here, so one that did
            // not shrink can go out as it is: nothing the peer inflates
            // later refers back to it. (With context takeover the window
            // already holds it, and the peer's must hold the same.)
            if self.skip_incompressible && out.len() - start >= payload.len() {
                out.truncate(start);
                return Ok(None);
            }
        }
        Ok(Some(RSV1))
    }

    /// When this side compresses without context takeover, a message's
    /// compressed form depends only on the level, the window, the
    /// threshold and the payload.
    fn shared_encoding(&self) -> Option<EncodingKey> {
        if !self.out.no_context_takeover {
            return None;
        }
        let settings = u64::from(self.level)
            | u64::from(self.out.zlib_bits()) << 8
            | u64::from(self.skip_incompressible) << 16;
        let threshold = u64::try_from(self.threshold).unwrap_or(u64::MAX);
        Some(EncodingKey {
            extension: PERMESSAGE_DEFLATE,
            settings: [settings, threshold],
        })
    }

    /// What zlib-rs allocates: a compressor holds its window and chain
    /// (4 bytes per window position) beside a fixed part (the hash head,
    /// the pending buffer and its state); a decompressor holds a 32 KiB
    /// window and its state whatever the window bits; with context
    /// takeover the history of what was inflated (up to `2^w` bytes) is
    /// kept beside it.
    fn memory_usage(&self) -> usize {
        let compress = self
            .compress
            .as_ref()
            .map_or(0, |_| COMPRESS_FIXED + (4 << self.out.zlib_bits()));
        let inflate = match self.inflater {
            Inflater::Running(_) => DECOMPRESS,
            Inflater::Idle | Inflater::Ended { .. } => 0,
        };
        let history = self.history.as_ref().map_or(0, History::capacity);
        compress + inflate + history
    }

    /// The compressor the first compressed message creates, when it is
    /// kept (context takeover on this side's sends).
    fn memory_to_encode(&self, len: usize) -> usize {
        if len < self.threshold || self.compress.is_some() || self.out.no_context_takeover {
            return 0;
        }
        COMPRESS_FIXED + (4 << self.out.zlib_bits())
    }
}

/// The part of a zlib-rs compressor that does not depend on the window.
const COMPRESS_FIXED: usize = 248_960;
/// A zlib-rs decompressor.
const DECOMPRESS: usize = 47_552;

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(no_ctx: bool) -> (Deflate, Deflate) {
        let side = Side {
            no_context_takeover: no_ctx,
            window_bits: 15,
        };
        (
            Deflate::new(6, 0, side, side),
            Deflate::new(6, 0, side, side),
        )
    }

    #[test]
    fn rfc7692_hello_vectors() {
        // §7.2.3.1 and §7.2.3.2: "Hello" twice with context takeover.
        let (mut a, mut b) = pair(false);
        let mut out = Vec::new();
        assert_eq!(a.encode(OpCode::Text, b"Hello", &mut out), Ok(Some(RSV1)));
        assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        let mut second = Vec::new();
        a.encode(OpCode::Text, b"Hello", &mut second).unwrap();
        assert_eq!(second, [0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut dec = Vec::new();
        b.decode(RSV1, &out, true, &mut dec, 100).unwrap();
        b.decode(RSV1, &second, true, &mut dec, 100).unwrap();
        assert_eq!(dec, b"HelloHello");
        // Without context takeover both messages compress alike.
        let (mut a, _) = pair(true);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.encode(OpCode::Text, b"Hello", &mut x).unwrap();
        a.encode(OpCode::Text, b"Hello", &mut y).unwrap();
        assert_eq!(x, y);
        // An empty block; §7.2.3.3 a stored block; §7.2.3.4 a block with
        // BFINAL set, with and without the padding block; §7.2.3.5 two blocks.
        for (wire, want) in [
            (&[0x00][..], &b""[..]),
            (&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00], b"Hello"),
            (&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], b"Hello"),
            (
                &[
                    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                ],
                b"Hello",
            ),
            (
                &[
                    0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                ],
                b"Hello",
            ),
        ] {
            for takeover in [false, true] {
                let (_, mut b) = pair(!takeover);
                let mut dec = Vec::new();
                b.decode(RSV1, wire, true, &mut dec, 100).unwrap();
                assert_eq!(dec, want);
                // The next message decodes too (a new stream after BFINAL,
                // from the window with context takeover).
                dec.clear();
                b.decode(
                    RSV1,
                    &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                    true,
                    &mut dec,
                    100,
                )
                .unwrap();
                assert_eq!(dec, b"Hello");
            }
        }
    }

    /// A sender that ends every message with a final block yet keeps its
    /// context (RFC 7692 §7.2.3.4): each message a stream of its own,
    /// compressed against the last `2^bits` bytes sent before it.
    fn final_block_sender(bits: u8, messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut sent: Vec<u8> = Vec::new();
        let mut wire = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let mut c = Compress::new_with_window_bits(Compression::new(6), false, bits);
            c.set_dictionary(&sent[sent.len().saturating_sub(1 << bits)..])
                .unwrap();
            let mut out = Vec::with_capacity(m.len() + 64);
            let status = c.compress_vec(m, &mut out, FlushCompress::Finish).unwrap();
            assert_eq!(status, Status::StreamEnd);
            // The RFC's padding block (its tail removed), on every other
            // message; the rest end right after the final block.
            if i % 2 == 0 {
                out.push(0x00);
            }
            wire.push(out);
            sent.extend_from_slice(m);
        }
        wire
    }

    #[test]
    fn final_blocks_keep_the_window_across_messages() {
        let words = [
            "alpha ", "bravo ", "charlie ", "delta ", "echo ", "foxtrot ",
        ];
        let mut x = 7u32;
        let mut next = move || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as usize
        };
        let messages: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                let len = [3, 40, 700, 5_000, 20_000][i % 5];
                let mut m = Vec::new();
                while m.len() < len {
                    m.extend_from_slice(words[next() % words.len()].as_bytes());
                    m.extend_from_slice(format!("{} ", next() % 300).as_bytes());
                }
                m
            })
            .collect();
        for window_bits in [8, 9, 12, 15] {
            let side = Side {
                no_context_takeover: false,
                window_bits,
            };
            let wire = final_block_sender(side.zlib_bits(), &messages);
            for frames in [1, 2, 5] {
                let mut b = Deflate::new(6, 0, side, side);
                for (m, w) in messages.iter().zip(&wire) {
                    let mut dec = Vec::new();
                    let size = w.len().div_ceil(frames).max(1);
                    let mut chunks = w.chunks(size).peekable();
                    while let Some(chunk) = chunks.next() {
                        let fin = chunks.peek().is_none();
                        b.decode(RSV1, chunk, fin, &mut dec, 1 << 20).unwrap();
                    }
                    assert_eq!(dec, *m, "window bits {window_bits}, {frames} frames");
                    // The kept history is bounded by the window.
                    let kept = b.history.as_ref().unwrap().capacity();
                    assert!(kept <= 1 << side.zlib_bits(), "{kept}");
                }
            }
        }
        // Without context takeover nothing is kept.
        let (_, b) = pair(true);
        assert!(b.history.is_none());
    }

    #[test]
    fn encode_terminates_whatever_room_the_output_has() {
        // The flush may fill the output exactly; a second flush then writes
        // nothing, which must end the loop rather than spin.
        let payload: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
        for cap in 0..400 {
            let (mut a, mut b) = pair(false);
            let mut out = Vec::with_capacity(cap);
            assert_eq!(a.encode(OpCode::Binary, &payload, &mut out), Ok(Some(RSV1)));
            let mut dec = Vec::new();
            b.decode(RSV1, &out, true, &mut dec, 1 << 20).unwrap();
            assert_eq!(dec, payload, "capacity {cap}");
        }
    }

    #[test]
    fn without_context_takeover_what_does_not_shrink_is_left_alone() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..512)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        // Off by default: compressed all the same.
        let (mut off, _) = pair(true);
        let mut out = b"kept".to_vec();
        assert_eq!(off.encode(OpCode::Binary, &noise, &mut out), Ok(Some(RSV1)));
        out.truncate(4);
        let (a, _) = pair(true);
        let mut a = a.skipping_incompressible(true);
        assert_eq!(a.encode(OpCode::Binary, &noise, &mut out), Ok(None));
        assert_eq!(out, b"kept", "untouched");
        assert!(a.compress.is_none());
        assert!(a.shared_encoding().is_some());
        // With context takeover it is compressed all the same, and its
        // encoding is not shared.
        let (mut b, _) = pair(false);
        assert_eq!(b.encode(OpCode::Binary, &noise, &mut out), Ok(Some(RSV1)));
        assert_eq!(b.shared_encoding(), None);
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let (mut a, mut b) = pair(true);
        let big = vec![b'a'; 4 << 20];
        let mut wire = Vec::new();
        a.encode(OpCode::Binary, &big, &mut wire).unwrap();
        assert!(wire.len() < 16 << 10);
        let mut dec = Vec::new();
        assert_eq!(
            b.decode(RSV1, &wire, true, &mut dec, 1 << 20),
            Err(ExtensionError::TooBig)
        );
        assert!(dec.len() <= (1 << 20) + STEP);
    }
}

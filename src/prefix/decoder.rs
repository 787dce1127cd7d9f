//! The incremental frame decoder.

use super::varint::VarintError;
use super::{ByteOrder, Config, Framing, LengthField, Limit, Strip};
use crate::buf::RecvBuf;
use bytes::{Buf, Bytes, BytesMut};

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame, less the stripped bytes, split out of the buffer
    /// without a copy.
    Frame(Bytes),
    /// A frame over the limit was found and is being skipped (only with
    /// [`Builder::discard_too_long_frames`](super::Builder::discard_too_long_frames)).
    /// Reported once per frame, when its header is read; its bytes are
    /// dropped as they arrive and the frame after it decodes normally.
    Discarded {
        /// The whole frame's length in bytes (header included).
        length: u64,
    },
}

/// Why the peer's byte stream cannot be decoded. Every variant means the
/// stream is lost: the decoder keeps returning the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is over the configured limit.
    #[error("frame length {length} exceeds the limit of {max} bytes")]
    FrameTooLong {
        /// The length measured the way the limit counts: the whole frame for
        /// `max_frame_length`, the body for `max_payload_length`.
        length: u64,
        /// The limit.
        max: usize,
    },
    /// After adjustment the length is negative, or shorter than the header
    /// it must cover.
    #[error("length field value {length_field} gives a frame shorter than its {header_length}-byte header")]
    LengthTooSmall {
        /// The raw length field value.
        length_field: u64,
        /// The header length (offset bytes plus length field).
        header_length: usize,
    },
    /// The frame is shorter than the bytes configured to be stripped.
    #[error("frame of {frame_length} bytes is shorter than the {strip} bytes to strip")]
    FrameShorterThanStrip {
        /// The whole frame's length.
        frame_length: u64,
        /// Bytes to strip.
        strip: usize,
    },
    /// The adjusted frame length does not fit in 64 bits, or in this
    /// platform's address space.
    #[error("length field value {length_field} overflows the frame length")]
    LengthOverflow {
        /// The raw length field value.
        length_field: u64,
    },
    /// The varint length field is malformed.
    #[error("bad varint length field: {0}")]
    Varint(#[from] VarintError),
    /// The stream ended inside a frame: these bytes were lost.
    #[error("stream ended inside a frame: {buffered} bytes received of {}", match .frame_length { Some(n) => n.to_string(), None => "an incomplete header".to_string() })]
    Truncated {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
        /// The whole frame's length, when its header had arrived.
        frame_length: Option<usize>,
    },
    /// A [`Connection`](super::Connection) held more than its
    /// [memory budget](super::Builder::memory_budget) after taking input.
    #[error("holding {held} bytes, over the memory budget of {budget}")]
    OverBudget {
        /// What the budget was charged: the
        /// [`MemoryUsage::total`](crate::MemoryUsage::total), with the
        /// receive buffer and send queue at the bytes they hold rather than
        /// their capacity.
        held: usize,
        /// The budget.
        budget: usize,
    },
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone)]
enum State {
    /// At a frame boundary, waiting for a whole header.
    Header,
    /// The header is parsed (and kept in the buffer); waiting for the rest.
    Body { frame_len: usize, strip: usize },
    /// Skipping the rest of an over-long frame.
    Discarding { remaining: u64 },
    /// The stream is lost.
    Failed(DecodeError),
}

/// What a parsed header says about its frame.
enum Head {
    Frame { frame_len: usize, strip: usize },
    Discard { frame_len: u64 },
}

/// What the state machine yields, over whatever frame type its input makes.
#[derive(Debug)]
pub(crate) enum Out<F> {
    Frame(F),
    Discarded { length: u64 },
}

/// The inputs the decoder reads frames from.
pub(crate) trait Input {
    /// A decoded frame: split-out bytes, or where they lie.
    type Frame;
    fn bytes(&self) -> &[u8];
    fn is_empty(&self) -> bool;
    /// Removes a whole `n`-byte frame from the front, less `strip` bytes
    /// (`strip <= n`).
    fn take(&mut self, n: usize, strip: usize) -> Self::Frame;
    fn skip(&mut self, n: usize);
    /// The stream is lost: release what is buffered.
    fn discard_all(&mut self);
}

impl Input for BytesMut {
    type Frame = Bytes;
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        self
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        BytesMut::is_empty(self)
    }
    #[inline(always)]
    fn take(&mut self, n: usize, strip: usize) -> Bytes {
        let mut frame = self.split_to(n).freeze();
        frame.advance(strip);
        frame
    }
    #[inline(always)]
    fn skip(&mut self, n: usize) {
        self.advance(n);
    }
    fn discard_all(&mut self) {
        // Drop the bytes and the allocation.
        *self = BytesMut::new();
    }
}

impl Input for RecvBuf {
    type Frame = Bytes;
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        self.as_slice()
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        RecvBuf::is_empty(self)
    }
    #[inline(always)]
    fn take(&mut self, n: usize, strip: usize) -> Bytes {
        let mut frame = self.split_to(n);
        frame.advance(strip);
        frame
    }
    #[inline(always)]
    fn skip(&mut self, n: usize) {
        self.advance(n);
    }
    fn discard_all(&mut self) {
        *self = RecvBuf::new();
    }
}

/// Reads ahead through borrowed bytes without splitting anything: frames
/// come out as ranges of those bytes, and [`Lookahead::consumed`] says how
/// many leading bytes the decoder is done with. The owner of the bytes then
/// splits that region off once and slices every frame out of it.
pub(crate) struct Lookahead<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lookahead<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Leading bytes that are whole frames or skipped.
    pub(crate) fn consumed(&self) -> usize {
        self.pos
    }
}

impl Input for Lookahead<'_> {
    type Frame = std::ops::Range<usize>;
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        self.bytes.split_at(self.pos.min(self.bytes.len())).1
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }
    #[inline(always)]
    fn take(&mut self, n: usize, strip: usize) -> Self::Frame {
        let start = self.pos;
        self.pos += n;
        start + strip..self.pos
    }
    #[inline(always)]
    fn skip(&mut self, n: usize) {
        self.pos += n;
    }
    fn discard_all(&mut self) {
        // The owner releases its buffer after taking the frames before
        // the failure.
    }
}

/// Splits frames out of a byte stream, incrementally.
///
/// Feed it a buffer holding whatever has arrived so far, in any split; it
/// returns `Ok(None)` when it needs more bytes (never an error), and never
/// rescans a header it has already parsed. Memory is never reserved from a
/// claimed length: the buffer holds only bytes that arrived.
///
/// ```
/// use bytes::BytesMut;
/// use sansproto::prefix::{Config, DecodeError, Decoded, Decoder};
///
/// let mut decoder = Decoder::new(&Config::default()); // u32 BE length, header stripped
/// let mut buf = BytesMut::from(&b"\x00\x00\x00\x07{\"a\":1}\x00\x00"[..]);
/// assert_eq!(decoder.decode(&mut buf)?, Some(Decoded::Frame("{\"a\":1}".into())));
/// assert_eq!(decoder.decode(&mut buf)?, None); // half a header stays buffered
/// assert_eq!(buf.len(), 2);
/// assert!(matches!(decoder.decode_eof(&mut buf), Err(DecodeError::Truncated { buffered: 2, .. })));
/// # Ok::<(), DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    framing: Framing,
    state: State,
}

impl Decoder {
    /// A decoder for `config`'s frame layout.
    pub fn new(config: &Config) -> Self {
        Self {
            framing: config.framing,
            state: State::Header,
        }
    }

    /// Takes the next frame (or discard report) from the front of `src`.
    ///
    /// Returns `Ok(None)` when `src` holds no whole frame yet: append more
    /// bytes and call again. On error `src` is emptied, and every later call
    /// returns the same error and empties `src` again.
    #[inline]
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        Ok(self.decode_from(src)?.map(Decoded::from))
    }

    /// Like [`Decoder::decode`], for when the stream has ended: once no whole
    /// frame is left, bytes still buffered are an error
    /// ([`DecodeError::Truncated`]) saying how much was lost.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        match self.decode_from(src)? {
            Some(decoded) => Ok(Some(decoded.into())),
            None => self.check_eof(src).map(|()| None),
        }
    }

    /// The error the stream failed with, if it did.
    pub fn error(&self) -> Option<&DecodeError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// True while the rest of an over-long frame is being skipped.
    pub fn is_discarding(&self) -> bool {
        matches!(self.state, State::Discarding { .. })
    }

    /// The length of the frame whose header is parsed and whose body is
    /// still arriving (header included, counted from the front of the
    /// bytes not yet taken).
    pub(crate) fn awaited(&self) -> Option<usize> {
        match self.state {
            State::Body { frame_len, .. } => Some(frame_len),
            _ => None,
        }
    }

    #[inline(always)]
    pub(crate) fn decode_from<I: Input>(
        &mut self,
        src: &mut I,
    ) -> Result<Option<Out<I::Frame>>, DecodeError> {
        loop {
            match self.state {
                State::Header => {
                    let head = match parse_header(&self.framing, src.bytes()) {
                        Ok(Some(head)) => head,
                        Ok(None) => return Ok(None),
                        Err(e) => return Err(self.fail(src, e)),
                    };
                    match head {
                        Head::Frame { frame_len, strip } => {
                            // Fast path: the whole frame is already here.
                            if src.bytes().len() >= frame_len {
                                return Ok(Some(Out::Frame(src.take(frame_len, strip))));
                            }
                            self.state = State::Body { frame_len, strip };
                            return Ok(None);
                        }
                        Head::Discard { frame_len } => {
                            self.state = State::Discarding {
                                remaining: frame_len,
                            };
                            self.skip_discarded(src);
                            return Ok(Some(Out::Discarded { length: frame_len }));
                        }
                    }
                }
                State::Body { frame_len, strip } => {
                    if src.bytes().len() < frame_len {
                        return Ok(None);
                    }
                    self.state = State::Header;
                    return Ok(Some(Out::Frame(src.take(frame_len, strip))));
                }
                State::Discarding { .. } => {
                    self.skip_discarded(src);
                    if self.is_discarding() {
                        return Ok(None);
                    }
                }
                // The stream is lost: what arrives after the failure goes
                // too, as the failure's own bytes did.
                State::Failed(ref e) => {
                    let e = e.clone();
                    src.discard_all();
                    return Err(e);
                }
            }
        }
    }

    /// Drops as much of a discarded frame as has arrived.
    fn skip_discarded<I: Input>(&mut self, src: &mut I) {
        if let State::Discarding { remaining } = self.state {
            let available = src.bytes().len();
            let n = usize::try_from(remaining).map_or(available, |r| r.min(available));
            src.skip(n);
            // n <= remaining, so this cannot underflow.
            let remaining = remaining - n as u64;
            self.state = if remaining == 0 {
                State::Header
            } else {
                State::Discarding { remaining }
            };
        }
    }

    /// At end of stream, with no whole frame left: fails if bytes of an
    /// unfinished frame were lost.
    pub(crate) fn check_eof<I: Input>(&mut self, src: &mut I) -> Result<(), DecodeError> {
        let frame_length = match &self.state {
            State::Failed(e) => {
                let e = e.clone();
                src.discard_all();
                return Err(e);
            }
            // Already reported as discarded: nothing more is lost.
            State::Discarding { .. } => return Ok(()),
            State::Header if src.is_empty() => return Ok(()),
            State::Header => None,
            State::Body { frame_len, .. } => Some(*frame_len),
        };
        let e = DecodeError::Truncated {
            buffered: src.bytes().len(),
            frame_length,
        };
        Err(self.fail(src, e))
    }

    fn fail<I: Input>(&mut self, src: &mut I, e: DecodeError) -> DecodeError {
        src.discard_all();
        self.state = State::Failed(e.clone());
        e
    }
}

impl From<Out<Bytes>> for Decoded {
    #[inline(always)]
    fn from(out: Out<Bytes>) -> Self {
        match out {
            Out::Frame(frame) => Decoded::Frame(frame),
            Out::Discarded { length } => Decoded::Discarded { length },
        }
    }
}

#[inline]
fn read_uint(field: &[u8], order: ByteOrder) -> u64 {
    match (order, field) {
        (ByteOrder::BigEndian, &[a, b, c, d]) => u64::from(u32::from_be_bytes([a, b, c, d])),
        (ByteOrder::LittleEndian, &[a, b, c, d]) => u64::from(u32::from_le_bytes([a, b, c, d])),
        (ByteOrder::BigEndian, _) => field.iter().fold(0, |v, &b| (v << 8) | u64::from(b)),
        (ByteOrder::LittleEndian, _) => field.iter().rev().fold(0, |v, &b| (v << 8) | u64::from(b)),
    }
}

/// Parses the header at the front of `bytes`, if it has all arrived, and
/// checks the frame it announces against the limits.
#[inline(always)]
fn parse_header(f: &Framing, bytes: &[u8]) -> Result<Option<Head>, DecodeError> {
    let (length_field, header_len) = match f.field {
        LengthField::Fixed { width, order } => {
            // offset <= usize::MAX / 2 (checked by the builder), width <= 8.
            let end = f.offset + width;
            match bytes.get(f.offset..end) {
                Some(field) => (read_uint(field, order), end),
                None => return Ok(None),
            }
        }
        LengthField::Varint(varint) => {
            let Some(rest) = bytes.get(f.offset..) else {
                return Ok(None);
            };
            match varint.decode(rest)? {
                Some((value, n)) => (value, f.offset + n),
                None => return Ok(None),
            }
        }
    };
    // i128 holds u64 + i64 - usize without overflow.
    let header = header_len as i128;
    let body = i128::from(length_field) + i128::from(f.adjustment)
        - if f.includes_header { header } else { 0 };
    if body < 0 {
        return Err(DecodeError::LengthTooSmall {
            length_field,
            header_length: header_len,
        });
    }
    let Ok(frame) = u64::try_from(header + body) else {
        return Err(DecodeError::LengthOverflow { length_field });
    };
    let (measured, max) = match f.limit {
        Limit::Frame(max) => (frame, max),
        // body <= frame, so it fits in u64 too.
        Limit::Payload(max) => (body as u64, max),
    };
    if measured > max as u64 {
        if f.discard {
            return Ok(Some(Head::Discard { frame_len: frame }));
        }
        return Err(DecodeError::FrameTooLong {
            length: measured,
            max,
        });
    }
    let strip = match f.strip {
        Strip::Header => header_len,
        Strip::Bytes(n) => n,
    };
    if strip as u64 > frame {
        return Err(DecodeError::FrameShorterThanStrip {
            frame_length: frame,
            strip,
        });
    }
    let Ok(frame_len) = usize::try_from(frame) else {
        return Err(DecodeError::LengthOverflow { length_field });
    };
    Ok(Some(Head::Frame { frame_len, strip }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefix::varint::VarintFormat;

    fn frames(decoder: &mut Decoder, buf: &mut BytesMut) -> Vec<Decoded> {
        let mut out = Vec::new();
        while let Some(d) = decoder.decode(buf).unwrap() {
            out.push(d);
        }
        out
    }

    #[test]
    fn header_is_parsed_once_and_body_waits() {
        let mut d = Decoder::new(&Config::default());
        let mut buf = BytesMut::from(&[0, 0, 0, 3, b'a'][..]);
        assert!(frames(&mut d, &mut buf).is_empty());
        assert!(matches!(
            d.state,
            State::Body {
                frame_len: 7,
                strip: 4
            }
        ));
        buf.extend_from_slice(b"bc");
        assert_eq!(frames(&mut d, &mut buf), [Decoded::Frame("abc".into())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn sticky_error_and_buffer_released() {
        let c = Config::builder().max_frame_length(10).build().unwrap();
        let mut d = Decoder::new(&c);
        let mut buf = BytesMut::from(&[0, 0, 0, 7, 1, 2, 3][..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(
            e,
            DecodeError::FrameTooLong {
                length: 11,
                max: 10
            }
        );
        assert_eq!(buf.capacity(), 0);
        buf.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(d.decode(&mut buf).unwrap_err(), e);
        assert_eq!(d.error(), Some(&e));
    }

    #[test]
    fn varint_header_errors() {
        let c = Config::builder()
            .varint(VarintFormat::Leb128)
            .varint_max_bytes(2)
            .build()
            .unwrap();
        let mut d = Decoder::new(&c);
        let mut buf = BytesMut::from(&[0x80, 0x80, 0x01][..]);
        assert_eq!(
            d.decode(&mut buf).unwrap_err(),
            DecodeError::Varint(VarintError::TooLong { max_bytes: 2 })
        );
    }

    #[test]
    fn read_uint_widths() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(read_uint(&b[..1], ByteOrder::BigEndian), 1);
        assert_eq!(read_uint(&b[..3], ByteOrder::BigEndian), 0x010203);
        assert_eq!(read_uint(&b[..3], ByteOrder::LittleEndian), 0x030201);
        assert_eq!(read_uint(&b, ByteOrder::BigEndian), 0x0102030405060708);
        assert_eq!(read_uint(&b, ByteOrder::LittleEndian), 0x0807060504030201);
        assert_eq!(read_uint(&b[..4], ByteOrder::LittleEndian), 0x04030201);
    }
}

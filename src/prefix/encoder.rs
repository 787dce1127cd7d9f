//! The frame encoder, symmetric with the decoder.

use super::varint;
use super::{ByteOrder, Config, Framing, LengthField, Limit};

/// Why a frame could not be encoded. These are the caller's mistakes (or a
/// frame the configured peer would refuse); nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The header must be exactly the configured length field offset long.
    #[error("header is {actual} bytes, the layout needs {expected}")]
    HeaderLength {
        /// The configured length field offset.
        expected: usize,
        /// The header given.
        actual: usize,
    },
    /// The length field value would be negative: the body is shorter than
    /// a positive length adjustment says it must be.
    #[error("a {body_length}-byte body gives a negative length field value")]
    LengthNegative {
        /// The body length.
        body_length: usize,
    },
    /// The length field value does not fit the field's width (or the
    /// varint's bound).
    #[error("length field value {value} does not fit (largest is {max})")]
    LengthDoesNotFit {
        /// The value that would have been written (saturated at `u64::MAX`).
        value: u64,
        /// The largest value the field holds.
        max: u64,
    },
    /// The frame is over the configured limit, which the peer would refuse.
    #[error("frame length {length} exceeds the limit of {max} bytes")]
    FrameTooLong {
        /// The length measured the way the limit counts it (saturated at
        /// `u64::MAX`).
        length: u64,
        /// The limit.
        max: usize,
    },
}

/// Where encoded bytes go.
pub(crate) trait Sink {
    fn reserve_bytes(&mut self, n: usize);
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn reserve_bytes(&mut self, n: usize) {
        self.reserve(n);
    }
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for bytes::BytesMut {
    #[inline]
    fn reserve_bytes(&mut self, n: usize) {
        self.reserve(n);
    }
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// An encoded length field and the whole frame's length.
struct Prefix {
    field: [u8; 10],
    field_len: usize,
    frame_len: usize,
}

impl Prefix {
    fn field(&self) -> &[u8] {
        self.field.split_at(self.field_len.min(self.field.len())).0
    }
}

/// Writes frames in the layout of a [`Config`], so that a
/// [`Decoder`](super::Decoder) built from the same config reads them back.
///
/// The caller supplies the bytes before the length field as the frame's
/// *header* (exactly `length_field_offset` bytes; empty for offset 0) and the
/// bytes after it as the *body*; the encoder computes and writes the length
/// field between them, applying the adjustment in reverse. Payload bytes are
/// copied once, into the output buffer, and nowhere else.
///
/// ```
/// use sansproto::prefix::{Config, EncodeError, Encoder};
///
/// // Pomelo: 1-byte package type, 3-byte BE length. A batch is one buffer.
/// let pomelo = Config::builder().length_field_offset(1).length_field_width(3).build().unwrap();
/// let encoder = Encoder::new(&pomelo);
/// let mut out = Vec::new();
/// let batch: [(&[u8], &[u8]); 2] = [(&[3], b""), (&[4], b"hi")];
/// encoder.encode_batch(batch, &mut out)?;
/// assert_eq!(out, [3, 0, 0, 0, 4, 0, 0, 2, b'h', b'i']);
///
/// // A value that does not fit the width is refused, nothing is written.
/// let one_byte = Config::builder().length_field_width(1).build().unwrap();
/// let err = Encoder::new(&one_byte).encode(&[], &[0; 256], &mut out).unwrap_err();
/// assert_eq!(err, EncodeError::LengthDoesNotFit { value: 256, max: 255 });
/// assert_eq!(out.len(), 10);
/// # Ok::<(), EncodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Encoder {
    framing: Framing,
}

impl Encoder {
    /// An encoder for `config`'s frame layout.
    pub fn new(config: &Config) -> Self {
        Self {
            framing: config.framing,
        }
    }

    /// The encoded length of a frame with the given header and body lengths,
    /// or why it cannot be encoded.
    pub fn encoded_len(&self, header_len: usize, body_len: usize) -> Result<usize, EncodeError> {
        self.prefix(header_len, body_len).map(|p| p.frame_len)
    }

    /// The encoded length of a batch (see [`Encoder::encode_batch`]).
    pub fn encoded_batch_len<I, H, B>(&self, frames: I) -> Result<usize, EncodeError>
    where
        I: IntoIterator<Item = (H, B)>,
        H: AsRef<[u8]>,
        B: AsRef<[u8]>,
    {
        frames.into_iter().try_fold(0usize, |total, (h, b)| {
            let n = self.encoded_len(h.as_ref().len(), b.as_ref().len())?;
            total.checked_add(n).ok_or(EncodeError::FrameTooLong {
                length: u64::MAX,
                max: self.limit(),
            })
        })
    }

    /// Appends one frame (`header`, length field, `body`) to `out`; returns
    /// the bytes appended.
    pub fn encode(
        &self,
        header: &[u8],
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        self.encode_parts_to(header, &[body], out)
    }

    /// Appends one frame whose body is the concatenation of `body` (say a
    /// request id and a payload), without joining them first.
    pub fn encode_parts(
        &self,
        header: &[u8],
        body: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        self.encode_parts_to(header, body, out)
    }

    /// Appends every `(header, body)` frame to `out` back to back, as one
    /// buffer to send with one write (Pomelo's `sendBatch`). Validates the
    /// whole batch and reserves its exact size first: on error nothing is
    /// written. Returns the bytes appended.
    pub fn encode_batch<I, H, B>(&self, frames: I, out: &mut Vec<u8>) -> Result<usize, EncodeError>
    where
        I: IntoIterator<Item = (H, B)>,
        I::IntoIter: Clone,
        H: AsRef<[u8]>,
        B: AsRef<[u8]>,
    {
        self.encode_batch_to(frames, out)
    }

    pub(crate) fn encode_batch_to<I, H, B, S>(
        &self,
        frames: I,
        out: &mut S,
    ) -> Result<usize, EncodeError>
    where
        I: IntoIterator<Item = (H, B)>,
        I::IntoIter: Clone,
        H: AsRef<[u8]>,
        B: AsRef<[u8]>,
        S: Sink,
    {
        let frames = frames.into_iter();
        let total = self.encoded_batch_len(frames.clone())?;
        out.reserve_bytes(total);
        for (h, b) in frames {
            // Validated above; a second failure could only come from an
            // iterator whose clone yields different items.
            self.frame(h.as_ref(), std::slice::from_ref(&b))?
                .write_to(out);
        }
        Ok(total)
    }

    pub(crate) fn encode_parts_to<B: AsRef<[u8]>, S: Sink>(
        &self,
        header: &[u8],
        body: &[B],
        out: &mut S,
    ) -> Result<usize, EncodeError> {
        let frame = self.frame(header, body)?;
        out.reserve_bytes(frame.len());
        Ok(frame.write_to(out))
    }

    /// One frame of `header`, the length field and the parts of `body`
    /// back to back, checked against the layout and the limit and
    /// measured, ready to be written: every way of encoding a frame goes
    /// through here.
    #[inline]
    pub(crate) fn frame<'a, B: AsRef<[u8]>>(
        &self,
        header: &'a [u8],
        body: &'a [B],
    ) -> Result<Frame<'a, B>, EncodeError> {
        let body_len = body
            .iter()
            .try_fold(0usize, |n, part| n.checked_add(part.as_ref().len()));
        let Some(body_len) = body_len else {
            return Err(EncodeError::FrameTooLong {
                length: u64::MAX,
                max: self.limit(),
            });
        };
        let prefix = self.prefix(header.len(), body_len)?;
        Ok(Frame {
            header,
            body,
            prefix,
        })
    }

    fn limit(&self) -> usize {
        match self.framing.limit {
            Limit::Frame(max) | Limit::Payload(max) => max,
        }
    }

    /// The length field value that makes the decoder see `body_len` bytes
    /// of body behind a `header_len`-byte header.
    fn value_for(&self, body_len: usize, header_len: usize) -> i128 {
        let f = &self.framing;
        body_len as i128 - i128::from(f.adjustment)
            + if f.includes_header {
                header_len as i128
            } else {
                0
            }
    }

    fn prefix(&self, header_len: usize, body_len: usize) -> Result<Prefix, EncodeError> {
        let f = &self.framing;
        if header_len != f.offset {
            return Err(EncodeError::HeaderLength {
                expected: f.offset,
                actual: header_len,
            });
        }
        let mut field = [0u8; 10];
        let field_len = match f.field {
            LengthField::Fixed { width, order } => {
                let max = if width >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * width)) - 1
                };
                let value = self.value_for(body_len, f.offset + width);
                let value = checked_value(value, max, body_len)?;
                match order {
                    ByteOrder::BigEndian => {
                        let be = value.to_be_bytes();
                        copy(&mut field, be.split_at(8usize.saturating_sub(width)).1);
                    }
                    ByteOrder::LittleEndian => {
                        let le = value.to_le_bytes();
                        copy(&mut field, le.split_at(width.min(8)).0);
                    }
                }
                width
            }
            LengthField::Varint(v) => {
                let max = v.max_value();
                let value = if f.includes_header {
                    // The value depends on the field's own width: use the
                    // width whose minimal encoding is exactly that wide (the
                    // value grows by one per byte of width, so the first
                    // width that is wide enough is exact).
                    let mut found = None;
                    let mut error = None;
                    for width in 1..=v.max_bytes() {
                        match checked_value(
                            self.value_for(body_len, f.offset + width),
                            max,
                            body_len,
                        ) {
                            Ok(value) if varint::Varint::encoded_len(value) == width => {
                                found = Some(value);
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => error = Some(e),
                        }
                    }
                    match found {
                        Some(value) => value,
                        None => {
                            return Err(error.unwrap_or(EncodeError::LengthNegative {
                                body_length: body_len,
                            }))
                        }
                    }
                } else {
                    checked_value(self.value_for(body_len, 0), max, body_len)?
                };
                v.encode_into(value, &mut field)
                    .map_err(|_| EncodeError::LengthDoesNotFit { value, max })?
            }
        };
        let header = f.offset + field_len;
        let frame_len = header
            .checked_add(body_len)
            .ok_or(EncodeError::FrameTooLong {
                length: u64::MAX,
                max: self.limit(),
            })?;
        let (measured, max) = match f.limit {
            Limit::Frame(max) => (frame_len, max),
            Limit::Payload(max) => (body_len, max),
        };
        if measured > max {
            return Err(EncodeError::FrameTooLong {
                length: measured as u64,
                max,
            });
        }
        Ok(Prefix {
            field,
            field_len,
            frame_len,
        })
    }
}

fn checked_value(value: i128, max: u64, body_length: usize) -> Result<u64, EncodeError> {
    if value < 0 {
        return Err(EncodeError::LengthNegative { body_length });
    }
    match u64::try_from(value) {
        Ok(v) if v <= max => Ok(v),
        Ok(v) => Err(EncodeError::LengthDoesNotFit { value: v, max }),
        Err(_) => Err(EncodeError::LengthDoesNotFit {
            value: u64::MAX,
            max,
        }),
    }
}

fn copy(dst: &mut [u8; 10], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// A frame checked by [`Encoder::frame`]: its header, its body in parts,
/// and the length field between them.
pub(crate) struct Frame<'a, B> {
    header: &'a [u8],
    body: &'a [B],
    prefix: Prefix,
}

impl<B: AsRef<[u8]>> Frame<'_, B> {
    /// The encoded length, header and length field included.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.prefix.frame_len
    }

    /// Appends the frame to `out` (whose room the caller reserves);
    /// returns the bytes appended.
    #[inline]
    pub(crate) fn write_to<S: Sink>(&self, out: &mut S) -> usize {
        out.put(self.header);
        out.put(self.prefix.field());
        for part in self.body {
            out.put(part.as_ref());
        }
        self.prefix.frame_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefix::varint::VarintFormat;

    #[test]
    fn widths_and_orders() {
        for (width, order, want) in [
            (1, ByteOrder::BigEndian, vec![3]),
            (2, ByteOrder::BigEndian, vec![0, 3]),
            (2, ByteOrder::LittleEndian, vec![3, 0]),
            (3, ByteOrder::BigEndian, vec![0, 0, 3]),
            (3, ByteOrder::LittleEndian, vec![3, 0, 0]),
            (8, ByteOrder::LittleEndian, vec![3, 0, 0, 0, 0, 0, 0, 0]),
        ] {
            let c = Config::builder()
                .length_field_width(width)
                .byte_order(order)
                .build()
                .unwrap();
            let mut out = Vec::new();
            Encoder::new(&c).encode(&[], b"abc", &mut out).unwrap();
            want.iter()
                .chain(b"abc")
                .zip(&out)
                .for_each(|(a, b)| assert_eq!(a, b));
            assert_eq!(out.len(), width + 3);
        }
    }

    #[test]
    fn refusals() {
        let c = Config::builder()
            .length_field_offset(2)
            .length_adjustment(4)
            .max_payload_length(10)
            .build()
            .unwrap();
        let e = Encoder::new(&c);
        let mut out = Vec::new();
        assert_eq!(
            e.encode(&[1], b"abcd", &mut out),
            Err(EncodeError::HeaderLength {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(
            e.encode(&[1, 2], b"abc", &mut out),
            Err(EncodeError::LengthNegative { body_length: 3 })
        );
        assert_eq!(
            e.encode(&[1, 2], &[0; 11], &mut out),
            Err(EncodeError::FrameTooLong {
                length: 11,
                max: 10
            })
        );
        assert!(out.is_empty());
        assert_eq!(e.encode(&[1, 2], b"abcd", &mut out), Ok(10));
        assert_eq!(out, [1, 2, 0, 0, 0, 0, b'a', b'b', b'c', b'd']);
    }

    #[test]
    fn varint_counting_its_own_width() {
        let c = Config::builder()
            .varint(VarintFormat::Leb128)
            .length_includes_header(true)
            .strip(0)
            .build()
            .unwrap();
        let e = Encoder::new(&c);
        // 126 + 1 = 127 fits one byte; 127 + 2 = 129 needs two.
        let mut out = Vec::new();
        e.encode(&[], &[0; 126], &mut out).unwrap();
        assert_eq!(out[0], 127);
        out.clear();
        e.encode(&[], &[0; 127], &mut out).unwrap();
        assert_eq!(&out[..2], [0x81, 0x01]);
        let bounded = Config::builder()
            .varint(VarintFormat::Ber)
            .varint_max_bytes(1)
            .build()
            .unwrap();
        assert_eq!(
            Encoder::new(&bounded).encode(&[], &[0; 128], &mut out),
            Err(EncodeError::LengthDoesNotFit {
                value: 128,
                max: 127
            })
        );
    }
}

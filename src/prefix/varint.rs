//! Variable-length integers: LEB128 and the big-endian-group BER form.
//!
//! Both carry 7 bits per byte and use the top bit of a byte to say "more
//! bytes follow". They differ in the order of the groups:
//!
//! - [`VarintFormat::Leb128`] puts the least significant group first
//!   (Protocol Buffers, WebAssembly, Pomelo request ids): 300 → `ac 02`.
//! - [`VarintFormat::Ber`] puts the most significant group first (ASN.1 BER
//!   object identifiers, Perl's `pack 'w'`, Tarantool 1.5 field lengths):
//!   300 → `82 2c`.
//!
//! Values are `u64`, so an encoding is at most 10 bytes long. A [`Varint`]
//! carries the format together with a bound on the encoded length and a choice
//! to reject non-minimal encodings (`80 00` for 0 in LEB128, `80 01` for 1 in
//! BER).
//!
//! ```
//! use sansproto::prefix::varint::{Varint, VarintFormat};
//!
//! let ber = Varint::new(VarintFormat::Ber);
//! assert_eq!(ber.decode(&[0x82, 0x2c, 0xff]), Ok(Some((300, 2))));
//! assert_eq!(ber.decode(&[0x82]), Ok(None)); // more bytes needed
//! let mut out = Vec::new();
//! Varint::new(VarintFormat::Leb128).encode(300, &mut out).unwrap();
//! assert_eq!(out, [0xac, 0x02]);
//! ```

/// The longest encoding of a `u64`, in bytes (10 × 7 bits ≥ 64 bits).
pub const MAX_LEN: usize = 10;

/// The order in which the 7-bit groups of a varint are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarintFormat {
    /// Least significant group first (LEB128).
    Leb128,
    /// Most significant group first (BER compressed integer, Perl's `pack 'w'`).
    Ber,
}

/// Why a varint could not be decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The encoding still had its continuation bit set after the allowed
    /// number of bytes (or the value needs more bytes than allowed, when
    /// encoding).
    #[error("varint longer than {max_bytes} bytes")]
    TooLong {
        /// The configured bound on the encoded length.
        max_bytes: usize,
    },
    /// The encoded value does not fit in 64 bits.
    #[error("varint value overflows 64 bits")]
    Overflow,
    /// The value was encoded with more bytes than it needs, and non-minimal
    /// encodings are rejected.
    #[error("non-minimal varint encoding")]
    NonMinimal,
}

/// A varint codec: a format, a bound on the encoded length and whether
/// non-minimal encodings are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Varint {
    format: VarintFormat,
    max_bytes: u8,
    reject_non_minimal: bool,
}

impl Varint {
    /// A codec for `format` that accepts up to [`MAX_LEN`] bytes and
    /// non-minimal encodings.
    pub const fn new(format: VarintFormat) -> Self {
        Self {
            format,
            max_bytes: MAX_LEN as u8,
            reject_non_minimal: false,
        }
    }

    /// Bounds the encoded length to `max_bytes`, clamped to `1..=10`.
    /// (The framing [`Config`](super::Config) builder rejects values outside
    /// that range instead of clamping them.)
    pub const fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = if max_bytes == 0 {
            1
        } else if max_bytes > MAX_LEN {
            MAX_LEN as u8
        } else {
            max_bytes as u8
        };
        self
    }

    /// Rejects (`true`) or accepts (`false`, the default) encodings that use
    /// more bytes than the value needs.
    pub const fn with_reject_non_minimal(mut self, reject: bool) -> Self {
        self.reject_non_minimal = reject;
        self
    }

    /// The group order.
    pub const fn format(&self) -> VarintFormat {
        self.format
    }

    /// The bound on the encoded length, in bytes.
    pub const fn max_bytes(&self) -> usize {
        self.max_bytes as usize
    }

    /// Whether non-minimal encodings are rejected.
    pub const fn rejects_non_minimal(&self) -> bool {
        self.reject_non_minimal
    }

    /// The largest value that fits in [`Varint::max_bytes`] bytes.
    pub const fn max_value(&self) -> u64 {
        let bits = 7 * self.max_bytes as u32;
        if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        }
    }

    /// Decodes a varint from the front of `input`.
    ///
    /// Returns `Ok(Some((value, bytes_used)))`, or `Ok(None)` when `input`
    /// ends before the encoding does (feed more bytes and call again).
    pub fn decode(&self, input: &[u8]) -> Result<Option<(u64, usize)>, VarintError> {
        match self.format {
            VarintFormat::Leb128 => self.decode_leb128(input),
            VarintFormat::Ber => self.decode_ber(input),
        }
    }

    fn decode_leb128(&self, input: &[u8]) -> Result<Option<(u64, usize)>, VarintError> {
        let limit = self.max_bytes();
        let mut value: u64 = 0;
        for (i, &byte) in input.iter().take(limit).enumerate() {
            let group = u64::from(byte & 0x7f);
            // The tenth byte holds bit 63 only.
            if i == MAX_LEN - 1 && group > 1 {
                return Err(VarintError::Overflow);
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                if self.reject_non_minimal && i > 0 && byte == 0 {
                    return Err(VarintError::NonMinimal);
                }
                return Ok(Some((value, i + 1)));
            }
        }
        if input.len() >= limit {
            Err(VarintError::TooLong { max_bytes: limit })
        } else {
            Ok(None)
        }
    }

    fn decode_ber(&self, input: &[u8]) -> Result<Option<(u64, usize)>, VarintError> {
        let limit = self.max_bytes();
        let mut value: u64 = 0;
        for (i, &byte) in input.iter().take(limit).enumerate() {
            if i == 0 && byte == 0x80 && self.reject_non_minimal {
                return Err(VarintError::NonMinimal);
            }
            if value >> 57 != 0 {
                return Err(VarintError::Overflow);
            }
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                return Ok(Some((value, i + 1)));
            }
        }
        if input.len() >= limit {
            Err(VarintError::TooLong { max_bytes: limit })
        } else {
            Ok(None)
        }
    }

    /// The minimal encoded length of `value`, in bytes (1 to 10), whatever
    /// the bound.
    pub const fn encoded_len(value: u64) -> usize {
        let bits = 64 - value.leading_zeros() as usize;
        if bits == 0 {
            1
        } else {
            bits.div_ceil(7)
        }
    }

    /// Writes the minimal encoding of `value` into `buf`; returns its length.
    /// Fails when it needs more than [`Varint::max_bytes`] bytes.
    pub fn encode_into(&self, value: u64, buf: &mut [u8; MAX_LEN]) -> Result<usize, VarintError> {
        let n = Self::encoded_len(value);
        if n > self.max_bytes() {
            return Err(VarintError::TooLong {
                max_bytes: self.max_bytes(),
            });
        }
        for (i, slot) in buf.iter_mut().take(n).enumerate() {
            let more = if i + 1 < n { 0x80 } else { 0 };
            let shift = match self.format {
                VarintFormat::Leb128 => 7 * i,
                VarintFormat::Ber => 7 * (n - 1 - i),
            };
            *slot = ((value >> shift) & 0x7f) as u8 | more;
        }
        Ok(n)
    }

    /// Appends the minimal encoding of `value` to `out`; returns its length.
    pub fn encode(&self, value: u64, out: &mut Vec<u8>) -> Result<usize, VarintError> {
        let mut buf = [0u8; MAX_LEN];
        let n = self.encode_into(value, &mut buf)?;
        out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEB: Varint = Varint::new(VarintFormat::Leb128);
    const BER: Varint = Varint::new(VarintFormat::Ber);

    fn enc(v: Varint, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(value, &mut out).unwrap();
        out
    }

    #[test]
    fn known_encodings() {
        assert_eq!(enc(LEB, 0), [0x00]);
        assert_eq!(enc(LEB, 127), [0x7f]);
        assert_eq!(enc(LEB, 128), [0x80, 0x01]);
        assert_eq!(enc(LEB, 300), [0xac, 0x02]);
        assert_eq!(enc(BER, 0), [0x00]);
        assert_eq!(enc(BER, 300), [0x82, 0x2c]);
        assert_eq!(enc(BER, 128), [0x81, 0x00]);
        assert_eq!(enc(LEB, u64::MAX).len(), 10);
        assert_eq!(*enc(LEB, u64::MAX).last().unwrap(), 0x01);
        assert_eq!(enc(BER, u64::MAX)[0], 0x81);
    }

    #[test]
    fn round_trip_edges() {
        for v in [LEB, BER] {
            for shift in 0..64 {
                for value in [(1u64 << shift) - 1, 1u64 << shift, (1u64 << shift) + 1] {
                    let bytes = enc(v, value);
                    assert_eq!(bytes.len(), Varint::encoded_len(value));
                    let strict = v.with_reject_non_minimal(true);
                    assert_eq!(strict.decode(&bytes), Ok(Some((value, bytes.len()))));
                    // Every strict prefix asks for more bytes.
                    for cut in 0..bytes.len() {
                        assert_eq!(v.decode(&bytes[..cut]), Ok(None));
                    }
                }
            }
        }
    }

    #[test]
    fn overflow_and_bounds() {
        let eleven = [0xff; 11];
        assert_eq!(LEB.decode(&eleven), Err(VarintError::Overflow));
        assert_eq!(BER.decode(&eleven), Err(VarintError::Overflow));
        // Tenth LEB128 byte may only carry bit 63.
        let mut ten = [0x80u8; 10];
        ten[9] = 0x02;
        assert_eq!(LEB.decode(&ten), Err(VarintError::Overflow));
        ten[9] = 0x81;
        assert_eq!(
            LEB.decode(&ten),
            Err(VarintError::TooLong { max_bytes: 10 })
        );
        let two = LEB.with_max_bytes(2);
        assert_eq!(
            two.decode(&[0x80, 0x80]),
            Err(VarintError::TooLong { max_bytes: 2 })
        );
        assert_eq!(two.decode(&[0x80]), Ok(None));
        assert_eq!(two.max_value(), (1 << 14) - 1);
        let mut buf = [0u8; MAX_LEN];
        assert_eq!(
            two.encode_into(1 << 14, &mut buf),
            Err(VarintError::TooLong { max_bytes: 2 })
        );
        assert_eq!(LEB.with_max_bytes(0).max_bytes(), 1);
        assert_eq!(LEB.with_max_bytes(99).max_bytes(), 10);
    }

    #[test]
    fn non_minimal() {
        let strict_leb = LEB.with_reject_non_minimal(true);
        let strict_ber = BER.with_reject_non_minimal(true);
        assert_eq!(LEB.decode(&[0x80, 0x00]), Ok(Some((0, 2))));
        assert_eq!(
            strict_leb.decode(&[0x80, 0x00]),
            Err(VarintError::NonMinimal)
        );
        assert_eq!(strict_leb.decode(&[0x00]), Ok(Some((0, 1))));
        assert_eq!(BER.decode(&[0x80, 0x01]), Ok(Some((1, 2))));
        assert_eq!(
            strict_ber.decode(&[0x80, 0x01]),
            Err(VarintError::NonMinimal)
        );
        assert_eq!(strict_ber.decode(&[0x00]), Ok(Some((0, 1))));
    }
}

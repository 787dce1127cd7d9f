//! Frame headers (RFC 6455 §5.2): parsing from received bytes and encoding.

use super::mask::extend_masked;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: a text message (UTF-8).
    Text,
    /// 0x2: a binary message.
    Binary,
    /// 0x8: the closing handshake.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Decodes the low four bits of the first header byte; reserved opcodes
    /// (0x3–0x7, 0xB–0xF) give `None`.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// The opcode's wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// True for Close, Ping and Pong.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// RSV1, the bit permessage-deflate uses.
pub const RSV1: u8 = 0x40;
/// RSV2.
pub const RSV2: u8 = 0x20;
/// RSV3.
pub const RSV3: u8 = 0x10;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final frame of its message.
    pub fin: bool,
    /// RSV1–RSV3 as they sit in the first byte (mask `0x70`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// Why a header is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The opcode is reserved.
    ReservedOpcode(u8),
    /// A 64-bit length with the most significant bit set.
    LengthOverflow,
}

impl FrameHeader {
    /// Parses a header from the front of `buf`. `Ok(None)` means more bytes
    /// are needed; `Ok(Some((header, len)))` gives the header and its size.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, HeaderError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(None),
        };
        let opcode = OpCode::from_u8(b0 & 0x0f).ok_or(HeaderError::ReservedOpcode(b0 & 0x0f))?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    let n = u64::from_be_bytes(a);
                    if n >> 63 != 0 {
                        return Err(HeaderError::LengthOverflow);
                    }
                    (n, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match buf.get(pos..pos + 4) {
                Some(k) => {
                    pos += 4;
                    Some([k[0], k[1], k[2], k[3]])
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some((
            Self {
                fin: b0 & 0x80 != 0,
                rsv: b0 & 0x70,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Appends the encoded header to `out`.
    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) {
        let b0 = first_byte(self.fin, self.rsv, self.opcode);
        let m = if self.mask.is_some() { 0x80 } else { 0 };
        let n = self.payload_len;
        if n < 126 {
            out.extend_from_slice(&[b0, m | n as u8]);
        } else if n <= u64::from(u16::MAX) {
            let l = (n as u16).to_be_bytes();
            out.extend_from_slice(&[b0, m | 126, l[0], l[1]]);
        } else {
            out.extend_from_slice(&[b0, m | 127]);
            out.extend_from_slice(&n.to_be_bytes());
        }
        if let Some(k) = self.mask {
            out.extend_from_slice(&k);
        }
    }
}

/// Appends a whole frame (header and payload, masked when `mask` is given).
#[inline(always)]
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    if payload.len() < 126 && mask.is_none() {
        // The frequent small server frame: a two-byte header, built here
        // rather than through the general encoder.
        let b0 = first_byte(fin, rsv, opcode);
        out.reserve(2 + payload.len());
        out.extend_from_slice(&[b0, payload.len() as u8]);
        out.extend_from_slice(payload);
        return;
    }
    out.reserve(MAX_HEADER_LEN + payload.len());
    FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    }
    .encode(out);
    match mask {
        Some(key) => extend_masked(out, payload, key, 0),
        None => out.extend_from_slice(payload),
    }
}

/// A header's first byte: FIN, the RSV bits and the opcode.
#[inline(always)]
fn first_byte(fin: bool, rsv: u8, opcode: OpCode) -> u8 {
    (if fin { 0x80 } else { 0 }) | (rsv & 0x70) | opcode.as_u8()
}

/// The most bytes a frame header can take.
pub const MAX_HEADER_LEN: usize = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_in_all_three_forms() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader {
                    fin: len % 2 == 0,
                    rsv: RSV1,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let mut out = Vec::new();
                h.encode(&mut out);
                assert!(out.len() <= MAX_HEADER_LEN);
                assert_eq!(FrameHeader::parse(&out), Ok(Some((h, out.len()))));
                for cut in 0..out.len() {
                    assert_eq!(FrameHeader::parse(&out[..cut]), Ok(None));
                }
            }
        }
    }

    #[test]
    fn reserved_opcodes_and_huge_lengths_are_refused() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]),
                Err(HeaderError::ReservedOpcode(op))
            );
        }
        let mut h = vec![0x82, 127];
        h.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(FrameHeader::parse(&h), Err(HeaderError::LengthOverflow));
    }

    #[test]
    fn encode_frame_is_the_header_then_the_payload() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut out = b"before".to_vec();
                encode_frame(&mut out, false, RSV1, OpCode::Text, mask, &payload);
                let mut want = b"before".to_vec();
                FrameHeader {
                    fin: false,
                    rsv: RSV1,
                    opcode: OpCode::Text,
                    mask,
                    payload_len: len as u64,
                }
                .encode(&mut want);
                let mut body = payload.clone();
                if let Some(key) = mask {
                    crate::ws::apply_mask(&mut body, key, 0);
                }
                want.extend_from_slice(&body);
                assert_eq!(out, want, "len {len} mask {mask:?}");
            }
        }
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        // 5 encoded in the 16-bit form.
        let buf = [0x81, 126, 0, 5];
        let (h, n) = FrameHeader::parse(&buf).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (5, 4));
    }
}

//! Close codes and Close frame payloads (RFC 6455 §5.5.1, §7.4).

use super::error::ProtocolViolation;
use std::fmt;

/// A close status code.
///
/// ```
/// use sansproto::ws::CloseCode;
/// assert!(CloseCode::NORMAL.is_sendable());
/// assert!(!CloseCode::ABNORMAL.is_sendable()); // 1006 never goes on the wire
/// assert!(CloseCode(4000).is_sendable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: closed without a Close frame (never sent).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: data inconsistent with the message type (e.g. invalid UTF-8).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: message too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: unexpected condition on the server.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1015: TLS handshake failure (never sent).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// True when the code may appear in a Close frame: 1000–1003, 1007–1014
    /// and 3000–4999.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for CloseCode {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

/// Why a Close payload is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClosePayloadError {
    /// One byte, or a code that may not be sent.
    Protocol(ProtocolViolation),
    /// The reason is not UTF-8.
    InvalidUtf8,
}

/// Splits a received Close payload into code and reason.
pub(crate) fn parse_close_payload(
    payload: &[u8],
) -> Result<(Option<CloseCode>, String), ClosePayloadError> {
    match payload {
        [] => Ok((None, String::new())),
        [_] => Err(ClosePayloadError::Protocol(ProtocolViolation::CloseOneByte)),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return Err(ClosePayloadError::Protocol(
                    ProtocolViolation::InvalidCloseCode(code.0),
                ));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ClosePayloadError::InvalidUtf8)?;
            Ok((Some(code), reason.to_owned()))
        }
    }
}

/// Builds a Close payload; the reason is cut at a character boundary so the
/// payload fits the 125-byte control frame limit.
pub(crate) fn close_payload(code: Option<CloseCode>, reason: &str) -> Vec<u8> {
    let Some(code) = code else {
        return Vec::new();
    };
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = Vec::with_capacity(2 + end);
    p.extend_from_slice(&code.0.to_be_bytes());
    p.extend_from_slice(&reason.as_bytes()[..end]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_ranges() {
        let ok: Vec<u16> = (0..=5000).filter(|c| CloseCode(*c).is_sendable()).collect();
        assert_eq!(ok.len(), 4 + 8 + 2000);
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert!(!CloseCode(bad).is_sendable(), "{bad}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_close_payload(&[]), Ok((None, String::new())));
        assert_eq!(
            parse_close_payload(&[3]),
            Err(ClosePayloadError::Protocol(ProtocolViolation::CloseOneByte))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, b'o', b'k']),
            Ok((Some(CloseCode::NORMAL), "ok".into()))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xed]),
            Err(ClosePayloadError::Protocol(
                ProtocolViolation::InvalidCloseCode(1005)
            ))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, 0xff]),
            Err(ClosePayloadError::InvalidUtf8)
        );
        let long = "é".repeat(100);
        let p = close_payload(Some(CloseCode::NORMAL), &long);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        assert!(close_payload(None, "ignored").is_empty());
    }
}

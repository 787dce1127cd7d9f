//! The extension point (RFC 6455 §9): negotiation of `Sec-WebSocket-Extensions`
//! and the per-message transform a negotiated extension applies.
//!
//! An [`ExtensionFactory`] lives in the [`Config`](super::Config) and takes
//! part in the handshake; when negotiation succeeds it yields an
//! [`Extension`] that owns one or more RSV bits on the connection. Frames
//! with RSV bits that no negotiated extension owns fail the connection
//! (1002). A connection carries at most one negotiated extension.

use super::frame::OpCode;
use super::http::field::is_token;
use std::fmt;

/// One extension with its parameters, as offered or accepted in a
/// `Sec-WebSocket-Extensions` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionOffer {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters in order; a parameter without `=value` has `None`.
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionOffer {
    /// Parses a whole header value (comma-separated extensions, each with
    /// `;`-separated parameters, values as tokens or quoted strings).
    ///
    /// ```
    /// use sansproto::ws::ExtensionOffer;
    /// let offers = ExtensionOffer::parse_list(
    ///     "permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\"",
    /// ).unwrap();
    /// assert_eq!(offers.len(), 2);
    /// assert_eq!(offers[0].params[0], ("client_max_window_bits".into(), None));
    /// assert_eq!(offers[1].params[0].1.as_deref(), Some("10"));
    /// ```
    pub fn parse_list(header: &str) -> Result<Vec<Self>, ExtensionSyntaxError> {
        let mut out = Vec::new();
        for item in split_outside_quotes(header, ',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let mut parts = split_outside_quotes(item, ';').into_iter();
            let Some(name) = parts.next().map(str::trim) else {
                return Err(ExtensionSyntaxError);
            };
            if !is_token(name) {
                return Err(ExtensionSyntaxError);
            }
            let mut params = Vec::new();
            for p in parts {
                let p = p.trim();
                let (k, v) = match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
                    None => (p, None),
                };
                if !is_token(k) {
                    return Err(ExtensionSyntaxError);
                }
                params.push((k.to_ascii_lowercase(), v));
            }
            out.push(Self {
                name: name.to_ascii_lowercase(),
                params,
            });
        }
        Ok(out)
    }
}

impl fmt::Display for ExtensionOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, "; {k}={v}")?,
                None => write!(f, "; {k}")?,
            }
        }
        Ok(())
    }
}

/// A `Sec-WebSocket-Extensions` value is not valid header syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed Sec-WebSocket-Extensions header")]
pub struct ExtensionSyntaxError;

fn unquote(v: &str) -> Result<String, ExtensionSyntaxError> {
    let inner = match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or(ExtensionSyntaxError)?,
        None => v,
    };
    if !is_token(inner) {
        return Err(ExtensionSyntaxError);
    }
    Ok(inner.to_owned())
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// An extension failed to transform a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The peer's data is malformed for this extension (close 1002/1007).
    #[error("invalid extension data: {0}")]
    InvalidData(String),
    /// The transformed message would exceed the size limit (close 1009).
    #[error("message exceeds the size limit after the extension's transform")]
    TooBig,
}

/// Why a client refuses the parameters of the extension response a server
/// sent ([`ExtensionFactory::accept_response`]). The client then fails the
/// handshake (RFC 6455 §9.1; for permessage-deflate, RFC 7692 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionParamError {
    /// The response holds a parameter the extension does not define (RFC
    /// 7692 §7.1: such a response fails the connection).
    #[error("unknown parameter {0}")]
    Unknown(String),
    /// A parameter appears more than once (RFC 7692 §7.1).
    #[error("parameter {0} appears more than once")]
    Repeated(String),
    /// A parameter's value is missing, malformed or out of range where the
    /// extension requires one (RFC 7692 §7.1.2.2: `client_max_window_bits`
    /// in a response has a value from 8 to 15).
    #[error("parameter {0} has no valid value")]
    InvalidValue(String),
    /// The client required a parameter that the response leaves out (RFC
    /// 7692 §7.1.1.1: a requested `server_no_context_takeover` must be
    /// accepted).
    #[error("{0} was requested but not accepted")]
    NotAccepted(String),
    /// A parameter's value is larger than the client's offer allows (RFC
    /// 7692 §7.1.2.1: `server_max_window_bits` no larger than offered).
    #[error("{0} larger than requested")]
    LargerThanOffered(String),
}

/// Why a client refuses the server's `Sec-WebSocket-Extensions` response
/// ([`HandshakeError::Extension`](super::HandshakeError::Extension)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionResponseError {
    /// The header is not UTF-8 or not valid extension list syntax (RFC 6455
    /// §9.1).
    #[error("malformed Sec-WebSocket-Extensions header")]
    Syntax,
    /// The server accepted an extension the client did not offer (RFC 6455
    /// §9.1: the client fails the connection).
    #[error("{0} was not offered")]
    NotOffered(String),
    /// The server accepted more than one extension; a connection carries at
    /// most one here.
    #[error("more than one extension accepted")]
    SeveralAccepted,
    /// The offered extension's factory refused the response's parameters.
    #[error("{0}")]
    Params(ExtensionParamError),
}

/// A negotiated extension, applied to every data message of one connection.
pub trait Extension: Send + Sync {
    /// The extension token.
    fn name(&self) -> &str;

    /// The RSV bits this extension owns (a mix of
    /// [`RSV1`](super::RSV1), [`RSV2`](super::RSV2), [`RSV3`](super::RSV3)).
    fn rsv_bits(&self) -> u8;

    /// Transforms received message data. Called once per received frame of
    /// a data message, in order; `rsv` holds the RSV bits of the message's
    /// first frame, `fin` marks the message's last frame. Decoded bytes are
    /// appended to `out`, and no more than `max_out` bytes may be appended in
    /// one call ([`ExtensionError::TooBig`] otherwise).
    fn decode(
        &mut self,
        rsv: u8,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<(), ExtensionError>;

    /// Transforms an outgoing message. Returns the RSV bits to set on its
    /// first frame, or `None` to send `payload` untransformed (in which case
    /// `out` must be left untouched).
    fn encode(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<u8>, ExtensionError>;

    /// Names this extension's encoding when [`encode`](Self::encode) is a
    /// function of the message alone: no state carries over from one
    /// message to the next, and encoding leaves the extension as it was.
    /// Extensions that return equal keys must encode every message to the
    /// same bytes and RSV bits; a
    /// [`PreparedMessage`](super::PreparedMessage) then encodes it once
    /// and shares the result between them.
    ///
    /// `None` (the default) when the encoding depends on what was sent
    /// before, as permessage-deflate's does with context takeover: such a
    /// connection encodes every message itself.
    fn shared_encoding(&self) -> Option<EncodingKey> {
        None
    }

    /// The heap bytes this extension holds beyond its own value (for
    /// permessage-deflate, zlib's windows and tables), reported in
    /// [`MemoryUsage::compression`](crate::MemoryUsage::compression).
    /// The default reports none.
    fn memory_usage(&self) -> usize {
        0
    }

    /// The heap bytes that encoding a data message of `len` payload bytes
    /// would add to [`memory_usage`](Self::memory_usage) and keep after
    /// it: for permessage-deflate with context takeover, the compressor
    /// its first compressed message creates. A
    /// [memory budget](crate::ws::Config::memory_budget) charges a send
    /// for them up front, so the send is refused rather than the
    /// connection left over its budget. The default reports none.
    fn memory_to_encode(&self, len: usize) -> usize {
        let _ = len;
        0
    }
}

/// What an extension's stateless encoding depends on
/// ([`Extension::shared_encoding`]): its name and every setting that
/// changes its output, packed by the extension.
///
/// permessage-deflate, when its compressor runs without context takeover,
/// packs its compression level, its compressor's window bits and its
/// threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodingKey {
    /// The extension token ([`Extension::name`]).
    pub extension: &'static str,
    /// The settings the encoding depends on, as the extension packs them.
    pub settings: [u64; 2],
}

/// Negotiates one kind of extension during the opening handshake.
pub trait ExtensionFactory: Send + Sync {
    /// The extension token this factory negotiates.
    fn name(&self) -> &str;

    /// Client side: the offer to put in `Sec-WebSocket-Extensions`.
    fn offer(&self) -> ExtensionOffer;

    /// Server side: the client's offers with this factory's name, in the
    /// client's order of preference. Returns the response parameters and
    /// the extension for the first acceptable offer, or `None` to decline
    /// (the connection then proceeds without the extension).
    fn accept_offer(
        &self,
        offers: &[&ExtensionOffer],
    ) -> Option<(ExtensionOffer, Box<dyn Extension>)>;

    /// Client side: the server accepted with `response`; build the
    /// extension, or say why the response is unacceptable (the handshake
    /// then fails with [`ExtensionResponseError::Params`]).
    fn accept_response(
        &self,
        response: &ExtensionOffer,
    ) -> Result<Box<dyn Extension>, ExtensionParamError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let o = ExtensionOffer::parse_list("foo, bar; a=1; b=\"x\"; c").unwrap();
        assert_eq!(o[0].name, "foo");
        assert_eq!(o[1].to_string(), "bar; a=1; b=x; c");
        assert!(ExtensionOffer::parse_list("a; b=\"unterminated").is_err());
        assert!(ExtensionOffer::parse_list("bad name").is_err());
        assert!(ExtensionOffer::parse_list("x; =1").is_err());
        assert!(ExtensionOffer::parse_list(" , ").unwrap().is_empty());
    }
}

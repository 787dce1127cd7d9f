//! The opening handshake (RFC 6455 §4): HTTP/1.1 Upgrade request and 101 reply.

pub(crate) mod client;
pub(crate) mod server;

use base64::Engine;
use bytes::Bytes;
use sha1::{Digest, Sha1};

pub use client::ClientRequest;
pub use server::{accept_headers, Accepted};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` from a `Sec-WebSocket-Key`.
///
/// ```
/// // RFC 6455 §1.3
/// assert_eq!(
///     sansproto::ws::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// HTTP header fields in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Bytes)>);

impl Headers {
    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// The first value of `name` as text, when it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// True when some value of `name`, read as a comma-separated list,
    /// contains `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// Every comma-separated element of every value of `name`, trimmed.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn from_httparse(h: &[httparse::Header<'_>]) -> Self {
        Self(
            h.iter()
                .map(|h| (h.name.to_owned(), Bytes::copy_from_slice(h.value)))
                .collect(),
        )
    }
}

/// A plain HTTP request received where a WebSocket upgrade was expected, or
/// the upgrade request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/chat?room=1`.
    pub path: String,
    /// The header fields.
    pub headers: Headers,
}

/// An HTTP response: a refused upgrade as seen by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields.
    pub headers: Headers,
    /// The body bytes received (up to the handshake size limit).
    pub body: Bytes,
}

/// Why an opening handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The HTTP message is not valid HTTP/1.1.
    #[error("malformed HTTP message: {0}")]
    Malformed(String),
    /// The HTTP head grew past the configured byte limit.
    #[error("HTTP head larger than {0} bytes")]
    TooLarge(usize),
    /// More header fields than the configured limit.
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// The request method is not GET.
    #[error("method {0} is not GET")]
    Method(String),
    /// `Sec-WebSocket-Version` is missing or not 13.
    #[error("unsupported Sec-WebSocket-Version (13 is required)")]
    Version,
    /// A required header is missing or wrong.
    #[error("bad or missing {0} header")]
    Header(&'static str),
    /// The server's `Sec-WebSocket-Accept` does not match our key.
    #[error("Sec-WebSocket-Accept does not match the key sent")]
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer.
    #[error("server chose subprotocol {0:?}, which was not offered")]
    Subprotocol(String),
    /// The server's extensions are not what the client offered.
    #[error("server extension response refused: {0}")]
    Extension(String),
    /// The server answered with a status other than 101.
    #[error("server refused the upgrade with status {0}")]
    Status(u16),
    /// The transport ended during the handshake.
    #[error("connection closed during the handshake")]
    Eof,
}

/// Finds the end of an HTTP head (`\r\n\r\n`), scanning only bytes not
/// scanned before. Returns the head length including the blank line.
pub(crate) fn find_head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let start = scanned.saturating_sub(3);
    let found = buf
        .get(start..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| start + p + 4);
    if found.is_none() {
        *scanned = buf.len();
    }
    found
}

/// Maps httparse's verdict on a complete head (found by `find_head_end`).
pub(crate) fn complete(
    parsed: &httparse::Result<usize>,
    max_headers: usize,
) -> Result<(), HandshakeError> {
    match parsed {
        Ok(httparse::Status::Complete(_)) => Ok(()),
        Ok(httparse::Status::Partial) => Err(HandshakeError::Malformed("incomplete head".into())),
        Err(httparse::Error::TooManyHeaders) => Err(HandshakeError::TooManyHeaders(max_headers)),
        Err(e) => Err(HandshakeError::Malformed(e.to_string())),
    }
}

/// True when `s` can be written in a header name or value as given.
pub(crate) fn is_header_safe(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

pub(crate) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_is_found_across_pieces_without_rescanning() {
        let msg = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for split in 0..msg.len() {
            let mut scanned = 0;
            let first = find_head_end(&msg[..split], &mut scanned);
            let end = first.or_else(|| find_head_end(msg, &mut scanned));
            assert_eq!(end, Some(msg.len() - 4), "split {split}");
        }
    }

    #[test]
    fn headers_tokens() {
        let h = Headers(vec![
            (
                "Connection".into(),
                Bytes::from_static(b"keep-alive, Upgrade"),
            ),
            ("X".into(), Bytes::from_static(b"a, b")),
            ("x".into(), Bytes::from_static(b"c")),
        ]);
        assert!(h.has_token("connection", "upgrade"));
        assert!(!h.has_token("connection", "close"));
        assert_eq!(h.list("x"), ["a", "b", "c"]);
        assert_eq!(h.get_str("X"), Some("a, b"));
        assert_eq!(h.len(), 3);
    }
}

//! The opening handshake (RFC 6455 §4): HTTP/1.1 Upgrade request and 101
//! reply.
//!
//! Each side's handshake is its own machine (`server.rs` and `client.rs`
//! modules, driven through [`Connection`](super::Connection)) that hands
//! its result, the negotiated subprotocol and extension and any bytes
//! that arrived behind the handshake, to the open session. A server
//! application decides each upgrade ([`UpgradeRequest`], [`Accept`],
//! [`Reject`], [`OriginPolicy`]); the HTTP it reads and writes goes
//! through the crate's one HTTP/1.1 layer.

mod answer;
pub(crate) mod client;
mod origin;
pub(crate) mod server;
mod timer;
pub(crate) mod upgrade;

use super::extension::ExtensionResponseError;
use super::http::field::FieldError;
use super::http::head::HeadError;
use base64::Engine;
use sha1::{Digest, Sha1};

pub use super::http::{Headers, HttpRequest, HttpResponse, MalformedHttp};
pub use answer::{Accept, Accepted, Reject};
pub use client::ClientRequest;
pub use origin::OriginPolicy;
pub(crate) use timer::HandshakeTimer;
pub use upgrade::{accept_headers, UpgradeRequest};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a handshake machine holds on the heap: its buffers, events and
/// configuration (its own value is its owner's to count).
pub(crate) fn memory_usage(
    recv: &crate::buf::RecvBuf,
    send: &crate::buf::SendQueue,
    events: &std::collections::VecDeque<super::Event>,
    config: &super::Config,
) -> crate::MemoryUsage {
    let payloads = events
        .iter()
        .map(|e| super::session::event_heap(e, |p| !recv.shares(p)))
        .sum::<usize>();
    crate::MemoryUsage {
        receive: recv.capacity(),
        events: crate::memory::slots::<super::Event>(events.capacity()) + payloads,
        send: send.memory(),
        state: config.heap(),
        ..Default::default()
    }
}

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

/// Why an opening handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The HTTP message is not valid HTTP/1.1: its syntax, a request
    /// target a GET cannot take, or framing fields that do not say where
    /// the body ends (a refusal so framed is discarded, not reported).
    #[error("malformed HTTP message: {0}")]
    Malformed(MalformedHttp),
    /// The HTTP head grew past the configured byte limit (or, on a server
    /// waiting for the application's decision, the bytes received behind
    /// the request did).
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
    /// A required header is missing or wrong (for `Host`: missing,
    /// repeated, or not `host[:port]`, RFC 9112 §3.2).
    #[error("bad or missing {0} header")]
    Header(&'static str),
    /// The upgrade request has a body (`Transfer-Encoding`, or a
    /// `Content-Length` other than 0): its bytes would otherwise be read
    /// as WebSocket frames (RFC 9110 §9.3.1, RFC 9112 §6.3).
    #[error("an upgrade request cannot have a body")]
    Body,
    /// The server's `Sec-WebSocket-Accept` does not match our key.
    #[error("Sec-WebSocket-Accept does not match the key sent")]
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer.
    #[error("server chose subprotocol {0:?}, which was not offered")]
    Subprotocol(String),
    /// The server's extensions are not what the client offered.
    #[error("server extension response refused: {0}")]
    Extension(ExtensionResponseError),
    /// The server answered with a status other than 101.
    #[error("server refused the upgrade with status {0}")]
    Status(u16),
    /// The transport ended during the handshake.
    #[error("connection closed during the handshake")]
    Eof,
    /// A field this side was given cannot be written.
    #[error("{0}")]
    Field(FieldError),
}

impl From<HeadError> for HandshakeError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Malformed(m) => Self::Malformed(m),
            HeadError::TooLarge(n) => Self::TooLarge(n),
            HeadError::TooManyHeaders(n) => Self::TooManyHeaders(n),
        }
    }
}

impl From<FieldError> for HandshakeError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

/// What a finished opening handshake hands to the open session.
pub(crate) struct Handshaken {
    /// What [`Event::Open`](crate::ws::Event::Open) reports.
    pub(crate) opened: crate::ws::Opened,
    /// The negotiated extension.
    pub(crate) extension: Option<Box<dyn crate::ws::Extension>>,
    /// Handshake events not polled yet.
    pub(crate) events: Vec<crate::ws::Event>,
    /// Handshake output not taken yet (a server's 101 response).
    pub(crate) preamble: Vec<u8>,
    /// The latest `now` the handshake saw.
    pub(crate) now: Option<std::time::Instant>,
    /// Bytes received behind the handshake: the session's first input.
    pub(crate) rest: bytes::Bytes,
}

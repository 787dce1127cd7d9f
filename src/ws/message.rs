//! Messages and the events a connection reports.

use super::close::CloseCode;
use super::handshake::{HttpRequest, HttpResponse, UpgradeRequest};
use bytes::Bytes;
use std::fmt;

/// UTF-8 text held in shared bytes, so a received text message is not copied.
///
/// A `Text` holds valid UTF-8 by construction: it is made from a `&str` or
/// `String`, from bytes checked once by [`TryFrom<Bytes>`], or by the
/// receive path from bytes it has already validated.
///
/// ```
/// use sansproto::ws::Text;
/// let t = Text::from("héllo");
/// assert_eq!(t.as_str(), "héllo");
/// assert!(Text::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(Bytes);

/// The bytes are not valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bytes are not valid UTF-8")]
pub struct NotUtf8(pub Bytes);

impl Text {
    /// Wraps bytes the receive path has already validated as UTF-8 (whole,
    /// or piece by piece across frames and reads); they are not checked
    /// again here. Only that path calls this.
    pub(crate) fn from_validated(b: Bytes) -> Self {
        debug_assert!(simdutf8::basic::from_utf8(&b).is_ok());
        Self(b)
    }

    /// The text.
    ///
    /// Shared bytes become a `&str` only through a UTF-8 check (the crate
    /// has no unsafe code to assert it instead), so this checks them again,
    /// with SIMD where the CPU has it: linear in the length, a fraction of
    /// the cost of copying them. Every constructor admits valid UTF-8 only
    /// and the bytes never change, so the check always passes.
    pub fn as_str(&self) -> &str {
        match simdutf8::basic::from_utf8(&self.0) {
            Ok(s) => s,
            Err(_) => unreachable!("Text is constructed from validated UTF-8 only"),
        }
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The UTF-8 bytes, shared.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

/// Checks the bytes once; the `Text` keeps them without a copy.
impl TryFrom<Bytes> for Text {
    type Error = NotUtf8;
    fn try_from(b: Bytes) -> Result<Self, NotUtf8> {
        match simdutf8::basic::from_utf8(&b) {
            Ok(_) => Ok(Self(b)),
            Err(_) => Err(NotUtf8(b)),
        }
    }
}

/// Text or binary: the two kinds of data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
}

/// A whole data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (always valid UTF-8).
    Text(Text),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The payload, without a copy.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(t) => t.into_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<Text> for Message {
    fn from(t: Text) -> Self {
        Self::Text(t)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b.into())
    }
}

/// The opening handshake completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The negotiated subprotocol.
    pub protocol: Option<String>,
    /// The negotiated extension, as its response header element.
    pub extension: Option<String>,
    /// Server side: the upgrade request.
    pub request: Option<HttpRequest>,
    /// Client side: the 101 response (status and headers).
    pub response: Option<HttpResponse>,
}

/// How the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The peer's close code ([`CloseCode::NO_STATUS`] when its Close frame
    /// had none), the code this side sent when it failed the connection, or
    /// [`CloseCode::ABNORMAL`] when the transport ended or timed out
    /// without a closing handshake.
    pub code: CloseCode,
    /// The close reason.
    pub reason: String,
    /// True when both Close frames were exchanged.
    pub clean: bool,
    /// True when the peer closed first: its Close frame was reached, in
    /// the order of events, before this side sent one. A Close this side
    /// sends while the peer's is still to be polled (its frame read but
    /// events before it unpolled, or not yet parsed) comes first: the two
    /// crossed, and this side did not answer the peer's.
    pub by_peer: bool,
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The opening handshake completed; messages flow from here. (Boxed,
    /// as the other rare, large events are, so the frequent ones stay small.)
    Open(Box<Opened>),
    /// Server side, when the application decides
    /// ([`Connection::server_with_decision`](super::Connection::server_with_decision)):
    /// a valid upgrade request. Nothing is sent until the application
    /// answers with [`Connection::accept`](super::Connection::accept) or
    /// [`Connection::reject`](super::Connection::reject).
    Upgrade(Box<UpgradeRequest>),
    /// Server side: the request was plain HTTP, not an upgrade. Answer it
    /// with [`Connection::send_http_response`](super::Connection::send_http_response).
    HttpRequest(Box<HttpRequest>),
    /// Client side: the server answered the upgrade with another status.
    /// The body is complete when this is reported.
    Rejected(Box<HttpResponse>),
    /// A whole data message.
    Message(Message),
    /// Streaming mode: a piece of a data message, delivered as it arrives.
    Fragment {
        /// Text or binary (fixed by the message's first piece).
        kind: MessageKind,
        /// The bytes. For text, pieces may split a character; the
        /// concatenation of a message's pieces is valid UTF-8.
        data: Bytes,
        /// True on the message's first piece.
        first: bool,
        /// True on the message's last piece.
        last: bool,
    },
    /// The peer sent a Ping. With auto-pong on it is already answered: the
    /// Pong is queued, or, when the send queue is full, it goes out with
    /// the next `poll_transmit` (past the limit by that one control frame)
    /// and answers the older unanswered pings too, as RFC 6455 §5.5.3
    /// allows: the newest ping always gets its pong.
    Ping(Bytes),
    /// The peer sent a Pong; `matched` says whether it answers a ping this
    /// side sent.
    Pong {
        /// The payload.
        payload: Bytes,
        /// True when it echoes an outstanding ping's payload.
        matched: bool,
    },
    /// The connection ended; the last event of every opened connection.
    Closed(Closed),
    /// The send queue went from above
    /// [`Config::send_high_mark`](super::Config::send_high_mark) to at most
    /// [`Config::send_low_mark`](super::Config::send_low_mark) bytes:
    /// sending may resume. Reported once per crossing, after the events
    /// already queued; not once the session has finished.
    Drained,
}

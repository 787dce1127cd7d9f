//! Errors, split by who is at fault.

use super::close::CloseCode;
use super::extension::ExtensionError;
use super::handshake::HandshakeError;
use super::http::FieldError;
use std::fmt;

/// The peer broke the protocol, or the connection could not be set up.
///
/// Returned by `receive`; sticky: once returned, every later `receive`
/// returns it again. Before it is returned, the matching Close frame (or,
/// for a refused upgrade, an HTTP error response) is queued for sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A framing or sequencing rule was broken (close 1002).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A text message or close reason is not UTF-8 (close 1007).
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A frame's payload is larger than `max_frame_size` (close 1009).
    #[error("frame of {0} bytes exceeds the frame size limit")]
    FrameTooBig(u64),
    /// A message grew past `max_message_size` (close 1009).
    #[error("message exceeds the message size limit")]
    MessageTooBig,
    /// The negotiated extension refused the peer's data.
    #[error("extension: {0}")]
    Extension(ExtensionError),
    /// The opening handshake failed.
    #[error("handshake: {0}")]
    Handshake(HandshakeError),
    /// The connection timed out (handshake, pong or close deadline).
    #[error("{0} timed out")]
    Timeout(TimeoutKind),
    /// A command queued before the handshake completed could not be sent
    /// once it did (the negotiated extension refused it).
    #[error("queued message could not be sent: {0}")]
    Send(SendErrorKind),
}

impl Error {
    /// The close code sent to the peer for this error, if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        Some(match self {
            Self::Protocol(_) => CloseCode::PROTOCOL_ERROR,
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooBig(_) | Self::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            Self::Extension(ExtensionError::TooBig) => CloseCode::MESSAGE_TOO_BIG,
            Self::Extension(_) => CloseCode::INVALID_PAYLOAD,
            Self::Send(_) => CloseCode::INTERNAL_ERROR,
            Self::Handshake(_) | Self::Timeout(_) => return None,
        })
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The opening handshake.
    Handshake,
    /// The keepalive pong deadline.
    Pong,
    /// The peer's Close reply.
    Close,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Handshake => "opening handshake",
            Self::Pong => "pong deadline",
            Self::Close => "closing handshake",
        })
    }
}

/// A refused WebSocket command: the [`SendErrorKind`] and the payload,
/// handed back.
pub type SendError<T> = crate::SendError<T, SendErrorKind>;

/// The caller asked for something the connection cannot do now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The send queue would pass `max_send_queue`; drain it with
    /// `poll_transmit` and retry.
    #[error("send queue is full")]
    QueueFull,
    /// A Close frame was already sent, or the connection has ended.
    #[error("connection is closing or closed")]
    Closed,
    /// Control frame payloads are limited to 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// Only 1000–1003, 1007–1014 and 3000–4999 may be sent.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// The call does not fit the connection's state (e.g. an HTTP response
    /// on a WebSocket connection).
    #[error("not allowed in the current state")]
    WrongState,
    /// The negotiated extension failed to encode the message.
    #[error("extension: {0}")]
    Extension(ExtensionError),
    /// A header field, status or subprotocol given with the command cannot
    /// be written.
    #[error("{0}")]
    Field(FieldError),
}

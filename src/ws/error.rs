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
    Protocol(ProtocolViolation),
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
    /// What the connection holds went past
    /// [`Config::memory_budget`](super::Config::memory_budget) on input:
    /// close 1009 when most of it was data arriving (a message too big to
    /// hold), 1008 when most of it was events the application had not
    /// polled.
    #[error("holding {held} bytes, over the memory budget of {budget}")]
    OverBudget {
        /// What the budget was charged: the
        /// [`MemoryUsage::total`](crate::MemoryUsage::total), with the
        /// receive buffer and send queue at the bytes they hold rather than
        /// their capacity.
        held: usize,
        /// The budget.
        budget: usize,
        /// Most of what was held was events not yet polled.
        unpolled: bool,
    },
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
            Self::OverBudget { unpolled: true, .. } => CloseCode::POLICY_VIOLATION,
            Self::OverBudget { .. } => CloseCode::MESSAGE_TOO_BIG,
            Self::Handshake(_) | Self::Timeout(_) => return None,
        })
    }
}

impl From<ProtocolViolation> for Error {
    fn from(v: ProtocolViolation) -> Self {
        Self::Protocol(v)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

/// The framing or sequencing rule a peer broke; each one fails the
/// connection with close code 1002 ([`Error::Protocol`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A frame's opcode is one of the reserved values 0x3–0x7 or 0xB–0xF
    /// (RFC 6455 §5.2: an unknown opcode fails the connection).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A 64-bit payload length has its most significant bit set (RFC 6455
    /// §5.2: that bit MUST be 0).
    #[error("64-bit length with the most significant bit set")]
    LengthMsbSet,
    /// A frame carries RSV bits that no negotiated extension owns (RFC 6455
    /// §5.2: a nonzero value nobody negotiated fails the connection).
    #[error("RSV bits set that no extension negotiated")]
    UnnegotiatedRsv,
    /// A client sent an unmasked frame (RFC 6455 §5.1: a server closes the
    /// connection on an unmasked frame).
    #[error("client frame not masked")]
    UnmaskedClientFrame,
    /// A server sent a masked frame (RFC 6455 §5.1: a client closes the
    /// connection on a masked frame).
    #[error("server frame masked")]
    MaskedServerFrame,
    /// A control frame carries RSV bits (RFC 7692 §6.1: the "Per-Message
    /// Compressed" bit is not set on control frames; no extension here
    /// gives control frames a meaning for RSV bits, RFC 6455 §5.2).
    #[error("RSV bits on a control frame")]
    RsvOnControlFrame,
    /// A control frame without FIN (RFC 6455 §5.5: control frames MUST NOT
    /// be fragmented).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A control frame's payload is longer than 125 bytes (RFC 6455 §5.5).
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooLong,
    /// A continuation frame arrived while no fragmented message was open
    /// (RFC 6455 §5.4).
    #[error("continuation frame without a message")]
    ContinuationWithoutMessage,
    /// A continuation frame carries RSV bits (RFC 7692 §6.1: the
    /// "Per-Message Compressed" bit is set on the first frame only).
    #[error("RSV bits on a continuation frame")]
    RsvOnContinuation,
    /// A text or binary frame started a new message while a fragmented one
    /// was still open (RFC 6455 §5.4: fragments of different messages MUST
    /// NOT be interleaved).
    #[error("new message inside a fragmented message")]
    MessageInsideFragmentedMessage,
    /// A Close payload of a single byte (RFC 6455 §5.5.1: a body starts
    /// with a two-byte status code).
    #[error("malformed Close payload: one byte")]
    CloseOneByte,
    /// A Close frame with a status code that may not be sent on the wire:
    /// below 1000, 1004–1006, 1015, an unassigned 1016–2999, or 5000 and up
    /// (RFC 6455 §7.4.1, §7.4.2).
    #[error("malformed Close payload: close code {0} may not be sent")]
    InvalidCloseCode(u16),
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
    /// Queuing it would take the connection past
    /// [`Config::memory_budget`](super::Config::memory_budget).
    #[error("over the memory budget")]
    OverBudget,
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

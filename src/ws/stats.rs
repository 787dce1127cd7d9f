//! What a session counted: traffic, control frames, compression, round
//! trips, and how it failed.

use super::error::Error;
use super::extension::ExtensionError;
use crate::Traffic;
use std::time::Duration;

/// Counters of a [`Session`](super::Session) or
/// [`Connection`](super::Connection), from
/// [`Session::stats`](super::Session::stats).
///
/// - `rx.bytes`: bytes handed to `receive` (or committed into the
///   receive buffer) and not refused with `Ok(0)`, the opening
///   handshake's included for a `Connection`;
///   `tx.bytes`: bytes handed out by `poll_transmit` or advanced past in
///   [`output`](super::Session::output), the handshake's included.
/// - `frames`: WebSocket frames, control frames included; `messages`:
///   whole data messages (received: delivered as
///   [`Event::Message`](super::Event::Message), or the last piece of one in
///   streaming mode; sent: queued, counted when their last frame is
///   encoded).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
// In declaration order, so that the traffic counters every frame bumps
// share a cache line.
#[repr(C)]
pub struct Stats {
    /// Received.
    pub rx: Traffic,
    /// Sent.
    pub tx: Traffic,
    /// Control frames received.
    pub control_rx: ControlStats,
    /// Control frames sent (pongs this side answered with included).
    pub control_tx: ControlStats,
    /// Messages received that the negotiated extension transformed.
    pub compression_rx: CompressionStats,
    /// Messages sent that the negotiated extension transformed.
    pub compression_tx: CompressionStats,
    /// Pongs that answered a ping this side sent (`Event::Pong` with
    /// `matched: true`).
    pub pongs_matched: u64,
    /// The latest round trip of a keepalive ping: from the `now` of the
    /// [`handle_timeout`](super::Session::handle_timeout) call that sent
    /// it to the `now` of the first `handle_timeout` call after its pong
    /// was received. So it is as fine as the calls are frequent (call
    /// `handle_timeout` after every read, as the driving loops do).
    /// Pings sent with [`ping`](super::Session::ping) take no clock
    /// reading and are not measured. `None` until one was.
    pub last_rtt: Option<Duration>,
    /// How the session failed, by kind.
    pub errors: ErrorStats,
}

/// Control frames in one direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlStats {
    /// Ping frames.
    pub pings: u64,
    /// Pong frames.
    pub pongs: u64,
    /// Close frames.
    pub closes: u64,
}

/// Payload bytes of transformed (compressed) messages in one direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompressionStats {
    /// Messages.
    pub messages: u64,
    /// Their payload bytes as framed on the wire.
    pub compressed: u64,
    /// Their payload bytes as the application sees them.
    pub uncompressed: u64,
}

/// Failures by kind. A session fails at most once, so at most one of
/// these is 1 (the kind of [`Session::error`](super::Session::error)).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorStats {
    /// The peer broke a framing or sequencing rule
    /// ([`Error::Protocol`]).
    pub protocol: u64,
    /// Invalid UTF-8 in text or a close reason ([`Error::InvalidUtf8`]).
    pub invalid_utf8: u64,
    /// A frame or message over its limit ([`Error::FrameTooBig`],
    /// [`Error::MessageTooBig`], and a message the extension would expand
    /// past it, [`ExtensionError::TooBig`]).
    pub too_big: u64,
    /// The extension refused the peer's data ([`Error::Extension`]), for a
    /// reason other than the size limit.
    pub extension: u64,
    /// The opening handshake failed ([`Error::Handshake`]).
    pub handshake: u64,
    /// A deadline passed ([`Error::Timeout`]).
    pub timeout: u64,
    /// A command queued before the handshake could not be sent
    /// ([`Error::Send`]).
    pub send: u64,
    /// Input took the connection past its memory budget
    /// ([`Error::OverBudget`]).
    pub over_budget: u64,
}

impl ErrorStats {
    /// Counts `error` under its kind.
    pub(crate) fn count(&mut self, error: &Error) {
        let counter = match error {
            Error::Protocol(_) => &mut self.protocol,
            Error::InvalidUtf8 => &mut self.invalid_utf8,
            Error::FrameTooBig(_)
            | Error::MessageTooBig
            | Error::Extension(ExtensionError::TooBig) => &mut self.too_big,
            Error::Extension(_) => &mut self.extension,
            Error::Handshake(_) => &mut self.handshake,
            Error::Timeout(_) => &mut self.timeout,
            Error::Send(_) => &mut self.send,
            Error::OverBudget { .. } => &mut self.over_budget,
        };
        *counter += 1;
    }
}

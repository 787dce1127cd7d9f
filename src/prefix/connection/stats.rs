//! What a connection counts, and the send queue's backpressure marks.

use super::{Connection, Event, State};
use crate::prefix::DecodeError;
use crate::Traffic;

/// Counters of a [`Connection`], from [`Connection::stats`].
///
/// - `rx.bytes`: bytes taken by `receive` (or committed into the receive
///   buffer), those taken and then ignored because the connection has
///   ended or its idle timeout waits included, not those refused
///   (`receive` returned less) or refused after a decode error;
///   `rx.frames`: frames decoded, skipped over-long ones included;
///   `rx.messages`: frames delivered as [`Event::Frame`].
/// - `tx.bytes`: bytes handed out by `poll_transmit` or written past with
///   `output().advance`; `tx.frames`: frames
///   queued, heartbeats included; `tx.messages`: frames queued by the
///   `send` methods.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Received.
    pub rx: Traffic,
    /// Sent.
    pub tx: Traffic,
    /// Heartbeat frames queued.
    pub heartbeats: u64,
    /// Heartbeats skipped because the send queue or the memory budget had
    /// no room.
    pub heartbeats_skipped: u64,
    /// Over-long frames skipped (discard mode), reported as
    /// [`Event::FrameDiscarded`].
    pub frames_discarded: u64,
    /// How the connection failed or ended, by kind.
    pub errors: ErrorStats,
}

/// Failures by kind. A stream fails at most once, so at most one decode
/// counter is 1 (the kind of [`Connection::error`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorStats {
    /// A frame over the limit ([`DecodeError::FrameTooLong`]).
    pub frame_too_long: u64,
    /// A length field that cannot describe a frame (too small, overflowing,
    /// shorter than the bytes to strip, a malformed varint).
    pub bad_length: u64,
    /// The stream ended inside a frame ([`DecodeError::Truncated`]).
    pub truncated: u64,
    /// The peer went silent past the idle timeout
    /// ([`Event::IdleTimeout`]).
    pub idle_timeout: u64,
    /// Input took the connection past its memory budget
    /// ([`DecodeError::OverBudget`]).
    pub over_budget: u64,
}

impl ErrorStats {
    fn count(&mut self, error: &DecodeError) {
        let counter = match error {
            DecodeError::FrameTooLong { .. } => &mut self.frame_too_long,
            DecodeError::LengthTooSmall { .. }
            | DecodeError::FrameShorterThanStrip { .. }
            | DecodeError::LengthOverflow { .. }
            | DecodeError::Varint(_) => &mut self.bad_length,
            DecodeError::Truncated { .. } => &mut self.truncated,
            DecodeError::OverBudget { .. } => &mut self.over_budget,
        };
        *counter += 1;
    }
}

impl Connection {
    /// What the connection counted so far, returned by value (see
    /// [`Stats`] for what each counter holds). Counting is always on and
    /// costs an addition per read, batch or send, never per byte.
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection};
    /// let mut a = Connection::new(Config::default());
    /// let mut b = Connection::new(Config::default());
    /// a.send(&b"ping"[..]).unwrap();
    /// a.send(&b"pong"[..]).unwrap();
    /// let mut wire = Vec::new();
    /// a.poll_transmit(&mut wire);
    /// b.receive(&wire).unwrap();
    /// while b.poll_event().is_some() {}
    ///
    /// assert_eq!(a.stats().tx.bytes, 16);
    /// assert_eq!(a.stats().tx.messages, 2);
    /// assert_eq!(b.stats().rx.bytes, 16);
    /// assert_eq!(b.stats().rx.messages, 2);
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats.clone();
        stats.tx.bytes = self.send.flow().taken();
        if let State::Failed(e) = &self.state {
            stats.errors.count(e);
        }
        stats
    }

    /// True from the moment more than the high mark
    /// ([`Builder::send_marks`](crate::prefix::Builder::send_marks)) is
    /// queued for sending ([`queued_bytes`](Self::queued_bytes)) until
    /// `poll_transmit` leaves at most the low mark, which
    /// [`Event::Drained`] reports. Always false without marks.
    pub fn is_backpressured(&self) -> bool {
        self.send.flow().is_above(self.send.len())
    }

    /// [`Event::Drained`], once per drain, while sends can still be
    /// taken (not once the connection has ended).
    #[cold]
    pub(super) fn drained_event(&mut self) -> Option<Event> {
        if self.is_finished() {
            return None;
        }
        let queued = self.send.len();
        self.send
            .flow_mut()
            .take_drained(queued)
            .then_some(Event::Drained)
    }
}

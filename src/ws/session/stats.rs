//! The session's counters, the keepalive round trip, and the send
//! queue's backpressure marks.

use super::{Session, State};
use crate::ws::frame::OpCode;
use crate::ws::message::Event;
use crate::ws::Stats;
use bytes::Bytes;
use std::time::Instant;

/// What the session counts as it goes; [`Session::stats`] adds what it
/// reads off its state (bytes sent, the failure).
// In declaration order: the sent-traffic counters a send bumps sit at the
// front (see `Stats`), next to the send queue in the session.
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct Counters {
    pub(super) stats: Stats,
    /// The latest keepalive ping: its payload and the `now` it was sent at.
    probe: Option<(Bytes, Instant)>,
    /// When its pong arrived: the send instant, for the next
    /// `handle_timeout` to measure the round trip against.
    answered: Option<Instant>,
}

impl Counters {
    /// A frame was encoded into the send queue.
    #[inline(always)]
    pub(super) fn frame_out(&mut self, fin: bool, opcode: OpCode) {
        let s = &mut self.stats;
        s.tx.frames += 1;
        match opcode {
            OpCode::Ping => s.control_tx.pings += 1,
            OpCode::Pong => s.control_tx.pongs += 1,
            OpCode::Close => s.control_tx.closes += 1,
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                s.tx.messages += u64::from(fin);
            }
        }
    }

    /// A message of `uncompressed` payload bytes was transformed into
    /// `compressed` ones to send.
    pub(super) fn compressed_out(&mut self, uncompressed: usize, compressed: usize) {
        let c = &mut self.stats.compression_tx;
        c.messages += 1;
        c.compressed += compressed as u64;
        c.uncompressed += uncompressed as u64;
    }

    /// A frame was received whole (by the general path).
    #[inline]
    pub(super) fn frame_in(&mut self, opcode: OpCode) {
        let s = &mut self.stats;
        s.rx.frames += 1;
        match opcode {
            OpCode::Ping => s.control_rx.pings += 1,
            OpCode::Pong => s.control_rx.pongs += 1,
            OpCode::Close => s.control_rx.closes += 1,
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {}
        }
    }

    /// A pong answered a ping this side sent.
    pub(super) fn pong_matched(&mut self, payload: &Bytes) {
        self.stats.pongs_matched += 1;
        if let Some((_, sent)) = self.probe.take_if(|(p, _)| p == payload) {
            self.answered = Some(sent);
        }
    }

    /// A keepalive ping with `payload` was sent at `now`.
    pub(super) fn probe_sent(&mut self, payload: Bytes, now: Instant) {
        self.probe = Some((payload, now));
    }

    /// `handle_timeout(now)`: the round trip of a keepalive ping whose
    /// pong came in since the last call ends now.
    #[inline]
    pub(super) fn tick(&mut self, now: Instant) {
        if let Some(sent) = self.answered.take() {
            self.stats.last_rtt = Some(now.saturating_duration_since(sent));
        }
    }
}

impl Session {
    /// What the session counted so far, returned by value (see [`Stats`]
    /// for what each counter holds). Counting is always on and costs an
    /// addition per read, batch or frame, never per byte.
    ///
    /// ```
    /// use sansproto::ws::{Config, Role, Session};
    /// let random = sansproto::default_random;
    /// let mut client = Session::new(Role::Client, Config::default(), None, None, random());
    /// let mut server = Session::new(Role::Server, Config::default(), None, None, random());
    /// client.send("hello").unwrap();
    /// client.ping("p").unwrap();
    /// let mut wire = Vec::new();
    /// client.poll_transmit(&mut wire);
    /// server.receive(&wire).unwrap();
    /// while server.poll_event().is_some() {}
    ///
    /// let stats = server.stats();
    /// assert_eq!(stats.rx.bytes, wire.len() as u64);
    /// assert_eq!((stats.rx.frames, stats.rx.messages), (2, 1));
    /// assert_eq!(stats.control_rx.pings, 1);
    /// assert_eq!(stats.control_tx.pongs, 1); // the automatic answer
    /// assert_eq!(client.stats().tx.bytes, wire.len() as u64);
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = self.counters.stats.clone();
        stats.tx.bytes = self.send.flow().taken();
        if let State::Failed(e) = &self.state {
            stats.errors.count(e);
        }
        stats
    }

    /// Counts bytes the opening handshake read for this session.
    pub(crate) fn count_handshake_input(&mut self, n: usize) {
        self.counters.stats.rx.bytes += n as u64;
    }

    /// True from the moment more than
    /// [`Config::send_high_mark`](crate::ws::Config::send_high_mark) bytes
    /// are queued for sending ([`buffered_amount`](Self::buffered_amount))
    /// until taking them out leaves at most
    /// [`Config::send_low_mark`](crate::ws::Config::send_low_mark), which
    /// [`Event::Drained`] reports. Always false without a high mark.
    #[inline]
    pub fn is_backpressured(&self) -> bool {
        self.send.flow().is_above(self.buffered_amount())
    }

    /// Queues [`Event::Drained`] when the send queue went from above the
    /// high mark to at most the low mark since the last one; returns
    /// whether it did. Once per drain, and never after `Event::Closed`.
    #[cold]
    pub(super) fn queue_drained(&mut self) -> bool {
        let queued = self.buffered_amount();
        if self.is_finished() || !self.send.flow_mut().take_drained(queued) {
            return false;
        }
        self.emit(Event::Drained);
        true
    }
}

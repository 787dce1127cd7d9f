//! The connection's timers: the idle timeout and the heartbeat. Both
//! start at the first `handle_timeout` call; the idle deadline moves on
//! at every call that follows input from the peer.

use super::{Connection, Event, State};
use crate::timer::TimerKind;
use std::time::Instant;

/// The connection's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Nothing heard from the peer for the idle timeout: the connection
    /// ends. Checked first, so an idle connection sends no heartbeat.
    Idle,
    /// The next heartbeat frame is due.
    Heartbeat,
}

impl TimerKind for Timer {
    type Slots = [Option<Instant>; 2];

    fn index(self) -> usize {
        match self {
            Self::Idle => 0,
            Self::Heartbeat => 1,
        }
    }
}

impl Connection {
    /// The earliest deadline (idle timeout or next heartbeat), once timers
    /// were started by a first [`handle_timeout`](Self::handle_timeout)
    /// call; `None` once the connection is finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Open {
            return None;
        }
        self.timers.next()
    }

    /// Runs the timers due at `now`. The first call starts them; input
    /// received since the previous call moves the idle deadline to
    /// `now + idle_timeout`. When the idle deadline has passed the
    /// connection ends with [`Event::IdleTimeout`]; when the heartbeat is
    /// due its frame is queued (skipped if the send queue has no room for
    /// it) and the next one is set `interval` from `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Open {
            return;
        }
        let t = &mut self.timers;
        if !self.timers_started || self.heard_from_peer {
            t.set_after(Timer::Idle, now, self.idle_timeout);
            self.heard_from_peer = false;
        }
        if !self.timers_started {
            self.timers_started = true;
            let interval = self.heartbeat.as_ref().map(|(d, _)| *d);
            t.set_after(Timer::Heartbeat, now, interval);
            return;
        }
        if t.expired(Timer::Idle, now) {
            self.state = State::Closed;
            self.queue_found();
            self.events.push_back(Event::IdleTimeout);
            self.stats.errors.idle_timeout += 1;
            return;
        }
        let Some((interval, frame)) = &self.heartbeat else {
            return;
        };
        if t.expired(Timer::Heartbeat, now) {
            // A heartbeat behind a full queue would prove nothing; skip it.
            if self.send.has_room(frame.len()) {
                self.send.buf_mut().extend_from_slice(frame);
                self.stats.tx.frames += 1;
                self.stats.heartbeats += 1;
            } else {
                self.stats.heartbeats_skipped += 1;
            }
            t.set_after(Timer::Heartbeat, now, Some(*interval));
        }
    }
}

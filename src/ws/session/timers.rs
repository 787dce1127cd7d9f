//! The session's timers: keepalive pings, the pong deadline, the close
//! deadline. A timer that passes fails the session through `fail` (in
//! `mod.rs`, with the other transitions); a keepalive ping is a command.

use super::{Session, State};
use crate::ws::error::{Error, TimeoutKind};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The session's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Open: send a ping after this long without inbound traffic.
    Keepalive,
    /// Open or ending: nothing arrived after a keepalive ping.
    Pong,
    /// Close sent, or a terminal step waiting: the closing handshake.
    Close,
}

impl Timer {
    const COUNT: usize = 3;

    fn index(self) -> usize {
        match self {
            Self::Keepalive => 0,
            Self::Pong => 1,
            Self::Close => 2,
        }
    }
}

/// Each timer's deadline, if armed.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TimerTable {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines.get(timer.index()).copied().flatten()
    }

    fn set(&mut self, timer: Timer, at: Option<Instant>) {
        if let Some(slot) = self.deadlines.get_mut(timer.index()) {
            *slot = at;
        }
    }

    fn stop(&mut self, timer: Timer) {
        self.set(timer, None);
    }

    /// Arms `timer` at `now + after`, unless it is armed already. A
    /// deadline past what `Instant` can hold is never reached: the timer
    /// stays unarmed.
    fn start(&mut self, timer: Timer, now: Instant, after: Option<Duration>) {
        if self.get(timer).is_none() {
            self.set(timer, after.and_then(|d| now.checked_add(d)));
        }
    }

    fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    /// The earliest deadline.
    fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    /// The latest `now` passed to `handle_timeout` (or handed over by the
    /// opening handshake).
    pub(super) now: Option<Instant>,
    /// Inbound bytes arrived since the last `handle_timeout`.
    activity: bool,
    table: TimerTable,
}

impl Session {
    /// The earliest deadline, once timers were started by a first
    /// [`handle_timeout`](Self::handle_timeout) call. Every deadline it
    /// returns is acted on by `handle_timeout` at that instant.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.table.next()
    }

    /// Runs the timers due at `now` and arms new ones. Call it once when the
    /// session starts (timers start then) and after every `receive`;
    /// inbound traffic seen since the previous call counts as activity at
    /// `now`. Timers armed by commands in between (a close timeout after
    /// [`close`](Self::close)) count from the latest `now` seen.
    ///
    /// While a failure or the peer's Close waits behind unpolled events,
    /// the close deadline (and a pong deadline already armed) keeps
    /// running: when it passes, the waiting step is carried out at once
    /// (the Close frame it calls for goes out, and its [`Event::Closed`]
    /// follows the events still waiting), so an application that stops
    /// draining events still sees the connection end.
    ///
    /// [`Event::Closed`]: crate::ws::Event::Closed
    pub fn handle_timeout(&mut self, now: Instant) {
        self.timers.now = Some(now);
        let t = &mut self.timers.table;
        if std::mem::take(&mut self.timers.activity) {
            t.stop(Timer::Pong);
            t.stop(Timer::Keepalive);
        }
        let pong = t.is_due(Timer::Pong, now);
        let keepalive = t.is_due(Timer::Keepalive, now);
        let close = t.is_due(Timer::Close, now);
        match self.state {
            State::Ending { .. } if pong || close => self.end_now(),
            State::Open if pong => {
                let _ = self.fail(Error::Timeout(TimeoutKind::Pong));
            }
            State::Open if keepalive => self.keepalive_ping(now),
            State::CloseSent if close => {
                let _ = self.fail(Error::Timeout(TimeoutKind::Close));
            }
            _ => {}
        }
        self.arm_timers();
    }

    /// Sends a keepalive ping and starts the pong deadline.
    fn keepalive_ping(&mut self, now: Instant) {
        self.ping_counter = self.ping_counter.wrapping_add(1);
        let payload = Bytes::copy_from_slice(&self.ping_counter.to_be_bytes());
        let _ = self.ping(payload);
        let t = &mut self.timers.table;
        t.stop(Timer::Keepalive);
        t.start(Timer::Pong, now, Some(self.config.pong_timeout));
    }

    /// Sets the deadlines the current state needs, from the latest `now`,
    /// and stops the others: keepalive and pong while open; pong (if
    /// armed) and close while a terminal step waits; close after this
    /// side's Close; none once finished.
    pub(super) fn arm_timers(&mut self) {
        let Some(now) = self.timers.now else { return };
        let (keepalive, pong, close) = match self.state {
            State::Open => (true, true, false),
            State::CloseSent => (false, false, true),
            State::Ending { .. } => (false, true, true),
            State::Connecting(_) | State::Closed | State::Failed(_) => (false, false, false),
        };
        let c = &self.config;
        let t = &mut self.timers.table;
        if keepalive {
            t.start(Timer::Keepalive, now, c.keepalive_interval);
        } else {
            t.stop(Timer::Keepalive);
        }
        if !pong {
            t.stop(Timer::Pong);
        }
        if close {
            t.start(Timer::Close, now, c.close_timeout);
        } else {
            t.stop(Timer::Close);
        }
    }

    /// Inbound bytes arrived; the next `handle_timeout` counts them.
    #[inline]
    pub(super) fn note_activity(&mut self) {
        self.timers.activity = true;
    }
}

//! The session's timers: keepalive pings, the pong deadline, the close
//! deadline. A timer that passes fails the session through `fail` (in
//! `mod.rs`, with the other transitions); a keepalive ping is a command.

use super::{Session, State};
use crate::buf::Intake;
use crate::timer::{Clock, TimerKind, TimerTable};
use crate::ws::error::{Error, SendErrorKind, TimeoutKind};
use crate::ws::frame::OpCode;
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

impl TimerKind for Timer {
    type Slots = [Option<Instant>; 3];

    fn index(self) -> usize {
        match self {
            Self::Keepalive => 0,
            Self::Pong => 1,
            Self::Close => 2,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    /// The latest `now` passed to `handle_timeout` (or handed over by the
    /// opening handshake): an earlier one passed after it counts as it.
    pub(super) clock: Clock,
    /// Inbound bytes arrived since the last `handle_timeout`.
    activity: bool,
    table: TimerTable<Timer>,
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
    /// [`close`](Self::close)) count from the latest `now` seen. A `now`
    /// earlier than one passed before counts as that one, so no deadline
    /// moves back.
    ///
    /// While a failure or the peer's Close waits behind unpolled events,
    /// the close deadline (and a pong deadline already armed) keeps
    /// running: when it passes, the waiting step is carried out at once
    /// (the Close frame it calls for goes out, and its [`Event::Closed`]
    /// follows the events still waiting), so an application that stops
    /// draining events still sees the connection end. The same holds for
    /// input left unparsed behind an inflated message until it is polled:
    /// the close deadline runs while it waits, and at it that input is
    /// parsed, as far as the event bound allows. Leaving the open state
    /// (`close`, say) starts the closing handshake's own deadline.
    ///
    /// [`Event::Closed`]: crate::ws::Event::Closed
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.timers.clock.advance(now);
        self.counters.tick(now);
        let t = &mut self.timers.table;
        if std::mem::take(&mut self.timers.activity) {
            t.stop(Timer::Pong);
            t.stop(Timer::Keepalive);
        }
        let pong = t.expired(Timer::Pong, now);
        let keepalive = t.expired(Timer::Keepalive, now);
        let close = t.expired(Timer::Close, now);
        if close && self.intake == Intake::Deferred {
            // Input taken but left unparsed behind an inflated message is
            // parsed at the close deadline (up to the event bound), so that
            // a Close or a fault in it is acted on as it would have been
            // without the extension.
            self.catch_up();
            if matches!(self.state, State::Open) {
                self.timers.table.stop(Timer::Close);
            }
        }
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

    /// Sends a keepalive ping and starts the pong deadline. A full send
    /// queue (or budget) takes it anyway, past the bound by this one small
    /// frame per interval, so that the deadline always follows a ping.
    fn keepalive_ping(&mut self, now: Instant) {
        self.ping_counter = self.ping_counter.wrapping_add(1);
        let payload = Bytes::copy_from_slice(&self.ping_counter.to_be_bytes());
        let sent = match self.ping(payload.clone()) {
            Ok(()) => true,
            Err(e) if matches!(e.kind, SendErrorKind::QueueFull | SendErrorKind::OverBudget) => {
                self.write_control(OpCode::Ping, payload.clone());
                true
            }
            Err(_) => false,
        };
        if sent {
            self.counters.probe_sent(payload, now);
        }
        self.timers.table.stop(Timer::Keepalive);
        self.start(Timer::Pong, now, Some(self.config.pong_timeout));
    }

    /// Arms `timer` at `now + after`, unless it is armed already.
    fn start(&mut self, timer: Timer, now: Instant, after: Option<Duration>) {
        let t = &mut self.timers.table;
        if t.get(timer).is_none() {
            t.set_after(timer, now, after);
        }
    }

    /// Sets the deadlines the current state needs, from the latest `now`,
    /// and stops the others: keepalive and pong while open (and close
    /// while input waits unparsed behind an inflated message); pong (if
    /// armed) and close while a terminal step waits; close after this
    /// side's Close; none once finished.
    pub(super) fn arm_timers(&mut self) {
        let Some(now) = self.timers.clock.latest() else {
            return;
        };
        let (keepalive, pong, close) = match self.state {
            State::Open => (true, true, self.input_deferred()),
            State::CloseSent => (false, false, true),
            State::Ending { .. } => (false, true, true),
            State::Connecting(_) | State::Closed | State::Failed(_) => (false, false, false),
        };
        if keepalive {
            self.start(Timer::Keepalive, now, self.config.keepalive_interval);
        } else {
            self.timers.table.stop(Timer::Keepalive);
        }
        if !pong {
            self.timers.table.stop(Timer::Pong);
        }
        if close {
            self.start(Timer::Close, now, self.config.close_timeout);
        } else {
            self.timers.table.stop(Timer::Close);
        }
    }

    /// The configured close timeout: how long the closing handshake may
    /// take, and what an async driver gives the last output to go out
    /// once the session is finished.
    #[cfg(feature = "tokio")]
    pub(crate) fn close_timeout(&self) -> Option<Duration> {
        self.config.close_timeout
    }

    /// Leaving Open: a close deadline set there was for input waiting
    /// behind an inflated message; the one the next state needs counts
    /// from now.
    pub(super) fn leave_open(&mut self) {
        self.timers.table.stop(Timer::Close);
    }

    /// True while input taken earlier waits unparsed behind an inflated
    /// message that has not been polled.
    fn input_deferred(&self) -> bool {
        self.intake == Intake::Deferred && !self.recv.is_empty()
    }

    /// Inbound bytes arrived; the next `handle_timeout` counts them.
    #[inline]
    pub(super) fn note_activity(&mut self) {
        self.timers.activity = true;
    }
}

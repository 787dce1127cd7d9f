//! The connection's timers: the idle timeout and the heartbeat, their
//! settings and their deadlines. A timer is armed from the `now` of a
//! `handle_timeout` call: the first one, the first after input from the
//! peer (the idle timer), the first after it was set; an older `now` than
//! one passed before counts as that one ([`Clock`]).

use super::{Connection, EncodeError, State};
use crate::timer::{Clock, TimerKind, TimerTable};
use bytes::Bytes;
use std::time::{Duration, Instant};

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

/// What [`Timers::run`] found due.
pub(super) enum Due<'a> {
    /// Nothing.
    Nothing,
    /// The idle deadline passed: the connection ends.
    Idle,
    /// This heartbeat frame is to be queued (the next one is already
    /// scheduled).
    Heartbeat(&'a Bytes),
}

/// The timer settings and deadlines of a [`Connection`].
#[derive(Debug)]
pub(super) struct Timers {
    table: TimerTable<Timer>,
    /// `None`: no idle timeout. Never zero.
    idle_timeout: Option<Duration>,
    /// The interval (never zero) and the frame, sent verbatim.
    heartbeat: Option<(Duration, Bytes)>,
    /// Arm the idle timer from the next `now`: at the start, after input
    /// from the peer, after the timeout was set.
    restart_idle: bool,
    /// Arm the heartbeat timer from the next `now`: at the start, after
    /// the heartbeat was set.
    restart_heartbeat: bool,
    /// A timer was set since the last `run` and waits for its `now`.
    set_since_run: bool,
    /// The latest `now` passed to `run`.
    clock: Clock,
}

impl Timers {
    /// The heartbeat frame's bytes, when one is set.
    pub(super) fn heartbeat_len(&self) -> usize {
        self.heartbeat.as_ref().map_or(0, |(_, frame)| frame.len())
    }

    /// Timers with the configured settings, started by the first `run`.
    pub(super) fn new(
        idle_timeout: Option<Duration>,
        heartbeat: Option<(Duration, Bytes)>,
    ) -> Self {
        let mut timers = Self {
            table: TimerTable::default(),
            idle_timeout: None,
            heartbeat: None,
            restart_idle: true,
            restart_heartbeat: true,
            set_since_run: false,
            clock: Clock::default(),
        };
        timers.set_idle_timeout(idle_timeout);
        timers.set_heartbeat(heartbeat);
        timers
    }

    /// Sets the idle timeout; a zero one is none.
    pub(super) fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.idle_timeout = timeout.filter(|d| !d.is_zero());
        self.restart_idle = true;
        self.disarm_or_wait(Timer::Idle, self.idle_timeout.is_some());
    }

    /// Sets the heartbeat; a zero interval is none.
    pub(super) fn set_heartbeat(&mut self, heartbeat: Option<(Duration, Bytes)>) {
        self.heartbeat = heartbeat.filter(|(d, _)| !d.is_zero());
        self.restart_heartbeat = true;
        self.disarm_or_wait(Timer::Heartbeat, self.heartbeat.is_some());
    }

    /// A timer just set: stopped at once when off, else armed by the next
    /// `run`, which `next` asks for.
    fn disarm_or_wait(&mut self, timer: Timer, on: bool) {
        if on {
            self.set_since_run = true;
        } else {
            self.table.stop(timer);
        }
    }

    /// Input arrived: the idle deadline moves at the next `run`.
    #[inline]
    pub(super) fn heard_from_peer(&mut self) {
        self.restart_idle = true;
    }

    /// Arms what waits for a `now`, then reports what is due at `now`
    /// (the latest one seen, when an older one is passed).
    pub(super) fn run(&mut self, now: Instant) -> Due<'_> {
        let now = self.clock.advance(now);
        self.set_since_run = false;
        let t = &mut self.table;
        if std::mem::take(&mut self.restart_idle) {
            t.set_after(Timer::Idle, now, self.idle_timeout);
        }
        let interval = self.heartbeat.as_ref().map(|(d, _)| *d);
        if std::mem::take(&mut self.restart_heartbeat) {
            t.set_after(Timer::Heartbeat, now, interval);
        }
        // Durations are never zero, so a timer armed just now is not due.
        if t.expired(Timer::Idle, now) {
            return Due::Idle;
        }
        match &self.heartbeat {
            Some((interval, frame)) if t.expired(Timer::Heartbeat, now) => {
                t.set_after(Timer::Heartbeat, now, Some(*interval));
                Due::Heartbeat(frame)
            }
            _ => Due::Nothing,
        }
    }

    /// The earliest deadline; the latest `run`'s `now` (that is, at once)
    /// while a timer set since then waits to be armed; `None` before the
    /// first `run`.
    pub(super) fn next(&self) -> Option<Instant> {
        let next = self.table.next();
        match self.clock.latest() {
            Some(now) if self.set_since_run => Some(next.map_or(now, |at| at.min(now))),
            _ => next,
        }
    }
}

impl Connection {
    /// The earliest deadline (idle timeout or next heartbeat), once timers
    /// were started by a first [`handle_timeout`](Self::handle_timeout)
    /// call; `None` once the connection is finished. After
    /// [`set_idle_timeout`](Self::set_idle_timeout) or
    /// [`set_heartbeat`](Self::set_heartbeat) it is the latest `now`
    /// passed to `handle_timeout`, that is, due at once, until the next
    /// call arms the new timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Open {
            return None;
        }
        self.timers.next()
    }

    /// Sets the idle timeout, replacing [`Builder::idle_timeout`]: the
    /// connection ends with [`Event::IdleTimeout`](super::Event::IdleTimeout)
    /// when nothing arrives from the peer for `timeout`. `None` (or a zero
    /// duration) turns it off at once.
    ///
    /// The connection reads no clock, so the new timeout starts at the
    /// next [`handle_timeout(now)`](Self::handle_timeout): the deadline is
    /// `now + timeout`, however long the peer was silent before, and input
    /// moves it on as usual. Until that call
    /// [`poll_timeout`](Self::poll_timeout) says it is due. On a finished
    /// connection this does nothing.
    ///
    /// [`Builder::idle_timeout`]: crate::prefix::Builder::idle_timeout
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection, Event};
    /// use std::time::{Duration, Instant};
    ///
    /// let t0 = Instant::now();
    /// let mut conn = Connection::new(Config::default());
    /// conn.handle_timeout(t0);
    /// assert_eq!(conn.poll_timeout(), None);
    ///
    /// conn.set_idle_timeout(Some(Duration::from_secs(30)));
    /// conn.handle_timeout(t0 + Duration::from_secs(1));
    /// let deadline = t0 + Duration::from_secs(31);
    /// assert_eq!(conn.poll_timeout(), Some(deadline));
    /// conn.handle_timeout(deadline);
    /// assert_eq!(conn.poll_event(), Some(Event::IdleTimeout));
    /// assert!(conn.is_finished());
    /// ```
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.timers.set_idle_timeout(timeout);
    }

    /// Sets the heartbeat, replacing [`Builder::heartbeat`]: every
    /// `interval` the frame of `header` and `body` is queued, framed by
    /// this connection's own layout (`header` is the bytes before the
    /// length field, as for
    /// [`send_with_header`](Self::send_with_header)). A zero `interval`
    /// stops the heartbeat, as [`stop_heartbeat`](Self::stop_heartbeat)
    /// does. When the frame cannot be encoded nothing changes and the
    /// error is returned.
    ///
    /// The connection reads no clock, so the new heartbeat starts at the
    /// next [`handle_timeout(now)`](Self::handle_timeout): the first frame
    /// is due at `now + interval`, whatever was scheduled before. Until
    /// that call [`poll_timeout`](Self::poll_timeout) says it is due. A
    /// heartbeat that finds the send queue full is skipped (see
    /// [`Stats::heartbeats_skipped`](super::Stats::heartbeats_skipped)).
    /// On a finished connection this does nothing.
    ///
    /// [`Builder::heartbeat`]: crate::prefix::Builder::heartbeat
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection};
    /// use std::time::{Duration, Instant};
    ///
    /// // Pomelo: 1-byte package type, 3-byte length; the handshake reply
    /// // gives the heartbeat interval, and a heartbeat is an empty package
    /// // of type 3.
    /// let pomelo = Config::builder().length_field_offset(1).length_field_width(3).build()?;
    /// let mut conn = Connection::new(pomelo);
    /// let t0 = Instant::now();
    /// conn.handle_timeout(t0);
    ///
    /// conn.set_heartbeat(Duration::from_secs(3), &[3], &[])?;
    /// conn.handle_timeout(t0);
    /// conn.handle_timeout(t0 + Duration::from_secs(3));
    /// let mut wire = Vec::new();
    /// conn.poll_transmit(&mut wire);
    /// assert_eq!(wire, [3, 0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_heartbeat(
        &mut self,
        interval: Duration,
        header: &[u8],
        body: &[u8],
    ) -> Result<(), EncodeError> {
        let frame = self.encoder.frame(header, std::slice::from_ref(&body))?;
        let mut bytes = Vec::with_capacity(frame.len());
        frame.write_to(&mut bytes);
        self.timers.set_heartbeat(Some((interval, bytes.into())));
        Ok(())
    }

    /// Stops the heartbeat at once: no more heartbeat frames, and
    /// [`poll_timeout`](Self::poll_timeout) no longer counts it.
    /// [`set_heartbeat`](Self::set_heartbeat) starts it again.
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection};
    /// use std::time::{Duration, Instant};
    ///
    /// let config = Config::builder().heartbeat(Duration::from_secs(5), vec![0, 0, 0, 0]).build()?;
    /// let mut conn = Connection::new(config);
    /// let t0 = Instant::now();
    /// conn.handle_timeout(t0);
    /// assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    /// conn.stop_heartbeat();
    /// assert_eq!(conn.poll_timeout(), None);
    /// # Ok::<(), sansproto::prefix::ConfigError>(())
    /// ```
    pub fn stop_heartbeat(&mut self) {
        self.timers.set_heartbeat(None);
    }
}

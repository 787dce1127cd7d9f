//! Recording: the log a [`Pair`](super::Pair) writes its transcript with,
//! and [`Recorder`], which records one machine under any driving code.

use super::{Action, Side, Transcript};
use crate::Driver;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// A transcript being written, with the virtual time of the last tick.
#[derive(Debug, Clone)]
pub(super) struct Log {
    transcript: Transcript,
    /// The instant the times are counted from; the first tick's, when not
    /// given.
    start: Option<Instant>,
    now: Duration,
    /// The time of a side's last entry, when that entry was a tick: a
    /// second tick at the same time with nothing between is left out.
    last_tick: [Option<Duration>; 2],
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

impl Log {
    pub(super) fn new(start: Option<Instant>) -> Self {
        Log {
            transcript: Transcript::new(),
            start,
            now: Duration::ZERO,
            last_tick: [None; 2],
        }
    }

    pub(super) fn tick(&mut self, side: Side, now: Instant) {
        let start = *self.start.get_or_insert(now);
        self.now = now.saturating_duration_since(start);
        let at = Some(self.now);
        if self.last_tick[index(side)] != at {
            self.transcript.push(self.now, side, Action::Tick);
            self.last_tick[index(side)] = at;
        }
    }

    pub(super) fn push(&mut self, side: Side, action: Action) {
        self.last_tick[index(side)] = None;
        self.transcript.push(self.now, side, action);
    }

    pub(super) fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    pub(super) fn take(&mut self) -> Transcript {
        std::mem::take(&mut self.transcript)
    }
}

/// A [`Driver`] that writes everything its machine does into a
/// [`Transcript`], as the given [`Side`]: bytes read and written, end of
/// stream, events and errors, and every `handle_timeout` call, timed from
/// the first one. Wrap a machine in it to record a session under any code
/// that is generic over [`Driver`] (a blocking loop, an async adapter).
///
/// Commands (sends, pings, closes) are not part of [`Driver`]: run them
/// through [`Recorder::call`] so that the transcript names them and a replay
/// can run them again at the same point.
///
/// ```
/// use sansproto::prefix::{Config, Connection};
/// use sansproto::testkit::{Recorder, Side};
/// use sansproto::Driver;
/// use std::time::Instant;
///
/// let mut rec = Recorder::new(Connection::new(Config::default()), Side::A);
/// rec.handle_timeout(Instant::now());
/// rec.call("send hi", |c| c.send(&b"hi"[..]).unwrap());
/// let mut out = Vec::new();
/// rec.poll_transmit(&mut out);
///
/// let transcript = rec.transcript().clone();
/// let replayed = transcript.replay_with(Side::A, Connection::new(Config::default()), |c, label| {
///     assert_eq!(label, "send hi");
///     c.send(&b"hi"[..]).unwrap();
/// });
/// assert!(replayed.is_ok());
/// ```
#[derive(Debug)]
pub struct Recorder<D: Driver> {
    inner: D,
    side: Side,
    log: Log,
}

impl<D: Driver> Recorder<D> {
    /// Records `inner` as `side` of the transcript.
    pub fn new(inner: D, side: Side) -> Self {
        Recorder {
            inner,
            side,
            log: Log::new(None),
        }
    }

    /// Records `inner` with times counted from `start` rather than from the
    /// first `handle_timeout` call.
    pub fn starting_at(inner: D, side: Side, start: Instant) -> Self {
        Recorder {
            inner,
            side,
            log: Log::new(Some(start)),
        }
    }

    /// Runs a command on the machine and records it under `label`.
    pub fn call<R>(&mut self, label: &str, command: impl FnOnce(&mut D) -> R) -> R {
        self.log.push(self.side, Action::Call(label.to_owned()));
        command(&mut self.inner)
    }

    /// The machine.
    pub fn get_ref(&self) -> &D {
        &self.inner
    }

    /// The machine, for what is not recorded: inspect it freely, but a
    /// command run through this reference is missing from the transcript.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The transcript so far.
    pub fn transcript(&self) -> &Transcript {
        self.log.transcript()
    }

    /// The transcript so far, taken; recording goes on into an empty one.
    pub fn take_transcript(&mut self) -> Transcript {
        self.log.take()
    }

    /// The machine and its transcript.
    pub fn into_parts(self) -> (D, Transcript) {
        (self.inner, self.log.transcript)
    }
}

impl<D: Driver> Driver for Recorder<D>
where
    D::Event: Debug,
{
    type Event = D::Event;
    type Error = D::Error;

    fn receive(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        let result = self.inner.receive(data);
        match &result {
            Ok(0) => {}
            Ok(taken) => {
                let taken = (*taken).min(data.len());
                self.log
                    .push(self.side, Action::Read(data[..taken].to_vec()));
            }
            Err(e) => {
                self.log.push(self.side, Action::Read(data.to_vec()));
                self.log.push(self.side, Action::Error(e.to_string()));
            }
        }
        result
    }

    fn receive_eof(&mut self) -> Result<(), Self::Error> {
        self.log.push(self.side, Action::Eof);
        let result = self.inner.receive_eof();
        if let Err(e) = &result {
            self.log.push(self.side, Action::Error(e.to_string()));
        }
        result
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        let event = self.inner.poll_event()?;
        self.log
            .push(self.side, Action::Event(format!("{event:?}")));
        Some(event)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let before = out.len();
        let n = self.inner.poll_transmit(out);
        if out.len() > before {
            self.log
                .push(self.side, Action::Wrote(out[before..].to_vec()));
        }
        n
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.log.tick(self.side, now);
        self.inner.handle_timeout(now);
    }

    fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

//! Two stream machines joined by in-memory pipes under a virtual clock.

use super::recorder::Log;
use super::{Action, Chunking, Lengths, Side, Transcript};
use crate::Driver;
use std::collections::VecDeque;
use std::fmt::{self, Debug};
use std::time::{Duration, Instant};

/// Two machines, `a` and `b`, each writing to the other through a pipe,
/// under one virtual clock that starts when the pair is made.
///
/// A [`step`](Pair::step) is one turn of a driving loop: both sides' timers
/// at the current time, each side's output into its pipe, one read into
/// each side (cut as the [`Chunking`] says), then every event out into the
/// side's inbox ([`take_events_a`](Pair::take_events_a)). Time moves only
/// when the test moves it ([`advance`](Pair::advance)). Commands go straight
/// to the public fields `a` and `b`, or through
/// [`call_a`](Pair::call_a) / [`call_b`](Pair::call_b) to appear in a
/// [`Transcript`] ([`record`](Pair::record)).
///
/// ```
/// use sansproto::prefix::{Config, Connection, Event};
/// use sansproto::testkit::{Chunking, Pair, Side};
///
/// let conn = || Connection::new(Config::default());
/// let mut pair = Pair::new(conn(), conn(), Chunking::ByteByByte);
/// pair.record();
/// pair.call_a("send ping", |a| a.send(&b"ping"[..]).unwrap());
/// pair.run_until_idle();
/// assert_eq!(pair.take_events(Side::B), [Event::Frame("ping".into())]);
///
/// // The receiving side replays from the transcript alone.
/// let transcript = pair.transcript().unwrap().to_string();
/// let transcript = sansproto::testkit::Transcript::parse(&transcript).unwrap();
/// transcript.assert_replays(Side::B, conn());
/// ```
pub struct Pair<A: Driver, B: Driver> {
    /// One side.
    pub a: A,
    /// The other side.
    pub b: B,
    chunking: Chunking,
    lengths: Lengths,
    start: Instant,
    now: Instant,
    /// What travels to `a`, and what `a` reported.
    inbox_a: Inbox<A>,
    /// What travels to `b`, and what `b` reported.
    inbox_b: Inbox<B>,
    recording: Option<Recording<A, B>>,
    out: Vec<u8>,
}

/// The bytes on their way to one side, and what it reported.
struct Inbox<D: Driver> {
    pipe: VecDeque<u8>,
    delivering: bool,
    events: Vec<D::Event>,
    errors: Vec<D::Error>,
}

impl<D: Driver> Inbox<D> {
    fn new() -> Self {
        Inbox {
            pipe: VecDeque::new(),
            delivering: true,
            events: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Whether a step would deliver anything.
    fn ready(&self) -> bool {
        self.delivering && !self.pipe.is_empty()
    }
}

/// The transcript being written, and how each side's events are written.
struct Recording<A: Driver, B: Driver> {
    log: Log,
    /// Every byte each side wrote into the transcript, joined.
    wire: [Vec<u8>; 2],
    event_a: fn(&A::Event) -> String,
    event_b: fn(&B::Event) -> String,
}

/// Where one side's doings are written, when the pair records.
type Tape<'l, E> = Option<(&'l mut Log, fn(&E) -> String)>;

impl<A: Driver, B: Driver> Pair<A, B> {
    /// Joins `a` and `b`; their timers start at virtual time zero.
    pub fn new(a: A, b: B, chunking: Chunking) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            a,
            b,
            chunking,
            lengths: Lengths::new(chunking),
            start: now,
            now,
            inbox_a: Inbox::new(),
            inbox_b: Inbox::new(),
            recording: None,
            out: Vec::new(),
        };
        pair.tick();
        pair
    }

    fn tape_a(recording: &mut Option<Recording<A, B>>) -> Tape<'_, A::Event> {
        recording.as_mut().map(|r| (&mut r.log, r.event_a))
    }

    fn tape_b(recording: &mut Option<Recording<A, B>>) -> Tape<'_, B::Event> {
        recording.as_mut().map(|r| (&mut r.log, r.event_b))
    }

    /// Cuts the reads from now on as `chunking` says.
    pub fn set_chunking(&mut self, chunking: Chunking) {
        self.chunking = chunking;
        self.lengths = Lengths::new(chunking);
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the pair was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// `side`'s next deadline, as virtual time since the pair was made.
    pub fn next_deadline(&self, side: Side) -> Option<Duration> {
        let at = match side {
            Side::A => self.a.poll_timeout(),
            Side::B => self.b.poll_timeout(),
        };
        at.map(|t| t.saturating_duration_since(self.start))
    }

    /// Runs both sides' timers at the current time and takes their events.
    pub fn tick(&mut self) {
        let now = self.now;
        tick(
            Side::A,
            &mut self.a,
            &mut self.inbox_a,
            now,
            Self::tape_a(&mut self.recording),
        );
        tick(
            Side::B,
            &mut self.b,
            &mut self.inbox_b,
            now,
            Self::tape_b(&mut self.recording),
        );
    }

    /// Moves one step, as a driving loop does: both sides' timers at the
    /// current time, each side's output into its pipe, then one read into
    /// each side (cut as the chunking says), then every event out. Returns
    /// whether anything moved.
    pub fn step(&mut self) -> bool {
        self.tick();
        let mut moved = false;
        transmit(
            Side::A,
            &mut self.a,
            &mut self.out,
            Self::tape_a(&mut self.recording),
        );
        moved |= !self.out.is_empty();
        if let Some(r) = &mut self.recording {
            r.wire[0].extend_from_slice(&self.out);
        }
        self.inbox_b.pipe.extend(self.out.drain(..));
        transmit(
            Side::B,
            &mut self.b,
            &mut self.out,
            Self::tape_b(&mut self.recording),
        );
        moved |= !self.out.is_empty();
        if let Some(r) = &mut self.recording {
            r.wire[1].extend_from_slice(&self.out);
        }
        self.inbox_a.pipe.extend(self.out.drain(..));
        if self.inbox_a.ready() {
            let n = self.lengths.next(self.chunking, self.inbox_a.pipe.len());
            deliver(
                Side::A,
                &mut self.a,
                &mut self.inbox_a,
                n,
                Self::tape_a(&mut self.recording),
            );
            moved = true;
        }
        if self.inbox_b.ready() {
            let n = self.lengths.next(self.chunking, self.inbox_b.pipe.len());
            deliver(
                Side::B,
                &mut self.b,
                &mut self.inbox_b,
                n,
                Self::tape_b(&mut self.recording),
            );
            moved = true;
        }
        moved
    }

    /// Steps until nothing is left to deliver and nothing moves.
    ///
    /// # Panics
    ///
    /// After a million steps without settling (two machines that keep
    /// answering each other for ever).
    pub fn run_until_idle(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() && !self.inbox_a.ready() && !self.inbox_b.ready() {
                return;
            }
        }
        panic!("the pair did not settle within a million steps");
    }

    /// Moves the virtual clock on by `d`, stopping at every deadline of
    /// either side on the way (as a loop woken by `poll_timeout` would) to
    /// run the timers and deliver what they send, and runs until idle.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t > self.now && *t <= target)
                .min();
            let Some(next) = next else { break };
            self.now = next;
            self.run_until_idle();
        }
        self.now = target;
        self.run_until_idle();
    }

    /// Moves the clock to the earlier of the two sides' next deadlines (if
    /// any) and runs until idle; returns the time moved.
    pub fn advance_to_next_deadline(&mut self) -> Option<Duration> {
        let next = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()?;
        let d = next.saturating_duration_since(self.now);
        self.advance(d);
        Some(d)
    }

    /// Stops (or resumes) delivering bytes to `to`; what is sent meanwhile
    /// waits in the pipe, as on a stalled network.
    pub fn set_delivery(&mut self, to: Side, on: bool) {
        match to {
            Side::A => self.inbox_a.delivering = on,
            Side::B => self.inbox_b.delivering = on,
        }
    }

    /// Bytes written towards `to` and not delivered yet.
    pub fn in_flight(&self, to: Side) -> usize {
        match to {
            Side::A => self.inbox_a.pipe.len(),
            Side::B => self.inbox_b.pipe.len(),
        }
    }

    /// Reports end of stream to `to` (its peer closed the transport), then
    /// runs until idle.
    pub fn eof_to(&mut self, to: Side) {
        match to {
            Side::A => eof(
                Side::A,
                &mut self.a,
                &mut self.inbox_a,
                Self::tape_a(&mut self.recording),
            ),
            Side::B => eof(
                Side::B,
                &mut self.b,
                &mut self.inbox_b,
                Self::tape_b(&mut self.recording),
            ),
        }
        self.run_until_idle();
    }

    /// Runs a command on `a`, named `label` in the transcript.
    pub fn call_a<R>(&mut self, label: &str, command: impl FnOnce(&mut A) -> R) -> R {
        if let Some(r) = &mut self.recording {
            r.log.push(Side::A, Action::Call(label.to_owned()));
        }
        command(&mut self.a)
    }

    /// Runs a command on `b`, named `label` in the transcript.
    pub fn call_b<R>(&mut self, label: &str, command: impl FnOnce(&mut B) -> R) -> R {
        if let Some(r) = &mut self.recording {
            r.log.push(Side::B, Action::Call(label.to_owned()));
        }
        command(&mut self.b)
    }

    /// The events `a` reported so far, taken.
    pub fn take_events_a(&mut self) -> Vec<A::Event> {
        collect(
            Side::A,
            &mut self.a,
            &mut self.inbox_a,
            Self::tape_a(&mut self.recording),
        );
        std::mem::take(&mut self.inbox_a.events)
    }

    /// The events `b` reported so far, taken.
    pub fn take_events_b(&mut self) -> Vec<B::Event> {
        collect(
            Side::B,
            &mut self.b,
            &mut self.inbox_b,
            Self::tape_b(&mut self.recording),
        );
        std::mem::take(&mut self.inbox_b.events)
    }

    /// The errors `a`'s `receive` and `receive_eof` returned, taken. Once a
    /// side fails, what was on its way to it is dropped.
    pub fn take_errors_a(&mut self) -> Vec<A::Error> {
        std::mem::take(&mut self.inbox_a.errors)
    }

    /// The errors `b`'s `receive` and `receive_eof` returned, taken.
    pub fn take_errors_b(&mut self) -> Vec<B::Error> {
        std::mem::take(&mut self.inbox_b.errors)
    }

    /// Starts recording a [`Transcript`] (or starts a new one), with times
    /// counted from the pair's start. Both sides' timers run at once, so
    /// that a transcript started before any traffic replays from a fresh
    /// machine.
    pub fn record(&mut self)
    where
        A::Event: Debug,
        B::Event: Debug,
    {
        self.recording = Some(Recording {
            log: Log::new(Some(self.start)),
            wire: [Vec::new(), Vec::new()],
            event_a: |e| format!("{e:?}"),
            event_b: |e| format!("{e:?}"),
        });
        self.tick();
    }

    /// The transcript recorded so far, if recording.
    pub fn transcript(&self) -> Option<&Transcript> {
        self.recording.as_ref().map(|r| r.log.transcript())
    }

    /// The transcript recorded so far, taken; recording goes on into an
    /// empty one.
    pub fn take_transcript(&mut self) -> Option<Transcript> {
        self.recording.as_mut().map(|r| {
            r.wire = [Vec::new(), Vec::new()];
            r.log.take()
        })
    }

    /// Every byte `side` wrote into the transcript being recorded (nothing
    /// when not recording): [`Transcript::written`], joined as it goes.
    pub fn wire(&self, side: Side) -> &[u8] {
        let i = match side {
            Side::A => 0,
            Side::B => 1,
        };
        self.recording.as_ref().map_or(&[], |r| &r.wire[i])
    }
}

/// Pairs of one machine type can be reached by [`Side`].
impl<D: Driver> Pair<D, D> {
    /// The machine on `side`.
    pub fn side(&self, side: Side) -> &D {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// The machine on `side`, mutably.
    pub fn side_mut(&mut self, side: Side) -> &mut D {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// The events `side` reported so far, taken.
    pub fn take_events(&mut self, side: Side) -> Vec<D::Event> {
        match side {
            Side::A => self.take_events_a(),
            Side::B => self.take_events_b(),
        }
    }

    /// The errors `side`'s `receive` and `receive_eof` returned, taken.
    pub fn take_errors(&mut self, side: Side) -> Vec<D::Error> {
        match side {
            Side::A => self.take_errors_a(),
            Side::B => self.take_errors_b(),
        }
    }

    /// Runs a command on `side`, named `label` in the transcript.
    pub fn call<R>(&mut self, side: Side, label: &str, command: impl FnOnce(&mut D) -> R) -> R {
        match side {
            Side::A => self.call_a(label, command),
            Side::B => self.call_b(label, command),
        }
    }
}

impl<A: Driver + Debug, B: Driver + Debug> Debug for Pair<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("a", &self.a)
            .field("b", &self.b)
            .field("chunking", &self.chunking)
            .field("elapsed", &self.elapsed())
            .field("in_flight_to_a", &self.inbox_a.pipe.len())
            .field("in_flight_to_b", &self.inbox_b.pipe.len())
            .field("recording", &self.recording.is_some())
            .finish()
    }
}

fn tick<D: Driver>(
    side: Side,
    machine: &mut D,
    inbox: &mut Inbox<D>,
    now: Instant,
    mut tape: Tape<'_, D::Event>,
) {
    if let Some((log, _)) = &mut tape {
        log.tick(side, now);
    }
    machine.handle_timeout(now);
    collect(side, machine, inbox, tape);
}

fn transmit<D: Driver>(side: Side, machine: &mut D, out: &mut Vec<u8>, tape: Tape<'_, D::Event>) {
    machine.poll_transmit(out);
    if let (Some((log, _)), false) = (tape, out.is_empty()) {
        log.push(side, Action::Wrote(out.clone()));
    }
}

/// One read of `n` bytes from the pipe into `side`, then its events.
fn deliver<D: Driver>(
    side: Side,
    machine: &mut D,
    inbox: &mut Inbox<D>,
    n: usize,
    mut tape: Tape<'_, D::Event>,
) {
    collect(
        side,
        machine,
        inbox,
        tape.as_mut().map(|(l, f)| (&mut **l, *f)),
    );
    let read: Vec<u8> = inbox.pipe.iter().take(n).copied().collect();
    match machine.receive(&read) {
        // Taken (all of it), or refused until its events are polled.
        Ok(taken) => {
            let taken = taken.min(read.len());
            if let (Some((log, _)), true) = (&mut tape, taken > 0) {
                log.push(side, Action::Read(read[..taken].to_vec()));
            }
            inbox.pipe.drain(..taken);
        }
        // The side failed: what it was sent is lost with it.
        Err(e) => {
            if let Some((log, _)) = &mut tape {
                log.push(side, Action::Read(read));
                log.push(side, Action::Error(e.to_string()));
            }
            inbox.errors.push(e);
            inbox.pipe.clear();
        }
    }
    collect(side, machine, inbox, tape);
}

fn eof<D: Driver>(side: Side, machine: &mut D, inbox: &mut Inbox<D>, mut tape: Tape<'_, D::Event>) {
    if let Some((log, _)) = &mut tape {
        log.push(side, Action::Eof);
    }
    if let Err(e) = machine.receive_eof() {
        if let Some((log, _)) = &mut tape {
            log.push(side, Action::Error(e.to_string()));
        }
        inbox.errors.push(e);
    }
    collect(side, machine, inbox, tape);
}

fn collect<D: Driver>(
    side: Side,
    machine: &mut D,
    inbox: &mut Inbox<D>,
    mut tape: Tape<'_, D::Event>,
) {
    while let Some(event) = machine.poll_event() {
        if let Some((log, show)) = &mut tape {
            log.push(side, Action::Event(show(&event)));
        }
        inbox.events.push(event);
    }
}

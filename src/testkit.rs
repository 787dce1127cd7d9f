//! Deterministic tests of any two stream machines (feature `testkit`): a
//! [`Pair`] joined by in-memory pipes under a virtual clock, with the bytes
//! cut into reads whole, byte by byte, or at random points from a seed.
//!
//! ```
//! use sansproto::prefix::{Config, Connection, Event};
//! use sansproto::testkit::{Chunking, Pair};
//!
//! let conn = || Connection::new(Config::default());
//! let mut pair = Pair::new(conn(), conn(), Chunking::Random { seed: 7, max: 3 });
//! pair.a.send(&b"hello"[..]).unwrap();
//! pair.run_until_idle();
//! assert_eq!(pair.take_events_b(), [Event::Frame("hello".into())]);
//! ```

use crate::Driver;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How the bytes in flight are cut into reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// Everything in flight in one read.
    Whole,
    /// One byte per read.
    ByteByByte,
    /// Reads of 1 to `max` bytes, their lengths drawn from `seed`.
    Random {
        /// The seed of the lengths.
        seed: u64,
        /// The longest read.
        max: usize,
    },
}

/// The read lengths, drawn from the crate's seeded randomness.
struct Lengths(crate::Random);

impl std::fmt::Debug for Lengths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lengths")
    }
}

impl Lengths {
    fn next(&mut self, max: usize) -> usize {
        1 + (self.0.next_u32() as usize) % max.max(1)
    }
}

/// Two machines, `a` and `b`, each writing to the other through a pipe,
/// under one virtual clock that starts when the pair is made.
#[derive(Debug)]
pub struct Pair<A: Driver, B: Driver> {
    /// One side.
    pub a: A,
    /// The other side.
    pub b: B,
    chunking: Chunking,
    lengths: Lengths,
    start: Instant,
    now: Instant,
    to_a: VecDeque<u8>,
    to_b: VecDeque<u8>,
    events_a: Vec<A::Event>,
    events_b: Vec<B::Event>,
    out: Vec<u8>,
}

impl<A: Driver, B: Driver> Pair<A, B> {
    /// Joins `a` and `b`; their timers start at virtual time zero.
    pub fn new(a: A, b: B, chunking: Chunking) -> Self {
        let now = Instant::now();
        let seed = match chunking {
            Chunking::Random { seed, .. } => seed,
            _ => 0,
        };
        let mut pair = Self {
            a,
            b,
            chunking,
            lengths: Lengths(crate::seeded_random(seed)),
            start: now,
            now,
            to_a: VecDeque::new(),
            to_b: VecDeque::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            out: Vec::new(),
        };
        pair.a.handle_timeout(now);
        pair.b.handle_timeout(now);
        pair
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the pair was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves one step, as a driving loop does: both sides' timers at the
    /// current time, each side's output into its pipe, then one read into
    /// each side (cut as the chunking says), then every event out. Returns
    /// whether anything moved.
    pub fn step(&mut self) -> bool {
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        let mut moved = false;
        self.a.poll_transmit(&mut self.out);
        moved |= !self.out.is_empty();
        self.to_b.extend(self.out.drain(..));
        self.b.poll_transmit(&mut self.out);
        moved |= !self.out.is_empty();
        self.to_a.extend(self.out.drain(..));
        moved |= deliver(
            &mut self.a,
            &mut self.to_a,
            self.chunking,
            &mut self.lengths,
            &mut self.events_a,
        );
        moved |= deliver(
            &mut self.b,
            &mut self.to_b,
            self.chunking,
            &mut self.lengths,
            &mut self.events_b,
        );
        moved
    }

    /// Steps until nothing is in flight and nothing moves.
    ///
    /// # Panics
    ///
    /// After a million steps without settling (two machines that keep
    /// answering each other for ever).
    pub fn run_until_idle(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() && self.to_a.is_empty() && self.to_b.is_empty() {
                return;
            }
        }
        panic!("the pair did not settle within a million steps");
    }

    /// Moves the virtual clock on by `d`, running both sides' timers, then
    /// runs until idle.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        collect(&mut self.a, &mut self.events_a);
        collect(&mut self.b, &mut self.events_b);
        self.run_until_idle();
    }

    /// Moves the clock to the earlier of the two sides' next deadlines (if
    /// any) and runs until idle; returns the time moved.
    pub fn advance_to_next_deadline(&mut self) -> Option<Duration> {
        let next = match (self.a.poll_timeout(), self.b.poll_timeout()) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => return None,
        };
        let d = next.saturating_duration_since(self.now);
        self.advance(d);
        Some(d)
    }

    /// The events `a` reported so far, taken.
    pub fn take_events_a(&mut self) -> Vec<A::Event> {
        std::mem::take(&mut self.events_a)
    }

    /// The events `b` reported so far, taken.
    pub fn take_events_b(&mut self) -> Vec<B::Event> {
        std::mem::take(&mut self.events_b)
    }
}

/// One read's worth from `pipe` into `side`, then its events.
fn deliver<D: Driver>(
    side: &mut D,
    pipe: &mut VecDeque<u8>,
    chunking: Chunking,
    lengths: &mut Lengths,
    events: &mut Vec<D::Event>,
) -> bool {
    collect(side, events);
    if pipe.is_empty() {
        return false;
    }
    let n = match chunking {
        Chunking::Whole => pipe.len(),
        Chunking::ByteByByte => 1,
        Chunking::Random { max, .. } => lengths.next(max).min(pipe.len()),
    };
    let read: Vec<u8> = pipe.iter().take(n).copied().collect();
    match side.receive(&read) {
        // Taken (all of it), or refused until its events are polled.
        Ok(taken) => {
            pipe.drain(..taken);
        }
        // The side failed: what it was sent is lost with it.
        Err(_) => pipe.clear(),
    }
    collect(side, events);
    true
}

fn collect<D: Driver>(side: &mut D, events: &mut Vec<D::Event>) {
    while let Some(event) = side.poll_event() {
        events.push(event);
    }
}

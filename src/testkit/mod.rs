//! Deterministic tests of this crate's machines (feature `testkit`).
//!
//! - [`Pair`]: two stream machines (anything that implements [`Driver`])
//!   joined by in-memory pipes under a virtual clock, with the bytes cut
//!   into reads whole, byte by byte, or at points drawn from a seed.
//! - [`Transcript`]: what a pair (or one machine wrapped in a [`Recorder`])
//!   wrote, read, reported and did with time, saved as text and replayed
//!   against a fresh machine, which must write the same bytes and report the
//!   same events.
//! - [`Network`]: datagram endpoints joined by a simulated network that
//!   loses, duplicates, reorders and delays datagrams and enforces an MTU,
//!   every choice drawn from a seed.
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
//!
//! [`Driver`]: crate::Driver

mod conditions;
mod network;
mod pair;
mod recorder;
mod replay;
mod transcript;

pub use conditions::{Arrival, Conditions, DatagramNode, Fate, NetworkStats, Transit};
pub use network::Network;
pub use pair::Pair;
pub use recorder::Recorder;
pub use replay::ReplayError;
pub use transcript::{Action, Entry, Transcript, TranscriptError, TranscriptErrorKind};

/// One of the two machines of a [`Pair`] or a [`Transcript`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The first machine (`pair.a`), written `a` in a transcript.
    A,
    /// The second machine (`pair.b`), written `b` in a transcript.
    B,
}

impl Side {
    /// The other machine.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// The letter a transcript writes for it.
    pub fn letter(self) -> char {
        match self {
            Side::A => 'a',
            Side::B => 'b',
        }
    }
}

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
    /// Reads drawn from `seed`: half of them 1 to 16 bytes long (to cut
    /// headers and characters apart), the others 1 to `max` bytes.
    Mixed {
        /// The seed of the lengths.
        seed: u64,
        /// The longest read.
        max: usize,
    },
}

impl Chunking {
    fn seed(self) -> u64 {
        match self {
            Chunking::Random { seed, .. } | Chunking::Mixed { seed, .. } => seed,
            Chunking::Whole | Chunking::ByteByByte => 0,
        }
    }
}

/// The read lengths, drawn from the crate's seeded randomness.
struct Lengths(crate::Random);

impl std::fmt::Debug for Lengths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lengths")
    }
}

impl Lengths {
    fn new(chunking: Chunking) -> Self {
        Lengths(crate::seeded_random(chunking.seed()))
    }

    /// The length of the next read out of `pending` bytes (at least 1).
    fn next(&mut self, chunking: Chunking, pending: usize) -> usize {
        let n = match chunking {
            Chunking::Whole => pending,
            Chunking::ByteByByte => 1,
            Chunking::Random { max, .. } => self.upto(max),
            Chunking::Mixed { max, .. } => {
                let small = self.0.next_u32() & 1 == 0;
                self.upto(if small { max.min(16) } else { max })
            }
        };
        n.clamp(1, pending.max(1))
    }

    fn upto(&mut self, max: usize) -> usize {
        1 + (self.0.next_u32() as usize) % max.max(1)
    }
}

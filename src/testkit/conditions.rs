//! What the simulated network is made of: the nodes it joins, the
//! conditions it imposes, and what it reports about each datagram.

use crate::datagram::{Endpoint, Event};
use bytes::Bytes;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Anything with the shape of a datagram [`Endpoint`]: datagrams in with
/// their source and the time, datagrams out one at a time with their
/// destination, events, and timers.
pub trait DatagramNode {
    /// A node's address.
    type Addr: Clone + Eq + Hash + Debug;
    /// What the node reports.
    type Event;

    /// Feeds one datagram from `from`, received at `now`; hands it back
    /// when the node cannot take it until its events are polled.
    fn receive(&mut self, from: Self::Addr, datagram: Bytes, now: Instant) -> Result<(), Bytes>;

    /// Appends the next datagram to send to `out` and returns its
    /// destination, or `None` when nothing is queued.
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<Self::Addr>;

    /// Takes the next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// The earliest instant at which `handle_timeout` has work to do.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Runs every timer due at `now`.
    fn handle_timeout(&mut self, now: Instant);
}

impl<A: Clone + Eq + Hash + Debug> DatagramNode for Endpoint<A> {
    type Addr = A;
    type Event = Event<A>;

    fn receive(&mut self, from: A, datagram: Bytes, now: Instant) -> Result<(), Bytes> {
        Endpoint::receive(self, from, datagram, now).map_err(|b| b.datagram)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<A> {
        Endpoint::poll_transmit(self, out)
    }

    fn poll_event(&mut self) -> Option<Event<A>> {
        Endpoint::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Endpoint::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Endpoint::handle_timeout(self, now);
    }
}

/// What the simulated network does to each datagram. Probabilities are
/// from 0.0 (never) to 1.0 (always).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conditions {
    /// The chance that a datagram is lost.
    pub loss: f64,
    /// The chance that a datagram that is not lost arrives twice (each copy
    /// with its own delay).
    pub duplicate: f64,
    /// The chance that a datagram is held back behind the ones sent with
    /// it: its delay grows by `latency + jitter`, plus up to that again,
    /// plus one microsecond.
    pub reorder: f64,
    /// The delay every datagram takes.
    pub latency: Duration,
    /// The most each datagram's delay varies above `latency` (drawn
    /// evenly, to the microsecond).
    pub jitter: Duration,
    /// The largest datagram the network carries; larger ones are dropped.
    pub mtu: usize,
}

impl Default for Conditions {
    /// A perfect network: nothing lost, duplicated or reordered, 1 ms of
    /// latency, no jitter, no MTU.
    fn default() -> Self {
        Conditions {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
            mtu: usize::MAX,
        }
    }
}

/// What became of a datagram a node sent, in a [`Transit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// Lost on the way.
    Lost,
    /// Larger than [`Conditions::mtu`]: dropped.
    TooLarge,
    /// No node has the destination address: dropped.
    Unroutable,
    /// On its way, `copies` times (2 when duplicated), and held back
    /// behind the others when `reordered`.
    Delivered {
        /// How many copies arrive.
        copies: usize,
        /// Whether it was held back.
        reordered: bool,
    },
}

/// One datagram a node sent, and its [`Fate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit<A> {
    /// When it was sent, in virtual time since the network was made.
    pub sent: Duration,
    /// The sender.
    pub from: A,
    /// The destination.
    pub to: A,
    /// The datagram.
    pub datagram: Bytes,
    /// What the network did with it.
    pub fate: Fate,
}

/// A datagram copy a [`Network`](super::Network) handed to its destination, in its
/// [`arrivals`](super::Network::arrivals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival<A> {
    /// When it arrived, in virtual time since the network was made.
    pub at: Duration,
    /// The sender.
    pub from: A,
    /// The destination.
    pub to: A,
    /// The datagram.
    pub datagram: Bytes,
    /// Whether the destination took it; `false` when it refused it even
    /// with its events polled (counted in [`NetworkStats::refused`]).
    pub accepted: bool,
}

/// What a [`Network`](super::Network) did with the datagrams it carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Datagrams sent by the nodes.
    pub sent: u64,
    /// Lost on the way.
    pub lost: u64,
    /// Dropped for being over the MTU.
    pub too_large: u64,
    /// Dropped for want of a node at the destination.
    pub unroutable: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Held back behind the others.
    pub reordered: u64,
    /// Copies handed to a destination node.
    pub delivered: u64,
    /// Copies a destination refused even with its events polled.
    pub refused: u64,
}

//! One peer's state, and the timer queue that expires peers and their partial
//! messages.
//!
//! Each peer keeps at most one live entry in the queue, due at the earliest of
//! its idle expiry, its partial messages' deadlines and its next keepalive.
//! Inbound traffic moves the expiry later (and outbound traffic the
//! keepalive) without touching the queue: when the old entry comes due
//! the peer is simply rescheduled. Entries left behind by closed peers or by an
//! earlier reschedule are recognised (generation or instant mismatch) and
//! skipped, so [`Timers::next`] may name an instant a little early, never late.
//! Once stale entries outnumber the live ones they are dropped in bulk
//! ([`Timers::compact`]), so peers closed and reopened faster than their
//! timers come due cannot grow the queue.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use super::segment::Partial;
use super::session::{SessionIds, Trust};
use super::stats::PeerStats;

/// What the endpoint knows about one peer.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Distinguishes this peer entry from earlier ones at the same address.
    pub(crate) generation: u64,
    /// When the peer is closed for idleness unless more traffic arrives.
    pub(crate) expires_at: Instant,
    /// The instant of this peer's live timer entry, if it has one.
    scheduled: Option<Instant>,
    /// Partial messages, oldest first.
    pub(crate) partials: Vec<Partial>,
    /// Payload bytes held in `partials`.
    pub(crate) buffered: usize,
    /// Ids of the messages most recently delivered from this peer
    /// (segmentation on), oldest first.
    delivered: VecDeque<u32>,
    /// What this peer sent and was sent.
    pub(crate) stats: PeerStats,
    /// The session's ids (sessions on).
    pub(crate) session: Option<SessionIds>,
    /// When a keepalive is due unless something is sent to the peer first
    /// (sessions on, with a keepalive interval).
    pub(crate) keepalive_at: Option<Instant>,
    /// Whether the session's address is validated, and its candidate id
    /// (sessions on).
    pub(crate) trust: Trust,
}

impl Peer {
    /// The heap this peer holds: its partial messages and the ids of
    /// those lately delivered.
    pub(crate) fn heap(&self) -> (usize, usize) {
        let partials = crate::memory::slots::<Partial>(self.partials.capacity())
            + self.partials.iter().map(Partial::heap).sum::<usize>();
        (
            partials,
            crate::memory::slots::<u32>(self.delivered.capacity()),
        )
    }

    pub(crate) fn new(generation: u64, expires_at: Instant) -> Self {
        Self {
            generation,
            expires_at,
            scheduled: None,
            partials: Vec::new(),
            buffered: 0,
            delivered: VecDeque::new(),
            stats: PeerStats::default(),
            session: None,
            keepalive_at: None,
            trust: Trust::default(),
        }
    }

    /// True when message `id` was delivered recently enough to be remembered.
    pub(crate) fn was_delivered(&self, id: u32) -> bool {
        self.delivered.contains(&id)
    }

    /// Remembers that message `id` was delivered, forgetting the oldest id
    /// beyond `window`.
    pub(crate) fn record_delivered(&mut self, id: u32, window: usize) {
        if window == 0 {
            return;
        }
        while self.delivered.len() >= window {
            self.delivered.pop_front();
        }
        self.delivered.push_back(id);
    }

    /// The earliest instant at which this peer has a timer to run.
    fn next_due(&self) -> Instant {
        self.partials
            .iter()
            .map(|p| p.deadline)
            .chain(self.keepalive_at)
            .fold(self.expires_at, Instant::min)
    }

    /// Claims the timer entry (`generation`, `at`) if it is this peer's live
    /// one; the peer then has no entry until rescheduled.
    pub(crate) fn take_timer(&mut self, generation: u64, at: Instant) -> bool {
        if self.generation == generation && self.scheduled == Some(at) {
            self.scheduled = None;
            return true;
        }
        false
    }
}

/// One timer entry: "look at `peer` at `at`".
#[derive(Debug)]
pub(crate) struct Timer<A> {
    pub(crate) at: Instant,
    pub(crate) generation: u64,
    pub(crate) peer: A,
}

impl<A> PartialEq for Timer<A> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<A> Eq for Timer<A> {}

impl<A> PartialOrd for Timer<A> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<A> Ord for Timer<A> {
    /// Reversed, so the max-heap yields the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.generation).cmp(&(self.at, self.generation))
    }
}

/// The timer queue.
#[derive(Debug)]
pub(crate) struct Timers<A> {
    heap: BinaryHeap<Timer<A>>,
}

impl<A: Clone> Timers<A> {
    /// The heap the timer queue holds.
    pub(crate) fn heap(&self) -> usize {
        crate::memory::slots::<Timer<A>>(self.heap.capacity())
    }

    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
        }
    }

    /// Makes sure `peer` has a live entry no later than its next due instant.
    pub(crate) fn schedule(&mut self, addr: &A, peer: &mut Peer) {
        let due = peer.next_due();
        if peer.scheduled.is_none_or(|at| due < at) {
            peer.scheduled = Some(due);
            self.heap.push(Timer {
                at: due,
                generation: peer.generation,
                peer: addr.clone(),
            });
        }
    }

    /// Drops the entries no peer in `peers` owns any more, once the queue
    /// holds more than twice as many entries as peers (amortised: each
    /// entry is looked at a bounded number of times). Afterwards it holds
    /// at most one entry per peer.
    pub(crate) fn compact(&mut self, peers: &HashMap<A, Peer>)
    where
        A: Eq + Hash,
    {
        if self.heap.len() <= peers.len().saturating_mul(2).saturating_add(64) {
            return;
        }
        self.heap.retain(|t| {
            peers
                .get(&t.peer)
                .is_some_and(|p| p.generation == t.generation && p.scheduled == Some(t.at))
        });
    }

    /// The earliest entry's instant.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|t| t.at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer<A>> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop()
    }

    /// Entries in the queue, live or stale.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn delivered_window_forgets_oldest() {
        let mut peer = Peer::new(0, Instant::now());
        for id in 0..5 {
            peer.record_delivered(id, 3);
        }
        assert!(!peer.was_delivered(1));
        assert!(peer.was_delivered(2) && peer.was_delivered(4));
        let mut off = Peer::new(0, Instant::now());
        off.record_delivered(1, 0);
        assert!(!off.was_delivered(1));
    }

    #[test]
    fn one_live_entry_per_peer() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let mut peer = Peer::new(7, t0 + Duration::from_secs(30));
        timers.schedule(&"a", &mut peer);
        // A later expiry does not add an entry.
        peer.expires_at = t0 + Duration::from_secs(40);
        timers.schedule(&"a", &mut peer);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(30)));
        assert!(timers.pop_due(t0 + Duration::from_secs(29)).is_none());
        let due = timers.pop_due(t0 + Duration::from_secs(30)).unwrap();
        assert!(!peer.take_timer(6, due.at), "wrong generation");
        assert!(peer.take_timer(due.generation, due.at));
        timers.schedule(&"a", &mut peer);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(40)));
    }

    #[test]
    fn entries_of_gone_peers_are_compacted() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let mut peers = HashMap::new();
        for generation in 0..200u64 {
            let mut peer = Peer::new(generation, t0 + Duration::from_secs(30));
            timers.schedule(&generation, &mut peer);
            // Only every tenth peer stays in the table.
            if generation % 10 == 0 {
                peers.insert(generation, peer);
            }
            timers.compact(&peers);
            assert!(timers.len() <= 2 * peers.len() + 65);
        }
        timers.heap.clear();
        for (addr, peer) in &mut peers {
            peer.scheduled = None;
            timers.schedule(addr, peer);
        }
        timers.compact(&peers);
        assert_eq!(timers.len(), 20, "live entries are kept");
    }
}

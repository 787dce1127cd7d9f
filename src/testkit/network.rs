//! Datagram endpoints joined by a simulated network.

use super::conditions::{Arrival, Conditions, DatagramNode, Fate, NetworkStats, Transit};
use bytes::Bytes;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt::{self, Debug};
use std::time::{Duration, Instant};

/// A copy on its way, ordered by arrival time, then by when it was sent.
struct Flight<A> {
    at: Instant,
    seq: u64,
    from: A,
    to: usize,
    datagram: Bytes,
}

impl<A> PartialEq for Flight<A> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<A> Eq for Flight<A> {}

impl<A> PartialOrd for Flight<A> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<A> Ord for Flight<A> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Node<N: DatagramNode> {
    addr: N::Addr,
    node: N,
    /// Events not yet taken, with the virtual time they were polled.
    events: Vec<(Duration, N::Event)>,
}

/// Datagram nodes ([`Endpoint`](crate::datagram::Endpoint)s, or anything [`DatagramNode`]) joined by a
/// simulated network under a virtual clock. Each datagram a node sends is
/// lost, duplicated, held back (reordered), delayed and checked against the
/// MTU as the [`Conditions`] say, every choice drawn from the seed: the
/// same seed and the same calls give the same run. Time moves only through
/// [`advance`](Network::advance), [`run_for`](Network::run_for) and
/// [`run_until_idle`](Network::run_until_idle), straight to the next
/// arrival or timer deadline.
///
/// ```
/// use sansproto::datagram::{Config, Endpoint, Event};
/// use sansproto::testkit::{Conditions, Network};
/// use std::time::Duration;
///
/// let endpoint = |seed| Endpoint::with_random(Config::segmented(), sansproto::seeded_random(seed));
/// let conditions = Conditions {
///     loss: 0.1,
///     reorder: 0.1,
///     latency: Duration::from_millis(20),
///     jitter: Duration::from_millis(5),
///     ..Conditions::default()
/// };
/// let run = |seed| {
///     let mut net = Network::new(conditions, seed);
///     net.add("a", endpoint(1).unwrap());
///     net.add("b", endpoint(2).unwrap());
///     for i in 0..10u8 {
///         // Three datagrams a message: each is lost with it.
///         net.node_mut(&"a").send("b", vec![i; 4000].into()).unwrap();
///     }
///     net.run_until_idle();
///     let delivered: Vec<_> = net
///         .take_events(&"b")
///         .into_iter()
///         .filter_map(|e| match e {
///             Event::Message { payload, .. } => Some(payload[0]),
///             _ => None,
///         })
///         .collect();
///     (delivered, net.stats())
/// };
/// let (delivered, stats) = run(7);
/// assert_eq!(stats.sent, 30);
/// assert!(delivered.len() < 10 && stats.lost > 0);
/// // The same seed, the same run.
/// assert_eq!(run(7), (delivered, stats));
/// ```
pub struct Network<N: DatagramNode> {
    conditions: Conditions,
    random: crate::Random,
    start: Instant,
    now: Instant,
    nodes: Vec<Node<N>>,
    in_flight: BinaryHeap<Reverse<Flight<N::Addr>>>,
    seq: u64,
    trace: Vec<Transit<N::Addr>>,
    arrivals: Vec<Arrival<N::Addr>>,
    stats: NetworkStats,
}

impl<N: DatagramNode> Network<N> {
    /// An empty network whose choices are drawn from `seed`; its clock
    /// starts now.
    pub fn new(conditions: Conditions, seed: u64) -> Self {
        let now = Instant::now();
        Network {
            conditions,
            random: crate::seeded_random(seed),
            start: now,
            now,
            nodes: Vec::new(),
            in_flight: BinaryHeap::new(),
            seq: 0,
            trace: Vec::new(),
            arrivals: Vec::new(),
            stats: NetworkStats::default(),
        }
    }

    /// Joins `node` to the network at `addr`; its timers start at the
    /// current virtual time.
    ///
    /// # Panics
    ///
    /// When a node already has `addr`.
    pub fn add(&mut self, addr: N::Addr, mut node: N) {
        assert!(self.find(&addr).is_none(), "two nodes at {addr:?}");
        node.handle_timeout(self.now);
        self.nodes.push(Node {
            addr,
            node,
            events: Vec::new(),
        });
    }

    fn find(&self, addr: &N::Addr) -> Option<usize> {
        self.nodes.iter().position(|n| &n.addr == addr)
    }

    fn index(&self, addr: &N::Addr) -> usize {
        self.find(addr)
            .unwrap_or_else(|| panic!("no node at {addr:?}"))
    }

    /// The node at `addr`.
    ///
    /// # Panics
    ///
    /// When no node has `addr`.
    pub fn node(&self, addr: &N::Addr) -> &N {
        &self.nodes[self.index(addr)].node
    }

    /// The node at `addr`, to send from it, say.
    ///
    /// # Panics
    ///
    /// When no node has `addr`.
    pub fn node_mut(&mut self, addr: &N::Addr) -> &mut N {
        let i = self.index(addr);
        &mut self.nodes[i].node
    }

    /// The events the node at `addr` reported so far, taken.
    ///
    /// # Panics
    ///
    /// When no node has `addr`.
    pub fn take_events(&mut self, addr: &N::Addr) -> Vec<N::Event> {
        let i = self.index(addr);
        self.collect(i);
        std::mem::take(&mut self.nodes[i].events)
            .into_iter()
            .map(|(_, event)| event)
            .collect()
    }

    /// The events the node at `addr` reported and that are not yet taken,
    /// oldest first, each with the virtual time (since the network was
    /// made) at which the network polled it: the instant of the timer,
    /// arrival or call that caused it. Unlike
    /// [`take_events`](Network::take_events), it leaves them in place.
    ///
    /// ```
    /// use sansproto::datagram::{CloseReason, Config, Endpoint, Event};
    /// use sansproto::testkit::{Conditions, Network};
    /// use std::time::Duration;
    ///
    /// let mut config = Config::default();
    /// config.idle_timeout = Duration::from_secs(20);
    /// let endpoint = |seed| Endpoint::with_random(config.clone(), sansproto::seeded_random(seed));
    /// let mut net = Network::new(Conditions::default(), 0);
    /// net.add("a", endpoint(1).unwrap());
    /// net.add("b", endpoint(2).unwrap());
    /// net.node_mut(&"a").send("b", "hello".into()).unwrap();
    /// net.run_until_idle();
    /// // b heard from a after the 1 ms of latency, and forgot it 20 s later.
    /// let closed = Event::PeerClosed { peer: "a", reason: CloseReason::IdleTimeout };
    /// let events = net.events(&"b");
    /// assert_eq!(events[0], (Duration::from_millis(1), Event::PeerOpened { peer: "a" }));
    /// assert_eq!(events.last(), Some(&(Duration::from_millis(20_001), closed)));
    /// assert_eq!(net.take_events(&"b").len(), 3);
    /// assert!(net.events(&"b").is_empty());
    /// ```
    ///
    /// # Panics
    ///
    /// When no node has `addr`.
    pub fn events(&mut self, addr: &N::Addr) -> &[(Duration, N::Event)] {
        let i = self.index(addr);
        self.collect(i);
        &self.nodes[i].events
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the network was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Every datagram sent so far, in order, with what became of it.
    pub fn trace(&self) -> &[Transit<N::Addr>] {
        &self.trace
    }

    /// Every datagram copy handed to a destination node so far, in the
    /// order they arrived, with when: a duplicated datagram arrives twice,
    /// a lost or dropped one never.
    ///
    /// ```
    /// use sansproto::datagram::{Config, Endpoint};
    /// use sansproto::testkit::{Conditions, Network};
    /// use std::time::Duration;
    ///
    /// let endpoint = |seed| Endpoint::with_random(Config::default(), sansproto::seeded_random(seed));
    /// let conditions = Conditions {
    ///     duplicate: 1.0,
    ///     latency: Duration::from_millis(10),
    ///     jitter: Duration::from_millis(5),
    ///     ..Conditions::default()
    /// };
    /// let mut net = Network::new(conditions, 3);
    /// net.add(1u8, endpoint(1).unwrap());
    /// net.add(2u8, endpoint(2).unwrap());
    /// net.node_mut(&1).send(2, "twice".into()).unwrap();
    /// net.run_for(Duration::from_millis(20));
    /// assert_eq!(net.trace().len(), 1);
    /// let arrivals = net.arrivals();
    /// assert_eq!(arrivals.len(), 2);
    /// for a in arrivals {
    ///     assert_eq!((a.from, a.to, &a.datagram[..], a.accepted), (1, 2, &b"twice"[..], true));
    ///     assert!(a.at >= Duration::from_millis(10) && a.at <= Duration::from_millis(15));
    /// }
    /// ```
    pub fn arrivals(&self) -> &[Arrival<N::Addr>] {
        &self.arrivals
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetworkStats {
        self.stats
    }

    /// Datagram copies on their way.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Runs everything due at the current time until nothing moves: the
    /// copies that have arrived into their destinations, every node's
    /// timers, its datagrams onto the network, and every event out.
    ///
    /// Arrivals come first: a datagram that arrives at the very instant a
    /// node's timer is due is received before the timer runs, as an event
    /// loop that reads its socket before it checks its timers would do.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            while self
                .in_flight
                .peek()
                .is_some_and(|Reverse(f)| f.at <= self.now)
            {
                if let Some(Reverse(flight)) = self.in_flight.pop() {
                    self.arrive(flight);
                    moved = true;
                }
            }
            for i in 0..self.nodes.len() {
                self.nodes[i].node.handle_timeout(self.now);
                self.collect(i);
                moved |= self.transmit(i);
            }
            if !moved {
                return;
            }
        }
    }

    /// The next arrival or timer deadline, if any.
    pub fn next_wake(&self) -> Option<Instant> {
        let arrival = self.in_flight.peek().map(|Reverse(f)| f.at);
        let timers = self.nodes.iter().filter_map(|n| n.node.poll_timeout());
        arrival.into_iter().chain(timers).min()
    }

    /// Settles, moves the clock to the next arrival or timer deadline and
    /// settles there; false (the clock unmoved) when there is neither.
    pub fn advance(&mut self) -> bool {
        self.settle();
        let Some(next) = self.next_wake() else {
            return false;
        };
        self.now = self.now.max(next);
        self.settle();
        true
    }

    /// Advances from arrival to arrival and deadline to deadline for `d` of
    /// virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let target = self.now + d;
        self.settle();
        while let Some(next) = self.next_wake().filter(|t| *t <= target) {
            self.now = self.now.max(next);
            self.settle();
        }
        self.now = target;
        self.settle();
    }

    /// Advances until nothing is on its way and no node has a timer
    /// running (every peer idle and closed, with endpoints).
    ///
    /// # Panics
    ///
    /// After a million advances (nodes that keep talking for ever).
    pub fn run_until_idle(&mut self) {
        for _ in 0..1_000_000 {
            if !self.advance() {
                return;
            }
        }
        panic!("the network did not settle within a million advances");
    }

    fn collect(&mut self, i: usize) {
        let at = self.elapsed();
        let node = &mut self.nodes[i];
        while let Some(event) = node.node.poll_event() {
            node.events.push((at, event));
        }
    }

    /// Every datagram node `i` has queued, onto the network.
    fn transmit(&mut self, i: usize) -> bool {
        let mut out = Vec::new();
        let mut moved = false;
        while let Some(to) = self.nodes[i].node.poll_transmit(&mut out) {
            let datagram = Bytes::from(std::mem::take(&mut out));
            let from = self.nodes[i].addr.clone();
            self.route(from, to, datagram);
            moved = true;
        }
        self.collect(i);
        moved
    }

    /// Decides a datagram's fate and puts its copies on their way.
    fn route(&mut self, from: N::Addr, to: N::Addr, datagram: Bytes) {
        self.stats.sent += 1;
        let c = self.conditions;
        let dest = self.find(&to);
        let fate = if datagram.len() > c.mtu {
            self.stats.too_large += 1;
            Fate::TooLarge
        } else if self.chance(c.loss) {
            self.stats.lost += 1;
            Fate::Lost
        } else if dest.is_none() {
            self.stats.unroutable += 1;
            Fate::Unroutable
        } else {
            let copies = if self.chance(c.duplicate) { 2 } else { 1 };
            let reordered = self.chance(c.reorder);
            self.stats.duplicated += u64::from(copies == 2);
            self.stats.reordered += u64::from(reordered);
            Fate::Delivered { copies, reordered }
        };
        if let (Fate::Delivered { copies, reordered }, Some(dest)) = (fate, dest) {
            for copy in 0..copies {
                let mut delay = c.latency + self.upto(c.jitter);
                if reordered && copy == 0 {
                    let base = c.latency + c.jitter;
                    delay += base + self.upto(base) + Duration::from_micros(1);
                }
                self.seq += 1;
                self.in_flight.push(Reverse(Flight {
                    at: self.now + delay,
                    seq: self.seq,
                    from: from.clone(),
                    to: dest,
                    datagram: datagram.clone(),
                }));
            }
        }
        self.trace.push(Transit {
            sent: self.elapsed(),
            from,
            to,
            datagram,
            fate,
        });
    }

    fn arrive(&mut self, flight: Flight<N::Addr>) {
        let now = self.now;
        let to = flight.to;
        let result = self.nodes[to]
            .node
            .receive(flight.from.clone(), flight.datagram.clone(), now);
        let result = match result {
            Ok(()) => Ok(()),
            // Backlogged: poll its events, then offer it again.
            Err(datagram) => {
                self.collect(to);
                self.nodes[to]
                    .node
                    .receive(flight.from.clone(), datagram, now)
            }
        };
        match result {
            Ok(()) => self.stats.delivered += 1,
            Err(_) => self.stats.refused += 1,
        }
        self.arrivals.push(Arrival {
            at: self.elapsed(),
            from: flight.from,
            to: self.nodes[to].addr.clone(),
            datagram: flight.datagram,
            accepted: result.is_ok(),
        });
        self.collect(to);
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && f64::from(self.random.next_u32()) < p * 4_294_967_296.0
    }

    /// A duration from zero to `max`, to the microsecond.
    fn upto(&mut self, max: Duration) -> Duration {
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        if micros == 0 {
            return Duration::ZERO;
        }
        let draw = (u64::from(self.random.next_u32()) << 32) | u64::from(self.random.next_u32());
        Duration::from_micros(draw % micros.saturating_add(1))
    }
}

impl<N: DatagramNode> Debug for Network<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("conditions", &self.conditions)
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.addr).collect::<Vec<_>>(),
            )
            .field("elapsed", &self.elapsed())
            .field("in_flight", &self.in_flight.len())
            .field("stats", &self.stats)
            .finish()
    }
}

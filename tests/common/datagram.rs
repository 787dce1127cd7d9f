//! A simulated datagram network for [`Endpoint`] tests: a seeded RNG decides
//! which datagrams are lost, duplicated or delayed (delays overlap, so
//! datagrams reorder), and a virtual clock moves from one delivery or timer
//! to the next, so every timer fires at exactly the instant it names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sansproto::datagram::{Config, Endpoint, Event, SendError, Sessions};

/// How the network mistreats datagrams.
#[derive(Debug, Clone, Copy)]
pub struct Conditions {
    /// Chance that a datagram is lost.
    pub loss: f64,
    /// Chance that a datagram that is not lost arrives twice.
    pub duplicate: f64,
    /// Each copy is delayed by a uniform draw from `min_delay..=max_delay`.
    pub min_delay: Duration,
    /// See `min_delay`.
    pub max_delay: Duration,
}

impl Conditions {
    /// A network that delivers everything after exactly `delay`.
    pub fn perfect(delay: Duration) -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            min_delay: delay,
            max_delay: delay,
        }
    }
}

/// A datagram on the wire or delivered.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// When it was sent or delivered.
    pub at: Instant,
    /// Sender address.
    pub from: SocketAddr,
    /// Destination address.
    pub to: SocketAddr,
    /// The bytes.
    pub bytes: Bytes,
}

/// One endpoint on the network.
pub struct Node {
    /// Its address.
    pub addr: SocketAddr,
    /// The machine under test.
    pub endpoint: Endpoint<SocketAddr>,
    /// Every event it reported, with the virtual time it was taken.
    pub events: Vec<(Instant, Event<SocketAddr>)>,
}

/// The network.
pub struct Net {
    rng: StdRng,
    /// Virtual time zero.
    pub start: Instant,
    /// Virtual now.
    pub now: Instant,
    /// Current conditions; may be changed between steps.
    pub conditions: Conditions,
    /// The endpoints, indexed by the number `add_node` returned.
    pub nodes: Vec<Node>,
    in_flight: BTreeMap<(Instant, u64), Datagram>,
    next_seq: u64,
    /// Every datagram an endpoint transmitted, before loss.
    pub sent: Vec<Datagram>,
    /// Every datagram handed to an endpoint, with its delivery time.
    pub delivered: Vec<Datagram>,
}

impl Net {
    /// An empty network whose randomness comes from `seed`.
    pub fn new(seed: u64, conditions: Conditions) -> Self {
        let start = Instant::now();
        Self {
            rng: StdRng::seed_from_u64(seed),
            start,
            now: start,
            conditions,
            nodes: Vec::new(),
            in_flight: BTreeMap::new(),
            next_seq: 0,
            sent: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// Adds an endpoint at `10.0.0.<n+1>:5000` and returns its number `n`.
    pub fn add_node(&mut self, config: Config) -> usize {
        let n = self.nodes.len();
        let octet = u8::try_from(n + 1).expect("at most 255 nodes");
        let seed = self.rng.random::<u64>();
        self.nodes.push(Node {
            addr: SocketAddr::from(([10, 0, 0, octet], 5000)),
            endpoint: Endpoint::with_random(config, sansproto::seeded_random(seed))
                .expect("valid config"),
            events: Vec::new(),
        });
        n
    }

    /// The address of node `n`.
    pub fn addr(&self, n: usize) -> SocketAddr {
        self.nodes[n].addr
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Has node `from` send `message` to node `to`; its datagrams go on the
    /// wire at once.
    pub fn send(&mut self, from: usize, to: usize, message: Bytes) -> Result<(), SendError> {
        let to = self.addr(to);
        self.nodes[from].endpoint.send(to, message)?;
        self.transmit(from);
        Ok(())
    }

    /// Puts raw bytes on the wire to node `to`, from any address (spoofing
    /// included), subject to the current conditions.
    pub fn inject(&mut self, from: SocketAddr, to: usize, bytes: Bytes) {
        let to = self.addr(to);
        self.put_on_wire(Datagram {
            at: self.now,
            from,
            to,
            bytes,
        });
    }

    /// Runs deliveries and timers in time order up to and including `until`,
    /// then leaves the clock at `until`.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(at) = self.next_instant().filter(|&at| at <= until) {
            self.now = self.now.max(at);
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until nothing is in flight and no timer is pending.
    pub fn run_to_quiet(&mut self) {
        while let Some(at) = self.next_instant() {
            self.now = self.now.max(at);
            self.step();
        }
    }

    /// Events of node `n` so far, without their times.
    pub fn events(&self, n: usize) -> impl Iterator<Item = &Event<SocketAddr>> + '_ {
        self.nodes[n].events.iter().map(|(_, e)| e)
    }

    /// Messages node `n` received, in order, with sender and time.
    pub fn messages(&self, n: usize) -> Vec<(Instant, SocketAddr, Bytes)> {
        self.nodes[n]
            .events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Message { peer, payload } => Some((*at, *peer, payload.clone())),
                _ => None,
            })
            .collect()
    }

    fn next_instant(&self) -> Option<Instant> {
        let delivery = self.in_flight.keys().next().map(|(at, _)| *at);
        let timer = self
            .nodes
            .iter()
            .filter_map(|n| n.endpoint.poll_timeout())
            .min();
        match (delivery, timer) {
            (Some(d), Some(t)) => Some(d.min(t)),
            (d, t) => d.or(t),
        }
    }

    /// Delivers everything due now and runs every due timer.
    fn step(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let datagram = entry.remove();
            let Some(n) = self.nodes.iter().position(|n| n.addr == datagram.to) else {
                continue;
            };
            self.nodes[n]
                .endpoint
                .receive(datagram.from, datagram.bytes.clone(), self.now)
                .unwrap();
            self.delivered.push(Datagram {
                at: self.now,
                ..datagram
            });
        }
        for n in 0..self.nodes.len() {
            let node = &mut self.nodes[n];
            if node.endpoint.poll_timeout().is_some_and(|t| t <= self.now) {
                node.endpoint.handle_timeout(self.now);
            }
            while let Some(event) = node.endpoint.poll_event() {
                node.events.push((self.now, event));
            }
            self.transmit(n);
        }
    }

    /// Puts every datagram node `n` has queued on the wire (sending through
    /// [`Net::send`] and every step do this already).
    pub fn transmit(&mut self, n: usize) {
        let mut out = Vec::new();
        while let Some(to) = self.nodes[n].endpoint.poll_transmit(&mut out) {
            let datagram = Datagram {
                at: self.now,
                from: self.nodes[n].addr,
                to,
                bytes: Bytes::from(std::mem::take(&mut out)),
            };
            self.sent.push(datagram.clone());
            self.put_on_wire(datagram);
        }
    }

    fn put_on_wire(&mut self, datagram: Datagram) {
        let c = self.conditions;
        if self.rng.random_bool(c.loss) {
            return;
        }
        let copies = if self.rng.random_bool(c.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.random_range(c.min_delay..=c.max_delay);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.in_flight
                .insert((self.now + delay, seq), datagram.clone());
        }
    }
}

/// A message of `len ≥ 4` bytes that names its sequence number in its first
/// four bytes and whose other bytes follow from it, so any corruption shows.
pub fn tagged_message(seq: u32, len: usize) -> Bytes {
    assert!(len >= 4);
    let mut m = seq.to_le_bytes().to_vec();
    m.extend((4..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seq) as u8));
    Bytes::from(m)
}

/// The sequence number of a message made by [`tagged_message`], if it is
/// intact.
pub fn check_tagged(payload: &[u8]) -> Option<u32> {
    let seq = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
    (tagged_message(seq, payload.len()) == payload).then_some(seq)
}

/// Session settings at their defaults.
pub fn sessions() -> Sessions {
    Sessions::default()
}

/// Session settings at their defaults, changed by `f`.
pub fn sessions_with(f: impl FnOnce(&mut Sessions)) -> Sessions {
    let mut sessions = Sessions::default();
    f(&mut sessions);
    sessions
}

/// The default configuration with `sessions`.
pub fn config(sessions: Sessions) -> Config {
    let mut config = Config::default();
    config.sessions = Some(sessions);
    config
}

/// An endpoint on `u8` addresses with seeded randomness.
pub fn endpoint(config: Config, seed: u64) -> Endpoint<u8> {
    Endpoint::with_random(config, sansproto::seeded_random(seed)).unwrap()
}

/// Every event waiting.
pub fn events(ep: &mut Endpoint<u8>) -> Vec<Event<u8>> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Every datagram waiting, with its destination.
pub fn datagrams(ep: &mut Endpoint<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    std::iter::from_fn(|| {
        let to = ep.poll_transmit(&mut out)?;
        Some((to, std::mem::take(&mut out)))
    })
    .collect()
}

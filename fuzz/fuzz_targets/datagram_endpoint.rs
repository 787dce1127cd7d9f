//! Two endpoints with small limits, configured from the input (segmentation
//! and sessions on or off, notices, keepalives, what is remembered), fed
//! arbitrary datagrams from a small address space, crafted segment and
//! session headers, each other's datagrams in any order with losses and
//! copies, closes, opens and arbitrary time steps. Checks that no input
//! panics, that every limit holds after every step, that every peer opens
//! and closes in turn, and that everything is freed in the end. With
//! sessions on, also that no session is replaced before a message with a
//! new id from its address was held back, and that an address heard from
//! once (and never opened by the endpoint) gets at most two control
//! datagrams.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sansproto::datagram::{CloseReason, Config, Endpoint, Event, Header, PeerError, Sessions};

/// The two endpoints' addresses; 0..16 are other (spoofed) peers.
const ADDR: [u8; 2] = [100, 101];

#[derive(Arbitrary, Debug)]
struct Setup {
    segmented: bool,
    sessions: bool,
    close_notices: bool,
    keepalive_ms: Option<u16>,
    max_remembered: u8,
    notice_limit: u8,
    mtu_extra: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes from a peer.
    Receive { to: bool, peer: u8, data: Vec<u8> },
    /// A segment header with fuzzer-chosen fields and a payload of `len`
    /// bytes, behind a session header when sessions are on.
    Fragment {
        to: bool,
        peer: u8,
        session: u8,
        message_id: u8,
        index: u16,
        count: u16,
        len: u8,
    },
    /// A session header of any kind, with an id that is zero, small, or
    /// one seen on the wire, and any tail.
    Session {
        to: bool,
        peer: u8,
        kind: u8,
        session: u8,
        reason: u8,
        receiver: u8,
        tail: Vec<u8>,
    },
    /// A message of `len` bytes queued by one endpoint for the other or a
    /// spoofed peer, opening the session first when `open`.
    Send {
        from: bool,
        peer: u8,
        len: u16,
        open: bool,
    },
    /// Delivers what is on the wire between the two endpoints, reversed
    /// when `reverse`, losing every `lose`-th, each `copies` times.
    Deliver { reverse: bool, lose: u8, copies: u8 },
    /// Moves the clock and runs the timers.
    Advance { millis: u16 },
    /// One endpoint closes a peer.
    Close { on: bool, peer: u8 },
}

fn config(setup: &Setup) -> Config {
    let mut config = if setup.segmented {
        Config::segmented()
    } else {
        Config::default()
    };
    config.mtu = 64 + usize::from(setup.mtu_extra % 64);
    config.max_peers = 8;
    config.idle_timeout = Duration::from_secs(3);
    config.max_queued_datagrams = 64;
    config.max_queued_bytes = 4096;
    config.max_pending_events = 16;
    if let Some(seg) = config.segmentation.as_mut() {
        seg.max_message_size = 400;
        seg.max_fragments = 8;
        seg.max_partials_per_peer = 2;
        seg.max_partials = 6;
        seg.max_buffered_per_peer = 400;
        seg.max_buffered = 1200;
        seg.reassembly_timeout = Duration::from_secs(1);
        seg.duplicate_window = 4;
    }
    if setup.sessions {
        let mut sessions = Sessions::default();
        sessions.close_notices = setup.close_notices;
        sessions.keepalive_interval = setup
            .keepalive_ms
            .map(|ms| Duration::from_millis(u64::from(ms % 2999) + 1));
        sessions.max_remembered = usize::from(setup.max_remembered % 16);
        sessions.remember_for = Duration::from_secs(5);
        sessions.notice_limit = usize::from(setup.notice_limit % 8);
        sessions.notice_window = Duration::from_secs(1);
        config.sessions = Some(sessions);
    }
    config
}

struct Side {
    endpoint: Endpoint<u8>,
    /// Which addresses the events say are open.
    open: [bool; 256],
    /// Which open peers had a message with a new session id held back.
    unconfirmed: [bool; 256],
    /// Datagrams fed from each address.
    heard: [u32; 256],
    /// Addresses this side was asked to open.
    opened: [bool; 256],
    /// Keepalives and close notices sent to each address.
    control: [u32; 256],
}

impl Side {
    fn check(&mut self, config: &Config) {
        let ep = &mut self.endpoint;
        if let Some(seg) = config.segmentation.as_ref() {
            assert!(ep.buffered_bytes() <= seg.max_buffered);
            assert!(ep.partial_count() <= seg.max_partials);
        }
        if let Some(sessions) = config.sessions.as_ref() {
            assert!(ep.remembered_sessions() <= sessions.max_remembered);
        }
        assert!(ep.peer_count() <= config.max_peers);
        assert!(ep.queued_bytes() <= config.max_queued_bytes);
        assert!(ep.queued_datagrams() <= config.max_queued_datagrams);
        let mut events = 0;
        while let Some(event) = ep.poll_event() {
            events += 1;
            // One datagram past the bound adds a few events at most.
            assert!(
                events <= config.max_pending_events + 8,
                "{events} events queued"
            );
            match event {
                Event::Message { payload, .. } => {
                    assert!(payload.len() <= config.max_message_size());
                }
                Event::PeerOpened { peer } => {
                    assert!(!self.open[usize::from(peer)], "{peer} opened twice");
                    self.open[usize::from(peer)] = true;
                    self.unconfirmed[usize::from(peer)] = false;
                }
                Event::PeerClosed { peer, reason } => {
                    assert!(self.open[usize::from(peer)], "{peer} closed while closed");
                    self.open[usize::from(peer)] = false;
                    if reason == CloseReason::Replaced {
                        assert!(
                            self.unconfirmed[usize::from(peer)],
                            "{peer} replaced on one datagram"
                        );
                    }
                    self.unconfirmed[usize::from(peer)] = false;
                }
                Event::DatagramDropped {
                    peer,
                    error: PeerError::UnconfirmedSession { .. },
                } => {
                    assert!(self.open[usize::from(peer)]);
                    self.unconfirmed[usize::from(peer)] = true;
                }
                _ => {}
            }
        }
        assert_eq!(self.open.iter().filter(|o| **o).count(), ep.peer_count());
    }

    /// Feeds a datagram; when the event queue is full, polls it (checking
    /// the limits) and feeds the datagram again, which must then be taken.
    fn feed(&mut self, config: &Config, from: u8, d: Bytes, now: Instant) {
        self.heard[usize::from(from)] = self.heard[usize::from(from)].saturating_add(1);
        if let Err(back) = self.endpoint.receive(from, d, now) {
            assert_eq!(back.from, from);
            self.check(config);
            self.endpoint
                .receive(back.from, back.datagram, now)
                .expect("taken once the events were polled");
        }
    }
}

/// A session id: zero, small, or one seen on the wire.
fn pick_id(choice: u8, seen: &[u32]) -> u32 {
    match choice {
        0 => 0,
        c if c < 128 || seen.is_empty() => u32::from(c % 8),
        c => seen[usize::from(c) % seen.len()],
    }
}

fn session_header(kind: u8, id: u32) -> Vec<u8> {
    let mut d = vec![kind];
    d.extend_from_slice(&id.to_be_bytes());
    d
}

fuzz_target!(|input: (Setup, Vec<Op>)| {
    let (setup, ops) = input;
    let config = config(&setup);
    config
        .validate()
        .expect("the fuzz configurations are valid");
    let mut sides = [0u64, 1].map(|seed| Side {
        endpoint: Endpoint::with_random(config.clone(), sansproto::seeded_random(seed)).unwrap(),
        open: [false; 256],
        unconfirmed: [false; 256],
        heard: [0; 256],
        opened: [false; 256],
        control: [0; 256],
    });
    let sessions = config.sessions.is_some();
    let start = Instant::now();
    let mut now = start;
    // Datagrams between the two endpoints: (to side, from address, bytes).
    let mut wire: Vec<(usize, u8, Bytes)> = Vec::new();
    let mut seen: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Receive { to, peer, data } => {
                sides[usize::from(to)].feed(&config, peer % 16, Bytes::from(data), now)
            }
            Op::Fragment {
                to,
                peer,
                session,
                message_id,
                index,
                count,
                len,
            } => {
                let header = Header {
                    message_id: u32::from(message_id % 8),
                    index,
                    count,
                };
                let mut d = if sessions {
                    session_header(0x10, pick_id(session, &seen))
                } else {
                    Vec::new()
                };
                d.extend_from_slice(&header.encode());
                d.resize(d.len() + usize::from(len), len);
                sides[usize::from(to)].feed(&config, peer % 16, Bytes::from(d), now);
            }
            Op::Session {
                to,
                peer,
                kind,
                session,
                reason,
                receiver,
                tail,
            } => {
                let kind = if kind < 192 { 0x10 + kind % 3 } else { kind };
                let mut d = session_header(kind, pick_id(session, &seen));
                if kind == 0x11 && tail.is_empty() {
                    d.push(reason % 5);
                    d.extend_from_slice(&pick_id(receiver, &seen).to_be_bytes());
                }
                d.extend_from_slice(&tail);
                // From the other endpoint's address or a spoofed one.
                let from = if peer % 2 == 0 {
                    ADDR[usize::from(!to)]
                } else {
                    peer % 16
                };
                sides[usize::from(to)].feed(&config, from, Bytes::from(d), now);
            }
            Op::Send {
                from,
                peer,
                len,
                open,
            } => {
                let to = if peer % 2 == 0 {
                    ADDR[usize::from(!from)]
                } else {
                    peer % 16
                };
                let side = &mut sides[usize::from(from)];
                if open {
                    side.opened[usize::from(to)] = true;
                    let _ = side.endpoint.open(to, now);
                }
                let message = Bytes::from(vec![peer; usize::from(len) % 512]);
                let _ = side.endpoint.send(to, message);
            }
            Op::Deliver {
                reverse,
                lose,
                copies,
            } => {
                if reverse {
                    wire.reverse();
                }
                for (i, (to, from, d)) in std::mem::take(&mut wire).into_iter().enumerate() {
                    if lose != 0 && i % usize::from(lose) == usize::from(lose) - 1 {
                        continue;
                    }
                    for _ in 0..(copies % 3).max(1) {
                        sides[to].feed(&config, from, d.clone(), now);
                    }
                }
            }
            Op::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis));
                for side in &mut sides {
                    side.endpoint.handle_timeout(now);
                    if let Some(at) = side.endpoint.poll_timeout() {
                        assert!(at > now, "a timer due at {now:?} was left");
                    }
                }
            }
            Op::Close { on, peer } => {
                let peer = if peer % 2 == 0 {
                    ADDR[usize::from(!on)]
                } else {
                    peer % 16
                };
                sides[usize::from(on)].endpoint.close(&peer);
            }
        }
        for (n, side) in sides.iter_mut().enumerate() {
            side.check(&config);
            while let Some(to) = side.endpoint.poll_transmit(&mut out) {
                assert!(out.len() <= config.mtu);
                let d = Bytes::from(std::mem::take(&mut out));
                if sessions && d.len() >= 5 && seen.len() < 64 {
                    seen.push(u32::from_be_bytes([d[1], d[2], d[3], d[4]]));
                }
                let t = usize::from(to);
                if sessions && matches!(d.first(), Some(0x11 | 0x12)) {
                    side.control[t] += 1;
                    if side.heard[t] <= 1 && !side.opened[t] {
                        assert!(side.control[t] <= 2, "{to} heard from once drew more");
                    }
                }
                if let Some(t) = ADDR.iter().position(|a| *a == to) {
                    wire.push((t, ADDR[n], d));
                }
            }
        }
    }
    // Long after the last input every peer has expired and everything is
    // free, closed sessions forgotten included.
    for side in &mut sides {
        side.endpoint.handle_timeout(now + Duration::from_secs(60));
        side.check(&config);
        // Sessions closed by that expiry are remembered for a while yet.
        side.endpoint.handle_timeout(now + Duration::from_secs(120));
        assert_eq!(side.endpoint.buffered_bytes(), 0);
        assert_eq!(side.endpoint.partial_count(), 0);
        assert_eq!(side.endpoint.peer_count(), 0);
        assert_eq!(side.endpoint.remembered_sessions(), 0);
    }
});

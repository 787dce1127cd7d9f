//! Datagram sessions over the testkit's simulated network (keepalives
//! keeping a quiet pair open, sessions over segmentation with reordering
//! and duplicates; feature `testkit`), and random interleavings of sends,
//! closes, raw datagrams, losses and time between two endpoints.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
#[cfg(feature = "testkit")]
use common::datagram::{check_tagged, config, sessions, tagged_message};
use common::datagram::{datagrams, endpoint, events, sessions_with};
use proptest::prelude::*;
use sansproto::datagram::*;
#[cfg(feature = "testkit")]
use sansproto::testkit::{Conditions, Network};

const CLIENT: u8 = 1;
const SERVER: u8 = 2;

/// The two nodes on a network: `A` opens the sessions.
#[cfg(feature = "testkit")]
const A: u8 = 1;
#[cfg(feature = "testkit")]
const B: u8 = 2;

#[cfg(feature = "testkit")]
type Net = Network<Endpoint<u8>>;

/// `A` and `B` with `config`, on a network with `conditions`.
#[cfg(feature = "testkit")]
fn network(config: &Config, conditions: Conditions, seed: u64) -> Net {
    let mut net = Network::new(conditions, seed);
    net.add(A, endpoint(config.clone(), seed.wrapping_mul(2)));
    net.add(B, endpoint(config.clone(), seed.wrapping_mul(2) + 1));
    net
}

/// The events of the node at `addr` not yet taken, without their times.
#[cfg(feature = "testkit")]
fn events_of(net: &mut Net, addr: u8) -> Vec<Event<u8>> {
    net.events(&addr).iter().map(|(_, e)| e.clone()).collect()
}

/// The messages the node at `addr` took (events not yet taken).
#[cfg(feature = "testkit")]
fn messages(net: &mut Net, addr: u8) -> Vec<Bytes> {
    events_of(net, addr)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { payload, .. } => Some(payload),
            _ => None,
        })
        .collect()
}

/// Two nodes, A opening a session with B and sending one message, then
/// nothing from either application for five minutes.
#[cfg(feature = "testkit")]
fn quiet_pair(keepalive: Option<Duration>) -> Net {
    let mut config = config(sessions_with(|s| {
        s.keepalive_interval = keepalive;
    }));
    config.idle_timeout = Duration::from_secs(30);
    // A perfect network: every datagram takes exactly 20 ms.
    let conditions = Conditions {
        latency: Duration::from_millis(20),
        ..Conditions::default()
    };
    let mut net = network(&config, conditions, 5);
    let now = net.now();
    net.node_mut(&A).open(B, now).unwrap();
    net.node_mut(&A)
        .send(B, Bytes::from_static(b"hello"))
        .unwrap();
    net.run_for(Duration::from_secs(300));
    assert_eq!(
        messages(&mut net, B).len(),
        1,
        "keepalives deliver no message"
    );
    assert!(messages(&mut net, A).is_empty());
    net
}

#[cfg(feature = "testkit")]
#[test]
fn keepalives_keep_a_quiet_pair_open_and_without_them_it_expires() {
    let mut net = quiet_pair(Some(Duration::from_secs(10)));
    for n in [A, B] {
        let closes = events_of(&mut net, n)
            .iter()
            .filter(|e| matches!(e, Event::PeerClosed { .. }))
            .count();
        assert_eq!(closes, 0, "node {n}");
        let stats = net.node(&n).stats();
        assert!(stats.sessions.keepalives_sent >= 29, "{stats:?}");
        assert!(stats.sessions.keepalives_received >= 29, "{stats:?}");
        assert_eq!(stats.rx.messages, if n == B { 1 } else { 0 });
    }
    assert_eq!(
        (net.node(&A).peer_count(), net.node(&B).peer_count()),
        (1, 1)
    );

    let mut net = quiet_pair(None);
    for n in [A, B] {
        let closes: Vec<_> = events_of(&mut net, n)
            .into_iter()
            .filter(|e| matches!(e, Event::PeerClosed { .. }))
            .collect();
        assert_eq!(closes.len(), 1, "node {n}: {closes:?}");
        assert_eq!(net.node(&n).peer_count(), 0);
    }
    // A expired first (it never heard from B) and told B, which closed on
    // the notice as its own timer came due.
    assert!(matches!(
        events_of(&mut net, B).last(),
        Some(Event::PeerClosed {
            reason: CloseReason::ClosedByPeer(NoticeReason::Expired),
            ..
        })
    ));
}

#[cfg(feature = "testkit")]
#[test]
fn sessions_over_segmentation_deliver_large_messages() {
    let mut config = Config::segmented();
    config.sessions = Some(sessions());
    // Delays from 1 to 40 ms overlap: datagrams reorder.
    let conditions = Conditions {
        loss: 0.0,
        duplicate: 0.2,
        latency: Duration::from_millis(1),
        jitter: Duration::from_millis(39),
        ..Conditions::default()
    };
    let mut net = network(&config, conditions, 9);
    let now = net.now();
    net.node_mut(&A).open(B, now).unwrap();
    let max = config.max_message_size();
    let lens = [5000, 1458, 1459, max];
    for (seq, len) in lens.iter().enumerate() {
        net.node_mut(&A)
            .send(B, tagged_message(seq as u32, *len))
            .unwrap();
    }
    net.run_for(Duration::from_secs(1));
    let mut got: Vec<_> = messages(&mut net, B)
        .iter()
        .map(|m| (check_tagged(m), m.len()))
        .collect();
    got.sort();
    let want: Vec<_> = lens
        .iter()
        .enumerate()
        .map(|(s, l)| (Some(s as u32), *l))
        .collect();
    assert_eq!(got, want);
    for t in net.trace() {
        assert!(t.datagram.len() <= config.mtu);
        assert_eq!((t.datagram[0], t.datagram[5]), (0x10, VERSION));
    }
    // 1458 bytes fill one fragment of a 1472-byte datagram exactly.
    let one = net
        .trace()
        .iter()
        .filter(|t| t.datagram.len() == 1472)
        .count();
    assert!(one >= 1);
    let too_big = net.node_mut(&A).send(B, Bytes::from(vec![0; max + 1]));
    assert_eq!(
        too_big.unwrap_err().kind(),
        &SendErrorKind::TooLarge { max }
    );
}

#[derive(Debug, Clone)]
enum Op {
    /// A sends a message to B (opening its side first).
    Send(bool, u16),
    /// Raw bytes to B from a small set of addresses.
    Raw(u8, Vec<u8>),
    /// One side closes the other.
    Close(bool),
    /// Datagrams in flight are delivered, in order or reversed, some lost.
    Deliver(bool, u8),
    /// Time passes.
    Advance(u16),
}

/// Checks that each peer opens only while closed and closes only while
/// open, and that the table agrees.
fn audit(open: &mut [bool; 256], ep: &mut Endpoint<u8>) {
    for e in events(ep) {
        match e {
            Event::PeerOpened { peer } => {
                assert!(!open[usize::from(peer)], "{peer} opened twice");
                open[usize::from(peer)] = true;
            }
            Event::PeerClosed { peer, .. } => {
                assert!(open[usize::from(peer)], "{peer} closed while not open");
                open[usize::from(peer)] = false;
            }
            _ => {}
        }
    }
    assert_eq!(open.iter().filter(|o| **o).count(), ep.peer_count());
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 0u16..3000).prop_map(|(r, l)| Op::Send(r, l)),
        (0u8..4, prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(f, d)| Op::Raw(f, d)),
        any::<bool>().prop_map(Op::Close),
        (any::<bool>(), any::<u8>()).prop_map(|(r, l)| Op::Deliver(r, l)),
        (0u16..20_000).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random interleavings never panic, and every peer that opens closes
    /// exactly once before it opens again, and by the end.
    #[test]
    fn every_open_peer_ends_exactly_once(ops in prop::collection::vec(op(), 0..60), seed in any::<u64>()) {
        let mut config = Config::segmented();
        config.idle_timeout = Duration::from_secs(5);
        config.max_peers = 2;
        config.sessions = Some(sessions_with(|s| {s.keepalive_interval = Some(Duration::from_secs(2)); s.max_remembered = 4; s.notice_limit = 2;}));
        let mut eps = [endpoint(config.clone(), seed), endpoint(config, seed ^ 1)];
        let addr = [CLIENT, SERVER];
        let mut open = [[false; 256], [false; 256]];
        let mut wire: Vec<(usize, u8, Vec<u8>)> = Vec::new();
        let mut now = Instant::now();
        for op in ops {
            match op {
                Op::Send(reverse, len) => {
                    let (from, to) = if reverse { (1, 0) } else { (0, 1) };
                    let _ = eps[from].open(addr[to], now);
                    let _ = eps[from].send(addr[to], Bytes::from(vec![7; usize::from(len)]));
                }
                Op::Raw(from, d) => {
                    eps[1].receive(10 + from, Bytes::from(d), now).unwrap();
                }
                Op::Close(reverse) => {
                    let (n, peer) = if reverse { (1, CLIENT) } else { (0, SERVER) };
                    eps[n].close(&peer);
                }
                Op::Deliver(reverse, lose) => {
                    if reverse { wire.reverse(); }
                    for (i, (to, from, d)) in std::mem::take(&mut wire).into_iter().enumerate() {
                        if lose != 0 && i % usize::from(lose) == 0 { continue; }
                        eps[to].receive(from, Bytes::from(d), now).unwrap();
                    }
                }
                Op::Advance(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    for ep in &mut eps { ep.handle_timeout(now); }
                }
            }
            for (n, ep) in eps.iter_mut().enumerate() {
                audit(&mut open[n], ep);
                for (to, d) in datagrams(ep) {
                    if let Some(t) = addr.iter().position(|a| *a == to) {
                        wire.push((t, addr[n], d));
                    }
                }
            }
        }
        now += Duration::from_secs(60);
        for (n, ep) in eps.iter_mut().enumerate() {
            ep.handle_timeout(now);
            audit(&mut open[n], ep);
            prop_assert_eq!(ep.peer_count(), 0);
            prop_assert_eq!(ep.buffered_bytes(), 0);
            prop_assert!(ep.remembered_sessions() <= 4);
        }
    }
}

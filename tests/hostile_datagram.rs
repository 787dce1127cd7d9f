//! Hostile peers against the datagram endpoint, measured with a counting
//! allocator: 100k spoofed sources at an application that does not poll,
//! and reassembly-slot floods from one peer and from many. After each, an
//! honest peer's segmented message still completes. With sessions on:
//! spoofed messages, notices and keepalives, kicked sessions and their
//! stale datagrams.

mod common;

use bytes::Bytes;
use common::alloc::{measure, serial, Counting};
use sansproto::datagram::{Config, Endpoint, Event, Header, Sessions, HEADER_LEN};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: Counting = Counting;

fn spoofed(i: u32) -> SocketAddr {
    let [a, b, c, d] = i.to_be_bytes();
    SocketAddr::from(([10 | a, b, c, d], 40_000))
}

/// Fragment `index` of a `count`-fragment message, `len` payload bytes.
fn fragment(message_id: u32, index: u16, count: u16, len: usize) -> Bytes {
    let mut d = Header {
        message_id,
        index,
        count,
    }
    .encode()
    .to_vec();
    d.resize(HEADER_LEN + len, index as u8);
    Bytes::from(d)
}

fn drain(ep: &mut Endpoint<SocketAddr>) -> Vec<Event<SocketAddr>> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// An honest peer's two-fragment message completes.
fn honest_message_completes(ep: &mut Endpoint<SocketAddr>, now: Instant) {
    drain(ep);
    let honest = SocketAddr::from(([192, 0, 2, 7], 9000));
    ep.receive(honest, fragment(42, 0, 2, 100), now).unwrap();
    ep.receive(honest, fragment(42, 1, 2, 100), now).unwrap();
    let completed = drain(ep).into_iter().any(
        |e| matches!(e, Event::Message { peer, payload } if peer == honest && payload.len() == 200),
    );
    assert!(completed, "the honest peer's message did not complete");
}

#[test]
fn spoofed_sources_unpolled_stop_at_the_event_bound() {
    let _serial = serial();
    let config = Config::segmented();
    let max_events = config.max_pending_events;
    let mut ep = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let one = fragment(1, 0, 1, 16);
    let (refused, growth) = measure("spoofed_sources_unpolled", || {
        let mut refused = 0;
        for i in 0..100_000 {
            // Handed back: the application would leave it to the kernel.
            if ep.receive(spoofed(i), one.clone(), now).is_err() {
                refused += 1;
            }
        }
        refused
    });
    assert!(refused > 90_000, "only {refused} refused");
    assert!(
        growth < 1 << 20,
        "{growth} bytes for {max_events} events and 1024 peers"
    );
    honest_message_completes(&mut ep, now);
}

#[test]
fn one_peer_flooding_partial_messages_holds_its_own_share() {
    let _serial = serial();
    let config = Config::segmented();
    let seg = config.segmentation.clone().unwrap();
    let mut ep = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let attacker = spoofed(1);
    let (_, growth) = measure("one_peer_partial_flood", || {
        for id in 0..100_000u32 {
            ep.receive(attacker, fragment(id, 0, 64, 1000), now)
                .unwrap();
            if id % 256 == 0 {
                drain(&mut ep);
            }
        }
        assert!(ep.partial_count() <= seg.max_partials_per_peer);
        assert!(ep.buffered_bytes() <= seg.max_buffered_per_peer);
    });
    assert!(
        growth < seg.max_buffered_per_peer + (1 << 20),
        "{growth} bytes for a {}-byte per-peer buffer",
        seg.max_buffered_per_peer
    );
    honest_message_completes(&mut ep, now);
}

#[test]
fn many_peers_flooding_partial_messages_leave_slots_for_others() {
    let _serial = serial();
    let mut config = Config::segmented();
    config.max_peers = 100_000;
    let seg = config.segmentation.clone().unwrap();
    let mut ep = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let (_, growth) = measure("many_peers_partial_flood", || {
        for round in 0..4u32 {
            for s in 0..20_000u32 {
                ep.receive(spoofed(s), fragment(round, 0, 64, 1000), now)
                    .unwrap();
                if s % 256 == 0 {
                    drain(&mut ep);
                }
            }
        }
        assert!(ep.partial_count() <= seg.max_partials);
        assert!(ep.buffered_bytes() <= seg.max_buffered);
    });
    // The peer table itself holds 20,000 peers here; reassembly stays
    // within its caps.
    assert!(
        growth < seg.max_buffered + (16 << 20),
        "{growth} bytes for a {}-byte reassembly cap",
        seg.max_buffered
    );
    honest_message_completes(&mut ep, now);
}

/// A session datagram of `kind` (message, close notice or keepalive)
/// carrying `id`.
fn session_datagram(kind: u8, id: u32) -> Bytes {
    let mut d = vec![kind];
    d.extend_from_slice(&id.to_be_bytes());
    match kind {
        0x10 => d.extend_from_slice(b"payload"),
        0x11 => {
            d.push(1);
            d.extend_from_slice(&id.to_be_bytes());
        }
        _ => {}
    }
    Bytes::from(d)
}

#[test]
fn spoofed_session_traffic_and_kicks_stay_bounded() {
    let _serial = serial();
    let mut config = Config::default();
    config.sessions = Some(Sessions::default());
    let sessions = config.sessions.clone().unwrap();
    let mut ep = Endpoint::new(config.clone()).unwrap();
    // The table of `ep` fills up below; one address's new ids go to an
    // endpoint of their own.
    let mut one = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let mut out = Vec::new();
    let id = |i: u32| i.wrapping_mul(2_654_435_761) | 1;
    let (_, growth) = measure("spoofed_sessions", || {
        for i in 0..100_000u32 {
            let kind = [0x10, 0x11, 0x12][i as usize % 3];
            ep.receive(spoofed(i), session_datagram(kind, id(i)), now)
                .unwrap();
            if i % 64 == 0 {
                // The application kicks every peer it is given.
                for event in drain(&mut ep) {
                    if let Event::PeerOpened { peer } = event {
                        ep.close(&peer);
                    }
                }
                drain(&mut ep);
                while ep.poll_transmit(&mut out).is_some() {
                    out.clear();
                }
            }
        }
        assert!(ep.remembered_sessions() <= sessions.max_remembered);
        // Each kicked peer was heard from once: the kicks' notices went out
        // within the notice limit.
        let sent = ep.stats().sessions.notices_sent;
        assert_eq!(sent, sessions.notice_limit as u64);
        // The kicked peers keep sending in their closed sessions, a window
        // later: dropped, and answered no more than the notice limit allows.
        let next = now + sessions.notice_window;
        for i in (0..100_000u32).step_by(3) {
            ep.receive(spoofed(i), session_datagram(0x10, id(i)), next)
                .unwrap();
            if i % 256 == 0 {
                drain(&mut ep);
            }
        }
        drain(&mut ep);
        let answered = ep.stats().sessions.notices_sent - sent;
        assert_eq!(answered, sessions.notice_limit as u64);
        assert_eq!(ep.queued_datagrams(), sessions.notice_limit);
        assert!(ep.remembered_sessions() <= sessions.max_remembered);
        // One address sending a new session id in every datagram opens one
        // session: each later id is held back once and then forgotten for
        // the next, and nothing is remembered of them.
        let replacer = SocketAddr::from(([198, 51, 100, 1], 5000));
        let mut opened = 0;
        for i in 0..100_000u32 {
            one.receive(replacer, session_datagram(0x10, 0x8000_0000 | i), now)
                .unwrap();
            if i % 256 == 0 {
                opened += drain(&mut one)
                    .iter()
                    .filter(|e| matches!(e, Event::PeerOpened { .. }))
                    .count();
            }
        }
        drain(&mut one);
        assert_eq!(opened, 1);
        assert_eq!(one.stats().errors.unconfirmed_session, 99_999);
        assert_eq!((one.peer_count(), one.remembered_sessions()), (1, 0));
        assert_eq!(one.queued_datagrams(), 0);
    });
    assert!(growth < 2 << 20, "{growth} bytes");
    // The spoofed sources that reopened sessions (a window after `now`)
    // fill the table until they expire; then an honest peer opens one.
    let later = now + sessions.notice_window + Duration::from_secs(30);
    ep.handle_timeout(later);
    drain(&mut ep);
    assert_eq!(ep.peer_count(), 0);
    let honest = SocketAddr::from(([192, 0, 2, 7], 9000));
    ep.receive(honest, session_datagram(0x10, 77), later)
        .unwrap();
    assert!(drain(&mut ep)
        .iter()
        .any(|e| matches!(e, Event::Message { peer, .. } if *peer == honest)));
}

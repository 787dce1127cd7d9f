//! Hostile peers against the datagram endpoint, measured with a counting
//! allocator: 100k spoofed sources at an application that does not poll,
//! and reassembly-slot floods from one peer and from many. After each, an
//! honest peer's segmented message still completes.

mod common;

use bytes::Bytes;
use common::alloc::{measure, serial, Counting};
use sansproto::datagram::{Config, Endpoint, Event, Header, HEADER_LEN};
use std::net::SocketAddr;
use std::time::Instant;

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

//! What hostile peers can make an endpoint hold: never more than its limits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use sansproto::datagram::{
    CloseReason, Config, DropReason, Endpoint, Event, Header, PeerError, Sessions, HEADER_LEN,
    KIND_DATA,
};

fn spoofed(i: u32) -> SocketAddr {
    let [a, b, c, d] = i.to_be_bytes();
    SocketAddr::from(([10 | a, b, c, d], 40_000))
}

fn first_fragment(message_id: u32, count: u16, len: usize) -> Bytes {
    let mut d = Header {
        message_id,
        index: 0,
        count,
    }
    .encode()
    .to_vec();
    d.resize(HEADER_LEN + len, 0xa5);
    Bytes::from(d)
}

fn drain(ep: &mut Endpoint<SocketAddr>) -> Vec<Event<SocketAddr>> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Floods first fragments from 20 000 spoofed addresses; `partials` and
/// `buffered` are the endpoint-wide caps.
fn flood(partials: usize, buffered: usize) {
    let mut config = Config::segmented();
    config.max_peers = 100_000;
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_partials = partials;
    seg.max_buffered = buffered;
    let mut ep = Endpoint::new(config).unwrap();
    let t0 = Instant::now();

    // A legitimate peer's small messages keep flowing during the flood.
    let honest = SocketAddr::from(([192, 0, 2, 1], 9000));
    let mut honest_delivered = 0;
    let mut global_refusals = 0;
    for i in 0..20_000u32 {
        ep.receive(spoofed(i), first_fragment(i, 45, 1463), t0)
            .unwrap();
        assert!(
            ep.buffered_bytes() <= buffered,
            "{} > {buffered}",
            ep.buffered_bytes()
        );
        assert!(ep.partial_count() <= partials);
        if i % 1000 == 0 {
            let single = Header {
                message_id: i,
                index: 0,
                count: 1,
            }
            .encode();
            ep.receive(honest, Bytes::copy_from_slice(&single), t0)
                .unwrap();
        }
        for e in drain(&mut ep) {
            match e {
                Event::Message { peer, .. } if peer == honest => honest_delivered += 1,
                // Past the slot cap the oldest partial message is
                // displaced; past the byte cap the fragment is refused.
                Event::MessageDropped {
                    reason: DropReason::GlobalLimit | DropReason::Displaced,
                    ..
                } => global_refusals += 1,
                Event::PeerOpened { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(honest_delivered, 20);
    assert!(global_refusals > 0);
    assert!(ep.buffered_bytes() > 0);

    // Everything is freed by the reassembly timeout, and reassembly works again.
    ep.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!((ep.buffered_bytes(), ep.partial_count()), (0, 0));
    let mut sender = Endpoint::new(Config::segmented()).unwrap();
    let message = Bytes::from(vec![3u8; 10_000]);
    sender.send(spoofed(0), message.clone()).unwrap();
    let mut out = Vec::new();
    while sender.poll_transmit(&mut out).is_some() {
        ep.receive(
            honest,
            Bytes::from(std::mem::take(&mut out)),
            t0 + Duration::from_secs(6),
        )
        .unwrap();
    }
    let events = drain(&mut ep);
    assert!(events.contains(&Event::Message {
        peer: honest,
        payload: message
    }));
}

#[test]
fn first_fragment_flood_stays_within_the_byte_cap() {
    flood(100_000, 1 << 20);
}

#[test]
fn first_fragment_flood_stays_within_the_partial_message_cap() {
    flood(256, 8 << 20);
}

#[test]
fn one_peer_cannot_exceed_its_own_limits() {
    let mut ep = Endpoint::new(Config::segmented()).unwrap();
    let seg = ep.config().segmentation.clone().unwrap();
    let attacker = spoofed(1);
    let now = Instant::now();
    for id in 0..1000 {
        ep.receive(attacker, first_fragment(id, 44, 1463), now)
            .unwrap();
        assert!(ep.partial_count() <= seg.max_partials_per_peer);
        assert!(ep.buffered_bytes() <= seg.max_buffered_per_peer);
    }
    let evicted = drain(&mut ep)
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::MessageDropped {
                    reason: DropReason::Evicted,
                    ..
                }
            )
        })
        .count();
    assert_eq!(evicted, 1000 - seg.max_partials_per_peer);
}

#[test]
fn announcing_65535_fragments_is_refused_at_once() {
    let mut ep = Endpoint::new(Config::segmented()).unwrap();
    let attacker = spoofed(2);
    for index in [0, 1, 65534] {
        let mut d = Header {
            message_id: 1,
            index,
            count: 65535,
        }
        .encode()
        .to_vec();
        d.extend_from_slice(&[0; 1463]);
        ep.receive(attacker, Bytes::from(d), Instant::now())
            .unwrap();
        assert_eq!(
            drain(&mut ep),
            [Event::DatagramDropped {
                peer: attacker,
                error: PeerError::TooManyFragments {
                    count: 65535,
                    max: 64
                }
            }]
        );
    }
    assert_eq!(
        (ep.partial_count(), ep.buffered_bytes(), ep.peer_count()),
        (0, 0, 0)
    );
}

#[test]
fn garbage_from_many_peers_does_not_disturb_an_honest_one() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut ep = Endpoint::new(Config::segmented()).unwrap();
    let mut sender = Endpoint::new(Config::segmented()).unwrap();
    let honest = SocketAddr::from(([192, 0, 2, 1], 9000));
    let now = Instant::now();
    let mut sent = Vec::new();
    let mut events = Vec::new();
    // Takes the datagram, polling events first whenever the queue is full.
    let mut feed = |ep: &mut Endpoint<SocketAddr>, from, datagram| {
        if let Err(back) = ep.receive(from, datagram, now) {
            events.extend(drain(ep));
            ep.receive(back.from, back.datagram, now).unwrap();
        }
    };
    for n in 0..20u8 {
        let message = Bytes::from(vec![n; 3000 * usize::from(n)]);
        sender.send(honest, message.clone()).unwrap();
        sent.push(message);
        let mut out = Vec::new();
        while sender.poll_transmit(&mut out).is_some() {
            for _ in 0..5 {
                let len = rng.random_range(0..1600);
                let mut junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if rng.random_bool(0.5) && len >= HEADER_LEN {
                    junk[0] = 1; // a plausible version byte
                }
                feed(&mut ep, spoofed(rng.random_range(0..50)), Bytes::from(junk));
            }
            feed(&mut ep, honest, Bytes::from(std::mem::take(&mut out)));
        }
    }
    events.extend(drain(&mut ep));
    let received: Vec<Bytes> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { peer, payload } if peer == honest => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(received, sent);
}

/// `Duration::MAX` as the idle or reassembly timeout means "never": peers
/// and partial messages are kept, not expired at once, and nothing panics.
#[test]
fn huge_timeouts_never_expire_at_once() {
    let mut config = Config::segmented();
    config.idle_timeout = Duration::MAX;
    config.segmentation.as_mut().unwrap().reassembly_timeout = Duration::MAX;
    let mut ep = Endpoint::new(config).unwrap();
    let t0 = Instant::now();
    let peer = spoofed(1);
    ep.receive(peer, first_fragment(7, 2, 100), t0).unwrap();
    let year = Duration::from_secs(365 * 24 * 60 * 60);
    ep.handle_timeout(t0 + year);
    assert_eq!(ep.partial_count(), 1, "the partial message is still there");
    assert!(ep.poll_timeout().is_some_and(|t| t > t0 + year));
    let events = drain(&mut ep);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::PeerClosed { .. } | Event::MessageDropped { .. })),
        "{events:?}"
    );
}

/// 64 spoofed sources each trying to hold 4 one-byte partial messages
/// cannot take every reassembly slot: an honest peer's 2-fragment message
/// still gets through.
#[test]
fn spoofers_cannot_take_every_reassembly_slot() {
    let mut config = Config::segmented();
    config.max_peers = 1000;
    let seg = config.segmentation.as_mut().unwrap();
    assert_eq!((seg.max_partials, seg.max_partials_per_peer), (256, 4));
    let mut ep = Endpoint::new(config).unwrap();
    let t0 = Instant::now();
    for round in 0..8u32 {
        for s in 0..64u32 {
            ep.receive(spoofed(s), first_fragment(round * 1000 + s, 2, 1), t0)
                .unwrap();
        }
    }
    assert!(
        ep.partial_count() < 256,
        "{} slots taken",
        ep.partial_count()
    );
    drain(&mut ep);
    let honest = SocketAddr::from(([192, 0, 2, 7], 9000));
    let fragment = |index: u16| {
        let mut d = Header {
            message_id: 42,
            index,
            count: 2,
        }
        .encode()
        .to_vec();
        d.extend_from_slice(&[index as u8; 10]);
        Bytes::from(d)
    };
    ep.receive(honest, fragment(0), t0).unwrap();
    // The spoofers keep going between the honest peer's fragments.
    for s in 0..64u32 {
        ep.receive(spoofed(s), first_fragment(9000 + s, 2, 1), t0)
            .unwrap();
    }
    ep.receive(honest, fragment(1), t0).unwrap();
    let events = drain(&mut ep);
    assert!(
        events.iter().any(|e| matches!(e, Event::Message { peer, payload } if *peer == honest && payload.len() == 20)),
        "{:?}",
        events.iter().filter(|e| !matches!(e, Event::PeerOpened { .. })).take(5).collect::<Vec<_>>()
    );
}

/// A first fragment of 1400 bytes announcing 64 fragments: at least
/// 63 × 1400 + 1 bytes, over the default 64 KiB `max_message_size`.
fn too_large_for_any_message(message_id: u32) -> Bytes {
    first_fragment(message_id, 64, 1400)
}

const TOO_LARGE: PeerError = PeerError::MessageTooLarge {
    at_least: 63 * 1400 + 1,
    max: 64 * 1024,
};

/// A fragment no message within the limits can hold is dropped whole
/// (`DatagramDropped`): it opens no peer, with sessions or without.
#[test]
fn a_fragment_too_large_for_any_message_opens_no_peer() {
    let mut with_sessions = Config::segmented();
    with_sessions.sessions = Some(Sessions::default());
    for config in [Config::segmented(), with_sessions] {
        let sessions = config.sessions.is_some();
        let mut ep = Endpoint::new(config).unwrap();
        let peer = spoofed(1);
        let mut datagram = Vec::new();
        if sessions {
            datagram.extend_from_slice(&[KIND_DATA, 0, 0, 0, 7]);
        }
        datagram.extend_from_slice(&too_large_for_any_message(1));
        ep.receive(peer, Bytes::from(datagram), Instant::now())
            .unwrap();
        assert_eq!(
            drain(&mut ep),
            [Event::DatagramDropped {
                peer,
                error: TOO_LARGE
            }],
            "sessions {sessions}"
        );
        assert_eq!(ep.peer_count(), 0);
        assert_eq!(ep.poll_timeout(), None);
        assert_eq!(ep.stats().peers_opened, 0);
    }
}

/// Neither a fragment that spoils its partial message (peer `a`) nor one
/// dropped whole (peer `b`) refreshes the peer's idle timer: a peer
/// expires an idle timeout after its last valid datagram.
#[test]
fn rejected_fragments_do_not_keep_a_peer_alive() {
    let mut config = Config::segmented();
    config.idle_timeout = Duration::from_secs(10);
    let mut ep = Endpoint::new(config).unwrap();
    let (a, b) = (spoofed(1), spoofed(2));
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    ep.receive(a, first_fragment(1, 2, 100), t0).unwrap();
    ep.receive(b, first_fragment(1, 1, 100), t0).unwrap();
    // Fragment 1 of a's message 1, announcing 3 fragments instead of 2.
    let mut mismatch = Header {
        message_id: 1,
        index: 1,
        count: 3,
    }
    .encode()
    .to_vec();
    mismatch.extend_from_slice(&[0; 100]);
    ep.receive(a, Bytes::from(mismatch), t0 + 3 * s).unwrap();
    ep.receive(b, too_large_for_any_message(2), t0 + 8 * s)
        .unwrap();
    let mismatch = PeerError::CountMismatch {
        expected: 2,
        got: 3,
    };
    assert_eq!(
        drain(&mut ep),
        [
            Event::PeerOpened { peer: a },
            Event::PeerOpened { peer: b },
            Event::Message {
                peer: b,
                payload: Bytes::from(vec![0xa5; 100])
            },
            Event::MessageDropped {
                peer: a,
                message_id: 1,
                reason: DropReason::Invalid(mismatch)
            },
            Event::DatagramDropped {
                peer: b,
                error: TOO_LARGE
            },
        ]
    );
    for peer in [a, b] {
        let stats = ep.peer_stats(&peer).unwrap();
        assert_eq!(stats.rx.frames, 1, "only the valid datagram counts");
    }
    ep.handle_timeout(t0 + 10 * s - Duration::from_nanos(1));
    assert_eq!(ep.peer_count(), 2);
    ep.handle_timeout(t0 + 10 * s);
    let mut closed = drain(&mut ep);
    closed.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        closed,
        [a, b].map(|peer| Event::PeerClosed {
            peer,
            reason: CloseReason::IdleTimeout
        })
    );
}

//! The datagram endpoint through its public API: peers, limits, timers,
//! segmentation and reassembly.

use std::time::{Duration, Instant};

use bytes::Bytes;

use sansproto::datagram::*;

fn endpoint(config: Config) -> Endpoint<u8> {
    Endpoint::with_random(config, sansproto::seeded_random(1)).unwrap()
}

fn events(ep: &mut Endpoint<u8>) -> Vec<Event<u8>> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn datagrams(ep: &mut Endpoint<u8>) -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    std::iter::from_fn(|| {
        let to = ep.poll_transmit(&mut out)?;
        Some((to, Bytes::from(std::mem::take(&mut out))))
    })
    .collect()
}

fn small_segmented() -> Config {
    let mut config = Config::segmented();
    config.mtu = HEADER_LEN + 10;
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_message_size = 100;
    seg.max_fragments = 10;
    seg.max_buffered_per_peer = 200;
    seg.max_buffered = 1000;
    config
}

fn fragment(message_id: u32, index: u16, count: u16, payload: &[u8]) -> Bytes {
    let mut d = Header {
        message_id,
        index,
        count,
    }
    .encode()
    .to_vec();
    d.extend_from_slice(payload);
    Bytes::from(d)
}

#[test]
fn unsegmented_is_zero_copy_both_ways() {
    let mut ep = endpoint(Config::default());
    let now = Instant::now();
    let datagram = Bytes::from(vec![9u8; 1472]);
    ep.receive(3, datagram.clone(), now).unwrap();
    let evs = events(&mut ep);
    assert_eq!(evs[0], Event::PeerOpened { peer: 3 });
    match &evs[1] {
        Event::Message { peer: 3, payload } => assert_eq!(payload.as_ptr(), datagram.as_ptr()),
        other => panic!("unexpected {other:?}"),
    }
    ep.send(4, datagram.clone()).unwrap();
    assert_eq!(ep.queued_bytes(), 1472);
    assert_eq!(datagrams(&mut ep), vec![(4, datagram)]);
    assert_eq!(ep.queued_bytes(), 0);
    assert!(!ep.contains_peer(&4), "sending opens no peer");
}

#[test]
fn oversized_datagram_is_dropped_without_opening_a_peer() {
    let mut ep = endpoint(Config::default());
    ep.receive(1, Bytes::from(vec![0u8; 1473]), Instant::now())
        .unwrap();
    assert_eq!(
        events(&mut ep),
        [Event::DatagramDropped {
            peer: 1,
            error: PeerError::DatagramTooLarge {
                len: 1473,
                max: 1472
            }
        }]
    );
    assert_eq!(ep.peer_count(), 0);
}

#[test]
fn send_limits_hand_the_message_back() {
    let mut config = Config::default();
    config.max_queued_datagrams = 2;
    config.max_queued_bytes = 1500;
    let mut ep = endpoint(config);
    let m = Bytes::from(vec![1u8; 1000]);
    ep.send(1, m.clone()).unwrap();
    assert_eq!(
        ep.send(1, m.clone()),
        Err(SendError::new(SendErrorKind::QueueFull, m.clone()))
    );
    ep.send(1, Bytes::from_static(b"x")).unwrap();
    assert_eq!(
        ep.send(1, Bytes::new()).map_err(|e| *e.kind()),
        Err(SendErrorKind::QueueFull)
    );
    assert_eq!(datagrams(&mut ep).len(), 2);
    ep.send(1, m).unwrap();

    let mut seg = endpoint(small_segmented());
    let big = Bytes::from(vec![0u8; 101]);
    assert_eq!(
        seg.send(1, big.clone()),
        Err(SendError::new(SendErrorKind::TooLarge { max: 100 }, big))
    );
    assert_eq!(seg.queued_datagrams(), 0);
}

#[test]
fn segmented_round_trip_in_reverse_order_with_duplicates() {
    let mut a = endpoint(small_segmented());
    let mut b = endpoint(small_segmented());
    let message = Bytes::from((0..95u8).collect::<Vec<_>>());
    a.send(2, message.clone()).unwrap();
    let sent = datagrams(&mut a);
    assert_eq!(sent.len(), 10);
    assert!(sent
        .iter()
        .all(|(to, d)| *to == 2 && d.len() <= HEADER_LEN + 10));
    let now = Instant::now();
    for (_, d) in sent.iter().rev().chain(sent.iter()) {
        b.receive(1, d.clone(), now).unwrap();
    }
    assert_eq!(
        events(&mut b),
        [
            Event::PeerOpened { peer: 1 },
            Event::Message {
                peer: 1,
                payload: message
            }
        ]
    );
    assert_eq!((b.buffered_bytes(), b.partial_count()), (0, 0));
}

#[test]
fn single_fragment_message_is_zero_copy_and_delivered_once() {
    let mut ep = endpoint(small_segmented());
    let d = fragment(77, 0, 1, b"hello");
    let now = Instant::now();
    ep.receive(1, d.clone(), now).unwrap();
    ep.receive(1, d.clone(), now).unwrap();
    let evs = events(&mut ep);
    assert_eq!(evs.len(), 2);
    match &evs[1] {
        Event::Message { payload, .. } => {
            assert_eq!(&payload[..], b"hello");
            assert_eq!(payload.as_ptr(), d[HEADER_LEN..].as_ptr());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn message_ids_wrap() {
    /// Randomness that draws the first message id given.
    struct FirstId(u32);
    impl sansproto::RandomSource for FirstId {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
        fn next_u32(&mut self) -> u32 {
            self.0
        }
    }
    let mut a = Endpoint::with_random(small_segmented(), FirstId(u32::MAX - 1)).unwrap();
    let mut b = endpoint(small_segmented());
    let now = Instant::now();
    let mut ids = Vec::new();
    for i in 0..3u8 {
        a.send(2, Bytes::from(vec![i; 25])).unwrap();
        for (_, d) in datagrams(&mut a) {
            ids.push(Header::parse(&d).unwrap().message_id);
            b.receive(1, d, now).unwrap();
        }
    }
    ids.dedup();
    assert_eq!(ids, [u32::MAX - 1, u32::MAX, 0]);
    let messages: Vec<_> = events(&mut b)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        (0..3u8)
            .map(|i| Bytes::from(vec![i; 25]))
            .collect::<Vec<_>>()
    );
}

#[test]
fn inconsistent_fragments_drop_the_partial_message() {
    let mut ep = endpoint(small_segmented());
    let now = Instant::now();
    let cases: [(Bytes, PeerError); 3] = [
        (
            fragment(1, 1, 4, b"0123456789"),
            PeerError::CountMismatch {
                expected: 3,
                got: 4,
            },
        ),
        (
            fragment(1, 1, 3, b"012"),
            PeerError::Overlap { index: 1, len: 3 },
        ),
        (
            fragment(1, 0, 3, b"01234"),
            PeerError::Overlap { index: 0, len: 5 },
        ),
    ];
    for (bad, error) in cases {
        ep.receive(9, fragment(1, 0, 3, b"0123456789"), now)
            .unwrap();
        assert_eq!(ep.buffered_bytes(), 10);
        ep.receive(9, bad, now).unwrap();
        let evs = events(&mut ep);
        assert_eq!(
            evs.last(),
            Some(&Event::MessageDropped {
                peer: 9,
                message_id: 1,
                reason: DropReason::Invalid(error)
            })
        );
        assert_eq!((ep.buffered_bytes(), ep.partial_count()), (0, 0));
    }
}

#[test]
fn header_limits_are_checked_before_any_state() {
    let mut ep = endpoint(small_segmented());
    let now = Instant::now();
    ep.receive(1, fragment(1, 0, 65535, b"x"), now).unwrap();
    ep.receive(1, fragment(1, 0, 2, b""), now).unwrap();
    ep.receive(1, Bytes::from_static(&[1, 0, 0]), now).unwrap();
    assert_eq!(
        events(&mut ep),
        [
            Event::DatagramDropped {
                peer: 1,
                error: PeerError::TooManyFragments {
                    count: 65535,
                    max: 10
                }
            },
            Event::DatagramDropped {
                peer: 1,
                error: PeerError::EmptyFragment { index: 0, count: 2 }
            },
            Event::DatagramDropped {
                peer: 1,
                error: PeerError::Truncated { len: 3 }
            },
        ]
    );
    assert_eq!(ep.peer_count(), 0);
    // A first fragment that already makes the message too large is refused
    // before a partial message is opened.
    let mut config = small_segmented();
    config.segmentation.as_mut().unwrap().max_message_size = 50;
    let mut ep = endpoint(config);
    ep.receive(1, fragment(1, 0, 10, b"0123456789"), now)
        .unwrap();
    assert_eq!(
        events(&mut ep).last(),
        Some(&Event::DatagramDropped {
            peer: 1,
            error: PeerError::MessageTooLarge {
                at_least: 91,
                max: 50
            }
        })
    );
    assert_eq!((ep.partial_count(), ep.buffered_bytes()), (0, 0));
}

#[test]
fn a_peer_evicts_only_its_own_oldest_partial() {
    let mut config = small_segmented();
    config.segmentation.as_mut().unwrap().max_partials_per_peer = 2;
    let mut ep = endpoint(config);
    let now = Instant::now();
    ep.receive(5, fragment(100, 0, 2, b"0123456789"), now)
        .unwrap();
    for id in 1..=3 {
        ep.receive(1, fragment(id, 0, 2, b"0123456789"), now)
            .unwrap();
    }
    let evs = events(&mut ep);
    assert_eq!(
        evs.last(),
        Some(&Event::MessageDropped {
            peer: 1,
            message_id: 1,
            reason: DropReason::Evicted
        })
    );
    assert_eq!(ep.partial_count(), 3);
    assert_eq!(ep.buffered_bytes(), 30);
    ep.receive(5, fragment(100, 1, 2, b"ab"), now).unwrap();
    assert_eq!(
        events(&mut ep),
        [Event::Message {
            peer: 5,
            payload: Bytes::from_static(b"0123456789ab")
        }]
    );
}

#[test]
fn a_peer_holding_no_slot_displaces_the_oldest_partial_message() {
    let mut config = small_segmented();
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_partials = 2;
    let mut ep = endpoint(config);
    let now = Instant::now();
    for peer in 0..3u8 {
        ep.receive(peer, fragment(7, 0, 2, b"0123456789"), now)
            .unwrap();
    }
    let dropped: Vec<_> = events(&mut ep)
        .into_iter()
        .filter(|e| matches!(e, Event::MessageDropped { .. }))
        .collect();
    assert_eq!(
        dropped,
        [Event::MessageDropped {
            peer: 0,
            message_id: 7,
            reason: DropReason::Displaced
        }]
    );
    assert_eq!((ep.partial_count(), ep.buffered_bytes()), (2, 20));
    for peer in [1, 2] {
        ep.receive(peer, fragment(7, 1, 2, b"z"), now).unwrap();
        assert!(matches!(
            events(&mut ep)[..],
            [Event::Message { peer: p, .. }] if p == peer
        ));
    }
    // A peer already holding a slot does not displace others: it is at
    // its share, and its own oldest partial message makes room.
    ep.receive(1, fragment(8, 0, 2, b"a"), now).unwrap();
    ep.receive(2, fragment(8, 0, 2, b"b"), now).unwrap();
    ep.receive(1, fragment(9, 0, 2, b"c"), now).unwrap();
    assert_eq!(
        events(&mut ep).last(),
        Some(&Event::MessageDropped {
            peer: 1,
            message_id: 8,
            reason: DropReason::Evicted
        })
    );
    assert_eq!(ep.partial_count(), 2);
}

#[test]
fn idle_expiry_is_refreshed_only_by_valid_inbound_traffic() {
    let mut config = Config::segmented();
    config.idle_timeout = Duration::from_secs(10);
    let mut ep = endpoint(config);
    let t0 = Instant::now();
    ep.receive(1, fragment(1, 0, 1, b"a"), t0).unwrap();
    assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    ep.receive(1, fragment(2, 0, 1, b"b"), t0 + Duration::from_secs(4))
        .unwrap();
    // Garbage and sends do not count.
    ep.receive(1, Bytes::from_static(b"junk"), t0 + Duration::from_secs(8))
        .unwrap();
    ep.send(1, Bytes::from_static(b"out")).unwrap();
    events(&mut ep);
    ep.handle_timeout(t0 + Duration::from_secs(10));
    assert!(ep.contains_peer(&1));
    assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(14)));
    ep.handle_timeout(t0 + Duration::from_millis(13_999));
    assert!(events(&mut ep).is_empty());
    ep.handle_timeout(t0 + Duration::from_secs(14));
    ep.handle_timeout(t0 + Duration::from_secs(14));
    assert_eq!(
        events(&mut ep),
        [Event::PeerClosed {
            peer: 1,
            reason: CloseReason::IdleTimeout
        }]
    );
    assert_eq!(ep.peer_count(), 0);
}

#[test]
fn partial_timeout_frees_memory_and_close_frees_the_rest() {
    let mut ep = endpoint(small_segmented());
    let t0 = Instant::now();
    ep.receive(1, fragment(1, 0, 2, b"0123456789"), t0).unwrap();
    ep.receive(
        2,
        fragment(1, 0, 2, b"0123456789"),
        t0 + Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    ep.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(
        events(&mut ep)[2..],
        [Event::MessageDropped {
            peer: 1,
            message_id: 1,
            reason: DropReason::TimedOut
        }]
    );
    assert_eq!(ep.buffered_bytes(), 10);
    assert!(ep.close(&2));
    assert!(!ep.close(&2));
    assert_eq!(
        events(&mut ep),
        [Event::PeerClosed {
            peer: 2,
            reason: CloseReason::Closed
        }]
    );
    assert_eq!((ep.buffered_bytes(), ep.partial_count()), (0, 0));
    // A closed peer's stale timer is harmless.
    ep.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(
        events(&mut ep),
        [Event::PeerClosed {
            peer: 1,
            reason: CloseReason::IdleTimeout
        }]
    );
}

#[test]
fn full_table_refuses_new_peers_only() {
    let mut config = Config::default();
    config.max_peers = 2;
    let mut ep = endpoint(config);
    let now = Instant::now();
    for peer in [1, 2, 3, 1] {
        ep.receive(peer, Bytes::from_static(b"m"), now).unwrap();
    }
    let evs = events(&mut ep);
    assert_eq!(evs[4], Event::PeerRefused { peer: 3 });
    assert!(matches!(evs[5], Event::Message { peer: 1, .. }));
    assert_eq!(ep.peer_count(), 2);
    let mut peers: Vec<_> = ep.peers().copied().collect();
    peers.sort_unstable();
    assert_eq!(peers, [1, 2]);
}

#[test]
fn global_pressure_recycles_only_the_peers_own_partials() {
    let mut config = small_segmented();
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_buffered_per_peer = 100;
    seg.max_buffered = 100;
    let mut ep = endpoint(config);
    let now = Instant::now();
    ep.receive(1, fragment(1, 0, 10, b"0123456789"), now)
        .unwrap();
    for index in 0..9 {
        ep.receive(2, fragment(2, index, 10, b"0123456789"), now)
            .unwrap();
    }
    assert_eq!(ep.buffered_bytes(), 100);
    events(&mut ep);

    // Peer 1's newer message takes the room of its own older one.
    ep.receive(1, fragment(3, 0, 10, b"0123456789"), now)
        .unwrap();
    assert_eq!(
        events(&mut ep),
        [Event::MessageDropped {
            peer: 1,
            message_id: 1,
            reason: DropReason::Evicted
        }]
    );
    // Peer 3 has nothing of its own to give up: refused, nobody evicted.
    ep.receive(3, fragment(4, 0, 10, b"0123456789"), now)
        .unwrap();
    assert_eq!(
        events(&mut ep),
        [
            Event::PeerOpened { peer: 3 },
            Event::MessageDropped {
                peer: 3,
                message_id: 4,
                reason: DropReason::GlobalLimit
            }
        ]
    );
    assert_eq!((ep.buffered_bytes(), ep.partial_count()), (100, 2));
}

#[test]
fn global_partial_cap_recycles_only_the_peers_own_partials() {
    let mut config = small_segmented();
    config.segmentation.as_mut().unwrap().max_partials = 2;
    let mut ep = endpoint(config);
    let now = Instant::now();
    ep.receive(1, fragment(1, 0, 2, b"0123456789"), now)
        .unwrap();
    ep.receive(2, fragment(2, 0, 2, b"0123456789"), now)
        .unwrap();
    events(&mut ep);
    ep.receive(2, fragment(3, 0, 2, b"0123456789"), now)
        .unwrap();
    assert_eq!(
        events(&mut ep),
        [Event::MessageDropped {
            peer: 2,
            message_id: 2,
            reason: DropReason::Evicted
        }]
    );
    ep.receive(1, fragment(1, 1, 2, b"!"), now).unwrap();
    assert_eq!(
        events(&mut ep),
        [Event::Message {
            peer: 1,
            payload: Bytes::from_static(b"0123456789!")
        }]
    );
}

#[test]
fn an_older_now_never_brings_a_peers_idle_expiry_earlier() {
    let mut ep = endpoint(Config::default()); // idle timeout 30 s
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    ep.receive(1, Bytes::from_static(b"a"), t0 + 10 * s)
        .unwrap();
    // An instant read before a slow step, older than the one passed above:
    // it counts as t0 + 10 s, so peer 2 expires at t0 + 40 s.
    ep.receive(2, Bytes::from_static(b"b"), t0).unwrap();
    events(&mut ep);
    assert_eq!(ep.poll_timeout(), Some(t0 + 40 * s));
    ep.handle_timeout(t0 + 30 * s);
    assert!(events(&mut ep).is_empty());
    assert!(ep.contains_peer(&2));
    ep.handle_timeout(t0 + 40 * s);
    assert_eq!(
        events(&mut ep),
        [1, 2].map(|peer| Event::PeerClosed {
            peer,
            reason: CloseReason::IdleTimeout
        })
    );
}

#[test]
fn an_older_now_never_times_a_partial_message_out_early() {
    let mut ep = endpoint(small_segmented()); // reassembly timeout 5 s
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    ep.handle_timeout(t0 + 10 * s);
    ep.receive(1, fragment(1, 0, 2, b"0123456789"), t0).unwrap();
    // The partial message's deadline is 5 s after t0 + 10 s, not after t0.
    ep.handle_timeout(t0 + 10 * s);
    ep.receive(1, fragment(1, 1, 2, b"x"), t0 + 10 * s).unwrap();
    assert_eq!(
        events(&mut ep),
        [
            Event::PeerOpened { peer: 1 },
            Event::Message {
                peer: 1,
                payload: Bytes::from_static(b"0123456789x")
            }
        ]
    );
}

#[test]
fn an_older_now_opens_a_peer_from_the_latest_now() {
    let mut ep = endpoint(Config::default()); // idle timeout 30 s
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    ep.handle_timeout(t0 + 10 * s);
    ep.open(3, t0).unwrap();
    assert_eq!(ep.poll_timeout(), Some(t0 + 40 * s));
    ep.handle_timeout(t0 + 39 * s);
    assert!(ep.contains_peer(&3));
}

//! The public test kit: a pair of machines under a virtual clock, with
//! every chunking giving the same events.
#![cfg(feature = "testkit")]

use sansproto::testkit::{Chunking, Pair, Side};
use sansproto::{prefix, ws};
use std::time::Duration;

const CHUNKINGS: [Chunking; 5] = [
    Chunking::Whole,
    Chunking::ByteByByte,
    Chunking::Random { seed: 1, max: 5 },
    Chunking::Random { seed: 2, max: 700 },
    Chunking::Mixed { seed: 3, max: 700 },
];

#[test]
fn frames_cross_a_pair_the_same_way_however_they_are_cut() {
    let conn = || prefix::Connection::new(prefix::Config::default());
    for chunking in CHUNKINGS {
        let mut pair = Pair::new(conn(), conn(), chunking);
        for i in 0..20u8 {
            pair.a.send(vec![i; usize::from(i) * 50]).unwrap();
        }
        pair.b.send(&b"back"[..]).unwrap();
        pair.run_until_idle();
        let frames: Vec<prefix::Event> = (0..20u8)
            .map(|i| prefix::Event::Frame(vec![i; usize::from(i) * 50].into()))
            .collect();
        assert_eq!(pair.take_events_b(), frames, "{chunking:?}");
        assert_eq!(
            pair.take_events_a(),
            [prefix::Event::Frame("back".into())],
            "{chunking:?}"
        );
    }
}

#[test]
fn a_websocket_pair_opens_talks_and_keeps_alive_on_the_virtual_clock() {
    for chunking in CHUNKINGS {
        let client = ws::Connection::client_with_random(
            ws::Config::default(),
            ws::ClientRequest::new("example.com", "/"),
            sansproto::seeded_random(3),
        )
        .unwrap();
        let keepalive =
            ws::Config::default().with_keepalive(Duration::from_secs(20), Duration::from_secs(5));
        let mut pair = Pair::new(client, ws::Connection::server(keepalive), chunking);
        pair.run_until_idle();
        assert!(pair.a.is_open() && pair.b.is_open(), "{chunking:?}");
        pair.take_events_a();
        pair.take_events_b();
        pair.a.send("hi").unwrap();
        pair.run_until_idle();
        assert_eq!(
            pair.take_events_b(),
            [ws::Event::Message(ws::Message::from("hi"))]
        );
        // The server's keepalive ping at 20 s is answered by the client.
        assert_eq!(
            pair.advance_to_next_deadline(),
            Some(Duration::from_secs(20))
        );
        // The client saw the ping and answered it (the keepalive pong is
        // the server's own business): past the pong deadline both are open.
        assert!(matches!(
            pair.take_events_a().as_slice(),
            [ws::Event::Ping(_)]
        ));
        pair.advance(Duration::from_secs(6));
        assert!(pair.a.is_open() && pair.b.is_open(), "{chunking:?}");
        assert_eq!(pair.elapsed(), Duration::from_secs(26));
    }
}

#[test]
fn advance_stops_at_every_deadline_on_the_way() {
    let client = ws::Connection::client_with_random(
        ws::Config::default(),
        ws::ClientRequest::new("example.com", "/"),
        sansproto::seeded_random(4),
    )
    .unwrap();
    let keepalive =
        ws::Config::default().with_keepalive(Duration::from_secs(20), Duration::from_secs(5));
    let mut pair = Pair::new(client, ws::Connection::server(keepalive), Chunking::Whole);
    pair.run_until_idle();
    pair.take_events(Side::A);
    // One minute at once: three keepalive pings, each answered in time.
    pair.advance(Duration::from_secs(60));
    let pings = pair.take_events(Side::A);
    assert_eq!(pings.len(), 3, "{pings:?}");
    assert!(pair.a.is_open() && pair.b.is_open());
    assert_eq!(pair.next_deadline(Side::B), Some(Duration::from_secs(80)));
}

#[test]
fn a_stalled_side_holds_its_bytes_until_delivery_resumes() {
    let conn = || prefix::Connection::new(prefix::Config::default());
    let mut pair = Pair::new(conn(), conn(), Chunking::ByteByByte);
    pair.set_delivery(Side::B, false);
    pair.a.send(&b"wait"[..]).unwrap();
    pair.run_until_idle();
    assert_eq!(pair.in_flight(Side::B), 8);
    assert!(pair.take_events_b().is_empty());
    pair.set_delivery(Side::B, true);
    pair.run_until_idle();
    assert_eq!(pair.in_flight(Side::B), 0);
    assert_eq!(pair.take_events_b(), [prefix::Event::Frame("wait".into())]);
    // End of stream in the middle of a frame is the reader's error.
    pair.a.send(&b"cut"[..]).unwrap();
    pair.set_delivery(Side::B, false);
    pair.step();
    pair.set_delivery(Side::B, true);
    pair.step();
    pair.set_delivery(Side::B, false);
    pair.eof_to(Side::B);
    assert_eq!(pair.take_errors_b().len(), 1);
    assert!(pair.b.is_finished());
}

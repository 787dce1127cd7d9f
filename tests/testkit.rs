//! The public test kit: a pair of machines under a virtual clock, with
//! every chunking giving the same events.
#![cfg(feature = "testkit")]

use sansproto::testkit::{Chunking, Pair};
use sansproto::{prefix, ws};
use std::time::Duration;

const CHUNKINGS: [Chunking; 4] = [
    Chunking::Whole,
    Chunking::ByteByByte,
    Chunking::Random { seed: 1, max: 5 },
    Chunking::Random { seed: 2, max: 700 },
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

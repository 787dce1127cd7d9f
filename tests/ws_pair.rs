//! A client and a server talking through a pipe that cuts the byte stream
//! at random places, under a virtual clock: round trips, fragmentation,
//! streaming, the closing handshake and every timer.
#![cfg(feature = "testkit")]

mod common;

use bytes::Bytes;
use common::ws::{
    assemble_fragments, binary_of_len, close_payload, decode_frames, text_of_len, WireFrame,
};
use common::ws::{chunking, new_pair, open_pair, transfer, Pair, Side, CLIENT, SERVER};
use sansproto::ws::{
    CloseCode, Closed, Config, Error, Event, Message, SendError, SendErrorKind, TimeoutKind,
};
use std::time::Duration;

const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

fn messages_of_sizes(salt: usize) -> Vec<Message> {
    SIZES
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| {
            [
                Message::from(text_of_len(n, salt + i)),
                Message::Binary(binary_of_len(n, (salt + i) as u64).into()),
            ]
        })
        .collect()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn messages_of_many_sizes_survive_random_chunking_both_ways() {
    for (seed, max_chunk) in [(1, 4096), (2, 300), (3, 70_000)] {
        let mut pair = open_pair(Config::default(), Config::default(), seed);
        pair.set_chunking(chunking(seed, max_chunk));
        let sent = messages_of_sizes(seed as usize);
        assert_eq!(transfer(&mut pair, CLIENT, &sent), sent, "seed {seed}");
        // Both ways at once.
        let up = messages_of_sizes(seed as usize + 20);
        let down = messages_of_sizes(seed as usize + 30);
        for (u, d) in up.iter().zip(&down) {
            pair.a.send(u.clone()).unwrap();
            pair.b.send(d.clone()).unwrap();
        }
        pair.run_until_idle();
        let got = |events: Vec<Event>| -> Vec<Message> {
            events
                .into_iter()
                .map(|e| match e {
                    Event::Message(m) => m,
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        };
        assert_eq!(got(pair.take_events(SERVER)), up);
        assert_eq!(got(pair.take_events(CLIENT)), down);
        assert!(pair.a.is_open() && pair.b.is_open());
        assert_eq!(pair.a.buffered_amount(), 0);
        assert_eq!(pair.b.buffered_amount(), 0);
    }
}

/// The data frames on a side's wire after the handshake, grouped into
/// messages by their FIN bit.
fn frames_per_message(wire: &[u8], skip_head: bool) -> Vec<Vec<WireFrame>> {
    let start = if skip_head {
        wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4
    } else {
        0
    };
    let mut out = Vec::new();
    let mut current = Vec::new();
    for f in decode_frames(&wire[start..]) {
        let fin = f.fin;
        current.push(f);
        if fin {
            out.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty());
    out
}

#[test]
fn outgoing_fragmentation_round_trips() {
    let sizes = [0usize, 1, 999, 1000, 1001, 5000, 100_000];
    for (seed, fragment) in [(4, 1000usize), (5, 1), (6, 777)] {
        let client_config = Config::default().with_fragment_size(fragment);
        let server_config = Config::default().with_fragment_size(fragment);
        let mut pair = open_pair(client_config, server_config, seed);
        pair.record();
        let sizes: &[usize] = if fragment == 1 { &sizes[..5] } else { &sizes };
        let sent: Vec<Message> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, &n)| {
                [
                    Message::from(text_of_len(n, i)),
                    Message::Binary(binary_of_len(n, i as u64).into()),
                ]
            })
            .collect();
        for from in [CLIENT, SERVER] {
            assert_eq!(transfer(&mut pair, from, &sent), sent, "seed {seed}");
            let per_message = frames_per_message(pair.wire(from), false);
            assert_eq!(per_message.len(), sent.len());
            for (frames, m) in per_message.iter().zip(&sent) {
                let expected_frames = m.len().div_ceil(fragment).max(1);
                assert_eq!(frames.len(), expected_frames, "{} bytes", m.len());
                let first_op = if matches!(m, Message::Text(_)) { 1 } else { 2 };
                for (i, f) in frames.iter().enumerate() {
                    let op = if i == 0 { first_op } else { 0 };
                    assert_eq!(f.opcode, op);
                    assert_eq!(f.fin, i + 1 == frames.len());
                    assert!(f.payload.len() <= fragment);
                    assert_eq!(f.mask.is_some(), from == CLIENT);
                }
                let joined: Vec<u8> = frames.iter().flat_map(|f| f.payload.clone()).collect();
                assert_eq!(joined, m.as_bytes());
            }
            pair.record();
        }
    }
}

#[test]
fn streaming_mode_delivers_pieces_that_join_into_the_message() {
    for seed in [7, 8, 9] {
        let client_config = Config::default().with_fragment_size(10_000);
        let server_config = Config::default().with_stream_frames(true);
        let mut pair = open_pair(client_config, server_config, seed);
        let sent = vec![
            Message::Binary(binary_of_len(100_000, seed).into()),
            Message::from(text_of_len(50_000, 3)),
            Message::from(""),
            Message::from("small"),
            Message::Binary(Bytes::new()),
            Message::Binary(binary_of_len(20_000, seed + 1).into()),
        ];
        for m in &sent {
            pair.a.send(m.clone()).unwrap();
        }
        pair.run_until_idle();
        let events = pair.take_events(SERVER);
        assert_eq!(assemble_fragments(&events), sent, "seed {seed}");
        // The first message came in 10 frames, cut by the pipe into more
        // pieces than that: pieces are handed over as they arrive.
        let first_len = events
            .iter()
            .position(|e| matches!(e, Event::Fragment { last: true, .. }))
            .unwrap()
            + 1;
        assert!(first_len > 10, "{first_len} pieces");
        // Only an empty message is delivered as an empty piece.
        for e in &events {
            if let Event::Fragment {
                data, first, last, ..
            } = e
            {
                assert!(!data.is_empty() || (*first && *last), "{e:?}");
            }
        }
    }
}

#[test]
fn streaming_mode_splits_even_an_unfragmented_frame() {
    let mut pair = open_pair(
        Config::default(),
        Config::default().with_stream_frames(true),
        10,
    );
    pair.set_chunking(chunking(10, 1000));
    let big = Message::Binary(binary_of_len(300_000, 1).into());
    pair.a.send(big.clone()).unwrap();
    pair.run_until_idle();
    let events = pair.take_events(SERVER);
    assert!(events.len() > 1);
    assert_eq!(assemble_fragments(&events), [big]);
}

fn closed(code: u16, reason: &str, clean: bool, by_peer: bool) -> Event {
    Event::Closed(Closed {
        code: CloseCode(code),
        reason: reason.into(),
        clean,
        by_peer,
    })
}

/// Every command on a finished or closing connection is refused with
/// `Closed`, handing the payload back.
fn sends_are_refused(pair: &mut Pair, side: Side) {
    let c = pair.side_mut(side);
    assert!(!c.is_open());
    assert_eq!(
        c.send_text("late"),
        Err(SendError::new(SendErrorKind::Closed, Message::from("late")))
    );
    let data = Bytes::from_static(b"\x00\x01");
    let err = c.send_binary(data.clone()).unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::Closed);
    assert_eq!(err.payload(), &Message::Binary(data));
    assert_eq!(
        c.ping("p"),
        Err(SendError::new(
            SendErrorKind::Closed,
            Bytes::from_static(b"p")
        ))
    );
    assert_eq!(
        c.close(CloseCode::NORMAL, "").unwrap_err().kind(),
        &SendErrorKind::Closed
    );
}

#[test]
fn close_initiated_by_the_client() {
    for seed in [11, 12] {
        let mut pair = open_pair(Config::default(), Config::default(), seed);
        pair.record();
        pair.a.close(CloseCode::NORMAL, "done").unwrap();
        assert!(!pair.a.is_finished(), "waits for the reply");
        sends_are_refused(&mut pair, CLIENT);
        // Data the server sends before it sees the Close still arrives.
        pair.b.send_text("crossing").unwrap();
        pair.run_until_idle();
        assert_eq!(
            pair.take_events(CLIENT),
            [
                Event::Message(Message::from("crossing")),
                closed(1000, "done", true, false)
            ]
        );
        assert_eq!(pair.take_events(SERVER), [closed(1000, "done", true, true)]);
        for side in [CLIENT, SERVER] {
            assert!(pair.side_mut(side).is_finished(), "{side:?}");
            assert_eq!(pair.side_mut(side).error(), None);
            assert!(pair.take_errors(side).is_empty());
            sends_are_refused(&mut pair, side);
            assert_eq!(pair.next_deadline(side), None, "{side:?} timer left");
        }
        let client_frames = decode_frames(pair.wire(CLIENT));
        assert_eq!(client_frames.len(), 1);
        assert_eq!(client_frames[0].payload, close_payload(1000, "done"));
        let server_frames = decode_frames(pair.wire(SERVER));
        let last = server_frames.last().unwrap();
        assert_eq!(
            (last.opcode, &last.payload),
            (0x8, &close_payload(1000, "done"))
        );
        // Nothing more happens, whatever arrives.
        pair.eof_to(CLIENT);
        pair.eof_to(SERVER);
        pair.advance(secs(60.0));
        assert_eq!(pair.take_events(CLIENT), []);
        assert_eq!(pair.take_events(SERVER), []);
    }
}

#[test]
fn close_initiated_by_the_server() {
    let mut pair = open_pair(Config::default(), Config::default(), 13);
    pair.record();
    pair.b.close(CloseCode(4000), "shutting down").unwrap();
    sends_are_refused(&mut pair, SERVER);
    pair.run_until_idle();
    assert_eq!(
        pair.take_events(CLIENT),
        [closed(4000, "shutting down", true, true)]
    );
    assert_eq!(
        pair.take_events(SERVER),
        [closed(4000, "shutting down", true, false)]
    );
    for side in [CLIENT, SERVER] {
        assert!(pair.side_mut(side).is_finished());
        sends_are_refused(&mut pair, side);
    }
    let echo = decode_frames(pair.wire(CLIENT));
    assert_eq!(echo.len(), 1);
    assert_eq!(echo[0].opcode, 0x8);
    assert!(echo[0].mask.is_some());
    assert_eq!(echo[0].payload, close_payload(4000, "shutting down"));
}

#[test]
fn close_without_a_code_is_reported_as_1005() {
    let mut pair = open_pair(Config::default(), Config::default(), 14);
    pair.record();
    let mut raw = Vec::new();
    // A Close with an empty payload, written by hand (masked, client side).
    raw.extend_from_slice(&[0x88, 0x80, 1, 2, 3, 4]);
    pair.b.receive(&raw).unwrap();
    assert_eq!(pair.take_events(SERVER), [closed(1005, "", true, true)]);
    pair.run_until_idle();
    let echo = decode_frames(pair.wire(SERVER));
    assert_eq!((echo[0].opcode, echo[0].payload.len()), (0x8, 0));
}

#[test]
fn simultaneous_close_is_clean_on_both_sides() {
    let mut pair = open_pair(Config::default(), Config::default(), 15);
    pair.a.close(CloseCode::NORMAL, "client").unwrap();
    pair.b.close(CloseCode::GOING_AWAY, "server").unwrap();
    pair.run_until_idle();
    assert_eq!(
        pair.take_events(CLIENT),
        [closed(1001, "server", true, false)]
    );
    assert_eq!(
        pair.take_events(SERVER),
        [closed(1000, "client", true, false)]
    );
    assert!(pair.a.is_finished() && pair.b.is_finished());
}

#[test]
fn close_reason_is_cut_to_fit_a_control_frame() {
    let mut pair = open_pair(Config::default(), Config::default(), 16);
    let long = "é".repeat(100); // 200 bytes
    pair.a.close(CloseCode::NORMAL, &long).unwrap();
    pair.run_until_idle();
    let events = pair.take_events(SERVER);
    let [Event::Closed(c)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert!(c.reason.len() <= 123 && !c.reason.is_empty());
    assert!(long.starts_with(&c.reason));
    assert!(c.clean);
}

#[test]
fn invalid_close_codes_cannot_be_sent() {
    let mut pair = open_pair(Config::default(), Config::default(), 17);
    for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(
            pair.a.close(CloseCode(code), "").unwrap_err().kind(),
            &SendErrorKind::InvalidCloseCode(code)
        );
    }
    assert!(pair.a.is_open());
}

#[test]
fn eof_before_close_is_an_abnormal_closure() {
    for side in [CLIENT, SERVER] {
        let mut pair = open_pair(Config::default(), Config::default(), 18);
        pair.eof_to(side);
        let events = pair.take_events(side);
        let [Event::Closed(c)] = events.as_slice() else {
            panic!("{side:?}: {events:?}");
        };
        assert_eq!((c.code, c.clean), (CloseCode::ABNORMAL, false), "{side:?}");
        assert!(pair.side_mut(side).is_finished());
        sends_are_refused(&mut pair, side);
        pair.eof_to(side);
        assert_eq!(pair.take_events(side), [], "only one Closed");
    }
    // EOF after this side sent Close but before the reply: abnormal too.
    let mut pair = open_pair(Config::default(), Config::default(), 19);
    pair.set_delivery(CLIENT, false);
    pair.a.close(CloseCode::NORMAL, "").unwrap();
    pair.run_until_idle();
    pair.eof_to(CLIENT);
    let events = pair.take_events(CLIENT);
    let [Event::Closed(c)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!((c.code, c.clean), (CloseCode::ABNORMAL, false));
}

#[test]
fn an_open_connection_without_keepalive_sets_no_timer() {
    let mut pair = open_pair(Config::default(), Config::default(), 20);
    assert_eq!(pair.next_deadline(CLIENT), None);
    assert_eq!(pair.next_deadline(SERVER), None);
    pair.advance(secs(3600.0));
    assert!(pair.a.is_open() && pair.b.is_open());
    assert_eq!(pair.take_events(CLIENT), []);
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[test]
fn keepalive_pings_an_idle_peer_and_stays_open() {
    let config = Config::default().with_keepalive(secs(10.0), secs(5.0));
    let mut pair = open_pair(config, Config::default(), 21);
    assert_eq!(pair.next_deadline(CLIENT), Some(secs(10.0)));
    let (mut pings, mut pongs) = (0, 0);
    for step in 1..=100 {
        pair.advance(secs(1.0));
        // Extra timer calls are harmless.
        pair.tick();
        pair.tick();
        let server = pair.take_events(SERVER);
        let client = pair.take_events(CLIENT);
        pings += count(&server, |e| matches!(e, Event::Ping(_)));
        pongs += count(&client, |e| matches!(e, Event::Pong { matched: true, .. }));
        assert_eq!(server.len() + client.len(), 2 * (step % 10 == 0) as usize);
        assert_eq!(pings, step / 10, "after {step} s");
        assert_eq!(pongs, step / 10, "after {step} s");
        let next = (step / 10 + 1) * 10;
        assert_eq!(pair.next_deadline(CLIENT), Some(secs(next as f64)));
    }
    assert!(pair.a.is_open() && pair.b.is_open());
    assert!(pair.take_errors(CLIENT).is_empty());
}

#[test]
fn keepalive_does_not_ping_while_the_peer_is_talking() {
    let config = Config::default().with_keepalive(secs(10.0), secs(5.0));
    let mut pair = open_pair(config, Config::default(), 22);
    for _ in 0..25 {
        pair.b.send_text("tick").unwrap();
        pair.run_until_idle();
        pair.advance(secs(4.0));
    }
    let server = pair.take_events(SERVER);
    assert_eq!(server, [], "no ping was needed");
    let client = pair.take_events(CLIENT);
    assert_eq!(client.len(), 25);
    // The server went quiet at 96 s: the client pings 10 s later.
    assert_eq!(pair.elapsed(), secs(100.0));
    pair.advance(secs(5.999));
    assert_eq!(pair.take_events(SERVER), []);
    pair.advance(secs(0.001));
    assert!(matches!(
        pair.take_events(SERVER).as_slice(),
        [Event::Ping(_)]
    ));
}

#[test]
fn keepalive_fails_the_connection_when_no_pong_comes() {
    // (interval, pong timeout, when the first ping goes, when it fails)
    for (interval, timeout) in [(10.0, 5.0), (10.0, 25.0), (3.0, 3.0)] {
        let config = Config::default().with_keepalive(secs(interval), secs(timeout));
        let mut pair = open_pair(config, Config::default(), 23);
        // The server still hears the client, but the client hears nothing.
        pair.set_delivery(CLIENT, false);
        let fail_at = interval + timeout;
        pair.advance(secs(fail_at - 0.001));
        assert!(pair.a.is_open(), "{interval}/{timeout}: failed early");
        let pings = count(&pair.take_events(SERVER), |e| matches!(e, Event::Ping(_)));
        assert_eq!(
            pings,
            1 + ((fail_at - 0.001 - interval) / interval) as usize
        );
        assert_eq!(pair.take_events(CLIENT), []);
        assert_eq!(pair.next_deadline(CLIENT), Some(secs(fail_at)));

        pair.advance(secs(0.001));
        assert_eq!(
            pair.take_events(CLIENT),
            [Event::Closed(Closed {
                code: CloseCode::ABNORMAL,
                reason: Error::Timeout(TimeoutKind::Pong).to_string(),
                clean: false,
                by_peer: false
            })]
        );
        let e = Error::Timeout(TimeoutKind::Pong);
        assert_eq!(pair.a.error(), Some(&e));
        assert!(pair.a.is_finished());
        assert_eq!(pair.a.receive(b"\x81\x00"), Err(e.clone()));
        assert_eq!(pair.a.receive_eof(), Err(e));
        sends_are_refused(&mut pair, CLIENT);
        assert_eq!(pair.next_deadline(CLIENT), None);
    }
}

#[test]
fn close_timeout_finishes_a_side_that_gets_no_reply() {
    for (timeout, config) in [
        (10.0, Config::default()),
        (3.0, Config::default().with_close_timeout(Some(secs(3.0)))),
    ] {
        let mut pair = open_pair(config, Config::default(), 24);
        pair.advance(secs(1.0));
        pair.set_delivery(CLIENT, false);
        pair.a.close(CloseCode::NORMAL, "").unwrap();
        pair.run_until_idle();
        assert_eq!(
            pair.take_events(SERVER),
            [closed(1000, "", true, true)],
            "the server replied; the reply is lost"
        );
        assert_eq!(pair.next_deadline(CLIENT), Some(secs(1.0 + timeout)));
        pair.advance(secs(timeout - 0.001));
        assert!(!pair.a.is_finished());
        assert_eq!(pair.take_events(CLIENT), []);
        pair.advance(secs(0.001));
        assert!(pair.a.is_finished());
        let e = Error::Timeout(TimeoutKind::Close);
        assert_eq!(
            pair.take_events(CLIENT),
            [Event::Closed(Closed {
                code: CloseCode::ABNORMAL,
                reason: e.to_string(),
                clean: false,
                by_peer: false
            })]
        );
        assert_eq!(pair.a.error(), Some(&e));
        assert_eq!(pair.a.receive(b"\x88\x00"), Err(e));
    }
}

#[test]
fn without_a_close_timeout_the_side_waits_for_ever() {
    let config = Config::default().with_close_timeout(None);
    let mut pair = open_pair(config, Config::default(), 25);
    pair.set_delivery(CLIENT, false);
    pair.a.close(CloseCode::NORMAL, "").unwrap();
    pair.run_until_idle();
    assert_eq!(pair.next_deadline(CLIENT), None);
    pair.advance(secs(86_400.0));
    assert!(!pair.a.is_finished());
    // The reply finally arrives.
    pair.set_delivery(CLIENT, true);
    pair.run_until_idle();
    assert_eq!(pair.take_events(CLIENT), [closed(1000, "", true, false)]);
}

#[test]
fn handshake_timeout_fails_both_sides() {
    let client_config = Config::default().with_handshake_timeout(Some(secs(8.0)));
    let server_config = Config::default().with_handshake_timeout(Some(secs(5.0)));
    let mut pair = new_pair(client_config, server_config, 26);
    // The request never reaches the server.
    pair.set_delivery(SERVER, false);
    pair.run_until_idle();
    assert_eq!(pair.next_deadline(SERVER), Some(secs(5.0)));
    assert_eq!(pair.next_deadline(CLIENT), Some(secs(8.0)));
    pair.advance(secs(4.999));
    assert!(!pair.b.is_finished());
    pair.advance(secs(0.001));
    let e = Error::Timeout(TimeoutKind::Handshake);
    assert!(pair.b.is_finished());
    assert_eq!(pair.b.error(), Some(&e));
    assert!(!pair.a.is_finished());
    pair.advance(secs(2.999));
    assert!(!pair.a.is_finished());
    pair.advance(secs(0.001));
    assert!(pair.a.is_finished());
    assert_eq!(pair.a.error(), Some(&e));
    assert_eq!(pair.a.receive(b"HTTP/1.1 101 "), Err(e.clone()));
    assert_eq!(pair.b.receive(b"GET / HTTP/1.1\r\n"), Err(e));
    assert_eq!(pair.take_events(CLIENT), [], "never opened");
    assert_eq!(pair.take_events(SERVER), [], "never opened");
    assert_eq!(
        pair.a.send_text("x").unwrap_err().kind(),
        &SendErrorKind::Closed
    );
}

#[test]
fn a_completed_handshake_cancels_the_handshake_timer() {
    let config = Config::default().with_handshake_timeout(Some(secs(5.0)));
    let mut pair = open_pair(config.clone(), config, 27);
    pair.advance(secs(60.0));
    assert!(pair.a.is_open() && pair.b.is_open());
    assert_eq!(pair.take_events(CLIENT), []);
    assert_eq!(pair.take_events(SERVER), []);
}

#[test]
fn a_slow_handshake_that_completes_in_time_opens() {
    let config = Config::default().with_handshake_timeout(Some(secs(5.0)));
    let mut pair = new_pair(config.clone(), config, 28);
    pair.set_delivery(SERVER, false);
    pair.run_until_idle();
    pair.advance(secs(4.9));
    pair.set_delivery(SERVER, true);
    pair.run_until_idle();
    pair.advance(secs(10.0));
    assert!(pair.a.is_open() && pair.b.is_open());
}

//! `stats()` against a hand count of scripted exchanges, one per protocol.
// Some imports serve only the tests on a testkit pair.
#![cfg_attr(not(feature = "testkit"), allow(unused_imports))]

mod common;

use bytes::Bytes;
#[cfg(feature = "testkit")]
use common::ws::{open_pair, transfer, CLIENT};
use sansproto::ws::{CloseCode, Config, Event, Message, Role, Session};
use std::time::{Duration, Instant};

fn session(role: Role, config: Config, seed: u64) -> Session {
    Session::new(role, config, None, None, sansproto::seeded_random(seed))
}

/// Moves everything `from` queued into `to`; returns the byte count.
fn deliver(from: &mut Session, to: &mut Session) -> usize {
    let mut wire = Vec::new();
    from.poll_transmit(&mut wire);
    to.receive(&wire).unwrap();
    wire.len()
}

fn drain(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn ws_session_counts_a_scripted_exchange() {
    let mut client = session(Role::Client, Config::default(), 1);
    let mut server = session(Role::Server, Config::default(), 2);

    // Client: text "hello" (2 + 4 + 5), binary [1, 2, 3] (2 + 4 + 3),
    // ping "p" (2 + 4 + 1): 27 bytes, masked.
    client.send("hello").unwrap();
    client
        .send(Message::Binary(Bytes::from_static(&[1, 2, 3])))
        .unwrap();
    client.ping("p").unwrap();
    assert_eq!(deliver(&mut client, &mut server), 27);
    assert_eq!(drain(&mut server).len(), 3);

    // Server: the automatic pong (2 + 1), text "ok" (2 + 2): 7 bytes.
    server.send("ok").unwrap();
    assert_eq!(deliver(&mut server, &mut client), 7);
    let events = drain(&mut client);
    assert!(matches!(events[0], Event::Pong { matched: true, .. }));

    // Client: Close 1000 "bye" (2 + 4 + 5); the server's answer (2 + 5).
    client.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(deliver(&mut client, &mut server), 11);
    drain(&mut server);
    assert_eq!(deliver(&mut server, &mut client), 7);
    drain(&mut client);
    assert!(client.is_finished() && server.is_finished());

    let c = client.stats();
    assert_eq!((c.tx.bytes, c.tx.frames, c.tx.messages), (38, 4, 2));
    assert_eq!((c.rx.bytes, c.rx.frames, c.rx.messages), (14, 3, 1));
    let (ctx, crx) = (c.control_tx, c.control_rx);
    assert_eq!((ctx.pings, ctx.pongs, ctx.closes), (1, 0, 1));
    assert_eq!((crx.pings, crx.pongs, crx.closes), (0, 1, 1));
    assert_eq!(c.pongs_matched, 1);
    assert_eq!(c.last_rtt, None);
    assert_eq!(c.compression_tx, Default::default());
    assert_eq!(c.compression_rx, Default::default());
    assert_eq!(c.errors, Default::default());

    let s = server.stats();
    assert_eq!((s.rx.bytes, s.rx.frames, s.rx.messages), (38, 4, 2));
    assert_eq!((s.tx.bytes, s.tx.frames, s.tx.messages), (14, 3, 1));
    let (stx, srx) = (s.control_tx, s.control_rx);
    assert_eq!((stx.pings, stx.pongs, stx.closes), (0, 1, 1));
    assert_eq!((srx.pings, srx.pongs, srx.closes), (1, 0, 1));
    assert_eq!(s.pongs_matched, 0);
    assert_eq!(s.last_rtt, None);
    assert_eq!(s.compression_tx, Default::default());
    assert_eq!(s.compression_rx, Default::default());
    assert_eq!(s.errors, Default::default());
}

#[test]
fn ws_fragmented_and_streamed_messages_count_once() {
    let config = Config::default().with_fragment_size(4);
    let mut client = session(Role::Client, config, 3);
    let mut server = session(Role::Server, Config::default().with_stream_frames(true), 4);
    client.send("0123456789").unwrap(); // frames of 4, 4, 2
    deliver(&mut client, &mut server);
    let pieces = drain(&mut server);
    assert!(pieces.iter().all(|e| matches!(e, Event::Fragment { .. })));
    let (c, s) = (client.stats(), server.stats());
    assert_eq!((c.tx.frames, c.tx.messages), (3, 1));
    assert_eq!((s.rx.frames, s.rx.messages), (3, 1));
    assert_eq!(s.rx.bytes, 3 * 6 + 10);
}

#[test]
fn ws_keepalive_round_trip_is_measured() {
    let t0 = Instant::now();
    let config = Config::default().with_keepalive(Duration::from_secs(1), Duration::from_secs(5));
    let mut client = session(Role::Client, config, 5);
    let mut server = session(Role::Server, Config::default(), 6);
    client.handle_timeout(t0);
    client.handle_timeout(t0 + Duration::from_secs(1)); // the keepalive ping
    deliver(&mut client, &mut server);
    deliver(&mut server, &mut client); // its pong
    assert!(matches!(
        drain(&mut client)[..],
        [Event::Pong { matched: true, .. }]
    ));
    assert_eq!(
        client.stats().last_rtt,
        None,
        "measured at the next handle_timeout"
    );
    client.handle_timeout(t0 + Duration::from_millis(1250));
    let c = client.stats();
    assert_eq!(c.last_rtt, Some(Duration::from_millis(250)));
    assert_eq!((c.control_tx.pings, c.pongs_matched), (1, 1));
}

/// As for prefix: a lend interrupted by `receive` counts its bytes once.
#[test]
fn ws_counts_a_lend_interrupted_by_receive_once() {
    let mut server = session(Role::Server, Config::default(), 7);
    let _ = server.receive_buf_mut(64).unwrap();
    // Part of a masked text frame "hi".
    server.receive(&[0x81, 0x82, 0, 0, 0]).unwrap();
    server.commit_appended().unwrap();
    assert_eq!(server.stats().rx.bytes, 5);
    server.receive(&[0, b'h', b'i']).unwrap();
    assert_eq!(
        server.poll_event(),
        Some(Event::Message(Message::from("hi")))
    );
    assert_eq!(server.stats().rx.bytes, 8);
}

#[test]
fn ws_failure_is_counted_by_kind() {
    let mut server = session(Role::Server, Config::default(), 7);
    // An unmasked frame from a client.
    assert!(server.receive(&[0x82, 0x01, 0xff]).is_err());
    let s = server.stats();
    assert_eq!(s.errors.protocol, 1);
    assert_eq!(
        s.errors.invalid_utf8 + s.errors.too_big + s.errors.timeout,
        0
    );
    assert_eq!((s.rx.bytes, s.rx.frames), (3, 0));
    assert_eq!((s.tx.frames, s.control_tx.closes), (1, 1));
    // Bytes offered after the failure are refused, and not counted, by
    // every way in.
    assert!(server.receive(&[0x82, 0x81, 0, 0, 0, 0, 1]).is_err());
    if let Some(room) = server.receive_buffer(4) {
        room[..4].copy_from_slice(&[0x82, 0x80, 0, 0]);
        assert!(server.commit_received(4).is_err());
    }
    assert_eq!(server.stats().rx.bytes, 3);
}

#[test]
fn ws_bytes_after_a_failed_handshake_are_not_counted() {
    let mut server = sansproto::ws::Connection::server(Config::default());
    let bad = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // A request without the upgrade fields: 400, and the handshake fails.
    let _ = server.receive(b"BREW / HTCPCP/1.0\r\n\r\n");
    assert!(server.error().is_some(), "the handshake failed");
    let counted = server.stats().rx.bytes;
    assert_eq!(counted, 21);
    assert!(server.receive(bad).is_err());
    assert_eq!(server.stats().rx.bytes, counted);
}

#[cfg(feature = "testkit")]
#[test]
fn ws_connection_counts_the_handshake() {
    let mut pair = open_pair(Config::default(), Config::default(), 8);
    let (c, s) = (pair.a.stats(), pair.b.stats());
    assert!(c.tx.bytes > 100 && s.tx.bytes > 100, "request and 101");
    assert_eq!(c.tx.bytes, s.rx.bytes);
    assert_eq!(s.tx.bytes, c.rx.bytes);
    assert_eq!(
        (c.rx.frames, s.rx.frames, c.tx.frames, s.tx.frames),
        (0, 0, 0, 0)
    );
    transfer(&mut pair, CLIENT, &[Message::from("x")]);
    let (c2, s2) = (pair.a.stats(), pair.b.stats());
    assert_eq!(c2.tx.bytes - c.tx.bytes, 2 + 4 + 1);
    assert_eq!(s2.rx.bytes - s.rx.bytes, 2 + 4 + 1);
    assert_eq!((s2.rx.messages, c2.tx.messages), (1, 1));
}

#[cfg(feature = "testkit")]
#[cfg(feature = "deflate")]
#[test]
fn ws_compression_counts_both_sizes() {
    use sansproto::ws::DeflateConfig;
    let config = || Config::default().with_deflate(DeflateConfig::default());
    let mut pair = open_pair(config(), config(), 9);
    let text = "a".repeat(1000);
    let got = transfer(&mut pair, CLIENT, &[Message::from(text.as_str())]);
    assert_eq!(got, [Message::from(text.as_str())]);
    let (c, s) = (pair.a.stats(), pair.b.stats());
    assert_eq!(
        (c.compression_tx.messages, s.compression_rx.messages),
        (1, 1)
    );
    assert_eq!(c.compression_tx.uncompressed, 1000);
    assert_eq!(s.compression_rx.uncompressed, 1000);
    assert_eq!(c.compression_tx.compressed, s.compression_rx.compressed);
    assert!(c.compression_tx.compressed < 100);
    assert_eq!((c.tx.messages, s.rx.messages), (1, 1));
}

/// A message that inflates past `max_message_size` is counted as too big,
/// as it is closed with 1009, like one that arrives too big.
#[cfg(feature = "testkit")]
#[cfg(feature = "deflate")]
#[test]
fn ws_an_inflated_message_over_the_limit_counts_as_too_big() {
    use sansproto::ws::DeflateConfig;
    let config = || Config::default().with_deflate(DeflateConfig::default());
    let mut pair = open_pair(config(), config().with_max_message_size(100), 10);
    pair.a.send(Message::from("a".repeat(1000))).unwrap();
    pair.run_until_idle();
    let s = pair.b.stats();
    assert_eq!(s.errors.too_big, 1, "{:?}", s.errors);
    assert_eq!(s.errors.extension, 0, "{:?}", s.errors);
    assert_eq!(
        pair.b.error().and_then(|e| e.close_code()),
        Some(CloseCode::MESSAGE_TOO_BIG)
    );
}

mod prefix {
    use sansproto::prefix::{Config, Connection, DecodeError, Event};
    use std::time::{Duration, Instant};

    #[test]
    fn prefix_counts_a_scripted_exchange() {
        let mut a = Connection::new(
            Config::builder()
                .heartbeat(Duration::from_secs(1), &[0u8, 0, 0, 0][..])
                .build()
                .unwrap(),
        );
        let mut b = Connection::new(
            Config::builder()
                .max_payload_length(8)
                .discard_too_long_frames(true)
                .build()
                .unwrap(),
        );
        let t0 = Instant::now();
        a.handle_timeout(t0);
        a.send(&b"one"[..]).unwrap(); // 4 + 3
        a.send_batch(&[(&b""[..], &b"two"[..]), (&b""[..], &b"three"[..])])
            .unwrap(); // 7 + 9
        a.send(&b"far too long"[..]).unwrap(); // 4 + 12, discarded by b
        a.handle_timeout(t0 + Duration::from_secs(1)); // heartbeat: 4
        let mut wire = Vec::new();
        assert_eq!(a.poll_transmit(&mut wire), 7 + 7 + 9 + 16 + 4);
        b.receive(&wire).unwrap();
        let events: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        assert_eq!(events.len(), 5);
        assert!(matches!(events[3], Event::FrameDiscarded { length: 16 }));
        b.receive(&[0, 0]).unwrap(); // half a header, then the end
        assert!(matches!(
            b.receive_eof(),
            Err(DecodeError::Truncated { .. })
        ));

        let sa = a.stats();
        assert_eq!((sa.tx.bytes, sa.tx.frames, sa.tx.messages), (43, 5, 4));
        assert_eq!((sa.rx.bytes, sa.rx.frames, sa.rx.messages), (0, 0, 0));
        assert_eq!(
            (sa.heartbeats, sa.heartbeats_skipped, sa.frames_discarded),
            (1, 0, 0)
        );
        assert_eq!(sa.errors, Default::default());

        let sb = b.stats();
        assert_eq!((sb.rx.bytes, sb.rx.frames, sb.rx.messages), (45, 5, 4));
        assert_eq!((sb.tx.bytes, sb.tx.frames, sb.tx.messages), (0, 0, 0));
        assert_eq!((sb.heartbeats, sb.frames_discarded), (0, 1));
        assert_eq!(sb.errors.truncated, 1);
        assert_eq!(
            sb.errors.frame_too_long + sb.errors.bad_length + sb.errors.idle_timeout,
            0
        );
    }

    /// A buffer lent for a read that appended nothing, then input given to
    /// `receive`: committing the read counts none of it a second time.
    #[test]
    fn prefix_counts_a_lend_interrupted_by_receive_once() {
        let mut c = Connection::new(Config::default());
        let _ = c.receive_buf_mut(64).unwrap();
        c.receive(b"\0\0\0\x05ab").unwrap();
        c.commit_appended().unwrap();
        assert_eq!(c.stats().rx.bytes, 6);
        c.receive(b"cde").unwrap();
        assert_eq!(c.poll_event(), Some(Event::Frame("abcde".into())));
        assert_eq!(c.stats().rx.bytes, 9);
    }

    #[test]
    fn prefix_counts_bytes_written_through_output() {
        use bytes::Buf;
        let mut a = Connection::new(Config::default());
        a.send(&b"hello"[..]).unwrap();
        a.output().advance(3);
        assert_eq!(a.stats().tx.bytes, 3);
        let rest = a.output().chunk().to_vec();
        assert_eq!(rest, b"\x05hello");
        a.output().advance(rest.len());
        assert_eq!(a.stats().tx.bytes, 9);
    }

    #[test]
    fn prefix_counts_bytes_ignored_after_close_but_not_after_a_failure() {
        // As a WebSocket session does: once closed, input is taken and
        // ignored, and counted; after a decode error it is refused.
        let mut closed = Connection::new(Config::default());
        closed.receive(b"\x00\x00\x00\x02hi").unwrap();
        closed.close();
        assert_eq!(closed.receive(b"\x00\x00\x00\x01!"), Ok(5));
        assert_eq!(closed.stats().rx.bytes, 6 + 5);
        assert!(closed.receive_buffer(4).is_none());

        let mut failed = Connection::new(Config::builder().max_payload_length(4).build().unwrap());
        assert!(failed.receive(b"\x00\x00\x00\x09").is_err());
        assert!(failed.receive(b"\x00\x00\x00\x01!").is_err());
        assert_eq!(failed.stats().rx.bytes, 4);
    }

    #[test]
    fn prefix_idle_timeout_is_counted() {
        let mut c = Connection::new(
            Config::builder()
                .idle_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
        );
        let t0 = Instant::now();
        c.handle_timeout(t0);
        c.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(c.poll_event(), Some(Event::IdleTimeout));
        assert_eq!(c.stats().errors.idle_timeout, 1);
    }
}

mod datagram {
    use bytes::Bytes;
    use sansproto::datagram::{Config, Endpoint, Event, Header, Sessions, HEADER_LEN, KIND_DATA};
    use std::time::{Duration, Instant};

    #[test]
    fn datagram_counts_a_scripted_exchange() {
        let mut a =
            Endpoint::with_random(Config::segmented(), sansproto::seeded_random(1)).unwrap();
        let mut b =
            Endpoint::with_random(Config::segmented(), sansproto::seeded_random(2)).unwrap();
        let now = Instant::now();
        let big = Bytes::from(vec![7u8; 3000]); // 3 fragments
        a.send(2u32, big.clone()).unwrap();
        a.send(2, Bytes::from_static(b"hi")).unwrap();
        assert!(a.send(2, Bytes::from(vec![0u8; 1 << 20])).is_err());
        let mut datagram = Vec::new();
        let mut sent = 0;
        while let Some(to) = a.poll_transmit(&mut datagram) {
            assert_eq!(to, 2);
            sent += datagram.len();
            b.receive(1u32, Bytes::from(std::mem::take(&mut datagram)), now)
                .unwrap();
        }
        assert_eq!(sent, 3000 + 2 + 4 * HEADER_LEN);
        b.receive(1, Bytes::from_static(&[9, 9]), now).unwrap(); // a short header
        b.receive(3, Bytes::from(vec![0u8; 2000]), now).unwrap(); // over the MTU
        let events: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        assert_eq!(events.len(), 5, "{events:?}");

        let sa = a.stats();
        assert_eq!(
            (sa.tx.bytes, sa.tx.frames, sa.tx.messages),
            (sent as u64, 4, 2)
        );
        assert_eq!((sa.rx.bytes, sa.rx.frames, sa.rx.messages), (0, 0, 0));
        assert_eq!(
            (sa.errors.send_too_large, sa.errors.send_queue_full),
            (1, 0)
        );
        assert_eq!(a.peer_stats(&2), None, "sending opens no peer");

        let sb = b.stats();
        assert_eq!(
            (sb.rx.bytes, sb.rx.frames, sb.rx.messages),
            (sent as u64 + 2002, 6, 2)
        );
        assert_eq!((sb.tx.bytes, sb.tx.frames, sb.tx.messages), (0, 0, 0));
        assert_eq!((sb.peers_opened, sb.peers_closed), (1, 0));
        let e = sb.errors;
        assert_eq!(
            (e.bad_header, e.too_large, e.bad_fragment, e.peers_refused),
            (1, 1, 0, 0)
        );
        assert_eq!((e.reassembly_timeouts, e.evictions), (0, 0));
        let p = b.peer_stats(&1).unwrap();
        assert_eq!(
            (p.rx.bytes, p.rx.frames, p.rx.messages),
            (sent as u64, 4, 2)
        );
        // The short header was dropped before its sender was looked up.
        assert_eq!((p.datagrams_dropped, p.messages_dropped), (0, 0));
        assert_eq!(b.peer_stats(&3), None);

        // A partial message left to time out, then the peer goes idle.
        let first = {
            a.send(2, big).unwrap();
            let mut d = Vec::new();
            a.poll_transmit(&mut d);
            Bytes::from(d)
        };
        b.receive(1, first, now).unwrap();
        b.handle_timeout(now + Duration::from_secs(60));
        let events: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        assert!(
            matches!(
                events[..],
                [Event::MessageDropped { .. }, Event::PeerClosed { .. }]
            ),
            "{events:?}"
        );
        let sb = b.stats();
        assert_eq!((sb.errors.reassembly_timeouts, sb.peers_closed), (1, 1));
    }

    /// A peer's `datagrams_dropped` counts what was dropped after the
    /// peer was looked up, not datagrams refused for their length or
    /// headers alone (those count in the endpoint's totals only).
    #[test]
    fn datagram_peer_drops_count_only_after_the_sender_is_looked_up() {
        let fragment = |message_id: u32, count: u16, payload: &[u8]| {
            let header = Header {
                message_id,
                index: 0,
                count,
            };
            let mut d = header.encode().to_vec();
            d.extend_from_slice(payload);
            d
        };
        let session = |id: u32, rest: &[u8]| {
            let mut d = vec![KIND_DATA];
            d.extend_from_slice(&id.to_be_bytes());
            d.extend_from_slice(rest);
            Bytes::from(d)
        };
        let now = Instant::now();

        let mut ep =
            Endpoint::<u32>::with_random(Config::segmented(), sansproto::seeded_random(1)).unwrap();
        for datagram in [
            fragment(1, 1, b"a"),        // valid: opens peer 1
            vec![0u8; 2000],             // over the MTU
            vec![9, 9, 9],               // a short segment header
            fragment(2, 64, &[0; 1400]), // fits no 64 KiB message
        ] {
            ep.receive(1, Bytes::from(datagram), now).unwrap();
        }
        let e = ep.stats().errors;
        assert_eq!((e.too_large, e.bad_header, e.bad_fragment), (1, 1, 1));
        assert_eq!(ep.peer_stats(&1).unwrap().datagrams_dropped, 1);

        let mut config = Config::default();
        config.sessions = Some(Sessions::default());
        let mut ep = Endpoint::<u32>::with_random(config, sansproto::seeded_random(1)).unwrap();
        for datagram in [
            session(7, b"hello"),                          // opens peer 1, session 7
            Bytes::from_static(&[0x77, 0, 0, 0, 7, b'x']), // an unknown kind
            Bytes::from_static(&[KIND_DATA, 0, 0]),        // a short session header
            session(8, b"x"),                              // another session's
        ] {
            ep.receive(1, datagram, now).unwrap();
        }
        let e = ep.stats().errors;
        assert_eq!((e.bad_session_header, e.unconfirmed_session), (2, 1));
        assert_eq!(ep.peer_stats(&1).unwrap().datagrams_dropped, 1);
    }
}

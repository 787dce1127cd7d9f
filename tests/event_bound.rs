//! The bound on events waiting to be polled, in every machine: past it no
//! input is taken, parsing of what was taken pauses, and nothing is lost.
//! The same bytes give the same events however they are split and whether
//! or not the application polls between reads; the transport's end waits
//! behind paused input.

use bytes::Bytes;
use sansproto::ws::{encode_frame, CloseCode, Config, Connection, Event, Message, OpCode, Role};
use sansproto::{datagram, prefix, Driver};
use std::time::Instant;

/// `n` masked text frames "m0", "m1", ..., then a Close frame (1000).
fn messages_then_close(n: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..n {
        let text = format!("m{i}");
        encode_frame(
            &mut wire,
            true,
            0,
            OpCode::Text,
            Some([1, 2, 3, 4]),
            text.as_bytes(),
        );
    }
    encode_frame(
        &mut wire,
        true,
        0,
        OpCode::Close,
        Some([1, 2, 3, 4]),
        &1000u16.to_be_bytes(),
    );
    wire
}

fn ws_server(max_events: usize) -> Connection {
    let config = Config::default().with_max_pending_events(max_events);
    Connection::after_handshake(
        Role::Server,
        config,
        None,
        None,
        sansproto::seeded_random(1),
    )
}

/// Feeds every read without polling between them unless a read is refused;
/// then ends the stream and polls everything.
fn feed_lazily<D: Driver>(machine: &mut D, reads: &[&[u8]]) -> Vec<D::Event>
where
    D::Error: std::fmt::Debug,
{
    let mut events = Vec::new();
    for read in reads {
        let mut rest = *read;
        while !rest.is_empty() {
            let taken = machine.receive(rest).unwrap();
            assert!(taken == 0 || taken == rest.len(), "all or nothing");
            if taken == 0 {
                events.extend(std::iter::from_fn(|| machine.poll_event()));
            }
            rest = &rest[taken..];
        }
    }
    machine.receive_eof().unwrap();
    events.extend(std::iter::from_fn(|| machine.poll_event()));
    events
}

fn expected_ws(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::Message(Message::from(format!("m{i}"))))
        .collect()
}

#[test]
fn ws_messages_then_close_then_eof_arrive_in_order_past_the_bound() {
    let n = 3000;
    let wire = messages_then_close(n);
    let mut s = ws_server(16);
    let events = feed_lazily(&mut s, &[&wire]);
    assert_eq!(events.len(), n + 1);
    assert_eq!(events[..n], expected_ws(n)[..]);
    let Event::Closed(closed) = &events[n] else {
        panic!("{:?}", events[n]);
    };
    assert!(closed.clean && closed.by_peer, "{closed:?}");
    assert_eq!(closed.code, CloseCode::NORMAL);
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(out, [0x88, 2, 0x03, 0xe8], "the Close frame is answered");
    assert!(s.is_finished());
}

#[test]
fn ws_every_split_gives_the_same_events_polled_or_not() {
    let n = 12;
    let wire = messages_then_close(n);
    for split in 0..=wire.len() {
        let (a, b) = wire.split_at(split);
        for bound in [1, 3, 1024] {
            let events = feed_lazily(&mut ws_server(bound), &[a, b]);
            assert_eq!(
                events[..n],
                expected_ws(n)[..],
                "split {split}, bound {bound}"
            );
            assert!(
                matches!(&events[n], Event::Closed(c) if c.clean && c.by_peer),
                "split {split}, bound {bound}: {:?}",
                events[n]
            );
            // With trailing data after the Close frame: ignored.
            let with_tail = [b, b"trailing junk"].concat();
            let events = feed_lazily(&mut ws_server(bound), &[a, &with_tail]);
            assert_eq!(
                events.len(),
                n + 1,
                "split {split}, bound {bound}, trailing"
            );
        }
    }
}

fn prefix_frames(n: u32) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend_from_slice(&4u32.to_be_bytes());
        wire.extend_from_slice(&i.to_be_bytes());
    }
    wire
}

fn prefix_conn(max_events: usize) -> prefix::Connection {
    let config = prefix::Config::builder()
        .max_pending_events(max_events)
        .build()
        .unwrap();
    prefix::Connection::new(config)
}

#[test]
fn prefix_frames_then_eof_arrive_in_order_at_every_split() {
    let n = 10;
    let wire = prefix_frames(n);
    let expected: Vec<prefix::Event> = (0..n)
        .map(|i| prefix::Event::Frame(Bytes::copy_from_slice(&i.to_be_bytes())))
        .collect();
    for split in 0..=wire.len() {
        let (a, b) = wire.split_at(split);
        for bound in [1, 3, 1024] {
            let mut conn = prefix_conn(bound);
            let events = feed_lazily(&mut conn, &[a, b]);
            assert_eq!(events, expected, "split {split}, bound {bound}");
            assert!(conn.is_finished() && conn.error().is_none());
        }
    }
}

#[test]
fn prefix_eof_mid_frame_behind_paused_input_is_still_an_error() {
    let mut wire = prefix_frames(5);
    wire.extend_from_slice(&[0, 0, 0, 9, b'x']);
    let mut conn = prefix_conn(2);
    assert_eq!(conn.receive(&wire), Ok(wire.len()));
    // Deferred behind the three frames not yet decoded.
    assert_eq!(conn.receive_eof(), Ok(()));
    let events: Vec<_> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert_eq!(events.len(), 5);
    assert!(conn.is_finished());
    assert!(
        matches!(conn.error(), Some(prefix::DecodeError::Truncated { .. })),
        "{:?}",
        conn.error()
    );
}

#[test]
fn datagrams_are_handed_back_past_the_bound_and_taken_after_polling() {
    let mut config = datagram::Config::default();
    config.max_pending_events = 4;
    let mut ep = datagram::Endpoint::<u32>::new(config).unwrap();
    let now = Instant::now();
    // Each new peer's first datagram adds two events (opened, message).
    ep.receive(1, Bytes::from_static(b"a"), now).unwrap();
    ep.receive(2, Bytes::from_static(b"b"), now).unwrap();
    let back = ep.receive(3, Bytes::from_static(b"c"), now).unwrap_err();
    assert_eq!((back.from, &back.datagram[..]), (3, &b"c"[..]));
    assert_eq!(ep.peer_count(), 2, "a refused datagram opens no peer");
    assert_eq!(std::iter::from_fn(|| ep.poll_event()).count(), 4);
    ep.receive(back.from, back.datagram, now).unwrap();
    assert_eq!(
        std::iter::from_fn(|| ep.poll_event()).last(),
        Some(datagram::Event::Message {
            peer: 3,
            payload: Bytes::from_static(b"c")
        })
    );
}

#[test]
fn prefix_failure_in_paused_input_is_held_once_found() {
    let mut wire = prefix_frames(5);
    wire.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let mut conn = prefix_conn(2);
    // Taken whole; decoding stops at the bound, before the bad header.
    assert_eq!(conn.receive(&wire), Ok(wire.len()));
    assert_eq!(conn.error(), None);
    let events: Vec<_> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert_eq!(events.len(), 5, "every frame before the failure");
    let error = conn.error().cloned();
    assert!(
        matches!(error, Some(prefix::DecodeError::FrameTooLong { .. })),
        "{error:?}"
    );
    assert!(conn.is_finished());
    assert_eq!(
        conn.receive(b"more").err(),
        error,
        "and the next call returns it"
    );
}

/// An application that polls one event per read: what it is fed is taken
/// only as fast as events are polled, so input never piles up behind a
/// paused parse (ws and prefix alike).
#[test]
fn polling_a_few_events_per_read_keeps_input_bounded() {
    let read = {
        let mut wire = Vec::new();
        for i in 0..10_000u32 {
            encode_frame(
                &mut wire,
                true,
                0,
                OpCode::Ping,
                Some([1, 2, 3, 4]),
                &i.to_be_bytes()[3..],
            );
        }
        wire
    };
    let mut s = ws_server(4);
    let (mut taken, mut polled) = (0, 0);
    for _ in 0..200 {
        taken += s.receive(&read).unwrap();
        polled += usize::from(s.poll_event().is_some());
    }
    // One read is taken; the next only once everything before is polled.
    assert_eq!(polled, 200);
    assert_eq!(
        taken,
        read.len(),
        "no second read until the first is all polled"
    );

    let frames = prefix_frames(10_000);
    let mut conn = prefix_conn(4);
    let mut taken = 0;
    for _ in 0..200 {
        taken += conn.receive(&frames).unwrap();
        let _ = conn.poll_event();
        assert!(conn.buffered_bytes() <= frames.len());
    }
    assert_eq!(
        taken,
        frames.len(),
        "no second read until the first is all polled"
    );
}

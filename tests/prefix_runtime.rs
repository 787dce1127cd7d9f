//! `prefix::Connection` settings changed while it runs (the heartbeat and
//! the idle timeout, as a Pomelo client learns its heartbeat interval from
//! the handshake reply) and frames sent in several parts.

mod common;

use bytes::Bytes;
use common::prefix::{check_vector, frames, hex};
use sansproto::prefix::varint::VarintFormat;
use sansproto::prefix::{
    ByteOrder, Config, Connection, DecodeError, EncodeError, Event, SendErrorKind,
};
use std::time::{Duration, Instant};

const NANO: Duration = Duration::from_nanos(1);

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    out
}

/// Pomelo packages: 1-byte type, 3-byte big-endian length, type kept.
fn pomelo() -> Config {
    Config::builder()
        .length_field_offset(1)
        .length_field_width(3)
        .strip(0)
        .build()
        .unwrap()
}

/// Tarantool 1.5 iproto: LE u32 type, LE u32 body length, LE u32 request
/// id the length does not count; the whole 12-byte header kept.
fn tarantool() -> Config {
    Config::builder()
        .length_field_offset(4)
        .length_field_width(4)
        .byte_order(ByteOrder::LittleEndian)
        .length_adjustment(4)
        .strip(0)
        .build()
        .unwrap()
}

const POMELO_HEARTBEAT: [u8; 4] = [3, 0, 0, 0];

#[test]
fn heartbeat_set_after_construction_fires_at_its_deadline() {
    let t0 = Instant::now();
    let mut conn = Connection::new(pomelo());
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), None, "no timer configured");

    // The handshake reply arrives at t0+1 with `"heartbeat": 3`.
    let t1 = t0 + s(1);
    conn.handle_timeout(t1);
    conn.set_heartbeat(s(3), &[3], &[]).unwrap();
    assert_eq!(
        conn.poll_timeout(),
        Some(t1),
        "due at once: the next handle_timeout arms it"
    );
    let t2 = t1 + Duration::from_millis(5);
    conn.handle_timeout(t2);
    assert!(transmit(&mut conn).is_empty(), "armed, not sent");
    let deadline = t2 + s(3);
    assert_eq!(conn.poll_timeout(), Some(deadline));

    conn.handle_timeout(deadline - NANO);
    assert!(transmit(&mut conn).is_empty());
    assert_eq!(conn.poll_timeout(), Some(deadline));
    conn.handle_timeout(deadline);
    assert_eq!(transmit(&mut conn), POMELO_HEARTBEAT);
    assert_eq!(conn.poll_timeout(), Some(deadline + s(3)));
    conn.handle_timeout(deadline + s(3));
    assert_eq!(transmit(&mut conn), POMELO_HEARTBEAT);

    let stats = conn.stats();
    assert_eq!(stats.heartbeats, 2);
    assert_eq!(stats.tx.frames, 2);
    assert_eq!(stats.tx.messages, 0, "heartbeats are not messages");
    assert!(!conn.is_finished());
}

#[test]
fn the_heartbeat_frame_is_framed_by_the_connection_layout() {
    let t0 = Instant::now();
    for (config, header, body, wire) in [
        (
            Config::default(),
            &[][..],
            &b"ping"[..],
            hex("00000004 70696e67"),
        ),
        (pomelo(), &[3][..], &[][..], POMELO_HEARTBEAT.to_vec()),
        // Tarantool's ping: type 0xFF00, no body, request id 0.
        (
            tarantool(),
            &[0x00, 0xff, 0, 0][..],
            &[0, 0, 0, 0][..],
            hex("00ff0000 00000000 00000000"),
        ),
    ] {
        let mut conn = Connection::new(config.clone());
        conn.set_heartbeat(s(1), header, body).unwrap();
        conn.handle_timeout(t0);
        conn.handle_timeout(t0 + s(1));
        let sent = transmit(&mut conn);
        assert_eq!(sent, wire);
        // The peer reads it as one frame.
        let mut peer = Connection::new(config);
        peer.receive(&sent).unwrap();
        assert!(matches!(peer.poll_event(), Some(Event::Frame(_))));
        assert_eq!(peer.buffered_bytes(), 0);
    }
}

#[test]
fn a_heartbeat_the_layout_cannot_frame_changes_nothing() {
    let t0 = Instant::now();
    let config = Config::builder()
        .length_field_offset(1)
        .length_field_width(3)
        .max_frame_length(8)
        .heartbeat(s(5), POMELO_HEARTBEAT.to_vec())
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    conn.handle_timeout(t0);
    assert_eq!(
        conn.set_heartbeat(s(1), &[], &[]),
        Err(EncodeError::HeaderLength {
            expected: 1,
            actual: 0
        })
    );
    assert_eq!(
        conn.set_heartbeat(s(1), &[3], &[0; 5]),
        Err(EncodeError::FrameTooLong { length: 9, max: 8 })
    );
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)), "the old one runs on");
    conn.handle_timeout(t0 + s(5));
    assert_eq!(transmit(&mut conn), POMELO_HEARTBEAT);
}

#[test]
fn changing_the_interval_reschedules_from_the_next_call() {
    let t0 = Instant::now();
    let config = Config::builder()
        .length_field_offset(1)
        .length_field_width(3)
        .heartbeat(s(5), POMELO_HEARTBEAT.to_vec())
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));

    // Longer: the old deadline passes silently.
    conn.handle_timeout(t0 + s(2));
    conn.set_heartbeat(s(10), &[3], &[]).unwrap();
    conn.handle_timeout(t0 + s(3));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(13)));
    conn.handle_timeout(t0 + s(5));
    assert!(transmit(&mut conn).is_empty(), "the 5 s deadline is gone");
    conn.handle_timeout(t0 + s(13) - NANO);
    assert!(transmit(&mut conn).is_empty());
    conn.handle_timeout(t0 + s(13));
    assert_eq!(transmit(&mut conn), POMELO_HEARTBEAT);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(23)));

    // Shorter: due before the old deadline.
    conn.set_heartbeat(s(1), &[3], &[]).unwrap();
    conn.handle_timeout(t0 + s(14));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(15)));
    conn.handle_timeout(t0 + s(15) - NANO);
    assert!(transmit(&mut conn).is_empty());
    conn.handle_timeout(t0 + s(15));
    assert_eq!(transmit(&mut conn), POMELO_HEARTBEAT);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(16)));
    assert_eq!(conn.stats().heartbeats, 2);
}

#[test]
fn stopping_the_heartbeat_takes_effect_at_once() {
    let t0 = Instant::now();
    let config = Config::builder()
        .heartbeat(s(5), vec![0, 0, 0, 0])
        .build()
        .unwrap();
    for stop in [
        (|c: &mut Connection| c.stop_heartbeat()) as fn(&mut Connection),
        // A zero interval (Pomelo's `"heartbeat": 0`) means none.
        |c| c.set_heartbeat(Duration::ZERO, &[], &[]).unwrap(),
    ] {
        let mut conn = Connection::new(config.clone());
        conn.handle_timeout(t0);
        assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
        stop(&mut conn);
        assert_eq!(conn.poll_timeout(), None, "before any further call");
        for t in [5, 10, 1000] {
            conn.handle_timeout(t0 + s(t));
            assert!(transmit(&mut conn).is_empty());
        }
        assert_eq!(conn.poll_timeout(), None);
        // And it can start again.
        conn.set_heartbeat(s(2), &[], &[]).unwrap();
        conn.handle_timeout(t0 + s(1000));
        conn.handle_timeout(t0 + s(1002));
        assert_eq!(transmit(&mut conn), [0, 0, 0, 0]);
        assert_eq!(conn.stats().heartbeats, 1);
    }
}

#[test]
fn idle_timeout_set_at_runtime_ends_the_connection_at_its_deadline() {
    let t0 = Instant::now();
    let mut conn = Connection::new(Config::default());
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), None);

    conn.handle_timeout(t0 + s(1));
    conn.set_idle_timeout(Some(s(10)));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(1)), "due at once");
    conn.handle_timeout(t0 + s(2));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(12)));

    // Traffic at t0+5 moves the deadline to t0+15.
    conn.receive(&hex("00000001 78")).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Frame("x".into())));
    conn.handle_timeout(t0 + s(5));
    let deadline = t0 + s(15);
    assert_eq!(conn.poll_timeout(), Some(deadline));
    conn.handle_timeout(t0 + s(12));
    conn.handle_timeout(deadline - NANO);
    assert_eq!(conn.poll_event(), None);
    assert!(!conn.is_finished());

    conn.handle_timeout(deadline);
    assert_eq!(conn.poll_event(), Some(Event::IdleTimeout));
    assert_eq!(conn.poll_event(), None);
    assert!(conn.is_finished());
    assert_eq!(conn.poll_timeout(), None);
    assert_eq!(conn.stats().errors.idle_timeout, 1);
}

#[test]
fn setting_the_idle_timeout_restarts_it_and_none_disarms_it() {
    let t0 = Instant::now();
    let config = Config::builder().idle_timeout(s(10)).build().unwrap();

    // A longer timeout set at t0+9 restarts from the next call's now.
    let mut conn = Connection::new(config.clone());
    conn.handle_timeout(t0);
    conn.set_idle_timeout(Some(s(20)));
    conn.handle_timeout(t0 + s(9));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(29)));
    conn.handle_timeout(t0 + s(10));
    assert!(!conn.is_finished(), "the old deadline is gone");
    conn.handle_timeout(t0 + s(29));
    assert_eq!(conn.poll_event(), Some(Event::IdleTimeout));

    // A shorter one, with the peer silent for long already, still counts
    // from the call after it was set.
    let mut conn = Connection::new(config.clone());
    conn.handle_timeout(t0);
    conn.handle_timeout(t0 + s(8));
    conn.set_idle_timeout(Some(s(1)));
    conn.handle_timeout(t0 + s(8));
    assert!(!conn.is_finished());
    assert_eq!(conn.poll_timeout(), Some(t0 + s(9)));

    // None (or zero) disarms it at once.
    for off in [None, Some(Duration::ZERO)] {
        let mut conn = Connection::new(config.clone());
        conn.handle_timeout(t0);
        conn.set_idle_timeout(off);
        assert_eq!(conn.poll_timeout(), None);
        conn.handle_timeout(t0 + s(1000));
        assert!(!conn.is_finished());
        assert_eq!(conn.poll_event(), None);
    }

    // Too far to represent: never.
    let mut conn = Connection::new(config);
    conn.handle_timeout(t0);
    conn.set_idle_timeout(Some(Duration::MAX));
    conn.handle_timeout(t0 + s(1));
    assert_eq!(conn.poll_timeout(), None);
    assert!(!conn.is_finished());
}

#[test]
fn timers_set_before_the_first_call_start_with_it() {
    let t0 = Instant::now();
    let mut conn = Connection::new(Config::default());
    conn.set_idle_timeout(Some(s(10)));
    conn.set_heartbeat(s(3), &[], &[]).unwrap();
    assert_eq!(conn.poll_timeout(), None, "timers start at the first call");
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(3)));
    conn.handle_timeout(t0 + s(3));
    assert_eq!(transmit(&mut conn), [0, 0, 0, 0]);
    conn.handle_timeout(t0 + s(10));
    assert_eq!(conn.poll_event(), Some(Event::IdleTimeout));
}

#[test]
fn setting_timers_on_a_finished_connection_is_harmless() {
    let t0 = Instant::now();
    let small = Config::builder().max_frame_length(8).build().unwrap();
    let mut closed = Connection::new(Config::default());
    closed.handle_timeout(t0);
    closed.close();
    let mut failed = Connection::new(small);
    failed.handle_timeout(t0);
    assert!(failed.receive(&hex("000000ff")).is_err());
    for conn in [&mut closed, &mut failed] {
        let error = conn.error().cloned();
        conn.set_idle_timeout(Some(s(1)));
        conn.set_heartbeat(s(1), &[], &[]).unwrap();
        assert_eq!(conn.poll_timeout(), None);
        conn.handle_timeout(t0 + s(5));
        assert_eq!(conn.poll_event(), None);
        assert!(transmit(conn).is_empty());
        conn.stop_heartbeat();
        conn.set_idle_timeout(None);
        assert!(conn.is_finished());
        assert_eq!(conn.error().cloned(), error);
    }
    assert!(matches!(
        failed.error(),
        Some(DecodeError::FrameTooLong { .. })
    ));
}

/// Checks that `parts` sent as one frame after `header` give exactly
/// `wire`, the bytes of the joined single send, and that a peer reads it
/// back whole, split at every byte and with trailing data.
fn check_parts(config: &Config, header: &[u8], parts: &[&[u8]], wire: &[u8], decoded: &[u8]) {
    let mut joined = Connection::new(config.clone());
    joined.send_with_header(header, parts.concat()).unwrap();
    let joined = transmit(&mut joined);
    assert_eq!(joined, wire, "the joined send");

    let mut conn = Connection::new(config.clone());
    conn.send_parts_with_header(header, parts).unwrap();
    if header.is_empty() {
        conn.send_parts(parts).unwrap();
    } else {
        conn.send_parts_with_header(header, parts.to_vec()).unwrap();
    }
    let sent = transmit(&mut conn);
    assert_eq!(sent, [wire, wire].concat(), "parts give the joined bytes");
    let stats = conn.stats();
    assert_eq!(stats.tx.frames, 2, "one frame per send");
    assert_eq!(stats.tx.messages, 2);
    assert_eq!(stats.tx.bytes, 2 * wire.len() as u64);

    check_vector(config, wire, &frames(&[decoded]));
    check_vector(config, &sent, &frames(&[decoded, decoded]));
}

#[test]
fn parts_with_a_4_byte_big_endian_length() {
    // Pirate's TCP driver: `{"a":1}` behind a 4-byte big-endian length.
    let wire = hex("00000007 7b22 61 22 3a 31 7d");
    let json = br#"{"a":1}"#;
    let config = Config::default();
    check_parts(&config, &[], &[json], &wire, json);
    check_parts(&config, &[], &[b"{\"a", b"\":1}"], &wire, json);
    check_parts(
        &config,
        &[],
        &[b"", b"{", b"", b"\"a\":1", b"}", b""],
        &wire,
        json,
    );
    // Every byte a part of its own.
    let singles: Vec<&[u8]> = json.chunks(1).collect();
    check_parts(&config, &[], &singles, &wire, json);
    // No parts at all: an empty frame.
    check_parts(&config, &[], &[], &hex("00000000"), b"");
}

#[test]
fn parts_with_pomelo_type_and_3_byte_length() {
    // A Pomelo data package (type 4) holding a request message: flag 0,
    // request id 1, route length 4, route `chat`, then the body.
    let message: [&[u8]; 4] = [&[0x00, 0x01], &[4], b"chat", br#"{"m":"hi"}"#];
    let body = message.concat();
    let mut wire = hex("04 000011");
    wire.extend_from_slice(&body);
    let mut decoded = vec![4];
    decoded.extend_from_slice(&hex("000011"));
    decoded.extend_from_slice(&body);
    check_parts(&pomelo(), &[4], &message, &wire, &decoded);
}

#[test]
fn parts_with_tarantool_12_byte_little_endian_header() {
    // Select (type 17), request id 7, body `abc`: the length counts the
    // body only, not the request id that the caller sends as a part.
    let wire = hex("11000000 03000000 07000000 616263");
    let request_id = 7u32.to_le_bytes();
    check_parts(
        &tarantool(),
        &17u32.to_le_bytes(),
        &[&request_id, b"a", b"bc"],
        &wire,
        &wire,
    );
}

#[test]
fn parts_with_a_varint_counting_its_own_width() {
    // The length counts the header, whose width depends on the total.
    let config = Config::builder()
        .varint(VarintFormat::Leb128)
        .length_includes_header(true)
        .build()
        .unwrap();
    let long = [b'x'; 127];
    let mut wire = vec![0x81, 0x01];
    wire.extend_from_slice(&long);
    let (a, b) = long.split_at(100);
    check_parts(&config, &[], &[a, b], &wire, &long);
}

#[test]
fn parts_over_the_frame_limit_come_back() {
    let config = Config::builder()
        .max_frame_length(16)
        .max_queued_bytes(40)
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    let parts = vec![vec![1u8; 6], vec![2u8; 7]];
    let pointers: Vec<*const u8> = parts.iter().map(|p| p.as_ptr()).collect();
    let err = conn.send_parts(parts).unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::Encode(EncodeError::FrameTooLong {
            length: 17,
            max: 16
        })
    );
    let back = err.into_payload();
    assert_eq!(back, [vec![1u8; 6], vec![2u8; 7]]);
    let back_pointers: Vec<*const u8> = back.iter().map(|p| p.as_ptr()).collect();
    assert_eq!(back_pointers, pointers, "the very same buffers");
    assert_eq!(conn.queued_bytes(), 0, "nothing queued");
    assert_eq!(conn.stats().tx.frames, 0);

    // The queue limit is checked on the whole frame too: 12 + 12 + 12
    // bytes fit under 40, a fourth frame does not.
    for _ in 0..3 {
        conn.send_parts([&[0u8; 4][..], &[0u8; 4]]).unwrap();
    }
    let err = conn
        .send_parts([Bytes::from_static(&[9; 4]), Bytes::new()])
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::QueueFull {
            queued: 36,
            frame: 8,
            limit: 40
        }
    );
    assert_eq!(err.payload()[0], Bytes::from_static(&[9; 4]));
    assert_eq!(conn.queued_bytes(), 36);
    assert_eq!(conn.stats().tx.frames, 3);

    conn.close();
    let err = conn.send_parts(vec![b"late".to_vec()]).unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::Closed);
    assert_eq!(err.into_payload(), [b"late".to_vec()]);
}

#[test]
fn parts_with_a_wrong_header_come_back() {
    let mut conn = Connection::new(pomelo());
    let parts: &[&[u8]] = &[b"a", b"b"];
    let err = conn.send_parts(parts).unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::Encode(EncodeError::HeaderLength {
            expected: 1,
            actual: 0
        })
    );
    assert_eq!(err.into_payload(), parts);
    assert_eq!(conn.queued_bytes(), 0);
}

/// Bytes read into the buffer after the connection ended are dropped, as
/// `receive` ignores them, and a read that leaves nothing buffered gives
/// the buffer back.
#[test]
fn reads_committed_after_the_end_are_dropped_and_an_idle_buffer_is_released() {
    let mut conn = Connection::new(Config::default());
    let room = conn.receive_buffer(4096).expect("room");
    room[..6].copy_from_slice(b"\x00\x00\x00\x02hi");
    conn.commit_received(6).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Frame("hi".into())));
    assert_eq!(
        conn.memory_usage().receive,
        0,
        "a drained read buffer is released"
    );

    let room = conn.receive_buffer(4096).expect("room");
    room[..3].copy_from_slice(b"abc");
    conn.close();
    conn.commit_received(3).unwrap();
    assert_eq!(conn.buffered_bytes(), 0);
    assert_eq!(conn.poll_event(), None);
}

#[test]
fn large_frames_read_into_the_buffer_are_not_moved_once_mostly_here() {
    // Frames of 1 MiB read 64 KiB at a time straight into the connection:
    // past the first frames, which grow the buffer, no frame's bytes move
    // after a read put them in place (each is handed out from where its
    // bytes were read).
    const LEN: usize = 1 << 20;
    const READ: usize = 64 << 10;
    const FRAMES: usize = 10;
    let config = Config::builder().max_frame_length(LEN + 4).build().unwrap();
    let mut conn = Connection::new(config);
    let mut wire = Vec::new();
    for i in 0..FRAMES {
        wire.extend_from_slice(&(LEN as u32).to_be_bytes());
        wire.extend((0..LEN).map(|j| (i + j % 251) as u8));
    }
    // Where the byte 2 reads into each frame's payload landed.
    let probe = 2 * READ;
    let mut landed = [0usize; FRAMES];
    let (mut offset, mut got, mut moved) = (0, 0, 0);
    while offset < wire.len() {
        let room = conn.receive_buffer(READ).expect("events are polled");
        let n = room.len().min(READ).min(wire.len() - offset);
        room[..n].copy_from_slice(&wire[offset..offset + n]);
        for (i, at) in landed.iter_mut().enumerate() {
            let p = i * (LEN + 4) + 4 + probe;
            if (offset..offset + n).contains(&p) {
                *at = room.as_ptr() as usize + (p - offset);
            }
        }
        conn.commit_received(n).unwrap();
        offset += n;
        while let Some(event) = conn.poll_event() {
            let Event::Frame(frame) = event else {
                panic!("{event:?}")
            };
            assert_eq!(frame.len(), LEN);
            assert!(frame
                .iter()
                .enumerate()
                .all(|(j, &b)| b == (got + j % 251) as u8));
            if got >= 3 && frame.as_ptr() as usize + probe != landed[got] {
                moved += 1;
            }
            got += 1;
        }
    }
    assert_eq!(got, FRAMES);
    assert_eq!(moved, 0, "frames moved after most of them was read");
}

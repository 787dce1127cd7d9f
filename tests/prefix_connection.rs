//! The `prefix::Connection` machine through its own methods: send queue
//! limits, batches, end of stream, close, idle timeout and heartbeat on a
//! virtual clock.

mod common;

use bytes::Bytes;
use common::prefix::decode_chunks;
use sansproto::prefix::{
    Config, Connection, DecodeError, Decoded, EncodeError, Event, SendErrorKind,
};
use std::time::{Duration, Instant};

fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    out
}

#[test]
fn send_past_queue_limit_hands_payload_back() {
    let config = Config::builder().max_queued_bytes(20).build().unwrap();
    let mut conn = Connection::new(config);
    conn.send(vec![1u8; 10]).unwrap(); // 14 bytes queued
    let payload = vec![2u8; 3];
    let ptr = payload.as_ptr();
    let err = conn.send(payload).unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::QueueFull {
            queued: 14,
            frame: 7,
            limit: 20
        }
    );
    let back = err.into_payload();
    assert_eq!(back.as_ptr(), ptr, "the very same buffer comes back");
    assert_eq!(conn.queued_bytes(), 14);
    assert!(conn.wants_transmit());
    // Once written out, it fits.
    assert_eq!(transmit(&mut conn).len(), 14);
    assert!(!conn.wants_transmit());
    conn.send(back).unwrap();
    assert_eq!(transmit(&mut conn), [0, 0, 0, 3, 2, 2, 2]);
}

#[test]
fn encode_refusals_hand_payload_back() {
    let config = Config::builder()
        .length_field_offset(1)
        .length_field_width(1)
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    let err = conn.send(Bytes::from_static(b"no header")).unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::Encode(EncodeError::HeaderLength {
            expected: 1,
            actual: 0
        })
    );
    assert_eq!(err.payload(), &"no header");
    let err = conn.send_with_header(&[9], vec![0u8; 256]).unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::Encode(EncodeError::LengthDoesNotFit {
            value: 256,
            max: 255
        })
    );
    assert_eq!(err.payload().len(), 256);
    assert!(err.to_string().contains("256"));
    assert_eq!(conn.queued_bytes(), 0);
}

#[test]
fn batch_is_all_or_nothing() {
    let config = Config::builder()
        .length_field_offset(1)
        .length_field_width(3)
        .max_queued_bytes(16)
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    let batch: Vec<(&[u8], &[u8])> = vec![(&[3], b""), (&[4], b"{}"), (&[4], b"[]")];
    conn.send_batch(&batch).unwrap();
    assert_eq!(conn.queued_bytes(), 4 + 6 + 6);
    let err = conn.send_batch(&batch[..1]).unwrap_err();
    assert_eq!(
        err,
        SendErrorKind::QueueFull {
            queued: 16,
            frame: 4,
            limit: 16
        }
    );
    assert_eq!(
        transmit(&mut conn),
        [3, 0, 0, 0, 4, 0, 0, 2, b'{', b'}', 4, 0, 0, 2, b'[', b']']
    );
    // One bad item refuses the whole batch.
    let bad: Vec<(&[u8], &[u8])> = vec![(&[3], b""), (&[], b"x")];
    assert!(conn.send_batch(&bad).is_err());
    assert_eq!(conn.queued_bytes(), 0);
}

#[test]
fn events_before_a_failure_stay_available() {
    let config = Config::builder().max_frame_length(10).build().unwrap();
    let mut conn = Connection::new(config);
    let err = conn
        .receive(&[0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b', 0, 0, 1, 0])
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::FrameTooLong {
            length: 260,
            max: 10
        }
    );
    assert_eq!(conn.poll_event(), Some(Event::Frame("a".into())));
    assert_eq!(conn.poll_event(), Some(Event::Frame("b".into())));
    assert_eq!(conn.poll_event(), None);
    assert!(conn.is_finished());
    assert_eq!(conn.error(), Some(&err));
    assert!(matches!(
        conn.send(b"x").unwrap_err().kind(),
        &SendErrorKind::Closed
    ));
}

#[test]
fn end_of_stream_mid_frame_says_what_was_lost() {
    let mut conn = Connection::new(Config::default());
    conn.receive(&[0, 0, 0, 10, 1, 2, 3]).unwrap();
    assert_eq!(
        conn.receive_eof(),
        Err(DecodeError::Truncated {
            buffered: 7,
            frame_length: Some(14)
        })
    );
    assert!(conn.is_finished());
    assert_eq!(conn.receive(&[4]), conn.receive_eof().map(|()| 1));
}

#[test]
fn clean_end_of_stream_and_close() {
    let mut conn = Connection::new(Config::default());
    conn.receive(&[0, 0, 0, 0]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Frame(Bytes::new())));
    conn.send(b"bye").unwrap();
    assert_eq!(conn.receive_eof(), Ok(()));
    assert!(conn.is_finished());
    assert_eq!(conn.poll_timeout(), None);
    // Queued bytes are still handed over after the end.
    assert_eq!(transmit(&mut conn), [0, 0, 0, 3, b'b', b'y', b'e']);
    assert!(matches!(
        conn.send(b"x").unwrap_err().kind(),
        &SendErrorKind::Closed
    ));

    let mut conn = Connection::new(Config::default());
    conn.receive(&[0, 0]).unwrap();
    conn.close();
    assert!(conn.is_finished());
    assert_eq!(conn.buffered_bytes(), 0);
    assert_eq!(conn.receive(&[0, 0, 0, 0]), Ok(4));
    assert_eq!(conn.poll_event(), None);
}

#[test]
fn idle_timeout_follows_inbound_traffic() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let config = Config::builder().idle_timeout(s(10)).build().unwrap();
    let mut conn = Connection::new(config);
    // Timers start at the first handle_timeout.
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(10)));
    // Bytes arrive at t0+5; the next handle_timeout applies them.
    conn.receive(&[0, 0]).unwrap();
    conn.handle_timeout(t0 + s(5));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(15)));
    conn.handle_timeout(t0 + s(14));
    conn.handle_timeout(t0 + s(14)); // extra calls are harmless
    assert_eq!(conn.poll_event(), None);
    assert!(!conn.is_finished());
    // Activity marked before a late handle_timeout still counts.
    conn.receive(&[0, 0]).unwrap();
    conn.handle_timeout(t0 + s(20));
    assert!(!conn.is_finished());
    assert_eq!(conn.poll_event(), Some(Event::Frame(Bytes::new())));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(30)));
    conn.handle_timeout(t0 + s(30));
    assert_eq!(conn.poll_event(), Some(Event::IdleTimeout));
    assert!(conn.is_finished());
    assert_eq!(conn.poll_timeout(), None);
}

/// A loop may pass an instant it read before a slow step, older than one
/// it passed already: the timers go by the latest instant seen, so input
/// never moves the idle deadline earlier, and an older instant neither
/// ends the connection nor brings the heartbeat forward.
#[test]
fn an_older_now_never_moves_a_deadline_back() {
    let t0 = Instant::now();
    let at = |secs| t0 + Duration::from_secs(secs);
    let config = Config::builder()
        .idle_timeout(Duration::from_secs(10))
        .heartbeat(Duration::from_secs(4), vec![0u8, 0, 0, 0])
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    conn.handle_timeout(at(100));
    assert_eq!(conn.poll_timeout(), Some(at(104)), "the heartbeat");
    // The peer speaks; the loop passes an instant read earlier (95).
    conn.receive(&[0, 0, 0, 1, b'a']).unwrap();
    conn.handle_timeout(at(95));
    assert_eq!(conn.poll_event(), Some(Event::Frame("a".into())));
    conn.handle_timeout(at(104));
    assert_eq!(transmit(&mut conn), [0, 0, 0, 0], "the heartbeat at 104");
    conn.handle_timeout(at(105));
    assert!(!conn.is_finished(), "idle since 100 at the earliest");
    // Again after the heartbeat: one more input, an older instant.
    conn.receive(&[0, 0, 0, 0]).unwrap();
    conn.handle_timeout(at(101));
    assert_eq!(conn.poll_timeout(), Some(at(108)), "the next heartbeat");
    assert!(transmit(&mut conn).is_empty());
    for secs in [108, 112] {
        conn.handle_timeout(at(secs));
        assert_eq!(transmit(&mut conn), [0, 0, 0, 0], "the heartbeat at {secs}");
    }
    conn.handle_timeout(at(114) - Duration::from_nanos(1));
    assert!(!conn.is_finished(), "idle since 105 at the earliest");
    assert_eq!(conn.poll_timeout(), Some(at(115)));
    conn.handle_timeout(at(115));
    assert_eq!(conn.poll_event(), Some(Event::Frame(Bytes::new())));
    assert_eq!(conn.poll_event(), Some(Event::IdleTimeout));
}

#[test]
fn heartbeat_every_interval() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let heartbeat = Bytes::from_static(&[3, 0, 0, 0]); // Pomelo heartbeat
    let config = Config::builder()
        .length_field_offset(1)
        .length_field_width(3)
        .strip(0)
        .heartbeat(s(5), heartbeat.clone())
        .idle_timeout(s(12))
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
    assert!(transmit(&mut conn).is_empty());
    conn.handle_timeout(t0 + s(5));
    assert_eq!(transmit(&mut conn), heartbeat);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(10)));
    conn.handle_timeout(t0 + s(7));
    assert!(transmit(&mut conn).is_empty());
    // The peer's heartbeat arrives as a frame and resets the idle deadline.
    conn.receive(&heartbeat).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Frame(heartbeat.clone())));
    conn.handle_timeout(t0 + s(10));
    assert_eq!(transmit(&mut conn), heartbeat);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(15)));
    conn.handle_timeout(t0 + s(15));
    assert_eq!(transmit(&mut conn), heartbeat);
    // Silence since t0+10: the deadline at t0+22 ends the connection.
    assert_eq!(conn.poll_timeout(), Some(t0 + s(20)));
    conn.handle_timeout(t0 + s(20));
    conn.handle_timeout(t0 + s(22));
    assert_eq!(conn.poll_event(), Some(Event::IdleTimeout));
    assert_eq!(transmit(&mut conn), heartbeat, "the t0+20 heartbeat");
    assert!(conn.is_finished());
}

#[test]
fn heartbeat_skipped_behind_a_full_queue() {
    let t0 = Instant::now();
    let config = Config::builder()
        .max_queued_bytes(8)
        .heartbeat(Duration::from_secs(1), vec![0u8, 0, 0, 0])
        .build()
        .unwrap();
    let mut conn = Connection::new(config);
    conn.handle_timeout(t0);
    conn.send([1u8, 2, 3]).unwrap(); // 7 of 8 bytes
    conn.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(conn.queued_bytes(), 7);
    assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(2)));
}

/// Five frames (`0` to `4` as u32 BE) and the start of a sixth.
fn five_frames_and_a_half() -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0u32..5 {
        wire.extend_from_slice(&[0, 0, 0, 4]);
        wire.extend_from_slice(&i.to_be_bytes());
    }
    wire.extend_from_slice(&[0, 0, 0, 9, b'x']);
    wire
}

/// `wire` whole, byte by byte, and in two at every point.
fn splits(wire: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut splits = vec![vec![wire], wire.chunks(1).collect()];
    splits.extend((0..=wire.len()).map(|at| vec![&wire[..at], &wire[at..]]));
    splits
}

/// Feeds `pieces` to an application that polls nothing, until one is
/// refused; returns how many bytes were taken.
fn feed_unpolled(conn: &mut Connection, pieces: &[&[u8]]) -> usize {
    let mut taken = 0;
    for piece in pieces {
        match conn.receive(piece).unwrap() {
            0 if !piece.is_empty() => break,
            n => taken += n,
        }
    }
    taken
}

/// The frames wholly inside `taken`, as events.
fn frames_in(config: &Config, taken: &[u8]) -> Vec<Event> {
    let (decoded, _, _) = decode_chunks(config, [taken]);
    decoded
        .into_iter()
        .map(|d| match d {
            Decoded::Frame(f) => Event::Frame(f),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// A connection with the event bound at 2, an idle timeout of 10 s and a
/// 3 s heartbeat, that took what `pieces` it would from an application
/// polling nothing, then went idle from 1 s on; its idle deadline passed
/// at 11 s. Returns it and the bytes it took.
fn idle_with_frames_waiting(pieces: &[&[u8]]) -> (Connection, Config, usize) {
    let t0 = Instant::now();
    let config = Config::builder()
        .max_pending_events(2)
        .idle_timeout(Duration::from_secs(10))
        .heartbeat(Duration::from_secs(3), vec![0u8, 0, 0, 0])
        .build()
        .unwrap();
    let mut conn = Connection::new(config.clone());
    conn.handle_timeout(t0);
    let taken = feed_unpolled(&mut conn, pieces);
    conn.handle_timeout(t0 + Duration::from_secs(1));
    conn.handle_timeout(t0 + Duration::from_secs(11));
    (conn, config, taken)
}

/// Decoding stopped at the event bound with whole frames taken but not
/// yet decoded; then the idle deadline passes. Nothing taken is lost:
/// every frame taken comes out, then the idle timeout.
#[test]
fn an_idle_timeout_comes_after_every_frame_already_taken() {
    let wire = five_frames_and_a_half();
    for pieces in splits(&wire) {
        let (mut conn, config, taken) = idle_with_frames_waiting(&pieces);
        let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
        let mut expected = frames_in(&config, &wire[..taken]);
        expected.push(Event::IdleTimeout);
        assert_eq!(events, expected, "{pieces:?}");
        assert!(conn.is_finished());
        assert_eq!(conn.buffered_bytes(), 0, "the unfinished frame goes");
    }
}

/// The idle timeout waits behind those frames as a WebSocket session's
/// terminal step waits behind unpolled events: until `poll_event` reaches
/// it the connection is not finished and the application can answer the
/// frames; input is not taken, the end of the stream changes nothing and
/// no timer runs (no heartbeat goes out). Then it ends.
#[test]
fn while_the_idle_timeout_waits_the_frames_can_be_answered() {
    let wire = five_frames_and_a_half();
    for pieces in splits(&wire) {
        let (mut conn, _, _) = idle_with_frames_waiting(&pieces);
        assert_eq!(conn.poll_timeout(), None, "{pieces:?}: timers stopped");
        conn.handle_timeout(Instant::now() + Duration::from_secs(60));
        assert!(!conn.is_finished(), "{pieces:?}");
        assert_eq!(conn.receive(b"\0\0\0\x01z"), Ok(0), "input is not taken");
        assert_eq!(conn.receive_eof(), Ok(()));
        let mut answers = 0;
        let mut last = None;
        while let Some(event) = conn.poll_event() {
            if let Event::Frame(f) = &event {
                assert!(!conn.is_finished(), "{pieces:?}");
                conn.send(f.clone()).expect("answering a frame");
                answers += 1;
            }
            last = Some(event);
        }
        assert_eq!(last, Some(Event::IdleTimeout));
        assert!(conn.is_finished());
        assert_eq!(conn.stats().errors.idle_timeout, 1, "{pieces:?}");
        assert_eq!(transmit(&mut conn).len(), 8 * answers, "the answers only");
        assert!(conn.send(&b"late"[..]).is_err());
        assert_eq!(conn.receive(b"\0\0\0\x01z"), Ok(5), "ignored after the end");
        assert_eq!(conn.poll_event(), None);
    }
}

/// Whole frames taken before the idle deadline but behind a bad header:
/// the frames come first, then the failure, which the stream reached
/// before the idle timeout.
#[test]
fn a_failure_behind_paused_frames_comes_before_the_idle_timeout() {
    let t0 = Instant::now();
    let config = Config::builder()
        .max_pending_events(2)
        .max_frame_length(16)
        .idle_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut wire = five_frames_and_a_half();
    wire.truncate(24); // three frames
    wire.extend_from_slice(&[0, 0, 1, 0, b'x']);
    let mut conn = Connection::new(config.clone());
    conn.handle_timeout(t0);
    assert_eq!(conn.receive(&wire), Ok(wire.len()));
    conn.handle_timeout(t0);
    conn.handle_timeout(t0 + Duration::from_secs(10));
    let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert_eq!(events, frames_in(&config, &wire[..24]));
    assert_eq!(
        conn.error(),
        Some(&DecodeError::FrameTooLong {
            length: 260,
            max: 16
        })
    );
    assert!(conn.is_finished());
    // It failed once, and counts once: not as an idle timeout too.
    let errors = conn.stats().errors;
    assert_eq!((errors.frame_too_long, errors.idle_timeout), (1, 0));
}

/// `close` while whole frames wait undecoded at the event bound: they are
/// still handed out, in order; only the unfinished frame after them is
/// dropped. Sends are refused and later input ignored at once.
#[test]
fn close_hands_out_the_frames_already_taken() {
    let config = Config::builder().max_pending_events(2).build().unwrap();
    let wire = five_frames_and_a_half();
    for pieces in splits(&wire) {
        let mut conn = Connection::new(config.clone());
        let taken = feed_unpolled(&mut conn, &pieces);
        conn.close();
        assert!(conn.is_finished());
        assert!(conn.send(&b"x"[..]).is_err());
        assert_eq!(conn.receive(b"\0\0\0\x01z"), Ok(5), "ignored after close");
        let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
        assert_eq!(events, frames_in(&config, &wire[..taken]), "{pieces:?}");
        assert_eq!(conn.buffered_bytes(), 0, "{pieces:?}");
        assert_eq!(conn.error(), None);
    }
}

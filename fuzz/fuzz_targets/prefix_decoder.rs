//! The length-prefixed decoder over random layouts and random input splits:
//! it must never panic, never hand out a frame over the limit, and the
//! `Decoder` and the `Connection` must agree on every frame and error.
//! The chunks are also sent, each in two parts and joined, which must give
//! the same bytes or the same refusal; and the timers are set, stopped and
//! run at random, never leaving a deadline at or before the last `now`.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sansproto::prefix::varint::VarintFormat;
use sansproto::prefix::{ByteOrder, Config, Connection, DecodeError, Decoded, Decoder, Event};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Layout {
    offset: u8,
    width: u8,
    varint: Option<(bool, u8, bool)>,
    little_endian: bool,
    adjustment: i64,
    includes_header: bool,
    strip: Option<u8>,
    limit: u32,
    huge_limit: bool,
    payload_limit: bool,
    discard: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    layout: Layout,
    chunks: Vec<Vec<u8>>,
    eof: bool,
    timers: Vec<TimerOp>,
}

#[derive(Arbitrary, Debug)]
enum TimerOp {
    IdleTimeout(Option<u16>),
    Heartbeat(u16, Vec<u8>),
    StopHeartbeat,
    Receive(Vec<u8>),
    Advance(u16),
}

fn config(l: &Layout) -> Option<(Config, usize)> {
    let mut b = Config::builder()
        .length_field_offset(usize::from(l.offset % 16))
        .length_field_width(usize::from(l.width % 9))
        .byte_order(if l.little_endian {
            ByteOrder::LittleEndian
        } else {
            ByteOrder::BigEndian
        })
        .length_adjustment(l.adjustment)
        .length_includes_header(l.includes_header)
        .discard_too_long_frames(l.discard)
        // A small event bound: decoding pauses and resumes within a chunk.
        .max_pending_events(1 + l.limit as usize % 4);
    if let Some((ber, max, strict)) = l.varint {
        let format = if ber {
            VarintFormat::Ber
        } else {
            VarintFormat::Leb128
        };
        b = b
            .varint(format)
            .varint_max_bytes(usize::from(max % 12))
            .reject_non_minimal(strict);
    }
    b = match l.strip {
        Some(n) => b.strip(usize::from(n)),
        None => b.strip_header(),
    };
    let max = if l.huge_limit {
        usize::MAX
    } else {
        l.limit as usize
    };
    b = if l.payload_limit {
        b.max_payload_length(max)
    } else {
        b.max_frame_length(max)
    };
    // A payload limit does not count the header, which stays in the frame
    // unless stripped.
    b.build().ok().map(|c| {
        let bound = if l.payload_limit {
            max.saturating_add(c.max_header_length())
        } else {
            max
        };
        (c, bound)
    })
}

/// Feeds `chunks` through the read-into forms, alternating between the
/// zeroed room (`receive_buffer`) and the lent buffer (`receive_buf_mut`),
/// polling every event after each read.
fn read_into(config: &Config, chunks: &[Vec<u8>], eof: bool) -> (Vec<Event>, Option<DecodeError>) {
    let mut conn = Connection::new(config.clone());
    let mut events = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        if chunk.is_empty() {
            continue;
        }
        let result = if i % 2 == 0 {
            match conn.receive_buffer(chunk.len()) {
                Some(room) => {
                    room[..chunk.len()].copy_from_slice(chunk);
                    conn.commit_received(chunk.len())
                }
                None => Ok(()),
            }
        } else {
            match conn.receive_buf_mut(chunk.len()) {
                Some(buf) => {
                    buf.extend_from_slice(chunk);
                    conn.commit_appended()
                }
                None => Ok(()),
            }
        };
        let _ = result;
        while let Some(ev) = conn.poll_event() {
            events.push(ev);
        }
    }
    if eof {
        let _ = conn.receive_eof();
        while let Some(ev) = conn.poll_event() {
            events.push(ev);
        }
    }
    (events, conn.error().cloned())
}

fn as_event(d: Decoded) -> Event {
    match d {
        Decoded::Frame(b) => Event::Frame(b),
        Decoded::Discarded { length } => Event::FrameDiscarded { length },
    }
}

fuzz_target!(|input: Input| {
    let Some((config, max)) = config(&input.layout) else {
        return;
    };
    sends(&config, &input.chunks);
    timers(&config, &input.timers);
    let mut decoder = Decoder::new(&config);
    let conn_config = &config;
    let mut conn = Connection::new(config.clone());
    let mut buf = BytesMut::new();
    let mut from_decoder = Vec::new();
    let mut from_conn = Vec::new();
    let mut decoder_err = None;
    let mut conn_err = None;
    for chunk in &input.chunks {
        if decoder_err.is_none() {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(d)) => from_decoder.push(as_event(d)),
                    Ok(None) => break,
                    Err(e) => {
                        // Sticky, and the buffer is released.
                        assert_eq!(decoder.decode(&mut buf), Err(e.clone()));
                        assert!(buf.is_empty());
                        decoder_err = Some(e);
                        break;
                    }
                }
            }
        }
        if chunk.is_empty() {
            continue;
        }
        match conn.receive(chunk) {
            // Every event is polled after each chunk: all of it is taken.
            Ok(taken) => assert_eq!(taken, chunk.len()),
            Err(e) => assert_eq!(conn_err.get_or_insert(e.clone()), &e),
        }
        while let Some(ev) = conn.poll_event() {
            from_conn.push(ev);
        }
    }
    if input.eof && decoder_err.is_none() {
        loop {
            match decoder.decode_eof(&mut buf) {
                Ok(Some(d)) => from_decoder.push(as_event(d)),
                Ok(None) => break,
                Err(e) => {
                    decoder_err = Some(e);
                    break;
                }
            }
        }
        if let Err(e) = conn.receive_eof() {
            assert_eq!(conn_err.get_or_insert(e.clone()), &e);
        }
        while let Some(ev) = conn.poll_event() {
            from_conn.push(ev);
        }
        assert!(conn.is_finished());
    }
    assert_eq!(from_decoder, from_conn);
    // Reading into the connection gives what `receive` gives.
    let (from_read_into, read_into_err) = read_into(conn_config, &input.chunks, input.eof);
    assert_eq!(from_read_into, from_conn);
    assert_eq!(read_into_err.as_ref(), conn.error());
    // A failure in input that waited behind the event bound is found while
    // events are polled: the connection holds it (and the next `receive`
    // returns it) even when no call returned it yet.
    if let Some(e) = &conn_err {
        assert_eq!(
            conn.error(),
            Some(e),
            "the returned error is the sticky one"
        );
    }
    assert_eq!(decoder_err.as_ref(), conn.error());
    for ev in &from_decoder {
        if let Event::Frame(frame) = ev {
            assert!(
                frame.len() <= max,
                "frame of {} over limit {max}",
                frame.len()
            );
        }
    }
});

/// Each chunk sent in two parts gives the bytes of the joined send, or
/// the same refusal.
fn sends(config: &Config, chunks: &[Vec<u8>]) {
    let header = vec![0u8; config.length_field_offset()];
    let mut joined = Connection::new(config.clone());
    let mut parted = Connection::new(config.clone());
    for chunk in chunks {
        let cut = chunk
            .first()
            .map_or(0, |b| usize::from(*b) % (chunk.len() + 1));
        let (a, b) = chunk.split_at(cut);
        let one = joined.send_with_header(&header, &chunk[..]);
        let two = parted.send_parts_with_header(&header, [a, b]);
        match (one, two) {
            (Ok(()), Ok(())) => {}
            (Err(one), Err(two)) => {
                assert_eq!(one.kind(), two.kind());
                assert_eq!(two.payload(), &[a, b], "the parts come back");
            }
            (one, two) => panic!("joined {one:?}, parts {two:?}"),
        }
    }
    let (mut one, mut two) = (Vec::new(), Vec::new());
    joined.poll_transmit(&mut one);
    parted.poll_transmit(&mut two);
    assert_eq!(one, two);
    assert_eq!(joined.stats(), parted.stats());
}

/// Timers set, stopped and run in any order: after `handle_timeout(now)`
/// no deadline is at or before `now`.
fn timers(config: &Config, ops: &[TimerOp]) {
    let header = vec![0u8; config.length_field_offset()];
    let mut conn = Connection::new(config.clone());
    let mut now = Instant::now();
    let mut out = Vec::new();
    for op in ops {
        match op {
            TimerOp::IdleTimeout(ms) => {
                conn.set_idle_timeout(ms.map(|ms| Duration::from_millis(u64::from(ms))))
            }
            TimerOp::Heartbeat(ms, body) => {
                let interval = Duration::from_millis(u64::from(*ms));
                let _ = conn.set_heartbeat(interval, &header, body);
            }
            TimerOp::StopHeartbeat => conn.stop_heartbeat(),
            TimerOp::Receive(data) => {
                let _ = conn.receive(data);
                while conn.poll_event().is_some() {}
            }
            TimerOp::Advance(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                conn.handle_timeout(now);
                if let Some(at) = conn.poll_timeout() {
                    assert!(at > now, "a deadline left behind");
                }
            }
        }
        conn.poll_transmit(&mut out);
    }
}

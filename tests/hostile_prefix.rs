//! Hostile peers against the length-prefixed machine: a length field
//! claiming 4 GiB, in fail mode and in discard mode, a flood of tiny
//! frames at an application that does not poll, and tiny frames the
//! application keeps beside large ones, measured with a counting
//! allocator.

mod common;

use bytes::Bytes;
use common::alloc::{measure, serial, Counting};
use sansproto::prefix::{Config, Connection, DecodeError, Encoder, Event};

#[global_allocator]
static ALLOC: Counting = Counting;

/// A 4-byte big-endian length claiming 4 GiB, then 1 MiB of its "body" in
/// 16 KiB reads.
fn claim_4_gib() -> Vec<Vec<u8>> {
    let mut reads = vec![vec![0xff, 0xff, 0xff, 0xff]];
    reads.extend(std::iter::repeat_n(vec![b'x'; 16 << 10], 64));
    reads
}

#[test]
fn a_4_gib_claim_fails_at_its_header() {
    let _serial = serial();
    let reads = claim_4_gib();
    let (result, growth) = measure("a_4_gib_claim_fails_at_its_header", || {
        let mut conn = Connection::new(Config::default());
        let mut first = None;
        for read in &reads {
            if let Err(e) = conn.receive(read) {
                first.get_or_insert(e);
            }
        }
        first
    });
    assert_eq!(
        result,
        Some(DecodeError::FrameTooLong {
            length: 4 + 0xffff_ffff,
            max: 8 << 20
        })
    );
    assert!(growth < 64 << 10, "{growth} bytes for a 4 GiB claim");
    // A new connection serves as usual.
    let mut conn = Connection::new(Config::default());
    conn.receive(&[0, 0, 0, 2, b'o', b'k']).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Frame("ok".into())));
}

#[test]
fn a_4_gib_claim_is_skipped_in_discard_mode_without_buffering_it() {
    let _serial = serial();
    let config = Config::builder()
        .max_frame_length(1 << 20)
        .discard_too_long_frames(true)
        .build()
        .unwrap();
    let reads = claim_4_gib();
    let (events, growth) = measure(
        "a_4_gib_claim_is_skipped_in_discard_mode_without_buffering_it",
        || {
            let mut conn = Connection::new(config.clone());
            for read in &reads {
                conn.receive(read).unwrap();
            }
            std::iter::from_fn(|| conn.poll_event()).collect::<Vec<_>>()
        },
    );
    assert_eq!(
        events,
        [Event::FrameDiscarded {
            length: 4 + 0xffff_ffff
        }]
    );
    assert!(
        growth < 64 << 10,
        "{growth} bytes while skipping a 4 GiB frame"
    );
}

/// 100k empty frames at an application that does not poll: decoding stops
/// at the event bound and input is refused past it. Once polled, the rest
/// of the same input is taken and every frame arrives, in order.
#[test]
fn a_frame_flood_is_bounded_while_the_application_does_not_poll() {
    let _serial = serial();
    const FRAMES: u32 = 100_000;
    let mut wire = Vec::new();
    for i in 0..FRAMES {
        wire.extend_from_slice(&4u32.to_be_bytes());
        wire.extend_from_slice(&i.to_be_bytes());
    }
    let config = Config::builder().max_pending_events(1024).build().unwrap();
    let mut conn = Connection::new(config);
    let (taken, growth) = measure("a_frame_flood_is_bounded", || {
        let mut taken = 0;
        for read in wire.chunks(64 << 10) {
            let n = conn.receive(read).unwrap();
            assert!(n == 0 || n == read.len());
            if n == 0 {
                break;
            }
            taken += n;
        }
        taken
    });
    assert!(taken < wire.len(), "input was refused at the event bound");
    assert!(growth < 1 << 20, "{growth} bytes held for 1024 events");
    let mut rest = &wire[taken..];
    let mut next = 0u32;
    loop {
        while let Some(event) = conn.poll_event() {
            assert_eq!(event, Event::Frame(next.to_be_bytes().to_vec().into()));
            next += 1;
        }
        if rest.is_empty() {
            break;
        }
        let n = conn.receive(rest).unwrap();
        assert_eq!(n, rest.len(), "taken whole once the events are polled");
        rest = &rest[n..];
    }
    assert_eq!(next, FRAMES);
    assert!(conn.send(&b"still here"[..]).is_ok());
}

/// `body` framed by the default layout.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    Encoder::new(&Config::default())
        .encode(&[], body, &mut wire)
        .unwrap();
    wire
}

/// How the reads reach the connection.
#[derive(Debug, Clone, Copy)]
enum Reads {
    /// `receive`, one call per read.
    Receive,
    /// Read into `receive_buffer`, then `commit_received`.
    Into,
}

/// Feeds `read` as the application polls, keeping the frames of one byte
/// and checking and dropping the others.
fn feed_keeping_tiny(c: &mut Connection, how: Reads, read: &[u8], kept: &mut Vec<Bytes>) {
    let mut rest = read;
    while !rest.is_empty() {
        let n = match how {
            Reads::Receive => c.receive(rest).unwrap(),
            Reads::Into => match c.receive_buffer(64 << 10) {
                Some(room) => {
                    let n = room.len().min(rest.len());
                    room[..n].copy_from_slice(&rest[..n]);
                    c.commit_received(n).unwrap();
                    n
                }
                None => 0,
            },
        };
        rest = &rest[n..];
        while let Some(event) = c.poll_event() {
            let Event::Frame(f) = event else {
                panic!("{event:?}")
            };
            if f.len() == 1 {
                kept.push(f);
            } else {
                assert!(f.len() == 60 << 10 && f.iter().all(|&b| b == 7));
            }
        }
    }
}

/// Kept one-byte frames hold about what they weigh, not the reads they
/// came in: 1,000 of them, each in its own read after a large frame the
/// application dropped.
#[test]
fn kept_tiny_frames_do_not_pin_their_reads() {
    let _serial = serial();
    let large = framed(&[7u8; 60 << 10]);
    let tiny: Vec<Vec<u8>> = (0..1000u32).map(|i| framed(&[i as u8])).collect();
    for how in [Reads::Receive, Reads::Into] {
        let (kept, growth) = measure("kept_tiny_frames_do_not_pin_their_reads", || {
            let mut c = Connection::new(Config::default());
            let mut kept = Vec::new();
            feed_keeping_tiny(&mut c, how, &large, &mut kept);
            for read in &tiny {
                feed_keeping_tiny(&mut c, how, read, &mut kept);
            }
            c.send(&b"still here"[..]).unwrap();
            kept
        });
        assert_eq!(kept.len(), 1000, "{how:?}");
        assert!(kept.iter().zip(0u32..).all(|(k, i)| k[..] == [i as u8]));
        assert!(
            growth < 1 << 20,
            "{how:?}: 1,000 kept one-byte frames held {growth} bytes"
        );
    }
}

/// The same when each one-byte frame shares its read with a large frame
/// the application drops: the large one is split off on its own, and the
/// tiny one is copied out of the read. Reads of a frame pair each, and the
/// same stream in socket reads of 64 KiB and of 7,919 bytes (cutting
/// frames anywhere, each read ending in part of the next frame).
#[test]
fn kept_tiny_frames_do_not_pin_large_neighbours() {
    let _serial = serial();
    let large = framed(&[7u8; 60 << 10]);
    let pairs: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| [framed(&[i as u8]), large.clone()].concat())
        .collect();
    let stream = pairs.concat();
    let cuts: [(&str, Vec<&[u8]>); 3] = [
        ("pairs", pairs.iter().map(Vec::as_slice).collect()),
        ("64 KiB reads", stream.chunks(64 << 10).collect()),
        ("7,919-byte reads", stream.chunks(7919).collect()),
    ];
    for (name, reads) in &cuts {
        for how in [Reads::Receive, Reads::Into] {
            let (kept, growth) = measure("kept_tiny_frames_do_not_pin_large_neighbours", || {
                let mut c = Connection::new(Config::default());
                let mut kept = Vec::new();
                for read in reads {
                    feed_keeping_tiny(&mut c, how, read, &mut kept);
                }
                c.send(&b"still here"[..]).unwrap();
                kept
            });
            assert_eq!(kept.len(), 1000, "{name}, {how:?}");
            assert!(kept.iter().zip(0u32..).all(|(k, i)| k[..] == [i as u8]));
            assert!(
                growth < 2 << 20,
                "{name}, {how:?}: 1,000 kept one-byte frames held {growth} bytes"
            );
        }
    }
}

//! Hostile peers against the length-prefixed machine: a length field
//! claiming 4 GiB, in fail mode and in discard mode, and a flood of tiny
//! frames at an application that does not poll, measured with a counting
//! allocator.

mod common;

use common::alloc::{measure, serial, Counting};
use sansproto::prefix::{Config, Connection, DecodeError, Event};

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

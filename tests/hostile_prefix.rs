//! Hostile peers against the length-prefixed machine: a length field
//! claiming 4 GiB, in fail mode and in discard mode, measured with a
//! counting allocator.

mod common;

use common::alloc::{measure, serial, Counting};
use sansproto::prefix::{Config, Connection, DecodeError, Event};
use sansproto::Driver;

#[global_allocator]
static ALLOC: Counting = Counting;

/// A 4-byte big-endian length claiming 4 GiB, then 1 MiB of its "body" in
/// 16 KiB reads.
fn claim_4_gib() -> Vec<Vec<u8>> {
    let mut reads = vec![vec![0xff, 0xff, 0xff, 0xff]];
    reads.extend(std::iter::repeat(vec![b'x'; 16 << 10]).take(64));
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

//! Byte vectors for the segment header, each fed to an endpoint whole and
//! with trailing garbage.
//!
//! A datagram is one fragment, so bytes after the header are payload by
//! definition: trailing garbage lengthens the fragment. A message's only or
//! final fragment then simply carries more bytes, unless that makes it longer
//! than the message's other fragments (the partial message is dropped) or the
//! datagram longer than the MTU (the datagram is dropped); a header that is
//! rejected stays rejected whatever follows it.

use std::time::Instant;

use bytes::Bytes;
use sansproto::datagram::{Config, DropReason, Endpoint, Event, Header, PeerError, HEADER_LEN};

const PEER: u8 = 7;
const GARBAGE: &[u8] = b"\xff\x00!";

fn endpoint() -> Endpoint<u8> {
    let mut config = Config::segmented();
    config.mtu = HEADER_LEN + 8;
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_message_size = 64;
    seg.max_fragments = 8;
    Endpoint::with_random(config, sansproto::seeded_random(0)).unwrap()
}

/// Feeds datagrams to a fresh endpoint; returns its events after the
/// `PeerOpened` one (if any).
fn feed(datagrams: &[&[u8]]) -> Vec<Event<u8>> {
    let mut ep = endpoint();
    for d in datagrams {
        ep.receive(PEER, Bytes::copy_from_slice(d), Instant::now())
            .unwrap();
    }
    std::iter::from_fn(|| ep.poll_event())
        .filter(|e| !matches!(e, Event::PeerOpened { .. }))
        .collect()
}

fn with_garbage(d: &[u8]) -> Vec<u8> {
    [d, GARBAGE].concat()
}

fn message(payload: &[u8]) -> Event<u8> {
    Event::Message {
        peer: PEER,
        payload: Bytes::copy_from_slice(payload),
    }
}

fn dropped(error: PeerError) -> Event<u8> {
    Event::DatagramDropped { peer: PEER, error }
}

#[test]
fn single_fragment_message() {
    // version 1, message id 0x2a, index 0, count 1, payload "hi"
    let d: &[u8] = &[
        0x01, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x01, b'h', b'i',
    ];
    assert_eq!(
        Header::parse(d),
        Ok(Header {
            message_id: 42,
            index: 0,
            count: 1
        })
    );
    assert_eq!(feed(&[d]), [message(b"hi")]);
    assert_eq!(feed(&[&with_garbage(d)]), [message(b"hi\xff\x00!")]);
}

#[test]
fn empty_message_is_a_bare_header() {
    let d: &[u8] = &[0x01, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01];
    assert_eq!(Header::parse(d).map(|h| h.message_id), Ok(u32::MAX));
    assert_eq!(feed(&[d]), [message(b"")]);
    assert_eq!(feed(&[&with_garbage(d)]), [message(GARBAGE)]);
}

#[test]
fn two_fragment_message_in_both_orders() {
    let first: &[u8] = &[
        1, 0, 0, 1, 0, 0, 0, 0, 2, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h',
    ];
    let last: &[u8] = &[1, 0, 0, 1, 0, 0, 1, 0, 2, b'i', b'j'];
    assert_eq!(Header::parse(last).map(|h| h.is_last()), Ok(true));
    assert_eq!(feed(&[first, last]), [message(b"abcdefghij")]);
    assert_eq!(feed(&[last, first, last]), [message(b"abcdefghij")]);

    // Garbage after a full-size fragment makes it longer than the MTU.
    assert_eq!(
        feed(&[&with_garbage(first), last]),
        [dropped(PeerError::DatagramTooLarge { len: 20, max: 17 })]
    );
    // Garbage after the last fragment is part of it: the message grows.
    assert_eq!(
        feed(&[first, &with_garbage(last)]),
        [message(b"abcdefghij\xff\x00!")]
    );
}

#[test]
fn a_final_fragment_longer_than_the_others_drops_the_message() {
    // A sender with a smaller MTU: 4-byte fragments.
    let first: &[u8] = &[1, 0, 0, 0, 5, 0, 0, 0, 2, b'a', b'b', b'c', b'd'];
    let last: &[u8] = &[1, 0, 0, 0, 5, 0, 1, 0, 2, b'e', b'f'];
    assert_eq!(feed(&[last, first]), [message(b"abcdef")]);
    let too_long = Event::MessageDropped {
        peer: PEER,
        message_id: 5,
        reason: DropReason::Invalid(PeerError::FragmentTooLarge {
            index: 1,
            len: 5,
            max: 4,
        }),
    };
    assert_eq!(
        feed(&[first, &with_garbage(last)]),
        std::slice::from_ref(&too_long)
    );
    assert_eq!(feed(&[&with_garbage(last), first]), [too_long]);
}

#[test]
fn rejected_headers_stay_rejected_with_trailing_bytes() {
    let cases: [(&[u8], PeerError); 5] = [
        (
            &[0x02, 0, 0, 0, 1, 0, 0, 0, 1, b'x'],
            PeerError::UnknownVersion(2),
        ),
        (
            &[0x01, 0, 0, 0, 1, 0, 0, 0, 0, b'x'],
            PeerError::ZeroFragmentCount,
        ),
        (
            &[0x01, 0, 0, 0, 1, 0, 3, 0, 3, b'x'],
            PeerError::IndexOutOfRange { index: 3, count: 3 },
        ),
        (
            &[0x01, 0, 0, 0, 1, 0, 0, 0xff, 0xff, b'x'],
            PeerError::TooManyFragments {
                count: 65535,
                max: 8,
            },
        ),
        (
            &[0x01, 0, 0, 0, 1, 0, 0, 0, 2],
            PeerError::EmptyFragment { index: 0, count: 2 },
        ),
    ];
    for (d, error) in cases {
        assert_eq!(feed(&[d]), [dropped(error.clone())], "{d:02x?}");
        if !matches!(error, PeerError::EmptyFragment { .. }) {
            assert_eq!(
                feed(&[&with_garbage(d)]),
                [dropped(error)],
                "{d:02x?} + garbage"
            );
        }
    }
}

#[test]
fn every_truncation_of_a_header_is_rejected() {
    let d: &[u8] = &[0x01, 0, 0, 0, 9, 0, 0, 0, 1];
    for len in 0..HEADER_LEN {
        assert_eq!(Header::parse(&d[..len]), Err(PeerError::Truncated { len }));
        assert_eq!(feed(&[&d[..len]]), [dropped(PeerError::Truncated { len })]);
    }
}

#[test]
fn encode_matches_the_vectors() {
    let h = Header {
        message_id: 0x0102_0304,
        index: 0x0506,
        count: 0x0708,
    };
    assert_eq!(h.encode(), [0x01, 1, 2, 3, 4, 5, 6, 7, 8]);
}

//! Feeding helpers shared by the prefix tests: every vector is fed whole,
//! byte by byte, split at every point, and followed by part of a next frame.

use bytes::{Bytes, BytesMut};
use sansproto::prefix::{Config, Connection, DecodeError, Decoded, Decoder, Event};

/// Decodes everything `buf` holds.
pub fn drain(decoder: &mut Decoder, buf: &mut BytesMut) -> Vec<Decoded> {
    let mut out = Vec::new();
    while let Some(d) = decoder.decode(buf).expect("decode") {
        out.push(d);
    }
    out
}

/// Feeds `chunks` one after another to a fresh decoder.
pub fn decode_chunks<'a>(
    config: &Config,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Decoded>, Decoder, BytesMut) {
    let mut decoder = Decoder::new(config);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        out.extend(drain(&mut decoder, &mut buf));
    }
    (out, decoder, buf)
}

/// Feeds `chunks` one after another to a fresh connection.
pub fn receive_chunks<'a>(
    config: &Config,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Event>, Connection) {
    let mut conn = Connection::new(config.clone());
    let mut out = Vec::new();
    for chunk in chunks {
        conn.receive(chunk).expect("receive");
        while let Some(ev) = conn.poll_event() {
            out.push(ev);
        }
    }
    (out, conn)
}

fn as_events(decoded: &[Decoded]) -> Vec<Event> {
    decoded
        .iter()
        .map(|d| match d {
            Decoded::Frame(b) => Event::Frame(b.clone()),
            Decoded::Discarded { length } => Event::FrameDiscarded { length: *length },
        })
        .collect()
}

/// Frames as `Decoded` values.
pub fn frames(payloads: &[&[u8]]) -> Vec<Decoded> {
    payloads
        .iter()
        .map(|p| Decoded::Frame(Bytes::copy_from_slice(p)))
        .collect()
}

/// Checks that `wire` decodes to `expected` whole, byte by byte, split at
/// every point (decoder and connection), and that a partial next frame
/// after it stays buffered until it completes.
pub fn check_vector(config: &Config, wire: &[u8], expected: &[Decoded]) {
    let expected_events = as_events(expected);

    // Whole.
    let (got, mut decoder, mut buf) = decode_chunks(config, [wire]);
    assert_eq!(got, expected, "whole");
    assert!(buf.is_empty(), "whole: leftover bytes");
    assert_eq!(decoder.decode_eof(&mut buf), Ok(None));
    let (events, mut conn) = receive_chunks(config, [wire]);
    assert_eq!(events, expected_events, "connection, whole");
    assert_eq!(conn.buffered_bytes(), 0);
    assert_eq!(conn.receive_eof(), Ok(()));
    assert!(conn.is_finished());

    // Byte by byte.
    let (got, _, buf) = decode_chunks(config, wire.chunks(1));
    assert_eq!(got, expected, "byte by byte");
    assert!(buf.is_empty());
    let (events, _) = receive_chunks(config, wire.chunks(1));
    assert_eq!(events, expected_events, "connection, byte by byte");

    // Every split point.
    for at in 0..=wire.len() {
        let (a, b) = wire.split_at(at);
        let (got, _, buf) = decode_chunks(config, [a, b]);
        assert_eq!(got, expected, "split at {at}");
        assert!(buf.is_empty(), "split at {at}: leftover");
        let (events, _) = receive_chunks(config, [a, b]);
        assert_eq!(events, expected_events, "connection, split at {at}");
    }

    // Trailing: part of another copy of the first frame stays buffered.
    let first_len = {
        let mut d = Decoder::new(config);
        let mut b = BytesMut::from(wire);
        d.decode(&mut b).unwrap().expect("a first frame");
        wire.len() - b.len()
    };
    for k in 1..first_len {
        let mut with_tail = wire.to_vec();
        with_tail.extend_from_slice(&wire[..k]);
        let (got, mut decoder, mut buf) = decode_chunks(config, [&with_tail[..]]);
        assert_eq!(got, expected, "trailing {k}");
        assert_eq!(buf.len(), k, "trailing {k} bytes stay buffered");
        // The rest of it completes exactly the first frame again.
        buf.extend_from_slice(&wire[k..first_len]);
        assert_eq!(
            drain(&mut decoder, &mut buf),
            expected[..1],
            "trailing {k} completed"
        );
        assert!(buf.is_empty());

        let (events, mut conn) = receive_chunks(config, [&with_tail[..]]);
        assert_eq!(events, expected_events, "connection, trailing {k}");
        assert_eq!(conn.buffered_bytes(), k);
        match conn.receive_eof() {
            Err(DecodeError::Truncated { buffered, .. }) => assert_eq!(buffered, k),
            other => panic!("trailing {k}: end of stream gave {other:?}"),
        }
    }
}

/// Parses hex with optional spaces and `|` separators.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert!(digits.len() % 2 == 0, "odd hex: {s}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

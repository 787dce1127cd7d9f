//! Reading straight into a connection's buffer (`receive_buffer` and
//! `commit_received`, or `receive_buf_mut` and `commit_appended`) gives
//! exactly what `receive(&[u8])` gives: the same
//! events, the same output and the same error, for the RFC 6455 §5.7
//! vectors and an opening handshake, fed whole, split at every byte, byte
//! by byte, and with trailing data.

use sansproto::ws::{
    encode_frame, Config, Connection, Error, Event, OpCode, ProtocolViolation, Role,
};
use std::time::Instant;

/// What a run produced: events, output, and the sticky error.
type Outcome = (Vec<Event>, Vec<u8>, Option<Error>);

fn conn(role: Role, handshake: bool) -> Connection {
    let config = Config::default().with_max_pending_events(2);
    match (role, handshake) {
        (Role::Server, true) => Connection::server(config),
        _ => Connection::after_handshake(role, config, None, None, sansproto::seeded_random(3)),
    }
}

/// How bytes are fed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Feed {
    /// `receive(&[u8])`.
    Copy,
    /// `receive_buffer` + `commit_received`.
    Slice,
    /// `receive_buf_mut` + `commit_appended`.
    Append,
}

fn run(role: Role, handshake: bool, reads: &[&[u8]], feed: Feed) -> Outcome {
    let mut c = conn(role, handshake);
    c.handle_timeout(Instant::now());
    let (mut events, mut out, mut error) = (Vec::new(), Vec::new(), None);
    for read in reads {
        let mut rest = *read;
        while !rest.is_empty() && error.is_none() {
            let result = match feed {
                Feed::Copy => c.receive(rest),
                Feed::Slice => match c.receive_buffer(rest.len()) {
                    Some(space) => {
                        assert!(space.len() >= rest.len());
                        space[..rest.len()].copy_from_slice(rest);
                        c.commit_received(rest.len()).map(|()| rest.len())
                    }
                    None => Ok(0),
                },
                Feed::Append => match c.receive_buf_mut(rest.len()) {
                    Some(buf) => {
                        assert!(buf.capacity() - buf.len() >= rest.len());
                        buf.extend_from_slice(rest);
                        c.commit_appended().map(|()| rest.len())
                    }
                    None => Ok(0),
                },
            };
            let refused = matches!(result, Ok(0));
            match result {
                Ok(n) => rest = &rest[n..],
                Err(e) => error = Some(e),
            }
            // Events are polled only when input is refused: the bound of
            // two pending events is reached on the way.
            if rest.is_empty() || refused {
                events.extend(std::iter::from_fn(|| c.poll_event()));
            }
        }
        c.poll_transmit(&mut out);
    }
    events.extend(std::iter::from_fn(|| c.poll_event()));
    c.poll_transmit(&mut out);
    // Returned at once, or after the events before it were polled.
    if let Some(e) = &error {
        assert_eq!(Some(e), c.error(), "the returned error is the sticky one");
    }
    (events, out, c.error().cloned())
}

/// Every way of reading `wire` (whole, split once at every byte, byte by
/// byte) gives the same outcome every way.
fn same_both_ways(role: Role, handshake: bool, wire: &[u8]) -> Outcome {
    let whole = run(role, handshake, &[wire], Feed::Copy);
    for feed in [Feed::Slice, Feed::Append] {
        assert_eq!(
            run(role, handshake, &[wire], feed),
            whole,
            "whole, {feed:?}"
        );
    }
    for at in 0..=wire.len() {
        let (a, b) = wire.split_at(at);
        for feed in [Feed::Copy, Feed::Slice, Feed::Append] {
            let got = run(role, handshake, &[a, b], feed);
            assert_eq!(got, whole, "split at {at}, {feed:?}");
        }
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    for feed in [Feed::Slice, Feed::Append] {
        let got = run(role, handshake, &bytes, feed);
        assert_eq!(got, whole, "byte by byte, {feed:?}");
    }
    whole
}

/// RFC 6455 §5.7, as sent by a server (unmasked): "Hello", "Hel"+"lo" in
/// two fragments, a ping "Hello", a 256-byte and a 65536-byte binary frame.
fn rfc_server_frames() -> Vec<u8> {
    let mut wire = vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    wire.extend([0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
    wire.extend([0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    wire.extend([0x82, 0x7e, 0x01, 0x00]);
    wire.extend(vec![0xaa; 256]);
    wire.extend([0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    wire.extend(vec![0x55; 65536]);
    wire
}

/// RFC 6455 §5.7, as sent by a client (masked): "Hello", and a masked
/// pong "Hello".
fn rfc_client_frames() -> Vec<u8> {
    let mut wire = vec![
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    wire.extend([
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    wire
}

#[test]
fn rfc_frames_at_a_client_are_the_same_read_either_way() {
    let mut wire = rfc_server_frames();
    // Splitting the 64 KiB frame at every byte is slow; its head and tail
    // are what differ, so the big frame is checked whole above and the
    // splits run over everything before it.
    let small = wire.len() - 65536 - 10;
    let (events, out, error) = same_both_ways(Role::Client, false, &wire[..small]);
    assert_eq!((events.len(), error), (4, None), "{events:?}");
    assert!(!out.is_empty(), "the ping is answered");
    let whole = run(Role::Client, false, &[&wire], Feed::Copy);
    let (first, rest) = wire.split_at(small + 7);
    for feed in [Feed::Slice, Feed::Append] {
        assert_eq!(run(Role::Client, false, &[&wire], feed), whole);
        assert_eq!(run(Role::Client, false, &[first, rest], feed), whole);
    }
    // Trailing data: a Close frame after everything.
    wire.extend([0x88, 0x02, 0x03, 0xe8]);
    let closed = run(Role::Client, false, &[&wire], Feed::Append);
    assert_eq!(closed, run(Role::Client, false, &[&wire], Feed::Copy));
    assert!(matches!(closed.0.last(), Some(Event::Closed(c)) if c.clean));
}

#[test]
fn rfc_frames_at_a_server_are_the_same_read_either_way() {
    let mut wire = rfc_client_frames();
    // Trailing data: an unmasked frame, which a server refuses (1002).
    wire.extend([0x81, 0x01, b'x']);
    let (events, out, error) = same_both_ways(Role::Server, false, &wire);
    assert_eq!(
        error,
        Some(Error::Protocol(ProtocolViolation::UnmaskedClientFrame))
    );
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(out.ends_with(&[0x88, 0x02, 0x03, 0xea]), "1002 Close");
}

#[test]
fn a_handshake_then_frames_is_the_same_read_either_way() {
    let mut wire = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    wire.extend(rfc_client_frames());
    encode_frame(
        &mut wire,
        true,
        0,
        OpCode::Close,
        Some([9, 9, 9, 9]),
        &[0x03, 0xe8],
    );
    let (events, out, error) = same_both_ways(Role::Server, true, &wire);
    assert_eq!(error, None);
    assert!(matches!(events.first(), Some(Event::Open(_))), "{events:?}");
    assert!(matches!(events.last(), Some(Event::Closed(c)) if c.clean));
    assert!(out.starts_with(b"HTTP/1.1 101"));
    assert!(String::from_utf8_lossy(&out).contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

#[test]
fn an_idle_connection_holds_no_receive_buffer_after_a_short_read() {
    let mut c = conn(Role::Server, false);
    let wire = rfc_client_frames();
    let space = c.receive_buffer(4096).unwrap();
    assert!(space.len() >= 4096);
    space[..wire.len()].copy_from_slice(&wire);
    c.commit_received(wire.len()).unwrap();
    assert_eq!(std::iter::from_fn(|| c.poll_event()).count(), 2);
    // The read was short and nothing is left: the space was given back.
    assert!(c.receive_buffer(0).unwrap().len() < 4096);
    c.commit_received(0).unwrap();
    // The same through the lent buffer.
    let buf = c.receive_buf_mut(4096).unwrap();
    assert!(buf.capacity() >= 4096);
    buf.extend_from_slice(&wire);
    c.commit_appended().unwrap();
    assert_eq!(std::iter::from_fn(|| c.poll_event()).count(), 2);
    assert!(c.receive_buf_mut(0).unwrap().capacity() < 4096, "freed");
}

#[test]
fn the_handshake_read_into_the_buffer_leaves_no_buffer_behind() {
    let request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
    for lent in [false, true] {
        let mut c = conn(Role::Server, true);
        if lent {
            c.receive_buf_mut(16 << 10)
                .unwrap()
                .extend_from_slice(request);
            c.commit_appended().unwrap();
        } else {
            c.receive_buffer(16 << 10).unwrap()[..request.len()].copy_from_slice(request);
            c.commit_received(request.len()).unwrap();
        }
        assert!(matches!(c.poll_event(), Some(Event::Open(_))));
        // Idle after the upgrade: the 16 KiB read buffer was given back.
        assert!(
            c.receive_buf_mut(0).unwrap().capacity() < 1024,
            "lent: {lent}"
        );
    }
}

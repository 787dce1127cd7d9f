//! Limits on everything the peer controls: absurd frame lengths, endless
//! handshake heads, too many header fields, refusal bodies, plain HTTP
//! bodies, and the outgoing queue.
//!
//! "Nothing more is buffered" is measured, not assumed: this test binary
//! counts the bytes each thread allocates, and the feeding loops check that
//! gigabytes of peer input cost (next to) nothing once a limit has tripped.

mod common;

use bytes::Bytes;
use common::ws::decode_frames;
use sansproto::ws::{
    ClientRequest, Config, Connection, Error, Event, HandshakeError, Message, ProtocolViolation,
    Role, SendErrorKind,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the bytes each thread asks for.
struct CountingAlloc;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    // A const-initialised `Cell` needs no allocation and no destructor, so
    // this is safe to run inside the allocator.
    let _ = ALLOCATED.try_with(|a| a.set(a.get() + bytes as u64));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; counting only touches a thread-local
// `Cell` and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size.saturating_sub(layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Bytes allocated by this thread while `f` runs.
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATED.with(Cell::get);
    let r = f();
    (r, ALLOCATED.with(Cell::get) - before)
}

const CHUNK: usize = 64 * 1024;

#[test]
fn the_allocation_counter_sees_buffering() {
    // The measure the other tests rely on: input that is kept shows up.
    let mut server = Connection::server(Config::default());
    let ((), allocated) = allocated_by(|| {
        for _ in 0..4 {
            server.receive(&[b'a'; 1024]).unwrap();
        }
    });
    assert!(allocated >= 4096, "{allocated}");
    let (v, allocated) = allocated_by(|| vec![0u8; 1 << 20]);
    assert!(allocated >= 1 << 20 && v.len() == 1 << 20);
}

/// Feeds `total` bytes of `fill` in 64 KiB pieces, reusing one buffer, and
/// checks every call returns `err`. Returns the bytes allocated meanwhile.
fn feed_after_failure(c: &mut Connection, err: &Error, total: u64, fill: u8) -> u64 {
    let chunk = vec![fill; CHUNK];
    let ((), allocated) = allocated_by(|| {
        let mut fed = 0u64;
        while fed < total {
            if c.receive(&chunk).as_ref() != Err(err) {
                panic!("not the sticky error after {fed} more bytes");
            }
            fed += CHUNK as u64;
        }
    });
    allocated
}

#[test]
fn absurd_frame_lengths_fail_at_the_header_and_buffer_nothing_after() {
    const GIB: u64 = 1 << 30;
    let lengths = [
        (1u64 << 63) - 1,
        1 << 63,
        u64::MAX,
        16 * GIB,
        (16 << 20) + 1,
    ];
    for len in lengths {
        for role in [Role::Server, Role::Client] {
            for stream in [false, true] {
                let config = Config::default().with_stream_frames(stream);
                let mut c = Connection::after_handshake(
                    role,
                    config,
                    None,
                    None,
                    sansproto::seeded_random(1),
                );
                let what = format!("length {len} to a {role:?}, streaming {stream}");
                let mut header = vec![0x82, 0x7f];
                if role == Role::Server {
                    header[1] |= 0x80;
                }
                header.extend_from_slice(&len.to_be_bytes());
                if role == Role::Server {
                    header.extend_from_slice(&[1, 2, 3, 4]);
                }
                // Everything but the header's last byte is accepted.
                let last = header.len() - 1;
                if len >> 63 == 0 {
                    c.receive(&header[..last]).unwrap();
                } else if let Err(e) = c.receive(&header[..last]) {
                    // The top bit is set: refusing before the mask is in is
                    // fine too.
                    assert!(matches!(
                        e,
                        Error::FrameTooBig(_) | Error::Protocol(ProtocolViolation::LengthMsbSet)
                    ));
                }
                let e = match c.error().cloned() {
                    Some(e) => e,
                    None => c.receive(&header[last..]).unwrap_err(),
                };
                match (len >> 63, &e) {
                    (0, Error::FrameTooBig(n)) => assert_eq!(*n, len, "{what}"),
                    (
                        1,
                        Error::FrameTooBig(_) | Error::Protocol(ProtocolViolation::LengthMsbSet),
                    ) => {}
                    _ => panic!("{what}: {e:?}"),
                }
                let code = e.close_code().expect("a close code").0;
                assert!(code == 1009 || code == 1002, "{what}: {code}");

                let mut out = Vec::new();
                c.poll_transmit(&mut out);
                let frames = decode_frames(&out);
                assert_eq!(frames.len(), 1, "{what}");
                assert_eq!(frames[0].opcode, 0x8);
                assert_eq!(frames[0].payload[..2], code.to_be_bytes());
                assert_eq!(c.buffered_amount(), 0);

                // 1 GiB of "payload" (16384 reads of 64 KiB) is refused
                // without being kept.
                let allocated = feed_after_failure(&mut c, &e, GIB, 0x55);
                assert!(allocated < 4096, "{what}: {allocated} bytes allocated");
                assert_eq!(c.buffered_amount(), 0);
                assert_eq!(c.poll_transmit(&mut out), 0, "{what}");
                let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
                assert!(
                    matches!(events.as_slice(), [Event::Closed(cl)] if cl.code.0 == code),
                    "{what}: {events:?}"
                );
            }
        }
    }
}

#[test]
fn endless_handshake_head_fails_at_the_limit_with_431() {
    for limit in [16 * 1024, 1000, 100] {
        let config = if limit == 16 * 1024 {
            Config::default()
        } else {
            Config::default().with_handshake_limits(limit, 64)
        };
        assert_eq!(config.max_handshake_size, limit);
        let mut server = Connection::server(config);
        let start = b"GET / HTTP/1.1\r\nX: ";
        server.receive(start).unwrap();
        let mut fed = start.len();
        // Byte by byte up to the limit: still waiting for the end of the head.
        while fed < limit {
            server.receive(b"a").unwrap();
            fed += 1;
        }
        let e = server.receive(b"a").unwrap_err();
        assert_eq!(e, Error::Handshake(HandshakeError::TooLarge(limit)));
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        assert!(out.starts_with(b"HTTP/1.1 431 "), "{limit}: {out:?}");
        assert!(server.is_finished());
        assert_eq!(std::iter::from_fn(|| server.poll_event()).count(), 0);

        let allocated = feed_after_failure(&mut server, &e, 64 << 20, b'a');
        assert!(allocated < 4096, "{limit}: {allocated} bytes allocated");
        assert_eq!(server.poll_transmit(&mut out), 0);
    }
}

#[test]
fn endless_head_fed_in_large_reads_fails_too() {
    let mut server = Connection::server(Config::default());
    server.receive(b"GET / HTTP/1.1\r\nX: ").unwrap();
    let chunk = vec![b'a'; 4096];
    let mut result = Ok(0);
    for _ in 0..5 {
        result = server.receive(&chunk);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(Error::Handshake(HandshakeError::TooLarge(16 * 1024)))
    );
}

/// A valid upgrade request with `extra` padding headers.
fn upgrade_request(extra: &[(String, String)]) -> Vec<u8> {
    let mut r = String::from(
        "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

#[test]
fn a_head_of_exactly_the_limit_is_accepted() {
    let limit = 2000;
    let base = upgrade_request(&[("X-Pad".into(), String::new())]).len();
    let pad = "p".repeat(limit - base);
    let exact = upgrade_request(&[("X-Pad".into(), pad.clone())]);
    assert_eq!(exact.len(), limit);
    let config = Config::default().with_handshake_limits(limit, 64);
    let mut server = Connection::server(config.clone());
    server.receive(&exact).unwrap();
    assert!(server.is_open());

    let over = upgrade_request(&[("X-Pad".into(), pad + "p")]);
    let mut server = Connection::server(config);
    let e = server.receive(&over).unwrap_err();
    assert_eq!(e, Error::Handshake(HandshakeError::TooLarge(limit)));
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn too_many_header_fields_get_431() {
    // The request has 5 fields of its own.
    for (max, config) in [
        (64, Config::default()),
        (8, Config::default().with_handshake_limits(16 * 1024, 8)),
    ] {
        let pad = |n: usize| -> Vec<(String, String)> {
            (0..n).map(|i| (format!("X-{i}"), "v".to_owned())).collect()
        };
        let mut server = Connection::server(config.clone());
        server.receive(&upgrade_request(&pad(max - 5))).unwrap();
        assert!(server.is_open(), "{max} fields are allowed");

        let mut server = Connection::server(config);
        let e = server.receive(&upgrade_request(&pad(max - 4))).unwrap_err();
        assert_eq!(e, Error::Handshake(HandshakeError::TooManyHeaders(max)));
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        assert!(out.starts_with(b"HTTP/1.1 431 "), "{out:?}");
        assert_eq!(server.receive(b"x"), Err(e));
    }
}

#[test]
fn endless_response_head_fails_the_client() {
    let config = Config::default().with_handshake_limits(500, 64);
    let mut client = Connection::client(config, ClientRequest::new("h", "/")).unwrap();
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    client
        .receive(b"HTTP/1.1 101 Switching Protocols\r\nX: ")
        .unwrap();
    let mut result = Ok(0);
    for _ in 0..1000 {
        result = client.receive(b"b");
        if result.is_err() {
            break;
        }
    }
    let e = result.unwrap_err();
    assert_eq!(e, Error::Handshake(HandshakeError::TooLarge(500)));
    out.clear();
    client.poll_transmit(&mut out);
    assert_eq!(out, b"", "a client answers nothing");
    let allocated = feed_after_failure(&mut client, &e, 16 << 20, b'b');
    assert!(allocated < 4096, "{allocated}");
}

#[test]
fn a_refusals_body_is_cut_at_the_handshake_limit() {
    let limit = 1024;
    let config = Config::default().with_handshake_limits(limit, 64);
    let mut client = Connection::client(config, ClientRequest::new("h", "/")).unwrap();
    client
        .receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000000000\r\n\r\n")
        .unwrap();
    let chunk = vec![b'z'; 100];
    let mut fed = 0;
    while client.error().is_none() && fed < 1_000_000 {
        let _ = client.receive(&chunk);
        fed += chunk.len();
        while let Some(ev) = client.poll_event() {
            let Event::Rejected(r) = ev else {
                panic!("{ev:?}");
            };
            assert_eq!(r.status, 403);
            assert_eq!(r.body.len(), limit);
        }
    }
    let e = client.error().cloned().expect("failed");
    assert_eq!(e, Error::Handshake(HandshakeError::Status(403)));
    assert!(fed <= limit + chunk.len(), "kept reading to {fed}");
    let allocated = feed_after_failure(&mut client, &e, 16 << 20, b'z');
    assert!(allocated < 4096, "{allocated}");
}

#[test]
fn a_plain_requests_body_is_kept_only_up_to_the_limit() {
    let limit = 4096;
    let config = Config::default().with_handshake_limits(limit, 64);
    let mut server = Connection::server(config);
    server
        .receive(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n")
        .unwrap();
    assert!(matches!(server.poll_event(), Some(Event::HttpRequest(_))));
    let chunk = vec![b'q'; CHUNK];
    let ((), allocated) = allocated_by(|| {
        for _ in 0..256 {
            server.receive(&chunk).unwrap();
        }
    });
    assert!(allocated < 64 * 1024, "{allocated}");
    assert_eq!(server.take_buffered().len(), limit);
}

#[test]
fn a_full_send_queue_refuses_and_hands_the_payload_back() {
    let limit = 1000;
    let config = Config::default().with_max_send_queue(limit);
    for role in [Role::Server, Role::Client] {
        let mut c = Connection::after_handshake(
            role,
            config.clone(),
            None,
            None,
            sansproto::seeded_random(2),
        );

        let big = Bytes::from(vec![1u8; limit + 1]);
        let err = c.send_binary(big.clone()).unwrap_err();
        assert_eq!(err.kind(), &SendErrorKind::QueueFull);
        let Message::Binary(back) = err.payload() else {
            panic!("{:?}", err.payload());
        };
        assert_eq!(back, &big);
        assert_eq!(back.as_ptr(), big.as_ptr(), "the very same buffer");
        assert_eq!(c.buffered_amount(), 0);

        // Fill the queue with 100-byte messages until one is refused.
        let mut accepted = Vec::new();
        let refused = loop {
            let m = Bytes::from(vec![accepted.len() as u8; 100]);
            match c.send_binary(m.clone()) {
                Ok(()) => accepted.push(m),
                Err(e) => {
                    assert_eq!(e.kind(), &SendErrorKind::QueueFull);
                    assert_eq!(e.payload(), &Message::Binary(m.clone()));
                    break m;
                }
            }
            assert!(c.buffered_amount() <= limit, "{}", c.buffered_amount());
            assert!(accepted.len() < 100, "never refused");
        };
        assert!(accepted.len() >= 8, "only {} fit", accepted.len());
        let text = "t".repeat(200);
        let err = c.send_text(text.clone()).unwrap_err();
        assert_eq!(
            err.into_parts(),
            (SendErrorKind::QueueFull, Message::from(text))
        );
        let ping = c.ping(vec![7u8; 125]).unwrap_err();
        assert_eq!(ping.kind(), &SendErrorKind::QueueFull);
        assert_eq!(ping.payload(), &Bytes::from(vec![7u8; 125]));
        assert!(c.is_open(), "a full queue does not fail the connection");

        // Drain, then the refused message goes.
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert_eq!(c.buffered_amount(), 0);
        c.send_binary(refused.clone()).unwrap();
        c.poll_transmit(&mut out);
        let payloads: Vec<Vec<u8>> = decode_frames(&out).into_iter().map(|f| f.payload).collect();
        accepted.push(refused);
        let expected: Vec<Vec<u8>> = accepted.iter().map(|b| b.to_vec()).collect();
        assert_eq!(payloads, expected, "{role:?}");
    }
}

#[test]
fn sends_before_open_count_against_the_queue_limit() {
    let config = Config::default().with_max_send_queue(1000);
    let mut client = Connection::client(config, ClientRequest::new("h", "/")).unwrap();
    let m = Bytes::from(vec![0u8; 1000]);
    let err = client.send_binary(m.clone()).unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::QueueFull);
    assert_eq!(err.payload(), &Message::Binary(m));
    let mut n = 0;
    while client.send_binary(vec![0u8; 50]).is_ok() {
        n += 1;
        assert!(client.buffered_amount() <= 1000);
        assert!(n < 100);
    }
    assert!(n >= 10);
}

#[test]
fn buffered_input_counts_what_is_held_until_it_becomes_events() {
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut frame = Vec::new();
    sansproto::ws::encode_frame(
        &mut frame,
        true,
        0,
        sansproto::ws::OpCode::Binary,
        Some([1, 2, 3, 4]),
        &[7u8; 300],
    );
    for cut in 0..request.len() {
        let mut conn = sansproto::ws::Connection::server(Config::default());
        conn.receive(&request[..cut]).unwrap();
        assert_eq!(conn.buffered_input(), cut, "head cut at {cut}");
    }
    let mut conn = sansproto::ws::Connection::server(Config::default());
    conn.receive(request).unwrap();
    assert_eq!(conn.buffered_input(), 0);
    // A whole header is parsed at once; then its payload is held.
    let header = 8;
    for cut in 0..frame.len() {
        conn.receive(&frame[..cut]).unwrap();
        let held = if cut < header { cut } else { cut - header };
        assert_eq!(conn.buffered_input(), held, "frame cut at {cut}");
        conn.receive(&frame[cut..]).unwrap();
        assert_eq!(conn.buffered_input(), 0, "frame cut at {cut}");
        while conn.poll_event().is_some() {}
    }
}

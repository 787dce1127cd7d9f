//! Hostile peers against the WebSocket machines: what each attack makes a
//! connection hold, measured with a counting allocator, and that the
//! machine still serves afterwards. Every test runs alone (the counter is
//! process-wide).

use sansproto::ws::{encode_frame, Config, Connection, Event, Message, OpCode};
mod common;

use common::alloc::{measure, serial, Counting};
use common::ws::{masked, open_server};

#[global_allocator]
static ALLOC: Counting = Counting;

fn server(config: Config) -> Connection {
    open_server(config, 5)
}

/// Kept tiny messages hold about what they weigh, not the reads they came
/// in: 1,000 one-byte messages, each in its own read after a large one.
#[test]
fn kept_tiny_messages_do_not_pin_their_reads() {
    let _serial = serial();
    let (kept, growth) = measure("kept_tiny_messages_do_not_pin_their_reads", || {
        let mut s = server(Config::default());
        s.receive(&masked(OpCode::Binary, &vec![0u8; 60 << 10]))
            .unwrap();
        assert!(matches!(s.poll_event(), Some(Event::Message(_))));
        let mut kept = Vec::new();
        for i in 0..1000u32 {
            s.receive(&masked(OpCode::Binary, &[i as u8])).unwrap();
            while let Some(Event::Message(m)) = s.poll_event() {
                kept.push(m);
            }
        }
        // Still serving.
        s.send("still here").unwrap();
        kept
    });
    assert_eq!(kept.len(), 1000);
    assert_eq!(kept[999], Message::Binary(vec![231u8].into()));
    assert!(
        growth < 1 << 20,
        "1,000 kept one-byte messages held {growth} bytes"
    );
}

/// The same when each tiny message shares its read with a large message
/// the application drops: the large one is split off on its own, and the
/// tiny one is copied out of the read.
#[test]
fn kept_tiny_messages_do_not_pin_large_neighbours() {
    let _serial = serial();
    let (kept, growth) = measure("kept_tiny_messages_do_not_pin_large_neighbours", || {
        let mut s = server(Config::default());
        let mut kept = Vec::new();
        for i in 0..1000u32 {
            let mut read = masked(OpCode::Binary, &[i as u8]);
            read.extend(masked(OpCode::Binary, &vec![7u8; 60 << 10]));
            s.receive(&read).unwrap();
            while let Some(Event::Message(m)) = s.poll_event() {
                if m.len() == 1 {
                    kept.push(m);
                }
            }
        }
        s.send("still here").unwrap();
        kept
    });
    assert_eq!(kept.len(), 1000);
    assert!(
        growth < 2 << 20,
        "1,000 kept one-byte messages held {growth} bytes"
    );
}

/// RFC 6455 §1.3's upgrade request head, without its blank line.
const REQUEST_START: &[u8] =
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Feeds `reads` to a fresh server until it fails; returns its error and
/// the status line of the answer it queued.
fn attack_handshake(reads: impl Iterator<Item = Vec<u8>>) -> (sansproto::ws::Error, String) {
    let mut s = Connection::server(Config::default());
    for read in reads {
        if let Err(e) = s.receive(&read) {
            let mut out = Vec::new();
            s.poll_transmit(&mut out);
            let status = String::from_utf8_lossy(&out)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            return (e, status);
        }
    }
    panic!("the server took every byte");
}

/// A fresh server still upgrades and echoes, after an attack.
fn still_serves() {
    let mut s = Connection::server(Config::default());
    let mut request = REQUEST_START.to_vec();
    request.extend_from_slice(b"\r\n");
    request.extend(masked(OpCode::Text, b"ok"));
    s.receive(&request).unwrap();
    assert!(matches!(s.poll_event(), Some(Event::Open(_))));
    assert_eq!(s.poll_event(), Some(Event::Message(Message::from("ok"))));
}

#[test]
fn an_endless_header_value_is_cut_at_the_head_limit() {
    let _serial = serial();
    let limit = Config::default().max_handshake_size;
    let ((err, status), growth) =
        measure("an_endless_header_value_is_cut_at_the_head_limit", || {
            let start = std::iter::once([REQUEST_START, b"X-Endless: "].concat());
            attack_handshake(start.chain(std::iter::repeat_n(vec![b'a'; 1024], 1024)))
        });
    assert!(err.to_string().contains("larger than"), "{err}");
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert!(
        growth < 4 * limit,
        "{growth} bytes for a {limit}-byte head limit"
    );
    still_serves();
}

#[test]
fn endless_short_header_lines_are_cut_at_the_field_count() {
    let _serial = serial();
    let ((err, status), growth) = measure(
        "endless_short_header_lines_are_cut_at_the_field_count",
        || {
            let start = std::iter::once(REQUEST_START.to_vec());
            attack_handshake(start.chain(std::iter::repeat_n(b"A: b\r\n".to_vec(), 100_000)))
        },
    );
    // 64 fields of 6 bytes fit in 16 KiB: the count limit (or the size
    // limit, whichever comes first) ends it.
    assert!(err.to_string().contains("larger than") || err.to_string().contains("header fields"));
    assert!(status.starts_with("HTTP/1.1 431 "), "{status}");
    assert!(growth < 64 << 10, "{growth} bytes");
    still_serves();
}

#[test]
fn one_huge_read_is_not_copied_before_the_limit() {
    let _serial = serial();
    let limit = Config::default().max_handshake_size;
    let mut read = [REQUEST_START, b"X-Huge: "].concat();
    read.resize(8 << 20, b'a');
    let (result, growth) = measure("one_huge_read_is_not_copied_before_the_limit", || {
        Connection::server(Config::default()).receive(&read)
    });
    assert_eq!(
        result,
        Err(sansproto::ws::Error::Handshake(
            sansproto::ws::HandshakeError::TooLarge(limit)
        ))
    );
    assert!(
        growth < 4 * limit,
        "{growth} bytes copied from an 8 MiB read"
    );
    still_serves();
}

#[test]
fn a_frame_claiming_two_to_the_63_bytes_is_refused_at_its_header() {
    let _serial = serial();
    let (result, growth) = measure(
        "a_frame_claiming_two_to_the_63_bytes_is_refused_at_its_header",
        || {
            let mut s = server(Config::default());
            let mut header = vec![0x82, 0xff];
            header.extend_from_slice(&(1u64 << 63).to_be_bytes());
            header.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0]);
            s.receive(&header)
        },
    );
    assert!(result.is_err(), "{result:?}");
    assert!(growth < 4 << 10, "{growth} bytes");
    still_serves();
}

#[test]
fn one_byte_continuations_stop_at_the_message_limit() {
    let _serial = serial();
    let max = 64 << 10;
    let config = Config::default().with_max_message_size(max);
    let (result, growth) = measure("one_byte_continuations_stop_at_the_message_limit", || {
        let mut s = server(config.clone());
        let mut first = Vec::new();
        encode_frame(
            &mut first,
            false,
            0,
            OpCode::Binary,
            Some([1, 2, 3, 4]),
            b"x",
        );
        s.receive(&first).unwrap();
        let mut cont = Vec::new();
        encode_frame(
            &mut cont,
            false,
            0,
            OpCode::Continuation,
            Some([1, 2, 3, 4]),
            b"x",
        );
        for _ in 0..100_000 {
            s.receive(&cont)?;
        }
        Ok::<(), sansproto::ws::Error>(())
    });
    let err = result.unwrap_err();
    assert_eq!(err, sansproto::ws::Error::MessageTooBig);
    assert!(
        growth < 4 * max,
        "{growth} bytes for a {max}-byte message limit"
    );
    still_serves();
}

/// A flood of 100k pings at an application that neither polls events nor
/// transmits: the event queue stops at its bound (input is refused past
/// it, and parsing of what was taken pauses), the send queue at its limit
/// (the pong for the newest ping waits past it by one frame). Once the
/// application polls, the rest of the same input is taken: every ping is
/// reported, and the newest one answered.
#[test]
fn a_ping_flood_is_bounded_while_the_application_does_not_poll() {
    let _serial = serial();
    const PINGS: usize = 100_000;
    let events_max = 1024;
    let queue_max = 16 << 10;
    let config = Config::default()
        .with_max_pending_events(events_max)
        .with_max_send_queue(queue_max);
    let mut wire = Vec::new();
    for i in 0..PINGS as u32 {
        wire.extend(masked(OpCode::Ping, &i.to_be_bytes()));
    }
    let mut s = server(config);
    let (taken, growth) = measure("a_ping_flood_is_bounded", || {
        // The peer keeps sending; the application only feeds 64 KiB reads,
        // as long as they are taken.
        let mut taken = 0;
        for read in wire.chunks(64 << 10) {
            let n = s.receive(read).unwrap();
            assert!(n == 0 || n == read.len());
            if n == 0 {
                break;
            }
            taken += n;
        }
        taken
    });
    assert!(taken < wire.len(), "input was refused at the event bound");
    assert!(
        growth < 1 << 20,
        "{growth} bytes held for {events_max} events and a {queue_max}-byte queue"
    );
    // The application wakes up: everything arrives, nothing was lost.
    let mut rest = &wire[taken..];
    let mut pings = 0;
    let mut last = None;
    loop {
        while let Some(event) = s.poll_event() {
            let Event::Ping(p) = event else {
                panic!("{event:?}");
            };
            pings += 1;
            last = Some(p);
        }
        if rest.is_empty() {
            break;
        }
        let n = s.receive(rest).unwrap();
        assert_eq!(n, rest.len(), "taken whole once the events are polled");
        rest = &rest[n..];
    }
    assert_eq!(pings, PINGS);
    let newest = (PINGS as u32 - 1).to_be_bytes();
    assert_eq!(last.as_deref(), Some(&newest[..]));
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(
        out.len() <= queue_max + 2 + 125,
        "{} bytes queued",
        out.len()
    );
    assert!(
        out.ends_with(&[&[0x8a, 4][..], &newest].concat()),
        "the newest ping is answered last"
    );
    s.send("still here").unwrap();
}

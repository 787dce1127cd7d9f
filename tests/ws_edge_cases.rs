//! Edge cases of queuing before open, timers driven only by
//! `poll_timeout`, and handshake and framing rules that are easy to miss.
//! Each test states the expected behaviour from RFC 6455 or the crate's
//! documentation.
// Some imports serve only the tests on a testkit pair.
#![cfg_attr(not(feature = "testkit"), allow(unused_imports))]

mod common;

use bytes::Bytes;
use common::ws::decode_frames;
#[cfg(feature = "testkit")]
use common::ws::{new_pair, open_pair, CLIENT, SERVER};
use sansproto::ws::{
    ClientRequest, CloseCode, Config, Connection, Error, Event, Message, ProtocolViolation, Role,
    SendErrorKind,
};
use std::time::{Duration, Instant};

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn take_output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    out
}

/// The frames after the HTTP head in `out`.
fn frames_after_head(out: &[u8]) -> Vec<common::ws::WireFrame> {
    let head = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    decode_frames(&out[head..])
}

/// A message a server accepts before the handshake must be sent once the
/// connection opens: `send` returned `Ok`, and nothing reports a loss.
/// It is admitted against `max_send_queue` without the 101 response and the
/// frame header, then re-sent at open against the real queue, where it no
/// longer fits and is dropped without a word.
#[test]
fn a_message_accepted_before_open_is_sent() {
    let mut server = Connection::server(Config::default().with_max_send_queue(1000));
    let early = Bytes::from(vec![0xabu8; 900]);
    server
        .send_binary(early.clone())
        .expect("accepted before open");
    server.receive(UPGRADE).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    let frames = frames_after_head(&take_output(&mut server));
    assert_eq!(frames.len(), 1, "the accepted message was dropped");
    assert_eq!(frames[0].payload, early);
}

#[cfg(feature = "testkit")]
/// Same cause, client side: many small messages are admitted before the
/// 101 by payload size alone, then partly dropped at open because each
/// frame also needs a header.
#[test]
fn small_messages_accepted_before_open_are_all_sent() {
    let config = Config::default().with_max_send_queue(1000);
    let mut pair = new_pair(config, Config::default(), 1);
    let mut accepted = 0;
    while pair.a.send_binary(vec![accepted as u8; 4]).is_ok() && accepted < 1000 {
        accepted += 1;
    }
    pair.run_until_idle();
    let received = pair
        .take_events(SERVER)
        .into_iter()
        .filter(|e| matches!(e, Event::Message(_)))
        .count();
    assert_eq!(
        received, accepted,
        "messages accepted with Ok were never sent"
    );
}

/// `max_send_queue`: "a send past it is refused". Before the handshake,
/// pings are checked against the queue without the commands already
/// waiting, so any number of them is accepted.
#[test]
fn pings_before_open_respect_the_queue_limit() {
    let limit = 1000;
    let config = Config::default().with_max_send_queue(limit);
    let mut client = Connection::client(config, ClientRequest::new("h", "/")).unwrap();
    let mut accepted = 0;
    for _ in 0..100 {
        if client.ping(vec![b'p'; 125]).is_ok() {
            accepted += 1;
        }
    }
    assert!(
        client.buffered_amount() <= limit,
        "{accepted} pings accepted, {} bytes buffered",
        client.buffered_amount()
    );
}

/// `close`: "sends are refused from now on". Before the handshake a send
/// after `close` is accepted, and then silently dropped when the
/// connection opens (the queued Close goes first). A second `close` is
/// accepted the same way.
#[test]
fn a_send_after_close_before_open_is_refused() {
    let mut client = Connection::client(Config::default(), ClientRequest::new("h", "/")).unwrap();
    client.close(CloseCode::NORMAL, "").unwrap();
    let refused = client.send_text("after close");
    assert_eq!(
        refused.map_err(|e| e.into_parts()),
        Err((SendErrorKind::Closed, Message::from("after close")))
    );
    assert_eq!(
        client.ping("p").map_err(|e| e.kind().clone()),
        Err(SendErrorKind::Closed)
    );
    assert_eq!(
        client
            .close(CloseCode::NORMAL, "")
            .map_err(|e| e.kind().clone()),
        Err(SendErrorKind::Closed)
    );
}

#[cfg(feature = "testkit")]
/// `Closed::by_peer`: "True when the peer sent the first Close frame". When
/// this side sent Close and the transport then ends without a reply, the
/// peer sent no Close at all, yet `by_peer` is true.
#[test]
fn eof_after_sending_close_is_not_by_peer() {
    let mut pair = open_pair(Config::default(), Config::default(), 2);
    pair.set_delivery(CLIENT, false);
    pair.a.close(CloseCode::NORMAL, "").unwrap();
    pair.run_until_idle();
    pair.eof_to(CLIENT);
    let events = pair.take_events(CLIENT);
    let [Event::Closed(closed)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert!(!closed.by_peer, "this side sent the first (only) Close");
}

/// The rest of an event loop as `Connection::handle_timeout` asks for (it
/// was called at the start and after every `receive`): call it whenever
/// `poll_timeout` comes due. The peer is silent, so `None` means a read that
/// never returns. Returns the time since `start` at which `conn` finished,
/// if it does before `limit`.
fn run_documented_loop(conn: &mut Connection, start: Instant, limit: Duration) -> Option<Duration> {
    let mut now = start;
    while now - start < limit {
        let _ = take_output(conn);
        while conn.poll_event().is_some() {}
        if conn.is_finished() {
            return Some(now - start);
        }
        // Wait for input (none comes) or the next timer.
        match conn.poll_timeout() {
            Some(t) => now = t.max(now),
            None => return None, // blocked on a read that never returns
        }
        conn.handle_timeout(now);
    }
    None
}

/// The close timeout is armed only by a later `handle_timeout` call, and
/// `poll_timeout` does not ask for one: after `close()` it returns `None`,
/// so a loop that sleeps until `poll_timeout` (or reads with no deadline,
/// as in `driver.rs`) waits for ever on a peer that never answers.
#[test]
fn close_timeout_fires_when_the_loop_follows_poll_timeout() {
    let start = Instant::now();
    let mut client = Connection::after_handshake(
        Role::Client,
        Config::default().with_close_timeout(Some(Duration::from_secs(3))),
        None,
        None,
        sansproto::seeded_random(3),
    );
    client.handle_timeout(start);
    client.close(CloseCode::NORMAL, "bye").unwrap();
    let finished = run_documented_loop(&mut client, start, Duration::from_secs(60));
    assert_eq!(
        finished,
        Some(Duration::from_secs(3)),
        "blocked for ever: poll_timeout() is None after close()"
    );
}

/// `handshake_timeout`: "Give up on an opening handshake that takes
/// longer." While a refused upgrade's body is being read the handshake
/// timer is dropped, so a server that sends a 403 head with a
/// Content-Length and never the body holds the client for ever.
#[test]
fn a_refusal_whose_body_never_arrives_times_out() {
    let start = Instant::now();
    let mut client = Connection::client(
        Config::default().with_handshake_timeout(Some(Duration::from_secs(5))),
        ClientRequest::new("h", "/"),
    )
    .unwrap();
    client.handle_timeout(start);
    let _ = take_output(&mut client);
    client
        .receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    client.handle_timeout(start);
    let finished = run_documented_loop(&mut client, start, Duration::from_secs(60));
    assert!(finished.is_some(), "still waiting for the body");
    assert!(client.error().is_some());
}

/// RFC 6455 §5.2: in the 64-bit length "the most significant bit MUST be
/// 0". A length with it set breaks the framing rules (1002); it is reported
/// as a too-big frame (1009) of u64::MAX bytes, a size the peer never sent.
#[test]
fn a_length_with_the_top_bit_set_is_a_protocol_error() {
    let mut c = Connection::after_handshake(
        Role::Client,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(4),
    );
    let mut header = vec![0x82, 0x7f];
    header.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let e = c.receive(&header).unwrap_err();
    assert_eq!(e, Error::Protocol(ProtocolViolation::LengthMsbSet));
    let frames = decode_frames(&take_output(&mut c));
    assert_eq!(frames[0].payload[..2], 1002u16.to_be_bytes());
}

/// RFC 6455 §4.1 / §4.2.1: the upgrade request's "HTTP version MUST be at
/// least 1.1"; a server that gets anything else must refuse it (e.g. 400).
/// An HTTP/1.0 upgrade is accepted with a 101.
#[test]
fn an_http_1_0_upgrade_is_refused() {
    let mut server = Connection::server(Config::default());
    let request = String::from_utf8(UPGRADE.to_vec())
        .unwrap()
        .replace("HTTP/1.1", "HTTP/1.0");
    let result = server.receive(request.as_bytes());
    assert!(result.is_err(), "accepted: {:?}", server.poll_event());
    let out = take_output(&mut server);
    assert!(
        out.starts_with(b"HTTP/1.1 4"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

/// RFC 6455 §4.2.1: the request must carry a `Host` header field; a server
/// that finds it missing "MUST stop processing the client's handshake and
/// return an HTTP response with an appropriate error code (such as 400 Bad
/// Request)". A request without `Host` is upgraded.
#[test]
fn an_upgrade_without_host_is_refused() {
    let mut server = Connection::server(Config::default());
    let request = String::from_utf8(UPGRADE.to_vec())
        .unwrap()
        .replace("Host: h\r\n", "");
    let result = server.receive(request.as_bytes());
    assert!(result.is_err(), "accepted: {:?}", server.poll_event());
    let out = take_output(&mut server);
    assert!(
        out.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

fn masked(op: sansproto::ws::OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    sansproto::ws::encode_frame(&mut v, true, 0, op, Some([1, 2, 3, 4]), payload);
    v
}

/// A failure queued behind unpolled events is not overtaken by a timer:
/// the first error stays the one reported, and its Close frame goes out.
#[test]
fn a_queued_failure_is_not_replaced_by_a_later_timeout() {
    use sansproto::ws::OpCode;
    let config = Config::default().with_keepalive(Duration::from_secs(1), Duration::from_secs(1));
    let mut c = Connection::after_handshake(
        Role::Server,
        config,
        None,
        None,
        sansproto::seeded_random(0),
    );
    let t0 = Instant::now();
    c.handle_timeout(t0);
    let mut bytes = masked(OpCode::Binary, b"m");
    bytes.extend(masked(OpCode::Continuation, b"x"));
    assert_eq!(c.receive(&bytes), Ok(bytes.len()));
    for s in [0, 2, 4] {
        c.handle_timeout(t0 + Duration::from_secs(s));
    }
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(matches!(events[0], Event::Message(_)));
    let closed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Closed(_)))
        .collect();
    assert_eq!(closed.len(), 1, "{events:?}");
    let expected = Error::Protocol(ProtocolViolation::ContinuationWithoutMessage);
    assert_eq!(c.receive(b"x"), Err(expected.clone()));
    assert_eq!(c.error(), Some(&expected));
    let frames = decode_frames(&take_output(&mut c));
    let close = frames.last().unwrap();
    assert_eq!(close.payload[..2], 1002u16.to_be_bytes());
}

/// The peer's Close queued behind a Ping, then the close timeout: exactly
/// one `Closed` event, the clean one.
#[test]
fn a_queued_peer_close_and_a_close_timeout_give_one_closed_event() {
    use sansproto::ws::OpCode;
    let mut c = Connection::after_handshake(
        Role::Server,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(0),
    );
    let t0 = Instant::now();
    c.handle_timeout(t0);
    c.close(CloseCode::NORMAL, "").unwrap();
    let mut bytes = masked(OpCode::Ping, b"p");
    bytes.extend(masked(OpCode::Close, &1000u16.to_be_bytes()));
    assert_eq!(c.receive(&bytes), Ok(bytes.len()));
    c.handle_timeout(t0 + Duration::from_millis(1));
    c.handle_timeout(t0 + Duration::from_secs(11));
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    let closed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Closed(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1, "{events:?}");
    assert!(closed[0].clean);
    assert_eq!(closed[0].code, CloseCode::NORMAL);
    assert!(c.is_finished());
}

/// The Pong for a Ping that arrives while the send queue is full still
/// goes out, after what was queued; under a flood the newest ping's pong
/// is the one sent (RFC 6455 §5.5.2, §5.5.3).
#[test]
fn the_newest_ping_gets_its_pong_when_the_send_queue_is_full() {
    use sansproto::ws::OpCode;
    let make = || {
        let mut c = Connection::after_handshake(
            Role::Server,
            Config::default().with_max_send_queue(100),
            None,
            None,
            sansproto::seeded_random(0),
        );
        c.send_binary(vec![7u8; 80]).unwrap();
        c
    };
    for split in [false, true] {
        let mut c = make();
        let ping = masked(OpCode::Ping, b"are you there");
        if split {
            for b in &ping {
                c.receive(std::slice::from_ref(b)).unwrap();
            }
        } else {
            c.receive(&ping).unwrap();
        }
        assert_eq!(
            c.poll_event(),
            Some(Event::Ping(Bytes::from_static(b"are you there")))
        );
        let frames = decode_frames(&take_output(&mut c));
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0].payload.len(), 80);
        assert_eq!(frames[1].opcode, 0xa);
        assert_eq!(frames[1].payload, &b"are you there"[..]);
    }
    // A flood while nothing is transmitted: the queue stays bounded and the
    // newest ping is answered.
    let mut c = make();
    let mut flood = Vec::new();
    for i in 0..1000u32 {
        flood.extend(masked(OpCode::Ping, &i.to_be_bytes()));
    }
    c.receive(&flood).unwrap();
    assert!(c.buffered_amount() <= 100 + 6, "{}", c.buffered_amount());
    let frames = decode_frames(&take_output(&mut c));
    let last = frames.last().unwrap();
    assert_eq!(
        (last.opcode, &last.payload[..]),
        (0xa, &999u32.to_be_bytes()[..])
    );
    // Once there is room, pings are answered at once again.
    c.receive(&masked(OpCode::Ping, b"x")).unwrap();
    let frames = decode_frames(&take_output(&mut c));
    assert_eq!(frames.len(), 1);
}

#[cfg(feature = "testkit")]
/// `Duration::MAX` as any WebSocket or proxy timeout neither panics nor
/// fires: the connection keeps going through the whole exchange.
#[test]
fn huge_timeouts_neither_panic_nor_fire() {
    use sansproto::ws::proxy::{Proxy, ProxyConfig, ProxyRequest};
    let config = Config::default()
        .with_handshake_timeout(Some(Duration::MAX))
        .with_close_timeout(Some(Duration::MAX))
        .with_keepalive(Duration::MAX, Duration::MAX);
    let mut pair = new_pair(config.clone(), config, 1);
    let t0 = Instant::now();
    pair.a.handle_timeout(t0);
    pair.b.handle_timeout(t0);
    pair.run_until_idle();
    assert!(pair.a.is_open() && pair.b.is_open());
    pair.a.close(CloseCode::NORMAL, "").unwrap();
    pair.a.handle_timeout(t0 + Duration::from_secs(1));
    let later = t0 + Duration::from_secs(10 * 365 * 24 * 60 * 60);
    pair.a.handle_timeout(later);
    assert_eq!(pair.a.error(), None);

    let config = ProxyConfig::default().with_handshake_timeout(Some(Duration::MAX));
    let mut proxy = Proxy::new(ProxyRequest::new("p:1", "h:1"), config).unwrap();
    proxy.handle_timeout(t0);
    proxy.handle_timeout(later);
    assert_eq!(proxy.error(), None);
    assert_eq!(proxy.poll_timeout(), None);
}

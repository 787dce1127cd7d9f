//! Two sessions, a client and a server, driven against each other and fed
//! byte vectors (RFC 6455 §5.7) whole and byte by byte.

mod timers;

use super::{Handover, Session};
use crate::ws::close::close_payload;
use crate::ws::{
    encode_frame, CloseCode, Closed, Config, Error, Event, Message, OpCode, Opened,
    ProtocolViolation, Role, SendErrorKind, TimeoutKind,
};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// RFC 6455 §5.7: a single-frame masked text message, "Hello".
const MASKED_HELLO: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// RFC 6455 §5.7: a single-frame unmasked text message, "Hello".
const UNMASKED_HELLO: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// RFC 6455 §5.7: a fragmented unmasked text message, "Hel" then "lo".
const FRAGMENTED_HELLO: [u8; 9] = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
/// RFC 6455 §5.7: a masked Pong with body "Hello".
const MASKED_PONG_HELLO: [u8; 11] = [
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// The masking key of the RFC's examples.
const MASKING_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// An unmasked Close frame with code 1000, as a server sends it.
const CLOSE_1000: [u8; 4] = [0x88, 0x02, 0x03, 0xe8];
/// An unmasked Close frame with code 1002, as a server sends it.
const CLOSE_1002: [u8; 4] = [0x88, 0x02, 0x03, 0xea];

fn session(role: Role, config: Config) -> Session {
    Session::new(role, config, None, None, crate::seeded_random(1))
}

fn server() -> Session {
    session(Role::Server, Config::default())
}

fn client() -> Session {
    session(Role::Client, Config::default())
}

fn output(s: &mut Session) -> Vec<u8> {
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    out
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A frame masked as a client masks it (with the RFC's key).
fn masked(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, true, 0, opcode, Some(MASKING_KEY), payload);
    v
}

/// Feeds `bytes` to a fresh session whole, then to another byte by byte;
/// both must report the same events. Returns them.
fn feed_both_ways(make: impl Fn() -> Session, bytes: &[u8]) -> Vec<Event> {
    let mut whole = make();
    whole.receive(bytes).unwrap();
    let expected = events(&mut whole);
    let mut split = make();
    for b in bytes {
        split.receive(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(events(&mut split), expected, "byte by byte");
    expected
}

fn opened(protocol: Option<&str>) -> Opened {
    Opened {
        protocol: protocol.map(str::to_owned),
        extension: None,
        request: None,
        response: None,
    }
}

fn text(s: &str) -> Event {
    Event::Message(Message::from(s))
}

fn closed(e: &Event) -> &Closed {
    match e {
        Event::Closed(c) => c,
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn rfc_vectors_whole_byte_by_byte_and_with_trailing_data() {
    assert_eq!(feed_both_ways(server, &MASKED_HELLO), [text("Hello")]);
    assert_eq!(feed_both_ways(client, &UNMASKED_HELLO), [text("Hello")]);
    assert_eq!(feed_both_ways(client, &FRAGMENTED_HELLO), [text("Hello")]);
    let pong = Event::Pong {
        payload: Bytes::from_static(b"Hello"),
        matched: false,
    };
    assert_eq!(feed_both_ways(server, &MASKED_PONG_HELLO), [pong]);
    // Trailing data: a whole frame and half of the next one.
    let mut bytes = MASKED_HELLO.to_vec();
    bytes.extend_from_slice(&MASKED_HELLO);
    bytes.extend_from_slice(&MASKED_HELLO[..5]);
    assert_eq!(
        feed_both_ways(server, &bytes),
        [text("Hello"), text("Hello")]
    );
    // 256 bytes of binary data in a single unmasked frame (16-bit length).
    let mut big = vec![0x82, 0x7e, 0x01, 0x00];
    big.extend(std::iter::repeat_n(0xa5, 256));
    let message = Event::Message(Message::Binary(vec![0xa5; 256].into()));
    assert_eq!(feed_both_ways(client, &big), [message]);
}

#[test]
fn the_server_encodes_the_rfc_hello_and_the_client_masks() {
    let mut s = server();
    s.send_text_str("Hello").unwrap();
    assert_eq!(output(&mut s), UNMASKED_HELLO);
    let mut c = client();
    c.send_text("Hello").unwrap();
    let wire = output(&mut c);
    assert_eq!(wire.len(), MASKED_HELLO.len());
    assert_eq!(wire[..2], [0x81, 0x85], "FIN, text, masked, 5 bytes");
    assert_eq!(feed_both_ways(server, &wire), [text("Hello")]);
    // Fragmented, then reassembled.
    let mut c = session(Role::Client, Config::default().with_fragment_size(4));
    c.send_text_str("split into frames").unwrap();
    let wire = output(&mut c);
    assert_eq!(wire[0], 0x01, "first frame: text, no FIN");
    assert_eq!(feed_both_ways(server, &wire), [text("split into frames")]);
}

#[test]
fn a_message_each_way() {
    let (mut c, mut s) = (client(), server());
    c.send("from the client").unwrap();
    s.receive(&output(&mut c)).unwrap();
    assert_eq!(events(&mut s), [text("from the client")]);
    s.send_binary_slice(b"\x00\x01server").unwrap();
    s.send_binary(Bytes::from_static(b"again")).unwrap();
    c.receive(&output(&mut s)).unwrap();
    let binary = |b: &'static [u8]| Event::Message(Message::Binary(Bytes::from_static(b)));
    assert_eq!(
        events(&mut c),
        [binary(b"\x00\x01server"), binary(b"again")]
    );
    assert!(c.is_open() && s.is_open());
    assert_eq!((c.error(), s.error()), (None, None));
}

#[test]
fn a_ping_is_answered_with_a_pong() {
    let (mut c, mut s) = (client(), server());
    c.ping(Bytes::from_static(b"are you there")).unwrap();
    s.receive(&output(&mut c)).unwrap();
    assert_eq!(
        events(&mut s),
        [Event::Ping(Bytes::from_static(b"are you there"))]
    );
    assert_eq!(
        output(&mut s),
        b"\x8a\x0dare you there",
        "unmasked Pong, same payload"
    );
    c.receive(b"\x8a\x0dare you there").unwrap();
    assert_eq!(
        events(&mut c),
        [Event::Pong {
            payload: Bytes::from_static(b"are you there"),
            matched: true,
        }]
    );
    assert_eq!(
        c.ping(vec![0; 126]).unwrap_err().kind,
        SendErrorKind::ControlTooLong
    );
}

/// `a` closes, `b` answers; both report a clean close, once.
fn clean_close(mut a: Session, mut b: Session) {
    let e = a.close(CloseCode::ABNORMAL, "").unwrap_err();
    assert_eq!(e.kind, SendErrorKind::InvalidCloseCode(1006));
    a.close(CloseCode(4000), "done").unwrap();
    assert!(!a.is_open());
    assert_eq!(a.send("late").unwrap_err().kind, SendErrorKind::Closed);
    assert_eq!(
        a.close(CloseCode::NORMAL, "").unwrap_err().kind,
        SendErrorKind::Closed
    );
    b.receive(&output(&mut a)).unwrap();
    let ev = events(&mut b);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let c = closed(&ev[0]);
    assert_eq!((c.code, c.reason.as_str()), (CloseCode(4000), "done"));
    assert!(c.clean && c.by_peer);
    assert!(b.is_finished());
    a.receive(&output(&mut b)).unwrap();
    let ev = events(&mut a);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let c = closed(&ev[0]);
    assert_eq!(c.code, CloseCode(4000), "the echoed code");
    assert!(c.clean && !c.by_peer);
    assert!(a.is_finished());
    assert_eq!((a.error(), b.error()), (None, None));
    assert_eq!((a.poll_timeout(), b.poll_timeout()), (None, None));
    // After the closing handshake, input is ignored.
    assert_eq!(a.receive(b"\x81"), Ok(b"\x81".len()));
    assert_eq!(a.receive_eof(), Ok(()));
    assert!(events(&mut a).is_empty());
}

#[test]
fn a_clean_close_started_by_either_side() {
    clean_close(client(), server());
    clean_close(server(), client());
}

#[test]
fn an_unmasked_client_frame_fails_the_server_with_1002() {
    let expected = Error::Protocol(ProtocolViolation::UnmaskedClientFrame);
    for bytes_at_once in [UNMASKED_HELLO.len(), 1] {
        let mut s = server();
        let mut results = UNMASKED_HELLO
            .chunks(bytes_at_once)
            .map(|chunk| s.receive(chunk));
        // The header is whole at the second byte: the error comes there.
        if bytes_at_once == 1 {
            assert_eq!(results.next(), Some(Ok(1)));
        }
        assert_eq!(results.next(), Some(Err(expected.clone())));
        drop(results);
        assert_eq!(output(&mut s), CLOSE_1002);
        let ev = events(&mut s);
        assert_eq!(ev.len(), 1, "{ev:?}");
        let c = closed(&ev[0]);
        assert_eq!(c.code, CloseCode::PROTOCOL_ERROR);
        assert!(!c.clean && !c.by_peer);
        // Sticky, from every input call.
        assert_eq!(s.receive(&MASKED_HELLO), Err(expected.clone()));
        assert_eq!(s.receive_eof(), Err(expected.clone()));
        assert_eq!(s.error(), Some(&expected));
        assert!(s.is_finished() && !s.is_open());
        assert_eq!(s.send("x").unwrap_err().kind, SendErrorKind::Closed);
        assert_eq!(
            s.ping(Bytes::new()).unwrap_err().kind,
            SendErrorKind::Closed
        );
        assert!(output(&mut s).is_empty(), "nothing after the Close frame");
    }
}

#[test]
fn the_end_of_input_reports_an_abnormal_close() {
    let mut s = server();
    s.receive_eof().unwrap();
    let ev = events(&mut s);
    let c = closed(&ev[0]);
    assert_eq!(c.code, CloseCode::ABNORMAL);
    assert!(!c.clean);
    assert!(s.is_finished());
    assert_eq!(s.error(), None);
    assert_eq!(s.receive(&MASKED_HELLO), Ok(MASKED_HELLO.len()));
    assert!(events(&mut s).is_empty());
}

/// A masked "Hello" and the peer's Close, in one read.
fn hello_then_close() -> Vec<u8> {
    let mut bytes = MASKED_HELLO.to_vec();
    bytes.extend(masked(
        OpCode::Close,
        &close_payload(Some(CloseCode::NORMAL), ""),
    ));
    bytes
}

#[test]
fn a_message_before_the_peers_close_can_be_echoed_first() {
    let bytes = hello_then_close();
    for bytes_at_once in [bytes.len(), 1] {
        let t0 = Instant::now();
        let mut s = server();
        s.handle_timeout(t0);
        assert_eq!(s.poll_timeout(), None, "no timer while open");
        for chunk in bytes.chunks(bytes_at_once) {
            assert_eq!(s.receive(chunk), Ok(chunk.len()));
        }
        // The Close waits behind the message; input is ignored meanwhile.
        assert_eq!(s.receive(&MASKED_HELLO), Ok(MASKED_HELLO.len()));
        assert_eq!(s.receive_eof(), Ok(()));
        assert!(s.is_open() && !s.is_finished());
        assert!(output(&mut s).is_empty(), "nothing answered yet");
        assert_eq!(
            s.poll_timeout(),
            Some(t0 + Duration::from_secs(10)),
            "the close timeout runs while the Close waits"
        );
        let Some(Event::Message(m)) = s.poll_event() else {
            panic!("the message comes first");
        };
        assert_eq!(m, Message::from("Hello"));
        s.send(m).unwrap();
        s.ping(Bytes::from_static(b"p")).unwrap();
        let ev = events(&mut s);
        assert_eq!(
            ev.len(),
            1,
            "only Closed; the later input was ignored: {ev:?}"
        );
        let c = closed(&ev[0]);
        assert!(c.clean && c.by_peer);
        assert_eq!(c.code, CloseCode::NORMAL);
        let mut expected = UNMASKED_HELLO.to_vec();
        expected.extend_from_slice(&[0x89, 0x01, b'p']);
        expected.extend_from_slice(&CLOSE_1000);
        assert_eq!(
            output(&mut s),
            expected,
            "echo and ping, then the Close reply"
        );
        assert!(s.is_finished());
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.error(), None);
    }
}

#[test]
fn a_failure_waits_behind_a_message_and_keeps_its_close_frame() {
    let mut bytes = MASKED_HELLO.to_vec();
    bytes.extend_from_slice(&UNMASKED_HELLO);
    let t0 = Instant::now();
    let mut s = server();
    s.handle_timeout(t0);
    assert_eq!(s.receive(&bytes), Ok(bytes.len()));
    assert_eq!(s.error(), None);
    s.handle_timeout(t0 + Duration::from_secs(9));
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    assert_eq!(s.poll_event(), Some(text("Hello")));
    s.send_text_str("echo").unwrap();
    let c = closed(&s.poll_event().unwrap()).clone();
    assert_eq!(c.code, CloseCode::PROTOCOL_ERROR);
    let expected = Error::Protocol(ProtocolViolation::UnmaskedClientFrame);
    assert_eq!(s.error(), Some(&expected));
    assert_eq!(s.receive(b"x"), Err(expected));
    let out = output(&mut s);
    assert!(out.starts_with(b"\x81\x04echo"));
    assert!(out.ends_with(&CLOSE_1002));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn closing_while_the_peers_close_waits_sends_one_close_frame() {
    let mut s = server();
    s.receive(&hello_then_close()).unwrap();
    s.close(CloseCode::GOING_AWAY, "").unwrap();
    assert!(!s.is_open());
    let ev = events(&mut s);
    let c = closed(&ev[1]);
    assert!(
        c.clean && !c.by_peer,
        "this side closed before reaching the peer's Close"
    );
    assert_eq!(output(&mut s), [0x88, 0x02, 0x03, 0xe9]);
}

#[test]
fn an_opened_session_reports_the_handshake_first() {
    let t0 = Instant::now();
    let opened = opened(Some("chat"));
    let preamble = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
    let config = Config::default()
        .with_keepalive(Duration::from_secs(5), Duration::from_secs(1))
        .with_max_send_queue(8);
    let mut s = Session::connecting(Role::Server, config, crate::seeded_random(1));
    s.queue_handshake_output(&preamble);
    assert!(!s.is_open());
    assert_eq!(s.poll_timeout(), None, "no session timer before it opens");
    let handover = Handover {
        events: vec![Event::Ping(Bytes::new())],
        now: Some(t0),
    };
    s.open(opened.clone(), None, handover).unwrap();
    assert_eq!(s.protocol(), Some("chat"));
    assert_eq!(s.buffered_amount(), preamble.len(), "past the limit of 8");
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    s.receive(&MASKED_HELLO).unwrap();
    assert_eq!(
        events(&mut s),
        [
            Event::Ping(Bytes::new()),
            Event::Open(Box::new(opened)),
            text("Hello")
        ]
    );
    assert_eq!(output(&mut s), preamble);
}

#[test]
fn a_local_failure_sends_1011_and_is_sticky() {
    let mut s = server();
    let first = Error::Send(SendErrorKind::QueueFull);
    assert_eq!(s.fail(first.clone()), first);
    assert_eq!(s.fail(Error::InvalidUtf8), first, "the first one stays");
    assert_eq!(output(&mut s), [0x88, 0x02, 0x03, 0xf3]);
    let ev = events(&mut s);
    assert_eq!(closed(&ev[0]).code, CloseCode::INTERNAL_ERROR);
    assert_eq!(ev.len(), 1);
    assert_eq!(s.receive(b"x"), Err(first));
}

#[test]
fn the_send_queue_limit_refuses_and_hands_back() {
    let mut s = session(Role::Server, Config::default().with_max_send_queue(20));
    s.send_binary_slice(&[1; 6]).unwrap();
    let e = s.send_binary_slice(&[2; 6]).unwrap_err();
    assert_eq!(e.kind, SendErrorKind::QueueFull);
    assert_eq!(e.payload, Message::Binary(vec![2; 6].into()));
    assert_eq!(s.buffered_amount(), 8);
}

#[test]
fn commands_wait_while_connecting_and_go_out_in_order_past_the_limit() {
    let preamble = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
    let config = Config::default().with_max_send_queue(80);
    let mut s = Session::connecting(Role::Server, config, crate::seeded_random(1));
    // Charged with their frame headers against the limit while waiting.
    s.send_binary(vec![0xab; 30]).unwrap();
    s.ping(Bytes::from_static(b"p")).unwrap();
    assert_eq!(s.buffered_amount(), 30 + 14 + 1 + 14);
    let refused = s.send_binary(vec![1; 10]).unwrap_err();
    assert_eq!(refused.kind, SendErrorKind::QueueFull);
    s.close(CloseCode::NORMAL, "").unwrap();
    let late = s.pong(Bytes::from_static(b"late")).unwrap_err();
    assert_eq!(late.kind, SendErrorKind::Closed, "nothing after Close");
    assert!(
        output(&mut s).is_empty(),
        "nothing is sent before the session opens"
    );
    // The handshake's 101 goes first, then the waiting commands, past the
    // limit (the 101 was not charged to them).
    s.queue_handshake_output(&preamble);
    s.open(opened(None), None, Handover::default()).unwrap();
    assert!(!s.is_open(), "the waiting Close was sent");
    let mut expected = preamble;
    expected.extend_from_slice(&[0x82, 30]);
    expected.extend_from_slice(&[0xab; 30]);
    expected.extend_from_slice(&[0x89, 0x01, b'p']);
    expected.extend_from_slice(&CLOSE_1000);
    assert_eq!(output(&mut s), expected);
}

#[test]
fn an_abandoned_session_refuses_commands() {
    let mut s = Session::connecting(Role::Client, Config::default(), crate::seeded_random(1));
    s.send("early").unwrap();
    s.abandon();
    assert!(s.is_finished());
    assert_eq!(s.buffered_amount(), 0);
    assert_eq!(s.send("late").unwrap_err().kind, SendErrorKind::Closed);
}

#[test]
fn a_ping_after_our_close_is_still_answered_until_the_peers_close() {
    // RFC 6455 §5.5.2: a Ping gets a Pong unless the peer's Close has
    // arrived; this side's Close ends only its data frames.
    let ping = masked(OpCode::Ping, b"are you there");
    let mut pong = vec![0x8a, 13];
    pong.extend_from_slice(b"are you there");
    for step in [ping.len(), 1] {
        let mut s = server();
        s.close(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(output(&mut s)[..2], [0x88, 5]);
        for piece in ping.chunks(step) {
            assert_eq!(s.receive(piece), Ok(piece.len()));
        }
        assert_eq!(
            events(&mut s),
            [Event::Ping(Bytes::from_static(b"are you there"))]
        );
        assert_eq!(output(&mut s), pong, "answered, {step} bytes at a time");
        assert_eq!(s.send("late").unwrap_err().kind, SendErrorKind::Closed);
        // Once the peer's Close is in, nothing more is sent.
        s.receive(&masked(
            OpCode::Close,
            &close_payload(Some(CloseCode::NORMAL), ""),
        ))
        .unwrap();
        assert!(closed(&events(&mut s)[0]).clean);
        assert_eq!(
            s.pong(Bytes::new()).unwrap_err().kind,
            SendErrorKind::Closed
        );
        assert!(output(&mut s).is_empty());
    }
    // With auto-pong off the application answers, after its Close too.
    let mut config = Config::default();
    config.auto_pong = false;
    let mut s = session(Role::Server, config);
    s.close(CloseCode::NORMAL, "bye").unwrap();
    output(&mut s);
    s.receive(&ping).unwrap();
    let Some(Event::Ping(payload)) = s.poll_event() else {
        panic!("a ping")
    };
    assert!(output(&mut s).is_empty(), "not answered by itself");
    s.pong(payload).unwrap();
    assert_eq!(output(&mut s), pong);
    assert_eq!(
        s.ping(Bytes::new()).unwrap_err().kind,
        SendErrorKind::Closed
    );
}

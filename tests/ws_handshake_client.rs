//! The client's side of the opening handshake (RFC 6455 §4): checks on the
//! server's reply, refusals, subprotocols, extra headers, and commands
//! issued before the connection opens.
// Some imports serve only the tests on a testkit pair.
#![cfg_attr(not(feature = "testkit"), allow(unused_imports))]

mod common;

use base64::Engine;
use bytes::Bytes;
use common::ws::{decode_frames, every_cut};
#[cfg(feature = "testkit")]
use common::ws::{new_pair, CLIENT, SERVER};
use sansproto::ws::{
    ClientRequest, CloseCode, Closed, Config, Connection, Error, Event, ExtensionResponseError,
    FieldError, HandshakeError, Headers, HttpResponse, Message,
};
use sha1::{Digest, Sha1};

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    out
}

#[cfg(feature = "testkit")]
#[test]
fn server_picks_its_first_choice_among_the_offered_protocols() {
    let server_config = Config::default()
        .with_protocols(["v3", "v2", "v1"])
        .unwrap();
    let client_config = Config::default().with_protocols(["v1", "v2"]).unwrap();
    let mut pair = new_pair(client_config, server_config, 1);
    pair.run_until_idle();
    for side in [CLIENT, SERVER] {
        let events = pair.take_events(side);
        let [Event::Open(opened)] = events.as_slice() else {
            panic!("{side:?}: {events:?}");
        };
        assert_eq!(opened.protocol.as_deref(), Some("v2"), "{side:?}");
        assert_eq!(pair.side_mut(side).protocol(), Some("v2"));
    }

    // No common protocol: the server names none and the client accepts that.
    let mut pair = new_pair(
        Config::default().with_protocols(["x"]).unwrap(),
        Config::default().with_protocols(["y"]).unwrap(),
        1,
    );
    pair.record();
    pair.run_until_idle();
    assert!(pair.a.is_open() && pair.b.is_open());
    assert_eq!(pair.a.protocol(), None);
    assert_eq!(pair.b.protocol(), None);
    let response = String::from_utf8_lossy(pair.wire(SERVER)).into_owned();
    assert!(!response.contains("Sec-WebSocket-Protocol"), "{response}");
    let request = String::from_utf8_lossy(pair.wire(CLIENT)).into_owned();
    assert!(
        request.contains("\r\nSec-WebSocket-Protocol: x\r\n"),
        "{request}"
    );
}

fn rfc_accept(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A client whose request was taken, and the right accept value for it.
fn client(config: Config) -> (Connection, String) {
    let mut c = Connection::client_with_random(
        config,
        ClientRequest::new("h", "/"),
        sansproto::seeded_random(5),
    )
    .unwrap();
    let req = String::from_utf8(output(&mut c)).unwrap();
    let key = req
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = rfc_accept(key);
    (c, accept)
}

fn switching(accept: &str, extra: &str) -> Vec<u8> {
    switching_raw(accept, extra.as_bytes())
}

/// A 101 with `extra` fields, which need not be UTF-8.
fn switching_raw(accept: &str, extra: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    )
    .into_bytes();
    r.extend_from_slice(extra);
    r.extend_from_slice(b"\r\n");
    r
}

/// A server frame (an empty text message) sent right behind a 101.
const FRAME: &[u8] = b"\x81\x00";

/// The client fails with `expected` on `response`, fed whole, split at
/// every byte, byte by byte, and each again with a frame behind it; it
/// sends nothing, reports nothing, and stays failed.
fn client_refuses(config: Config, response: impl Fn(&str) -> Vec<u8>, expected: HandshakeError) {
    let wire = response(&client(config.clone()).1);
    for (way, pieces) in every_cut(&wire, FRAME) {
        let (mut c, _) = client(config.clone());
        let mut first = None;
        for p in &pieces {
            match (c.receive(p), &first) {
                (Ok(taken), None) => assert_eq!(taken, p.len(), "{way}"),
                (Err(e), None) => first = Some(e),
                (r, Some(e)) => assert_eq!(r.as_ref(), Err(e), "{way}: sticky"),
            }
        }
        let e = first.unwrap_or_else(|| panic!("{way}: the client opened"));
        assert_eq!(e, Error::Handshake(expected.clone()), "{way}");
        assert_eq!(events(&mut c), [], "{way}");
        assert_eq!(output(&mut c), b"", "{way}");
        assert!(c.is_finished(), "{way}");
        assert_eq!(c.receive(FRAME), Err(e), "{way}");
    }
}

/// The client opens on `response`, fed every way [`client_refuses`]
/// feeds one, and reads the frame behind it; returns what `Open` reported.
fn client_opens(config: Config, response: impl Fn(&str) -> Vec<u8>) -> HttpResponse {
    let wire = response(&client(config.clone()).1);
    let mut opened = Vec::new();
    for (way, pieces) in every_cut(&wire, FRAME) {
        let (mut c, _) = client(config.clone());
        for p in &pieces {
            assert_eq!(c.receive(p), Ok(p.len()), "{way}");
        }
        let got = events(&mut c);
        let Some(Event::Open(o)) = got.first() else {
            panic!("{way}: {got:?}");
        };
        let frames = if way.ends_with("trailing") { 1 } else { 0 };
        assert_eq!(got.len(), 1 + frames, "{way}: {got:?}");
        opened.push(o.response.clone().expect("the 101"));
    }
    assert!(opened.iter().all(|o| o == &opened[0]));
    opened.swap_remove(0)
}

#[test]
fn client_refuses_a_protocol_it_did_not_offer() {
    client_refuses(
        Config::default().with_protocols(["chat"]).unwrap(),
        |a| switching(a, "Sec-WebSocket-Protocol: superchat\r\n"),
        HandshakeError::Subprotocol("superchat".into()),
    );
    client_refuses(
        Config::default(),
        |a| switching(a, "Sec-WebSocket-Protocol: chat\r\n"),
        HandshakeError::Subprotocol("chat".into()),
    );
    // The offered one is taken.
    let (mut c, accept) = client(Config::default().with_protocols(["a", "chat"]).unwrap());
    c.receive(&switching(&accept, "Sec-WebSocket-Protocol: chat\r\n"))
        .unwrap();
    assert_eq!(c.protocol(), Some("chat"));
}

#[test]
fn client_refuses_a_wrong_accept_key() {
    client_refuses(
        Config::default(),
        |_| switching("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", ""),
        HandshakeError::AcceptMismatch,
    );
    client_refuses(
        Config::default(),
        |a| {
            // One character off.
            let mut wrong = a.to_owned();
            wrong.replace_range(0..1, if a.starts_with('A') { "B" } else { "A" });
            switching(&wrong, "")
        },
        HandshakeError::AcceptMismatch,
    );
    client_refuses(
        Config::default(),
        |_| {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                .to_vec()
        },
        HandshakeError::AcceptMismatch,
    );
}

#[test]
fn client_refuses_a_101_without_upgrade_headers() {
    client_refuses(
        Config::default(),
        |a| {
            format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {a}\r\n\r\n")
                .into_bytes()
        },
        HandshakeError::Header("Upgrade"),
    );
    client_refuses(
        Config::default(),
        |a| {
            format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {a}\r\n\r\n")
                .into_bytes()
        },
        HandshakeError::Header("Connection"),
    );
}

#[test]
fn client_refuses_an_extension_it_did_not_offer() {
    let (mut c, accept) = client(Config::default());
    let e = c
        .receive(&switching(
            &accept,
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        ))
        .unwrap_err();
    assert_eq!(
        e,
        Error::Handshake(HandshakeError::Extension(
            ExtensionResponseError::NotOffered("permessage-deflate".into())
        ))
    );
}

#[test]
fn non_101_reply_is_reported_with_its_body_and_fails_the_client() {
    let reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!";
    let expected = HttpResponse {
        status: 403,
        reason: "Forbidden".into(),
        headers: Headers(vec![("Content-Length".into(), Bytes::from_static(b"5"))]),
        body: Bytes::from_static(b"nope!"),
    };
    let mut cuts: Vec<Vec<&[u8]>> = vec![vec![reply], reply.chunks(1).collect()];
    for i in 1..reply.len() {
        cuts.push(vec![&reply[..i], &reply[i..]]);
    }
    for pieces in cuts {
        let (mut c, _) = client(Config::default());
        let mut got = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            // The error is returned at once, or once the event is taken.
            if let Err(e) = c.receive(p) {
                assert_eq!(e, Error::Handshake(HandshakeError::Status(403)));
            }
            got.extend(events(&mut c));
            if i + 1 < pieces.len() {
                assert_eq!(got, [], "reported before the body is complete");
            }
        }
        assert_eq!(
            got,
            [Event::Rejected(Box::new(expected.clone()))],
            "{pieces:?}"
        );
        let e = Error::Handshake(HandshakeError::Status(403));
        assert_eq!(c.error(), Some(&e));
        assert_eq!(c.receive(b"more"), Err(e.clone()));
        assert_eq!(c.receive_eof(), Err(e));
        assert!(c.is_finished());
        assert_eq!(output(&mut c), b"");
        assert_eq!(events(&mut c), []);
    }
}

#[test]
fn non_101_reply_without_length_ends_at_eof() {
    let (mut c, _) = client(Config::default());
    c.receive(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 9\r\n\r\nbusy")
        .unwrap();
    c.receive(b", later").unwrap();
    assert_eq!(events(&mut c), [], "the body may go on");
    let e = c.receive_eof().unwrap_err();
    assert_eq!(e, Error::Handshake(HandshakeError::Status(503)));
    let got = events(&mut c);
    let [Event::Rejected(r)] = got.as_slice() else {
        panic!("{got:?}");
    };
    assert_eq!((r.status, &r.body[..]), (503, &b"busy, later"[..]));
    assert_eq!(r.headers.get_str("retry-after"), Some("9"));
    assert_eq!(c.error(), Some(&e));
}

#[cfg(feature = "testkit")]
#[test]
fn custom_headers_are_sent_by_both_sides() {
    let client_config = Config::default()
        .with_header("X-Token", "abc123")
        .unwrap()
        .with_header("Cookie", "a=b")
        .unwrap();
    let server_config = Config::default()
        .with_header("X-Served-By", "node-7")
        .unwrap();
    let mut pair = new_pair(client_config, server_config, 2);
    pair.record();
    pair.run_until_idle();
    let request = String::from_utf8_lossy(pair.wire(CLIENT)).into_owned();
    assert!(request.contains("\r\nX-Token: abc123\r\n"), "{request}");
    assert!(request.contains("\r\nCookie: a=b\r\n"), "{request}");
    let response = String::from_utf8_lossy(pair.wire(SERVER)).into_owned();
    assert!(response.starts_with("HTTP/1.1 101 "), "{response}");
    assert!(
        response.contains("\r\nX-Served-By: node-7\r\n"),
        "{response}"
    );

    let server_events = pair.take_events(SERVER);
    let [Event::Open(opened)] = server_events.as_slice() else {
        panic!("{server_events:?}");
    };
    let req = opened.request.as_ref().unwrap();
    assert_eq!(req.headers.get_str("x-token"), Some("abc123"));
    let client_events = pair.take_events(CLIENT);
    let [Event::Open(opened)] = client_events.as_slice() else {
        panic!("{client_events:?}");
    };
    let resp = opened.response.as_ref().unwrap();
    assert_eq!(resp.status, 101);
    assert_eq!(resp.headers.get_str("X-SERVED-BY"), Some("node-7"));
}

#[test]
fn unsafe_request_fields_are_refused_with_a_typed_error() {
    let ok = || ClientRequest::new("h", "/");
    let bad = [
        (
            ClientRequest::new("h\r\nX-Evil: 1", "/"),
            FieldError::Host("h\r\nX-Evil: 1".into()),
        ),
        (
            ClientRequest::new("a b", "/"),
            FieldError::Host("a b".into()),
        ),
        (ClientRequest::new("", "/"), FieldError::Host("".into())),
        (
            ClientRequest::new("h:99999", "/"),
            FieldError::Host("h:99999".into()),
        ),
        (
            ClientRequest::new("h", "/a b"),
            FieldError::Target("/a b".into()),
        ),
        (
            ClientRequest::new("h", "/a\tb"),
            FieldError::Target("/a\tb".into()),
        ),
        (
            ClientRequest::new("h", "chat"),
            FieldError::Target("chat".into()),
        ),
        (
            ClientRequest::new("h", "/\nX: 1"),
            FieldError::Target("/\nX: 1".into()),
        ),
        (
            ClientRequest::new("h", "/a{b}|\"c\"\\d"),
            FieldError::Target("/a{b}|\"c\"\\d".into()),
        ),
        (
            ok().with_origin("o\r\nX: 1"),
            FieldError::Value("Origin".into()),
        ),
        (ok().with_credentials("a:b", "c"), FieldError::UserName),
    ];
    for (req, err) in bad {
        assert_eq!(
            Connection::client(Config::default(), req.clone()).map(|_| ()),
            Err(HandshakeError::Field(err)),
            "{req:?}"
        );
    }
    // Fields given through the configuration are refused when given.
    for (name, value, err) in [
        ("X-A", "1\r\nX-Evil: 1", FieldError::Value("X-A".into())),
        ("X-A", "1\0", FieldError::Value("X-A".into())),
        ("Bad Name", "1", FieldError::Name("Bad Name".into())),
        ("A:B", "1", FieldError::Name("A:B".into())),
        ("", "1", FieldError::Name("".into())),
        ("Host", "other", FieldError::Reserved("Host".into())),
        (
            "sec-websocket-key",
            "k",
            FieldError::Reserved("sec-websocket-key".into()),
        ),
        ("Upgrade", "h2c", FieldError::Reserved("Upgrade".into())),
    ] {
        assert_eq!(
            Config::default().with_header(name, value).map(|_| ()),
            Err(err),
            "{name:?}"
        );
    }
    for p in ["a, b", "chat v1", "", "p\r\nX-Evil: 1"] {
        assert_eq!(
            Config::default().with_protocols(["ok", p]).map(|_| ()),
            Err(FieldError::Subprotocol(p.into())),
            "{p:?}"
        );
    }
    // The Origin and credentials a request sets are its own.
    let config = Config::default().with_header("Origin", "x").unwrap();
    assert_eq!(
        Connection::client(config, ok().with_origin("y")).map(|_| ()),
        Err(HandshakeError::Field(FieldError::Reserved("Origin".into())))
    );
}

#[cfg(feature = "testkit")]
#[test]
fn commands_before_open_are_sent_in_order_once_open() {
    let mut pair = new_pair(Config::default(), Config::default(), 3);
    pair.record();
    let before = pair.a.buffered_amount();
    pair.a.send_text("one").unwrap();
    pair.a.ping("p").unwrap();
    pair.a.send_binary(vec![1u8, 2, 3]).unwrap();
    pair.a.send_text("two").unwrap();
    assert!(
        pair.a.buffered_amount() >= before + 3 + 1 + 3 + 3,
        "queued commands count as buffered"
    );

    // While the 101 is held back, only the request reaches the server.
    pair.set_delivery(CLIENT, false);
    pair.run_until_idle();
    assert!(matches!(
        pair.take_events(SERVER).as_slice(),
        [Event::Open(_)]
    ));
    let request_len = pair.wire(CLIENT).len();
    assert!(pair.wire(CLIENT).ends_with(b"\r\n\r\n"));

    pair.set_delivery(CLIENT, true);
    pair.run_until_idle();
    assert_eq!(
        pair.take_events(SERVER),
        [
            Event::Message(Message::from("one")),
            Event::Ping(Bytes::from_static(b"p")),
            Event::Message(Message::Binary(vec![1u8, 2, 3].into())),
            Event::Message(Message::from("two")),
        ]
    );
    assert_eq!(
        pair.take_events(CLIENT)[1..],
        [Event::Pong {
            payload: Bytes::from_static(b"p"),
            matched: true
        }]
    );
    let frames = decode_frames(&pair.wire(CLIENT)[request_len..]);
    let ops: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    assert_eq!(ops, [0x1, 0x9, 0x2, 0x1]);
    assert_eq!(pair.a.buffered_amount(), 0);
}

#[cfg(feature = "testkit")]
#[test]
fn server_sends_before_open_follow_the_101() {
    let mut pair = new_pair(Config::default(), Config::default(), 4);
    pair.b.send_text("welcome").unwrap();
    pair.run_until_idle();
    let events = pair.take_events(CLIENT);
    assert!(matches!(events[0], Event::Open(_)), "{events:?}");
    assert_eq!(events[1..], [Event::Message(Message::from("welcome"))]);
}

#[cfg(feature = "testkit")]
#[test]
fn close_before_open_closes_once_open() {
    let mut pair = new_pair(Config::default(), Config::default(), 5);
    pair.a.send_text("last words").unwrap();
    pair.a.close(CloseCode::GOING_AWAY, "bye").unwrap();
    pair.run_until_idle();
    let server_events = pair.take_events(SERVER);
    assert_eq!(
        server_events[1..],
        [
            Event::Message(Message::from("last words")),
            Event::Closed(Closed {
                code: CloseCode::GOING_AWAY,
                reason: "bye".into(),
                clean: true,
                by_peer: true
            })
        ]
    );
    assert!(pair.a.is_finished() && pair.b.is_finished());
}

#[test]
fn client_refuses_a_101_that_upgrades_to_more_than_websocket() {
    for upgrade in [
        "Upgrade: h2c, websocket\r\n",
        "Upgrade: websocket, h2c\r\n",
        "Upgrade: websocket\r\nUpgrade: h2c\r\n",
    ] {
        client_refuses(
            Config::default(),
            |a| {
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\n{upgrade}Connection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {a}\r\n\r\n"
                )
                .into_bytes()
            },
            HandshakeError::Header("Upgrade"),
        );
    }
    // `websocket` in any case, with white space around it, is the one.
    for upgrade in ["WebSocket", " websocket\t"] {
        let response = client_opens(Config::default(), |a| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade:{upgrade}\r\n\
                 Connection: upgrade\r\nSec-WebSocket-Accept: {a}\r\n\r\n"
            )
            .into_bytes()
        });
        assert_eq!(response.status, 101);
    }
}

#[test]
fn client_refuses_a_101_with_more_than_one_accept_key() {
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for order in 0..3 {
        client_refuses(
            Config::default(),
            |a| {
                let (first, second) = match order {
                    0 => (a, wrong),
                    1 => (wrong, a),
                    _ => (a, a),
                };
                switching(first, &format!("Sec-WebSocket-Accept: {second}\r\n"))
            },
            HandshakeError::AcceptMismatch,
        );
    }
}

#[test]
fn client_refuses_a_subprotocol_that_is_not_text() {
    client_refuses(
        Config::default().with_protocols(["chat"]).unwrap(),
        |a| switching_raw(a, b"Sec-WebSocket-Protocol: \xffchat\r\n"),
        HandshakeError::Subprotocol("\u{fffd}chat".into()),
    );
}

#[test]
fn a_folded_field_in_the_101_is_read_with_its_fold_as_one_space() {
    let response = client_opens(Config::default(), |a| {
        switching(a, "X-Note: one,\r\n two\r\n\t three\r\nX-After: 1\r\n")
    });
    assert_eq!(response.headers.get_str("x-note"), Some("one, two three"));
    assert_eq!(response.headers.get_str("x-after"), Some("1"));
}

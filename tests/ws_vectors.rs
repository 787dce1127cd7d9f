//! Byte vectors from RFC 6455 (§1.3 handshake, §5.7 frames), each fed whole,
//! in two pieces at every split point, byte by byte, and with the next frame
//! right behind it.

mod common;

use base64::Engine;
use bytes::Bytes;
use common::ws::{decode_frames, frame, WireFrame};
use rand::{Rng, SeedableRng};
use sansproto::ws::{
    ClientRequest, Config, Connection, Event, Headers, HttpRequest, HttpResponse, Message, Opened,
    Role,
};
use sha1::{Digest, Sha1};

/// §5.7 "A single-frame unmasked text message".
const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7 "A single-frame masked text message".
const MASKED_HELLO: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// §5.7 "A fragmented unmasked text message".
const FRAGMENTED_HELLO: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
/// §5.7 "Unmasked Ping request".
const UNMASKED_PING: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7 "masked Ping response" (a Pong).
const MASKED_PONG: &[u8] = &[
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// §1.3: the client's handshake.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\
    \r\n";

/// §1.3: the server's handshake for it.
const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
    Sec-WebSocket-Protocol: chat\r\n\
    \r\n";

fn hello() -> Event {
    Event::Message(Message::from("Hello"))
}

/// `Sec-WebSocket-Accept` for `key`, computed here from the §4.2.2 recipe.
fn rfc_accept(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

fn open_conn(role: Role) -> Connection {
    Connection::after_handshake(
        role,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(1),
    )
}

/// The ways one input is cut into pieces: whole, two pieces at every split
/// point, byte by byte.
fn chunkings(len: usize) -> Vec<(String, Vec<usize>)> {
    let mut all = vec![("whole".to_owned(), vec![len])];
    for i in 1..len {
        all.push((format!("split at {i}"), vec![i, len - i]));
    }
    all.push(("byte by byte".to_owned(), vec![1; len]));
    all
}

/// Feeds `input` to fresh connections from `make` in every chunking. Each
/// expected event comes with the number of input bytes needed for it: after
/// every piece, exactly the events whose bytes have all arrived must have
/// been reported, in order. Every chunking must also make the connection
/// write the same bytes; those bytes are returned.
fn check_vector(make: impl Fn() -> Connection, input: &[u8], expect: &[(usize, Event)]) -> Vec<u8> {
    let mut reference: Option<Vec<u8>> = None;
    for (name, pieces) in chunkings(input.len()) {
        let mut conn = make();
        let mut fed = 0;
        let mut got = Vec::new();
        for n in pieces {
            if let Err(e) = conn.receive(&input[fed..fed + n]) {
                panic!("{name}: error after {} bytes: {e}", fed + n);
            }
            fed += n;
            while let Some(e) = conn.poll_event() {
                got.push(e);
            }
            let due: Vec<Event> = expect
                .iter()
                .filter(|(at, _)| *at <= fed)
                .map(|(_, e)| e.clone())
                .collect();
            if got != due {
                panic!("{name}: after {fed} bytes got {got:?}, expected {due:?}");
            }
        }
        assert!(conn.error().is_none(), "{name}");
        let mut out = Vec::new();
        conn.poll_transmit(&mut out);
        match &reference {
            None => reference = Some(out),
            Some(r) => assert!(*r == out, "{name}: output differs from a whole feed"),
        }
    }
    reference.unwrap_or_default()
}

/// Checks `vector` alone, then with a whole `next` frame right behind it
/// (which must stay buffered, reporting nothing, until its last byte).
fn check_with_trailing(
    role: Role,
    vector: &[u8],
    events: Vec<Event>,
    next: &[u8],
    next_event: Event,
) -> Vec<u8> {
    let alone: Vec<(usize, Event)> = events.iter().map(|e| (vector.len(), e.clone())).collect();
    let out = check_vector(|| open_conn(role), vector, &alone);
    let mut input = vector.to_vec();
    input.extend_from_slice(next);
    let mut both = alone;
    both.push((input.len(), next_event));
    let out_both = check_vector(|| open_conn(role), &input, &both);
    assert_eq!(out, out_both, "the trailing frame changed what was written");
    out
}

#[test]
fn unmasked_text_to_a_client() {
    let out = check_with_trailing(
        Role::Client,
        UNMASKED_HELLO,
        vec![hello()],
        &frame(true, 0x1, None, b"next"),
        Event::Message(Message::from("next")),
    );
    assert!(out.is_empty(), "a text message needs no answer: {out:02x?}");
}

#[test]
fn masked_text_to_a_server() {
    let out = check_with_trailing(
        Role::Server,
        MASKED_HELLO,
        vec![hello()],
        &frame(true, 0x1, Some([1, 2, 3, 4]), b"next"),
        Event::Message(Message::from("next")),
    );
    assert!(out.is_empty());
}

#[test]
fn fragmented_text_to_a_client() {
    check_with_trailing(
        Role::Client,
        FRAGMENTED_HELLO,
        vec![hello()],
        &frame(true, 0x2, None, b"\x00\x01"),
        Event::Message(Message::Binary(Bytes::from_static(b"\x00\x01"))),
    );
}

#[test]
fn unmasked_ping_to_a_client_is_answered_with_a_masked_pong() {
    let out = check_with_trailing(
        Role::Client,
        UNMASKED_PING,
        vec![Event::Ping(Bytes::from_static(b"Hello"))],
        UNMASKED_HELLO,
        hello(),
    );
    let frames = decode_frames(&out);
    assert_eq!(frames.len(), 1, "{frames:?}");
    let pong = &frames[0];
    assert_eq!((pong.fin, pong.rsv, pong.opcode), (true, 0, 0xa));
    assert!(pong.mask.is_some(), "a client's frames are masked");
    assert_eq!(pong.payload, b"Hello");
}

#[test]
fn masked_pong_to_a_server() {
    let out = check_with_trailing(
        Role::Server,
        MASKED_PONG,
        vec![Event::Pong {
            payload: Bytes::from_static(b"Hello"),
            matched: false,
        }],
        MASKED_HELLO,
        hello(),
    );
    assert!(out.is_empty(), "a pong is not answered");
}

#[test]
fn binary_with_16_bit_length() {
    let payload: Vec<u8> = (0..256u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut vector = vec![0x82, 0x7e, 0x01, 0x00];
    vector.extend_from_slice(&payload);
    check_with_trailing(
        Role::Client,
        &vector,
        vec![Event::Message(Message::Binary(payload.into()))],
        UNMASKED_HELLO,
        hello(),
    );
}

#[test]
fn binary_with_64_bit_length() {
    let payload = common::ws::binary_of_len(65536, 64);
    let mut vector = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    vector.extend_from_slice(&payload);
    check_with_trailing(
        Role::Client,
        &vector,
        vec![Event::Message(Message::Binary(payload.into()))],
        UNMASKED_HELLO,
        hello(),
    );
}

fn headers(fields: &[(&str, &str)]) -> Headers {
    Headers(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
    )
}

#[test]
fn rfc_accept_recipe_matches_the_rfc_example() {
    assert_eq!(
        rfc_accept("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(
        sansproto::ws::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn server_handshake_from_the_rfc_with_a_frame_right_behind() {
    let request = RFC_REQUEST.as_bytes();
    let opened = Event::Open(Box::new(Opened {
        protocol: Some("chat".into()),
        extension: None,
        request: Some(HttpRequest {
            method: "GET".into(),
            path: "/chat".into(),
            headers: headers(&[
                ("Host", "server.example.com"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Origin", "http://example.com"),
                ("Sec-WebSocket-Protocol", "chat, superchat"),
                ("Sec-WebSocket-Version", "13"),
            ]),
        }),
        response: None,
    }));
    let make = || Connection::server(Config::default().with_protocols(["chat"]).unwrap());

    let out = check_vector(make, request, &[(request.len(), opened.clone())]);
    assert_eq!(String::from_utf8(out).unwrap(), RFC_RESPONSE);

    // Bytes left over after the handshake are kept and parsed.
    let mut input = request.to_vec();
    input.extend_from_slice(MASKED_HELLO);
    input.extend_from_slice(&frame(true, 0x9, Some([9, 8, 7, 6]), b"p"));
    let out = check_vector(
        make,
        &input,
        &[
            (request.len(), opened),
            (request.len() + MASKED_HELLO.len(), hello()),
            (input.len(), Event::Ping(Bytes::from_static(b"p"))),
        ],
    );
    let mut expected = RFC_RESPONSE.as_bytes().to_vec();
    expected.extend_from_slice(&[0x8a, 0x01, b'p']);
    assert_eq!(out, expected, "101 response, then the pong");
}

/// A client whose request was already written out, and its key.
fn client_after_request(seed: u64, config: Config) -> (Connection, String) {
    let mut c = Connection::client_with_random(
        config,
        ClientRequest::new("server.example.com", "/chat"),
        sansproto::seeded_random(seed),
    )
    .unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("key header")
        .to_owned();
    (c, key)
}

#[test]
fn client_handshake_with_a_frame_right_behind_the_101() {
    let (_, key) = client_after_request(3, Config::default());
    let accept = rfc_accept(&key);
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    let opened = Event::Open(Box::new(Opened {
        protocol: None,
        extension: None,
        request: None,
        response: Some(HttpResponse {
            status: 101,
            reason: "Switching Protocols".into(),
            headers: headers(&[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", &accept),
            ]),
            body: Bytes::new(),
        }),
    }));
    let make = || client_after_request(3, Config::default()).0;
    let head = response.len();

    let out = check_vector(make, response.as_bytes(), &[(head, opened.clone())]);
    assert!(out.is_empty());

    let mut input = response.into_bytes();
    input.extend_from_slice(UNMASKED_HELLO);
    input.extend_from_slice(UNMASKED_PING);
    let out = check_vector(
        make,
        &input,
        &[
            (head, opened),
            (head + UNMASKED_HELLO.len(), hello()),
            (input.len(), Event::Ping(Bytes::from_static(b"Hello"))),
        ],
    );
    let frames = decode_frames(&out);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, &frames[0].payload[..]),
        (0xa, &b"Hello"[..])
    );
}

#[test]
fn client_request_is_byte_exact_with_a_seeded_rng() {
    let make = |seed| {
        Connection::client_with_random(
            Config::default(),
            ClientRequest::new("server.example.com", "/chat").with_origin("http://example.com"),
            sansproto::seeded_random(seed),
        )
        .unwrap()
    };
    let mut out = Vec::new();
    make(7).poll_transmit(&mut out);

    // The key is 16 bytes drawn from the injected generator, base64-encoded.
    let mut nonce = [0u8; 16];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut nonce);
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    assert_eq!(key, "vvuoaungwgeGX34k6DSdTg==");
    let expected = format!(
        "GET /chat HTTP/1.1\r\n\
         Host: server.example.com\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Origin: http://example.com\r\n\
         \r\n"
    );
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);

    let mut again = Vec::new();
    make(7).poll_transmit(&mut again);
    assert_eq!(out, again, "same seed, same bytes");
    let mut other = Vec::new();
    make(8).poll_transmit(&mut other);
    assert_ne!(out, other, "another seed, another key");
}

/// A client opened by a valid 101, with everything it wrote so far taken.
fn opened_client(seed: u64) -> Connection {
    let (mut c, key) = client_after_request(seed, Config::default());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        rfc_accept(&key)
    );
    c.receive(response.as_bytes()).unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Open(_))));
    c
}

#[test]
fn client_frames_are_masked_and_decode_to_the_payload() {
    let write = |seed| {
        let mut c = opened_client(seed);
        c.send_text("Hello").unwrap();
        c.send_binary(vec![0u8; 300]).unwrap();
        c.ping("pi").unwrap();
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        out
    };
    let out = write(7);
    let frames = decode_frames(&out);
    let summary: Vec<(bool, u8, &[u8])> = frames
        .iter()
        .map(|f| (f.fin, f.opcode, &f.payload[..]))
        .collect();
    assert_eq!(
        summary,
        [
            (true, 0x1, &b"Hello"[..]),
            (true, 0x2, &[0u8; 300][..]),
            (true, 0x9, &b"pi"[..])
        ]
    );
    for f in &frames {
        assert!(f.mask.is_some(), "unmasked client frame: {f:?}");
    }
    // An all-zero payload shows the masking key itself on the wire.
    let WireFrame { mask, .. } = &frames[1];
    assert_ne!(mask, &Some([0; 4]), "a zero key does not mask");
    let keys: Vec<_> = frames.iter().map(|f| f.mask).collect();
    assert!(
        keys[0] != keys[1] || keys[1] != keys[2],
        "fresh keys per frame"
    );

    assert_eq!(out, write(7), "same seed, same bytes");
    assert_ne!(out, write(8), "another seed, other masking keys");
}

#[test]
fn masked_ping_to_a_server_gets_an_unmasked_pong_with_its_payload() {
    let mut s = open_conn(Role::Server);
    let payload = b"ping payload \x00\xff";
    s.receive(&frame(true, 0x9, Some([0xaa, 0x55, 0x01, 0x80]), payload))
        .unwrap();
    assert_eq!(
        s.poll_event(),
        Some(Event::Ping(Bytes::copy_from_slice(payload)))
    );
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(out, frame(true, 0xa, None, payload));
}

#[test]
fn pings_are_not_answered_when_auto_pong_is_off() {
    let mut s = Connection::after_handshake(
        Role::Server,
        Config::default().with_auto_pong(false),
        None,
        None,
        sansproto::seeded_random(1),
    );
    s.receive(&frame(true, 0x9, Some([1, 2, 3, 4]), b"x"))
        .unwrap();
    assert_eq!(s.poll_event(), Some(Event::Ping(Bytes::from_static(b"x"))));
    let mut out = Vec::new();
    assert_eq!(s.poll_transmit(&mut out), 0);
    s.pong("x").unwrap();
    s.poll_transmit(&mut out);
    assert_eq!(out, frame(true, 0xa, None, b"x"));
}

#[test]
fn a_clients_ping_is_matched_by_the_servers_pong() {
    let mut c = open_conn(Role::Client);
    c.ping("one").unwrap();
    c.ping("two").unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let pings: Vec<_> = decode_frames(&out)
        .into_iter()
        .map(|f| (f.opcode, f.payload))
        .collect();
    assert_eq!(pings, [(0x9, b"one".to_vec()), (0x9, b"two".to_vec())]);

    let pong = |c: &mut Connection, p: &'static [u8]| {
        c.receive(&frame(true, 0xa, None, p)).unwrap();
        c.poll_event()
    };
    let expect = |p: &'static [u8], matched| {
        Some(Event::Pong {
            payload: Bytes::from_static(p),
            matched,
        })
    };
    assert_eq!(pong(&mut c, b"two"), expect(b"two", true));
    // "two" answered; an older ping is taken as answered by it too.
    assert_eq!(pong(&mut c, b"one"), expect(b"one", false));
    assert_eq!(pong(&mut c, b"two"), expect(b"two", false));
    assert_eq!(pong(&mut c, b"heartbeat"), expect(b"heartbeat", false));
    assert!(c.is_open());
}

#[test]
fn an_unsolicited_pong_is_not_matched() {
    let mut s = open_conn(Role::Server);
    s.receive(MASKED_PONG).unwrap();
    assert_eq!(
        s.poll_event(),
        Some(Event::Pong {
            payload: Bytes::from_static(b"Hello"),
            matched: false
        })
    );
    s.ping("Hello").unwrap();
    s.receive(MASKED_PONG).unwrap();
    assert_eq!(
        s.poll_event(),
        Some(Event::Pong {
            payload: Bytes::from_static(b"Hello"),
            matched: true
        })
    );
}

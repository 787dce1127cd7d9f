//! WebSocket helpers for the tests: a client and a server on the crate's
//! public [`testkit::Pair`] (the client is side `a`, the server side `b`),
//! and frames encoded and decoded independently of the crate.
//!
//! The pair's reads are cut at random (seeded, so every run of a test sees
//! the same cutting), and its virtual clock drives the timers: the test
//! moves time forward and the pair calls `handle_timeout(now)` on both
//! sides, the way an event loop would after every read.

use sansproto::ws::{Event, Message, MessageKind};
#[cfg(feature = "testkit")]
use sansproto::{
    testkit::{self, Chunking},
    ws::{ClientRequest, Config, Connection},
};

/// Which side of a [`Pair`].
#[cfg(feature = "testkit")]
pub type Side = sansproto::testkit::Side;

/// The client's side of a [`Pair`].
#[cfg(feature = "testkit")]
pub const CLIENT: Side = Side::A;

/// The server's side of a [`Pair`].
#[cfg(feature = "testkit")]
pub const SERVER: Side = Side::B;

/// A WebSocket client (`a`) and server (`b`).
#[cfg(feature = "testkit")]
pub type Pair = testkit::Pair<Connection, Connection>;

/// How the pair cuts reads: half of them 1 to 16 bytes, the others up to
/// `max` bytes, drawn from `seed`.
#[cfg(feature = "testkit")]
pub fn chunking(seed: u64, max: usize) -> Chunking {
    Chunking::Mixed { seed, max }
}

/// A client and a server that have not shaken hands yet. The client's
/// randomness and the pair's chunking (reads up to 4096 bytes) both come
/// from `seed`. Timers are started at once (virtual time zero).
#[cfg(feature = "testkit")]
pub fn new_pair(client_config: Config, server_config: Config, seed: u64) -> Pair {
    let client = Connection::client_with_random(
        client_config,
        ClientRequest::new("example.com", "/chat"),
        sansproto::seeded_random(seed),
    )
    .expect("valid client request");
    let server = Connection::server(server_config);
    testkit::Pair::new(client, server, chunking(seed, 4096))
}

/// A pair after a completed opening handshake; the `Open` events have
/// been checked and taken.
#[cfg(feature = "testkit")]
pub fn open_pair(client_config: Config, server_config: Config, seed: u64) -> Pair {
    let mut pair = new_pair(client_config, server_config, seed);
    pair.run_until_idle();
    assert!(pair.a.is_open(), "client did not open: {:?}", pair.a);
    assert!(pair.b.is_open(), "server did not open: {:?}", pair.b);
    for side in [CLIENT, SERVER] {
        let events = pair.take_events(side);
        assert!(
            matches!(events.as_slice(), [Event::Open(_)]),
            "{side:?} events after the handshake: {events:?}"
        );
    }
    pair
}

/// Sends `messages` from `from`, delivers everything, and returns the
/// messages the other side received. Panics on any other event.
#[cfg(feature = "testkit")]
pub fn transfer(pair: &mut Pair, from: Side, messages: &[Message]) -> Vec<Message> {
    for m in messages {
        pair.side_mut(from).send(m.clone()).expect("send accepted");
    }
    pair.run_until_idle();
    let to = from.other();
    let errors = pair.take_errors(to);
    assert!(errors.is_empty(), "{to:?} failed: {errors:?}");
    pair.take_events(to)
        .into_iter()
        .map(|e| match e {
            Event::Message(m) => m,
            other => panic!("{to:?} got an unexpected event: {other:?}"),
        })
        .collect()
}

/// Every way a test feeds `wire`: whole, split in two at every byte, and
/// byte by byte; then, when `trailing` is not empty, all of these again
/// with `trailing` right behind `wire`. Each way has a name for messages.
pub fn every_cut(wire: &[u8], trailing: &[u8]) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut inputs = vec![("", wire.to_vec())];
    if !trailing.is_empty() {
        inputs.push((", trailing", [wire, trailing].concat()));
    }
    let mut ways = Vec::new();
    for (tail, bytes) in inputs {
        ways.push((format!("whole{tail}"), vec![bytes.clone()]));
        for at in 1..bytes.len() {
            let (a, b) = bytes.split_at(at);
            ways.push((format!("split at {at}{tail}"), vec![a.to_vec(), b.to_vec()]));
        }
        let singles = bytes.chunks(1).map(<[u8]>::to_vec).collect();
        ways.push((format!("byte by byte{tail}"), singles));
    }
    ways
}

/// Reassembles streamed pieces into messages, checking the `first`/`last`
/// flags and that the kind stays the same within a message.
pub fn assemble_fragments(events: &[Event]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for e in events {
        let Event::Fragment {
            kind,
            data,
            first,
            last,
        } = e
        else {
            panic!("expected only fragments, got {e:?}");
        };
        match (&mut current, first) {
            (None, true) => current = Some((*kind, data.to_vec())),
            (Some((k, buf)), false) => {
                assert_eq!(k, kind, "kind changed inside a message");
                buf.extend_from_slice(data);
            }
            (None, false) => panic!("a message's first piece is not marked first"),
            (Some(_), true) => panic!("a piece inside a message is marked first"),
        }
        if *last {
            let (kind, buf) = current.take().expect("piece in a message");
            out.push(match kind {
                MessageKind::Text => Message::Text(
                    String::from_utf8(buf)
                        .expect("text pieces join to UTF-8")
                        .into(),
                ),
                MessageKind::Binary => Message::Binary(buf.into()),
            });
        }
    }
    assert!(
        current.is_none(),
        "a message was left without its last piece"
    );
    out
}

/// Text of exactly `len` bytes mixing one- to four-byte characters, so that
/// chunk and fragment boundaries fall inside characters.
pub fn text_of_len(len: usize, salt: usize) -> String {
    const PIECES: [&str; 5] = ["a", "é", "€", "𝄞", "xyz"];
    let mut s = String::with_capacity(len);
    let mut i = salt;
    loop {
        let p = PIECES[i % PIECES.len()];
        if s.len() + p.len() > len {
            break;
        }
        s.push_str(p);
        i += 1;
    }
    while s.len() < len {
        s.push('.');
    }
    s
}

/// Binary of `len` bytes, not a repeating pattern of any short period
/// (xorshift64*, which is quick even in an unoptimised build).
pub fn binary_of_len(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A frame as seen on the wire, decoded by this harness (independently of
/// the crate's parser), with its payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    /// RSV1-RSV3 as they sit in the first byte.
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

/// Decodes a byte string that holds whole frames only.
pub fn decode_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated frame header: {bytes:02x?}");
        let (b0, b1) = (bytes[0], bytes[1]);
        let mut pos = 2;
        let len = match b1 & 0x7f {
            126 => {
                pos = 4;
                u64::from(u16::from_be_bytes([bytes[2], bytes[3]]))
            }
            127 => {
                pos = 10;
                u64::from_be_bytes(bytes[2..10].try_into().unwrap())
            }
            n => u64::from(n),
        };
        let mask = (b1 & 0x80 != 0).then(|| {
            let k = [bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]];
            pos += 4;
            k
        });
        let len = usize::try_from(len).unwrap();
        assert!(bytes.len() >= pos + len, "truncated frame payload");
        let mut payload = bytes[pos..pos + len].to_vec();
        if let Some(k) = mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        frames.push(WireFrame {
            fin: b0 & 0x80 != 0,
            rsv: b0 & 0x70,
            opcode: b0 & 0x0f,
            mask,
            payload,
        });
        bytes = &bytes[pos + len..];
    }
    frames
}

/// Encodes one frame (the shortest length form), masking the payload with
/// `mask` when given. Written here so test input does not depend on the
/// crate's encoder.
pub fn frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Close frame payload: the code, big-endian, then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// A connection with permessage-deflate negotiated from `offer`.
#[cfg(feature = "deflate")]
pub fn negotiated(
    role: sansproto::ws::Role,
    config: sansproto::ws::Config,
    offer: &str,
) -> sansproto::ws::Connection {
    use sansproto::ws::{
        Connection, DeflateConfig, ExtensionFactory, ExtensionOffer, PerMessageDeflate, Role,
    };
    let factory = PerMessageDeflate::new(DeflateConfig::default());
    let offer = ExtensionOffer::parse_list(offer).unwrap().remove(0);
    let (_, ext) = factory.accept_offer(&[&offer]).unwrap();
    let ext = match role {
        Role::Server => ext,
        Role::Client => factory.accept_response(&offer).unwrap(),
    };
    Connection::after_handshake(role, config, None, Some(ext), sansproto::seeded_random(3))
}

/// A frame as a client sends it: masked with the key 1, 2, 3, 4.
pub fn masked(opcode: sansproto::ws::OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    sansproto::ws::encode_frame(&mut v, true, 0, opcode, Some([1, 2, 3, 4]), payload);
    v
}

/// A server session already past its handshake, with no extension.
pub fn open_server(config: sansproto::ws::Config, seed: u64) -> sansproto::ws::Connection {
    use sansproto::ws::{Connection, Role};
    Connection::after_handshake(
        Role::Server,
        config,
        None,
        None,
        sansproto::seeded_random(seed),
    )
}

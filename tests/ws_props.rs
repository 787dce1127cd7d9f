//! Properties: whatever is sent arrives unchanged, however it is fragmented
//! and however the byte stream is cut; frame headers encode and parse back
//! to themselves; how input is cut never changes what a connection does.
// Some imports serve only the tests on a testkit pair.
#![cfg_attr(not(feature = "testkit"), allow(unused_imports))]

mod common;

use common::ws::{assemble_fragments, binary_of_len, frame};
#[cfg(feature = "testkit")]
use common::ws::{chunking, open_pair, CLIENT, SERVER};
use proptest::collection::vec;
use proptest::prelude::*;
use sansproto::ws::{Config, Connection, Event, FrameHeader, Message, OpCode, Role};

#[cfg(feature = "testkit")]
/// Text from arbitrary strings, binary from arbitrary bytes; some messages
/// are large (up to ~100 KiB), made by repeating an arbitrary sample or
/// from a seeded generator, so cases stay quick to make.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => any::<String>().prop_map(Message::from),
        1 => (any::<String>(), 0usize..4000).prop_map(|(s, n)| {
            let mut t = s.repeat(n);
            let mut end = t.len().min(100 * 1024);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
            Message::from(t)
        }),
        3 => vec(any::<u8>(), 0..300).prop_map(Message::from),
        1 => (0usize..100 * 1024, any::<u64>())
            .prop_map(|(n, seed)| Message::from(binary_of_len(n, seed))),
    ]
}

#[cfg(feature = "testkit")]
/// No fragmentation, small fragments or large ones.
fn fragment_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..64, 64usize..70_000]
}

#[cfg(feature = "testkit")]
fn messages_of(events: Vec<Event>, stream: bool) -> Vec<Message> {
    if stream {
        return assemble_fragments(&events);
    }
    events
        .into_iter()
        .map(|e| match e {
            Event::Message(m) => m,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[cfg(feature = "testkit")]
    #[test]
    fn what_is_sent_is_what_arrives(
        up in vec(message(), 0..6),
        down in vec(message(), 0..6),
        client_fragment in fragment_size(),
        server_fragment in fragment_size(),
        client_streams in any::<bool>(),
        server_streams in any::<bool>(),
        seed in any::<u64>(),
        max_chunk in 64usize..20_000,
    ) {
        let client_config = Config::default()
            .with_fragment_size(client_fragment)
            .with_stream_frames(client_streams);
        let server_config = Config::default()
            .with_fragment_size(server_fragment)
            .with_stream_frames(server_streams);
        let mut pair = open_pair(client_config, server_config, seed);
        pair.set_chunking(chunking(seed, max_chunk));
        // Interleave the two directions.
        for i in 0..up.len().max(down.len()) {
            if let Some(m) = up.get(i) {
                pair.a.send(m.clone()).unwrap();
            }
            if let Some(m) = down.get(i) {
                pair.b.send(m.clone()).unwrap();
            }
            if i % 2 == 1 {
                pair.run_until_idle();
            }
        }
        pair.run_until_idle();
        prop_assert!(pair.take_errors(SERVER).is_empty());
        prop_assert!(pair.take_errors(CLIENT).is_empty());
        prop_assert_eq!(messages_of(pair.take_events(SERVER), server_streams), up);
        prop_assert_eq!(messages_of(pair.take_events(CLIENT), client_streams), down);
    }

    #[test]
    fn frame_headers_encode_and_parse_back(
        fin in any::<bool>(),
        rsv in 0u8..8,
        opcode in prop::sample::select(vec![
            OpCode::Continuation, OpCode::Text, OpCode::Binary,
            OpCode::Close, OpCode::Ping, OpCode::Pong,
        ]),
        mask in proptest::option::of(any::<[u8; 4]>()),
        payload_len in prop_oneof![0u64..126, 126u64..=0xffff, 0x1_0000u64..(1 << 63)],
        trailing in vec(any::<u8>(), 0..20),
    ) {
        let h = FrameHeader { fin, rsv: rsv << 4, opcode, mask, payload_len };
        let mut encoded = Vec::new();
        h.encode(&mut encoded);
        // RFC 6455 §5.2: the minimal number of bytes encodes the length.
        let len_bytes = match payload_len {
            0..=125 => 0,
            126..=0xffff => 2,
            _ => 8,
        };
        let mask_bytes = if mask.is_some() { 4 } else { 0 };
        prop_assert_eq!(encoded.len(), 2 + len_bytes + mask_bytes);
        prop_assert_eq!(FrameHeader::parse(&encoded), Ok(Some((h, encoded.len()))));
        for cut in 0..encoded.len() {
            prop_assert_eq!(FrameHeader::parse(&encoded[..cut]), Ok(None));
        }
        let n = encoded.len();
        encoded.extend_from_slice(&trailing);
        prop_assert_eq!(FrameHeader::parse(&encoded), Ok(Some((h, n))));
        // The wire bits, read by hand.
        prop_assert_eq!(encoded[0] & 0x80 != 0, fin);
        prop_assert_eq!(encoded[0] & 0x70, rsv << 4);
        prop_assert_eq!(encoded[0] & 0x0f, opcode.as_u8());
        prop_assert_eq!(encoded[1] & 0x80 != 0, mask.is_some());
    }
}

/// A frame as a test case: mostly well formed, sometimes not.
#[derive(Debug, Clone)]
struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
    /// Flip this byte of the encoded frame, if it has one.
    corrupt: Option<(usize, u8)>,
}

fn raw_frame() -> impl Strategy<Value = RawFrame> {
    let opcode = prop_oneof![
        6 => prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        1 => 0u8..16,
    ];
    let payload = prop_oneof![
        3 => any::<String>().prop_map(String::into_bytes),
        2 => vec(any::<u8>(), 0..40),
        1 => vec(any::<u8>(), 120..300),
    ];
    (
        prop::bool::weighted(0.8),
        prop_oneof![9 => Just(0u8), 1 => 0u8..8],
        opcode,
        prop::bool::weighted(0.9),
        payload,
        proptest::option::weighted(0.1, (any::<usize>(), 1u8..=255)),
    )
        .prop_map(|(fin, rsv, opcode, masked, payload, corrupt)| RawFrame {
            fin,
            rsv: rsv << 4,
            opcode,
            masked,
            payload,
            corrupt,
        })
}

/// Encodes frames meant for `role` (masked when going to a server).
fn encode(frames: &[RawFrame], role: Role) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let masked = f.masked == (role == Role::Server);
        let key = masked.then_some([i as u8, 0x5a, 0xa5, 0x3c]);
        let mut bytes = frame(f.fin, f.opcode, key, &f.payload);
        bytes[0] |= f.rsv;
        if let Some((at, x)) = f.corrupt {
            let at = at % bytes.len();
            bytes[at] ^= x;
        }
        out.extend_from_slice(&bytes);
    }
    out
}

/// Everything observable after feeding `input` in `pieces`: events, the
/// sticky error, and the bytes written.
fn run(role: Role, input: &[u8], pieces: &[usize]) -> (Vec<Event>, Option<String>, Vec<u8>) {
    let mut c = Connection::after_handshake(
        role,
        Config::default().with_max_message_size(2000),
        None,
        None,
        sansproto::seeded_random(9),
    );
    let mut events = Vec::new();
    let mut fed = 0;
    for &n in pieces {
        let end = (fed + n).min(input.len());
        let _ = c.receive(&input[fed..end]);
        fed = end;
        events.extend(std::iter::from_fn(|| c.poll_event()));
    }
    let _ = c.receive(&input[fed..]);
    events.extend(std::iter::from_fn(|| c.poll_event()));
    if let Some(e) = c.error().cloned() {
        assert_eq!(c.receive(b"\x81\x00"), Err(e), "sticky");
    }
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    (events, c.error().map(|e| format!("{e:?}")), out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn how_input_is_cut_never_changes_what_happens(
        frames in vec(raw_frame(), 1..12),
        server in any::<bool>(),
        pieces in vec(1usize..40, 0..60),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let input = encode(&frames, role);
        let whole = run(role, &input, &[]);
        let cut = run(role, &input, &pieces);
        prop_assert_eq!(&whole, &cut);
        let bytewise = run(role, &input, &vec![1; input.len()]);
        prop_assert_eq!(&whole, &bytewise);
    }
}

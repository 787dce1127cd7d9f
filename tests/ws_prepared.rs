//! Prepared messages (encode-once broadcast): one `PreparedMessage` sent
//! to many server connections with mixed extensions and fragment sizes
//! reaches every peer as the original message; connections that can share
//! the prepared bytes queue them without a copy, the others encode the
//! message themselves.
#![cfg(feature = "deflate")]
// Some imports serve only the tests on a testkit pair.
#![cfg_attr(not(feature = "testkit"), allow(unused_imports))]

mod common;

use bytes::{Buf, Bytes};
use common::ws::{binary_of_len, decode_frames};
#[cfg(feature = "testkit")]
use common::ws::{new_pair, CLIENT, SERVER};
use sansproto::ws::{
    Config, Connection, DeflateConfig, Event, ExtensionFactory, ExtensionOffer, Message,
    PerMessageDeflate, PreparedMessage, Role, SendErrorKind, Session,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IoSlice;

use common::alloc::{live, serial, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// A server and the client that negotiated the same extension with it,
/// after a handshake done elsewhere.
fn pair(
    server_config: Config,
    deflate: Option<(DeflateConfig, &str)>,
    seed: u64,
) -> (Connection, Connection) {
    let random = sansproto::seeded_random;
    let (server_ext, client_ext) = match deflate {
        None => (None, None),
        Some((config, offer)) => {
            let factory = PerMessageDeflate::new(config);
            let offer = ExtensionOffer::parse_list(offer).unwrap().remove(0);
            let (answer, server_ext) = factory.accept_offer(&[&offer]).unwrap();
            let client_ext = PerMessageDeflate::new(DeflateConfig::default())
                .accept_response(&answer)
                .unwrap();
            (Some(server_ext), Some(client_ext))
        }
    };
    let server =
        Connection::after_handshake(Role::Server, server_config, None, server_ext, random(seed));
    let client = Connection::after_handshake(
        Role::Client,
        Config::default(),
        None,
        client_ext,
        random(seed + 1),
    );
    (server, client)
}

/// Text of `len` bytes drawn from 16 letters at random: it compresses to
/// a little over half, so its compressed form still spans fragments.
fn noisy_text(len: usize) -> String {
    binary_of_len(len, 7)
        .iter()
        .map(|b| char::from(b"etaoinshrdlucmf "[usize::from(b & 15)]))
        .collect()
}

/// The chunks `output()` holds, each as (address, bytes), consumed.
fn take_chunks(c: &mut Connection) -> Vec<(usize, Vec<u8>)> {
    let mut out = c.output();
    let mut slots = [IoSlice::new(&[]); 16];
    let n = out.chunks_vectored(&mut slots);
    let chunks: Vec<_> = slots[..n]
        .iter()
        .map(|s| (s.as_ptr() as usize, s.to_vec()))
        .collect();
    let total: usize = chunks.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(total, out.remaining(), "every chunk fits the slots");
    out.advance(total);
    chunks
}

/// Every event `c` has, all of them messages.
fn messages(c: &mut Connection) -> Vec<Message> {
    std::iter::from_fn(|| c.poll_event())
        .map(|e| match e {
            Event::Message(m) => m,
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

/// How a variant's server sends the prepared message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The plain prepared frame, shared.
    PlainShared,
    /// A compressed frame shared with every connection of the same group.
    CompressedShared(&'static str),
    /// Encoded (or fragmented) by the connection itself, into its own run.
    Own,
}

struct Variant {
    name: &'static str,
    fragment: usize,
    deflate: Option<(DeflateConfig, &'static str)>,
    expect: Expect,
}

impl Variant {
    /// permessage-deflate with server context takeover.
    fn takeover(&self) -> bool {
        matches!(self.deflate, Some((_, offer)) if !offer.contains("server_no_context_takeover"))
    }
}

fn variants() -> Vec<Variant> {
    let d = DeflateConfig::default;
    let no_ctx = "permessage-deflate; server_no_context_takeover";
    let v = |name, fragment, deflate, expect| Variant {
        name,
        fragment,
        deflate,
        expect,
    };
    vec![
        v("plain", 0, None, Expect::PlainShared),
        v("plain, fragment 1 MiB", 1 << 20, None, Expect::PlainShared),
        v("plain, fragment 256", 256, None, Expect::Own),
        v(
            "no context takeover",
            0,
            Some((d(), no_ctx)),
            Expect::CompressedShared("w15"),
        ),
        v(
            "no context takeover on both sides",
            0,
            Some((
                d(),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            )),
            Expect::CompressedShared("w15"),
        ),
        v(
            "no context takeover, window 10",
            0,
            Some((
                d(),
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
            )),
            Expect::CompressedShared("w10"),
        ),
        v(
            "no context takeover, level 9",
            0,
            Some((d().with_level(9), no_ctx)),
            Expect::CompressedShared("level 9"),
        ),
        v(
            "no context takeover, fragment 256",
            256,
            Some((d(), no_ctx)),
            Expect::Own,
        ),
        v(
            "context takeover",
            0,
            Some((d(), "permessage-deflate")),
            Expect::Own,
        ),
        v(
            "context takeover, fragment 256",
            256,
            Some((d(), "permessage-deflate")),
            Expect::Own,
        ),
    ]
}

#[test]
fn one_prepared_message_reaches_10_000_mixed_connections_intact() {
    let _serial = serial();
    let text = noisy_text(2048);
    let prepared = PreparedMessage::new(text.clone());
    let before = Message::from(noisy_text(700));
    let after = Message::from(format!("{text} and after"));
    let variants = variants();

    let mut servers = Vec::new();
    for i in 0..10_000 {
        let v = &variants[i % variants.len()];
        let config = Config::default().with_fragment_size(v.fragment);
        let (mut server, mut client) = pair(config, v.deflate.clone(), i as u64);
        // With context takeover, a message sent before and one after: the
        // windows must agree on both sides around the prepared one.
        if v.takeover() {
            server.send(before.clone()).unwrap();
            let chunks = take_chunks(&mut server);
            assert_eq!(chunks.len(), 1);
            client.receive(&chunks[0].1).unwrap();
            assert_eq!(messages(&mut client), std::slice::from_ref(&before));
        }
        server.send_prepared(&prepared).unwrap();
        servers.push((v, server, client));
    }

    let mut groups: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let mut shared_frames = 0;
    for (v, server, client) in &mut servers {
        let chunks = take_chunks(server);
        let wire = match v.expect {
            Expect::PlainShared => {
                assert_eq!(chunks.len(), 1, "{}", v.name);
                assert_eq!(
                    chunks[0].0,
                    prepared.frame().as_ptr() as usize,
                    "{}",
                    v.name
                );
                shared_frames += 1;
                chunks[0].1.clone()
            }
            Expect::CompressedShared(group) => {
                assert_eq!(chunks.len(), 1, "{}", v.name);
                assert_ne!(chunks[0].0, prepared.frame().as_ptr() as usize);
                groups.entry(group).or_default().insert(chunks[0].0);
                shared_frames += 1;
                chunks[0].1.clone()
            }
            Expect::Own => {
                assert_eq!(chunks.len(), 1, "{}", v.name);
                assert_ne!(chunks[0].0, prepared.frame().as_ptr() as usize);
                chunks[0].1.clone()
            }
        };
        // The frames as sent: compressed (RSV1) exactly when deflate was
        // negotiated, fragmented exactly when the payload passed the size.
        let frames = decode_frames(&wire);
        let compressed = v.deflate.is_some();
        assert_eq!(
            frames[0].rsv,
            if compressed { 0x40 } else { 0 },
            "{}",
            v.name
        );
        assert!(frames.iter().skip(1).all(|f| f.rsv == 0 && f.opcode == 0));
        assert!(frames.iter().all(|f| f.mask.is_none()));
        let total: usize = frames.iter().map(|f| f.payload.len()).sum();
        if compressed {
            assert!(total < text.len() * 3 / 4, "{}: {total}", v.name);
        }
        match v.fragment {
            256 => assert!(frames.len() > 1, "{}", v.name),
            _ => assert_eq!(frames.len(), 1, "{}", v.name),
        }

        client.receive(&wire).unwrap();
        assert_eq!(messages(client), [prepared.message().clone()], "{}", v.name);
        if v.takeover() {
            server.send(after.clone()).unwrap();
            let mut all = Vec::new();
            server.poll_transmit(&mut all);
            client.receive(&all).unwrap();
            assert_eq!(messages(client), std::slice::from_ref(&after), "{}", v.name);
        }
    }
    // One compressed frame per group of equal settings, 10,000 connections
    // or not; the groups differ.
    assert_eq!(groups.len(), 3);
    assert!(groups.values().all(|ptrs| ptrs.len() == 1), "{groups:?}");
    assert_eq!(shared_frames, 10_000 / variants.len() * 6);
}

fn session(role: Role, config: Config) -> Session {
    Session::new(role, config, None, None, sansproto::seeded_random(11))
}

#[test]
fn sharing_queues_the_prepared_bytes_themselves_without_copying() {
    let _serial = serial();
    let payload = Bytes::from(binary_of_len(64 << 10, 3));
    let prepared = Message::Binary(payload.clone()).prepare();
    let frame = prepared.frame().clone();
    assert_eq!(&frame[..4], &[0x82, 127, 0, 0]);
    assert_eq!(&frame[10..], &payload[..]);

    let mut servers: Vec<Session> = (0..1_000)
        .map(|_| session(Role::Server, Config::default()))
        .collect();
    let start = live();
    for s in &mut servers {
        s.send_prepared(&prepared).unwrap();
    }
    // A queue entry per connection, not 64 KiB per connection.
    let grown = live() - start;
    assert!(grown < 1_000 * 256, "{grown} bytes for 1,000 sends");
    for s in &mut servers {
        assert_eq!(s.buffered_amount(), frame.len());
        let mut out = s.output();
        let mut slots = [IoSlice::new(&[]); 4];
        assert_eq!(out.chunks_vectored(&mut slots), 1);
        assert_eq!(
            slots[0].as_ptr(),
            frame.as_ptr(),
            "the prepared frame itself"
        );
        assert_eq!(slots[0].len(), frame.len());
        out.advance(frame.len());
    }

    // A shared compressed frame: made once, for the first connection.
    let deflate = || {
        pair(
            Config::default(),
            Some((
                DeflateConfig::default(),
                "permessage-deflate; server_no_context_takeover",
            )),
            5,
        )
    };
    let text = Message::from(noisy_text(64 << 10)).prepare();
    let mut servers: Vec<Connection> = (0..100).map(|_| deflate().0).collect();
    servers[0].send_prepared(&text).unwrap();
    let start = live();
    for s in &mut servers[1..] {
        s.send_prepared(&text).unwrap();
    }
    let grown = live() - start;
    assert!(grown < 100 * 256, "{grown} bytes for 99 compressed sends");
    let firsts: BTreeSet<usize> = servers
        .iter_mut()
        .map(|s| s.output().chunk().as_ptr() as usize)
        .collect();
    assert_eq!(firsts.len(), 1);
    let mut client = deflate().1;
    let mut wire = Vec::new();
    servers[99].poll_transmit(&mut wire);
    assert!(wire.len() < 40 << 10, "compressed: {}", wire.len());
    client.receive(&wire).unwrap();
    assert_eq!(messages(&mut client), [text.message().clone()]);
}

#[test]
fn a_client_masks_a_prepared_message_itself() {
    let prepared = PreparedMessage::new(Message::Binary(Bytes::from(binary_of_len(8 << 10, 9))));
    let mut client = session(Role::Client, Config::default());
    let mut server = session(Role::Server, Config::default());
    for _ in 0..3 {
        client.send_prepared(&prepared).unwrap();
    }
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    let frames = decode_frames(&wire);
    assert_eq!(frames.len(), 3);
    let keys: BTreeSet<_> = frames.iter().map(|f| f.mask.unwrap()).collect();
    assert_eq!(keys.len(), 3, "a fresh key per frame");
    assert!(frames
        .iter()
        .all(|f| f.payload == prepared.message().as_bytes()));
    server.receive(&wire).unwrap();
    for _ in 0..3 {
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(prepared.message().clone()))
        );
    }
}

#[test]
fn a_refused_prepared_send_hands_the_message_back() {
    let prepared = PreparedMessage::new(noisy_text(3000));
    let deflate = Some((
        DeflateConfig::default(),
        "permessage-deflate; server_no_context_takeover",
    ));
    for (name, deflate) in [("plain", None), ("shared deflate", deflate.clone())] {
        let config = Config::default().with_max_send_queue(1000);
        let (mut server, _) = pair(config, deflate, 1);
        let err = server.send_prepared(&prepared).unwrap_err();
        assert_eq!(err.kind(), &SendErrorKind::QueueFull, "{name}");
        assert_eq!(err.payload().frame().as_ptr(), prepared.frame().as_ptr());
        assert_eq!(server.buffered_amount(), 0, "{name}: nothing queued");

        let (mut server, _) = pair(Config::default(), None, 1);
        server.close(sansproto::ws::CloseCode::NORMAL, "").unwrap();
        let err = server.send_prepared(&prepared).unwrap_err();
        assert_eq!(err.kind(), &SendErrorKind::Closed, "{name}");
        assert_eq!(err.into_payload().message(), prepared.message());
    }
}

#[cfg(feature = "testkit")]
#[test]
fn before_the_handshake_a_prepared_message_waits_for_the_connection_to_open() {
    let deflate = Config::default()
        .with_deflate(DeflateConfig::default().with_server_no_context_takeover(true));
    let mut pair = new_pair(deflate.clone(), deflate, 21);
    let prepared = PreparedMessage::new(noisy_text(1000));
    pair.b.send_prepared(&prepared).unwrap();
    pair.a.send_prepared(&prepared).unwrap();
    pair.run_until_idle();
    for side in [CLIENT, SERVER] {
        let events = pair.take_events(side);
        assert!(matches!(events[0], Event::Open(_)), "{side:?}: {events:?}");
        assert_eq!(
            events[1..],
            [Event::Message(prepared.message().clone())],
            "{side:?}"
        );
    }
}

#[test]
fn an_uncompressed_prepared_message_is_shared_even_with_context_takeover() {
    let text = noisy_text(5000);
    let prepared = PreparedMessage::uncompressed(text.clone());
    assert!(!prepared.compresses());
    let takeover = Some((DeflateConfig::default(), "permessage-deflate"));
    for _ in 0..10 {
        let (mut server, mut client) = pair(Config::default(), takeover.clone(), 8);
        server.send(text.clone()).unwrap();
        let first = take_chunks(&mut server);
        server.send_prepared(&prepared).unwrap();
        let second = take_chunks(&mut server);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].0, prepared.frame().as_ptr() as usize);
        server.send(text.clone()).unwrap();
        let third = take_chunks(&mut server);
        let rsv: Vec<u8> = [&first, &second, &third]
            .iter()
            .map(|c| decode_frames(&c[0].1)[0].rsv)
            .collect();
        assert_eq!(rsv, [0x40, 0, 0x40]);
        // The window skipped the uncompressed copy: the third refers back
        // to the first.
        assert!(third[0].1.len() < 64, "{}", third[0].1.len());
        for c in [first, second, third] {
            client.receive(&c[0].1).unwrap();
        }
        let want = Message::from(text.clone());
        assert_eq!(messages(&mut client), [want.clone(), want.clone(), want]);
    }
}

#[test]
fn prepared_sends_are_counted_like_any_other() {
    let prepared = PreparedMessage::new(Message::from("counted"));
    let mut s = session(Role::Server, Config::default());
    for _ in 0..3 {
        s.send_prepared(&prepared).unwrap();
    }
    let mut wire = Vec::new();
    s.poll_transmit(&mut wire);
    let stats = s.stats();
    assert_eq!((stats.tx.frames, stats.tx.messages), (3, 3));
    assert_eq!(stats.tx.bytes, wire.len() as u64);
    assert_eq!(wire.len(), 3 * prepared.frame().len());
}

#[test]
fn tiny_prepared_frames_to_a_peer_that_reads_nothing_are_bounded_by_what_they_hold() {
    // Each is a shared chunk of its own: the queue limit counts the
    // chunk's slot beside its two bytes, so the queue holds about the
    // limit, not sixteen times it.
    let limit = 64 << 10;
    let mut server = session(Role::Server, Config::default().with_max_send_queue(limit));
    let prepared = Message::Binary(Bytes::new()).prepare();
    assert_eq!(prepared.frame().len(), 2);
    let mut sent = 0usize;
    while server.send_prepared(&prepared).is_ok() {
        sent += 1;
        assert!(sent <= limit / 2, "the limit never refused a send");
    }
    assert_eq!(
        server.send_prepared(&prepared).unwrap_err().kind(),
        &SendErrorKind::QueueFull
    );
    assert!(sent >= limit / 64, "{sent} sent");
    let send = server.memory_usage().send;
    assert!(
        send <= 2 * limit,
        "{send} bytes held for a {limit}-byte limit"
    );
    // Every frame is still delivered, in order.
    let mut wire = Vec::new();
    server.poll_transmit(&mut wire);
    assert_eq!(wire, prepared.frame().repeat(sent));
}

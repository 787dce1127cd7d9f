//! permessage-deflate through whole connections: RFC 7692 vectors, bombs,
//! memory per connection, round trips.
#![cfg(feature = "deflate")]

use sansproto::ws::{
    CloseCode, Config, Connection, DeflateConfig, Error, Event, ExtensionError, Message,
    PerMessageDeflate, ProtocolViolation, Role,
};
use sansproto::ws::{ExtensionFactory, ExtensionOffer};

mod common;

use common::ws::negotiated;

use common::alloc::{live, serial, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Feeds `wire` whole, in two pieces at every split, byte by byte and with
/// trailing bytes of another frame; every way gives `want`.
fn feed_every_way(make: impl Fn() -> Connection, wire: &[u8], want: &[Event]) {
    feed_every_way_then(make, wire, want, &[0xc1, 0x07, 0xf2]);
}

/// [`feed_every_way`], with `next` as the start of another frame (masked
/// for a server).
fn feed_every_way_then(make: impl Fn() -> Connection, wire: &[u8], want: &[Event], next: &[u8]) {
    let mut ways: Vec<Vec<&[u8]>> = vec![vec![wire], wire.chunks(1).collect()];
    for i in 1..wire.len() {
        ways.push(vec![&wire[..i], &wire[i..]]);
    }
    for way in ways {
        let mut c = make();
        for piece in &way {
            c.receive(piece).unwrap();
        }
        assert_eq!(
            events(&mut c),
            want,
            "pieces {:?}",
            way.iter().map(|p| p.len()).collect::<Vec<_>>()
        );
    }
    // Trailing bytes: the start of another frame stays buffered.
    let mut c = make();
    let mut with_tail = wire.to_vec();
    with_tail.extend_from_slice(next);
    c.receive(&with_tail).unwrap();
    assert_eq!(events(&mut c), want);
}

#[test]
fn rfc7692_section_7_2_3_vectors_through_a_client() {
    let _serial = serial();
    let client = || negotiated(Role::Client, Config::default(), "permessage-deflate");
    let hello = vec![Event::Message(Message::from("Hello"))];
    // §7.2.3.1: one compressed frame, and the same split over two frames.
    feed_every_way(
        client,
        &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        &hello,
    );
    feed_every_way(
        client,
        &[
            0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
        ],
        &hello,
    );
    // §7.2.3.2: the second message refers back to the first.
    let two = [
        0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00,
        0x00,
    ];
    feed_every_way(client, &two, &[hello[0].clone(), hello[0].clone()]);
    // §7.2.3.4: a block with BFINAL set, with the padding block the RFC
    // shows and without it, in one frame and split over two frames at every
    // point; the next message (§7.2.3.1) starts a new stream from the window.
    let next = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    for payload in [
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00][..],
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ] {
        let len = payload.len() as u8;
        let mut whole = vec![0xc1, len];
        whole.extend_from_slice(payload);
        whole.extend_from_slice(&next);
        feed_every_way(client, &whole, &[hello[0].clone(), hello[0].clone()]);
        for cut in 0..=payload.len() {
            let (a, b) = payload.split_at(cut);
            let mut wire = vec![0x41, a.len() as u8];
            wire.extend_from_slice(a);
            wire.extend_from_slice(&[0x80, b.len() as u8]);
            wire.extend_from_slice(b);
            feed_every_way(client, &wire, &hello);
        }
    }
    // An empty block; §7.2.3.3 a stored block; §7.2.3.5 two blocks.
    feed_every_way(
        client,
        &[0xc1, 0x01, 0x00],
        &[Event::Message(Message::from(""))],
    );
    feed_every_way(
        client,
        &[
            0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ],
        &hello,
    );
    feed_every_way(
        client,
        &[
            0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07,
            0x00,
        ],
        &hello,
    );
}

const HELLO_FINAL: [u8; 7] = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

fn server() -> Connection {
    negotiated(Role::Server, Config::default(), "permessage-deflate")
}

#[test]
fn after_a_final_block_the_next_message_is_inflated_with_the_window() {
    let _serial = serial();
    let hello = Event::Message(Message::from("Hello"));
    let both = [hello.clone(), hello.clone()];
    // §7.2.3.2's second message refers back to "Hello" in the window; here
    // the first message is §7.2.3.4's block with BFINAL set, with the
    // padding block the RFC shows and without it. With context takeover
    // the window carries over all the same (RFC 7692 §7.2.2).
    let second = masked_frame(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]);
    let masked_start = [0xc1, 0x87, 0x01];
    for first in [&HELLO_FINAL[..], &[&HELLO_FINAL[..], &[0x00]].concat()] {
        let mut wire = masked_frame(0xc1, first);
        wire.extend_from_slice(&second);
        feed_every_way_then(server, &wire, &both, &masked_start);
        // The first message over two frames, cut at every point.
        for cut in 0..=first.len() {
            let (a, b) = first.split_at(cut);
            let mut wire = masked_frame(0x41, a);
            wire.extend(masked_frame(0x80, b));
            wire.extend_from_slice(&second);
            feed_every_way_then(server, &wire, &both, &masked_start);
        }
    }
    // The window survives any number of such messages: "Hello" five times,
    // each message a back-reference ending with a final block.
    let mut c = server();
    c.receive(&masked_frame(0xc1, &HELLO_FINAL)).unwrap();
    for _ in 0..4 {
        // BFINAL, fixed Huffman, length 5 at distance 5, end of block.
        c.receive(&masked_frame(0xc1, &[0xf3, 0x00, 0x11, 0x00]))
            .unwrap();
    }
    assert_eq!(events(&mut c), vec![hello; 5]);
}

#[test]
fn data_after_a_final_block_fails_with_1007() {
    let _serial = serial();
    let then = |tail: &[u8]| [&HELLO_FINAL[..], tail].concat();
    // After the final block only the RFC's padding block may follow: the
    // header byte of an empty stored block, which the appended 00 00 ff ff
    // completes (RFC 7692 §7.2.3.4). More bytes, or another block, fail.
    let cases: Vec<Vec<(u8, Vec<u8>)>> = vec![
        vec![(0xc1, then(&[0x00, 0x00]))],
        vec![(0xc1, then(&[0x00, 0x00, 0x00, 0xff, 0xff]))],
        vec![(0xc1, then(&[0x01]))],
        vec![(0xc1, then(&[0x03, 0x00]))],
        vec![(0xc1, then(b"Hello"))],
        vec![(0x41, then(&[])), (0x80, vec![0x00, 0x00])],
        vec![(0x41, then(&[0x00])), (0x80, vec![0x00])],
        vec![(0x41, then(&[0x00])), (0x00, vec![]), (0x80, vec![0x07])],
    ];
    for frames in cases {
        let wire: Vec<u8> = frames
            .iter()
            .flat_map(|(first, payload)| masked_frame(*first, payload))
            .collect();
        let mut c = server();
        let err = c.receive(&wire).unwrap_err();
        assert!(
            matches!(err, Error::Extension(ExtensionError::InvalidData(_))),
            "{frames:02x?}: {err:?}"
        );
        assert_eq!(err.close_code(), Some(CloseCode::INVALID_PAYLOAD));
        assert!(
            !events(&mut c)
                .iter()
                .any(|e| matches!(e, Event::Message(_))),
            "{frames:02x?}"
        );
    }
}

#[test]
fn server_sends_the_rfc_bytes() {
    let _serial = serial();
    let mut server = negotiated(Role::Server, Config::default(), "permessage-deflate");
    // The default threshold leaves short messages uncompressed.
    server.send("Hello").unwrap();
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert_eq!(out, b"\x81\x05Hello");

    let config = Config::default();
    let factory = PerMessageDeflate::new(DeflateConfig::default().with_threshold(0));
    let offer = ExtensionOffer::parse_list("permessage-deflate")
        .unwrap()
        .remove(0);
    let (_, ext) = factory.accept_offer(&[&offer]).unwrap();
    let mut server = Connection::after_handshake(
        Role::Server,
        config,
        None,
        Some(ext),
        sansproto::seeded_random(1),
    );
    server.send("Hello").unwrap();
    server.send("Hello").unwrap();
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert_eq!(
        out,
        [
            0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11,
            0x00, 0x00
        ]
    );
}

#[test]
fn rsv1_on_a_continuation_or_control_frame_fails_with_1002() {
    let _serial = serial();
    for (wire, rule) in [
        (
            &[
                0x41, 0x03, 0xf2, 0x48, 0xcd, 0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00,
            ][..],
            ProtocolViolation::RsvOnContinuation,
        ),
        (&[0xc9, 0x00], ProtocolViolation::RsvOnControlFrame),
    ] {
        let mut c = negotiated(Role::Client, Config::default(), "permessage-deflate");
        let err = c.receive(wire).unwrap_err();
        assert_eq!(err, Error::Protocol(rule));
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        // A masked Close frame with code 1002.
        assert_eq!(&out[..2], &[0x88, 0x82]);
        let code = [out[6] ^ out[2], out[7] ^ out[3]];
        assert_eq!(u16::from_be_bytes(code), 1002);
    }
}

/// A deflate stream of `mib` MiB of zeros, as one message's payload: one
/// fully flushed block of 1 MiB of zeros (byte-aligned, dictionary reset, so
/// it can be repeated), `mib` times.
fn bomb(mib: usize) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut block = Vec::with_capacity(64 << 10);
    c.compress_vec(&zeros, &mut block, flate2::FlushCompress::Full)
        .unwrap();
    assert_eq!(c.total_in(), 1 << 20);
    assert!(block.ends_with(&[0, 0, 0xff, 0xff]));
    block.repeat(mib)
}

fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

#[test]
fn decompression_bomb_fails_with_1009_and_bounded_memory() {
    let _serial = serial();
    // 1 GiB of zeros in about 1 MiB on the wire; the limit is 4 MiB.
    let limit = 4 << 20;
    let wire = masked_frame(0xc2, &bomb(1024));
    assert!(wire.len() < 2 << 20, "bomb is {} bytes", wire.len());
    let config = Config::default().with_max_message_size(limit);
    let mut server = negotiated(Role::Server, config, "permessage-deflate");

    let (result, peak) = common::alloc::measure(
        "decompression_bomb_fails_with_1009_and_bounded_memory",
        || server.receive(&wire),
    );
    let err = result.unwrap_err();

    assert_eq!(err, Error::Extension(ExtensionError::TooBig));
    assert_eq!(err.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert_eq!(out, [0x88, 0x02, 0x03, 0xf1]);
    // The received frame, the output up to the limit (grown by doubling),
    // and zlib's state; nowhere near the gigabyte the bomb claims.
    let bound = wire.len() * 2 + 2 * limit + (512 << 10);
    println!(
        "bomb of {} wire bytes: peak {peak} bytes while failing, bound {bound}",
        wire.len()
    );
    assert!(peak < bound, "peak {peak} bytes, bound {bound}");
}

#[test]
fn decompression_bomb_in_64_kib_fragments_fails_with_1009_and_bounded_memory() {
    let _serial = serial();
    let limit = 4 << 20;
    let payload = bomb(1024);
    // The same bomb as a fragmented message: a first frame with RSV1, then
    // continuations, each 64 KiB of compressed data, each read on its own.
    let frames: Vec<Vec<u8>> = payload
        .chunks(64 << 10)
        .enumerate()
        .map(|(i, chunk)| {
            let opcode = if i == 0 { 0x42 } else { 0x00 };
            masked_frame(opcode, chunk)
        })
        .collect();
    let config = Config::default().with_max_message_size(limit);
    let mut server = negotiated(Role::Server, config, "permessage-deflate");
    let (result, peak) = common::alloc::measure(
        "decompression_bomb_in_64_kib_fragments_fails_with_1009_and_bounded_memory",
        || {
            for frame in &frames {
                server.receive(frame)?;
            }
            Ok::<(), Error>(())
        },
    );
    let err = result.unwrap_err();
    assert_eq!(err, Error::Extension(ExtensionError::TooBig));
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert_eq!(out, [0x88, 0x02, 0x03, 0xf1]);
    let bound = 2 * limit + (1 << 20);
    assert!(peak < bound, "peak {peak} bytes, bound {bound}");
}

#[test]
fn memory_per_idle_connection() {
    let _serial = serial();
    let text = "{\"id\":1,\"name\":\"sansproto\",\"tags\":[\"ws\",\"deflate\"]} ".repeat(80);
    let measure = |offer: &str| {
        let before = live();
        let mut server = negotiated(Role::Server, Config::default(), offer);
        let mut client = negotiated(Role::Client, Config::default(), offer);
        let mut wire = Vec::new();
        for _ in 0..3 {
            client.send(text.as_str()).unwrap();
            client.poll_transmit(&mut wire);
            server.receive(&wire).unwrap();
            wire.clear();
            while let Some(Event::Message(m)) = server.poll_event() {
                server.send(m).unwrap();
            }
            server.poll_transmit(&mut wire);
            client.receive(&wire).unwrap();
            wire.clear();
            assert_eq!(
                events(&mut client),
                [Event::Message(Message::from(text.as_str()))]
            );
        }
        let held = usize::try_from(live() - before).unwrap_or(0);
        drop((server, client));
        held / 2
    };
    let full = measure("permessage-deflate");
    let none =
        measure("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    let small = measure("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9");
    println!("idle connection after 3 messages: full window {full} B, no context takeover {none} B, window 9 {small} B");
    assert!(full > 150 << 10, "full window holds zlib state: {full}");
    assert!(
        none < 16 << 10,
        "no context takeover holds no zlib state: {none}"
    );
    // zlib's hash table does not shrink with the window, so a small window
    // saves the window buffers only.
    assert!(
        small + (100 << 10) < full,
        "a 512-byte window is cheaper: {small} vs {full}"
    );
}

#[test]
fn streaming_mode_with_compression() {
    let _serial = serial();
    let config = Config::default().with_stream_frames(true);
    let mut c = negotiated(Role::Client, config, "permessage-deflate");
    c.receive(&[
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ])
    .unwrap();
    let mut text = Vec::new();
    let mut last = false;
    for e in events(&mut c) {
        match e {
            Event::Fragment { data, last: l, .. } => {
                text.extend_from_slice(&data);
                last = l;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(last);
    assert_eq!(text, b"Hello");
}

#[test]
fn a_read_of_compressed_messages_is_inflated_one_message_at_a_time() {
    let _serial = serial();
    let offer = "permessage-deflate";
    let mut server = negotiated(Role::Server, Config::default(), offer);
    let texts: Vec<String> = (0..20)
        .map(|i| format!("{{\"n\":{i}}} ").repeat(2000))
        .collect();
    for t in &texts {
        server.send(t.as_str()).unwrap();
    }
    let mut wire = Vec::new();
    server.poll_transmit(&mut wire);
    let want: Vec<Event> = texts
        .iter()
        .map(|t| Event::Message(Message::from(t.as_str())))
        .collect();
    let one = texts[0].len();
    assert!(
        wire.len() < one,
        "20 messages compress to {} bytes",
        wire.len()
    );

    // Polled as read: each message is inflated only once the one before
    // it was polled, so the read never holds more than one inflated.
    let mut client = negotiated(Role::Client, Config::default(), offer);
    assert_eq!(client.receive(&wire).unwrap(), wire.len());
    let mut got = Vec::new();
    loop {
        let held = client.memory_usage().events;
        assert!(held <= one + 1024, "{held} bytes of events waiting");
        match client.poll_event() {
            Some(e) => got.push(e),
            None => break,
        }
    }
    assert_eq!(got, want);

    // Input taken without polling in between is parsed as it comes:
    // every byte is taken, and nothing is lost or reordered.
    let mut client = negotiated(Role::Client, Config::default(), offer);
    let (a, b) = wire.split_at(wire.len() / 2);
    assert_eq!(client.receive(a).unwrap(), a.len());
    assert_eq!(client.receive(b).unwrap(), b.len());
    assert_eq!(events(&mut client), want);

    // The same through the buffer the session lends for reads.
    let mut client = negotiated(Role::Client, Config::default(), offer);
    for piece in wire.chunks(100) {
        let room = client.receive_buffer(piece.len()).unwrap();
        room[..piece.len()].copy_from_slice(piece);
        client.commit_received(piece.len()).unwrap();
    }
    assert_eq!(events(&mut client), want);

    // The end of the stream waits behind the messages read before it.
    let mut client = negotiated(Role::Client, Config::default(), offer);
    client.receive(&wire).unwrap();
    client.receive_eof().unwrap();
    let mut all = events(&mut client);
    assert!(
        matches!(all.pop(), Some(Event::Closed(c)) if !c.clean),
        "the end comes last"
    );
    assert_eq!(all, want);
}

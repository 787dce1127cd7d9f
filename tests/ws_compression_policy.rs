//! What permessage-deflate compresses: messages sent with
//! `send_uncompressed`, messages under the threshold, and (without server
//! context takeover) messages that do not shrink go out with RSV1 clear;
//! the peer takes them as they are, and with context takeover the windows
//! on both sides stay in step around them.
#![cfg(feature = "deflate")]
// Some imports serve only the tests on a testkit pair.
#![cfg_attr(not(feature = "testkit"), allow(unused_imports))]

mod common;

use common::ws::{binary_of_len, decode_frames, WireFrame};
#[cfg(feature = "testkit")]
use common::ws::{new_pair, CLIENT, SERVER};
use sansproto::ws::{
    Config, Connection, DeflateConfig, Event, ExtensionFactory, ExtensionOffer, Message,
    PerMessageDeflate, Role,
};

const RSV1: u8 = 0x40;

/// A sender of `role` and its peer, with deflate negotiated from `offer`
/// under `config`.
fn pair(role: Role, config: DeflateConfig, offer: &str) -> (Connection, Connection) {
    let server_factory = PerMessageDeflate::new(config.clone());
    let offer = ExtensionOffer::parse_list(offer).unwrap().remove(0);
    let (answer, server_ext) = server_factory.accept_offer(&[&offer]).unwrap();
    let client_ext = PerMessageDeflate::new(config)
        .accept_response(&answer)
        .unwrap();
    let conn = |role, ext, seed| {
        Connection::after_handshake(
            role,
            Config::default(),
            None,
            Some(ext),
            sansproto::seeded_random(seed),
        )
    };
    let server = conn(Role::Server, server_ext, 1);
    let client = conn(Role::Client, client_ext, 2);
    match role {
        Role::Server => (server, client),
        Role::Client => (client, server),
    }
}

/// Moves what `from` queued to `to`: the frames as sent, and the messages
/// `to` reports.
fn deliver(from: &mut Connection, to: &mut Connection) -> (Vec<WireFrame>, Vec<Message>) {
    let mut wire = Vec::new();
    from.poll_transmit(&mut wire);
    to.receive(&wire).unwrap();
    let messages = std::iter::from_fn(|| to.poll_event())
        .map(|e| match e {
            Event::Message(m) => m,
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    (decode_frames(&wire), messages)
}

/// Text of `len` bytes from 16 letters: compresses to a little over half.
fn noisy_text(len: usize, seed: u64) -> String {
    binary_of_len(len, seed)
        .iter()
        .map(|b| char::from(b"etaoinshrdlucmf "[usize::from(b & 15)]))
        .collect()
}

#[test]
fn send_uncompressed_clears_rsv1_and_leaves_the_windows_in_step() {
    let a = Message::from(noisy_text(3000, 1));
    let b = Message::from(noisy_text(3000, 2));
    for role in [Role::Server, Role::Client] {
        for offer in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ] {
            let takeover = !offer.contains("no_context_takeover");
            let (mut tx, mut rx) = pair(role, DeflateConfig::default(), offer);
            tx.send(a.clone()).unwrap();
            tx.send_uncompressed(b.clone()).unwrap();
            tx.send(a.clone()).unwrap();
            tx.send_uncompressed(a.clone()).unwrap();
            let (frames, messages) = deliver(&mut tx, &mut rx);
            let rsv: Vec<u8> = frames.iter().map(|f| f.rsv).collect();
            assert_eq!(rsv, [RSV1, 0, RSV1, 0], "{role:?} {offer}");
            assert_eq!(frames[1].payload, b.as_bytes(), "sent as it is");
            assert_eq!(frames[3].payload, a.as_bytes());
            assert_eq!(messages, [a.clone(), b.clone(), a.clone(), a.clone()]);
            // With context takeover the second compressed copy of `a`
            // refers back to the first, past the uncompressed `b`, which
            // entered neither window.
            let (first, second) = (frames[0].payload.len(), frames[2].payload.len());
            assert!(first > 1000, "{first}");
            match takeover {
                true => assert!(second < 64, "{role:?}: {second}"),
                false => assert_eq!(second, first),
            }
            // And the stream goes on decoding.
            tx.send(b.clone()).unwrap();
            let (frames, messages) = deliver(&mut tx, &mut rx);
            assert_eq!(frames[0].rsv, RSV1);
            assert_eq!(messages, std::slice::from_ref(&b));
        }
    }
}

#[test]
fn messages_shorter_than_the_threshold_go_out_uncompressed() {
    for threshold in [0, 1, 32, 100] {
        for offer in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
        ] {
            let config = DeflateConfig::default().with_threshold(threshold);
            let (mut server, mut client) = pair(Role::Server, config, offer);
            // Compressible at every length from 8 bytes on.
            let lens: Vec<usize> = (threshold.saturating_sub(3)..threshold + 3)
                .filter(|&n| n >= 8)
                .collect();
            let sent: Vec<Message> = lens.iter().map(|&n| Message::from("a".repeat(n))).collect();
            for m in &sent {
                server.send(m.clone()).unwrap();
            }
            let (frames, received) = deliver(&mut server, &mut client);
            assert_eq!(received, sent, "threshold {threshold}, {offer}");
            for (frame, &len) in frames.iter().zip(&lens) {
                let want = if len < threshold { 0 } else { RSV1 };
                assert_eq!(frame.rsv, want, "len {len}, threshold {threshold}, {offer}");
                if want == 0 {
                    assert_eq!(frame.payload.len(), len);
                }
            }
        }
    }
}

#[test]
fn incompressible_messages_skip_compression_without_context_takeover_only() {
    let noise = Message::Binary(binary_of_len(1500, 5).into());
    for (offer, want) in [
        ("permessage-deflate; server_no_context_takeover", 0),
        ("permessage-deflate", RSV1),
    ] {
        let skipping = DeflateConfig::default().with_skip_incompressible(true);
        let (mut server, mut client) = pair(Role::Server, skipping, offer);
        server.send(noise.clone()).unwrap();
        server.send(Message::from(noisy_text(1500, 3))).unwrap();
        let (frames, received) = deliver(&mut server, &mut client);
        assert_eq!(frames[0].rsv, want, "{offer}");
        if want == 0 {
            assert_eq!(frames[0].payload, noise.as_bytes());
        } else {
            assert!(frames[0].payload.len() >= 1500, "it did not shrink");
        }
        assert_eq!(frames[1].rsv, RSV1, "text still compresses");
        assert_eq!(received[0], noise);
        assert_eq!(received.len(), 2);
    }
}

#[cfg(feature = "testkit")]
#[test]
fn send_uncompressed_before_the_handshake_waits_and_keeps_rsv1_clear() {
    let config = Config::default().with_deflate(DeflateConfig::default());
    let mut pair = new_pair(config.clone(), config, 31);
    pair.record();
    let text = noisy_text(2000, 4);
    for side in [CLIENT, SERVER] {
        pair.side_mut(side).send_uncompressed(text.clone()).unwrap();
        pair.side_mut(side).send(text.clone()).unwrap();
    }
    pair.run_until_idle();
    for side in [CLIENT, SERVER] {
        let events = pair.take_events(side);
        assert!(matches!(events[0], Event::Open(_)), "{side:?}: {events:?}");
        let m = Event::Message(Message::from(text.clone()));
        assert_eq!(events[1..], [m.clone(), m]);
        let wire = pair.wire(side);
        let head = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let frames = decode_frames(&wire[head..]);
        let rsv: Vec<u8> = frames.iter().map(|f| f.rsv).collect();
        assert_eq!(rsv, [0, RSV1], "{side:?}");
    }
}

//! `send_text_str` / `send_binary_slice`: a borrowed payload goes out
//! exactly as the same payload sent as an owned message, on every path
//! (encoded at once, fragmented, compressed, queued before the handshake),
//! and a refusal hands back an owned copy.
// Some imports serve only the tests on a testkit pair.
#![cfg_attr(not(feature = "testkit"), allow(unused_imports))]

mod common;

use common::ws::decode_frames;
#[cfg(feature = "testkit")]
use common::ws::{new_pair, CLIENT, SERVER};
use sansproto::ws::{
    CloseCode, Config, Connection, DeflateConfig, Event, Message, Role, SendErrorKind,
};

fn open(role: Role, config: Config) -> Connection {
    Connection::after_handshake(role, config, None, None, sansproto::seeded_random(7))
}

/// What `conn` puts on the wire for these messages, sent borrowed or owned.
fn wire(mut conn: Connection, messages: &[Message], borrowed: bool) -> Vec<u8> {
    for m in messages {
        let sent = match (borrowed, m) {
            (true, Message::Text(t)) => conn.send_text_str(t.as_str()),
            (true, Message::Binary(b)) => conn.send_binary_slice(b),
            (false, m) => conn.send(m.clone()),
        };
        sent.expect("room to send");
    }
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    out
}

fn messages() -> Vec<Message> {
    vec![
        Message::from("héllo"),
        Message::from(vec![0u8, 1, 2, 255]),
        Message::from(""),
        Message::from(vec![9u8; 70_000]),
        Message::from("κόσμε".repeat(40)),
    ]
}

#[test]
fn borrowed_sends_put_the_same_bytes_on_the_wire_as_owned_ones() {
    for role in [Role::Server, Role::Client] {
        for fragment in [0, 5, 1000] {
            let config = Config::default().with_fragment_size(fragment);
            let owned = wire(open(role, config.clone()), &messages(), false);
            let borrowed = wire(open(role, config), &messages(), true);
            assert_eq!(borrowed, owned, "{role:?}, fragments of {fragment}");
            let frames = decode_frames(&borrowed);
            assert!(frames
                .iter()
                .all(|f| f.mask.is_some() == (role == Role::Client)));
            if fragment == 5 {
                assert!(frames.len() > messages().len(), "fragmented");
            }
        }
    }
    // The encoded frame, byte for byte (RFC 6455 §5.7, unmasked "Hello").
    let mut conn = open(Role::Server, Config::default());
    conn.send_text_str("Hello").unwrap();
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    assert_eq!(out, b"\x81\x05Hello");
}

#[cfg(feature = "testkit")]
#[test]
fn borrowed_sends_before_the_handshake_and_with_deflate_arrive_intact() {
    let deflate = || Config::default().with_deflate(DeflateConfig::default().with_threshold(0));
    for (config, compressed) in [(Config::default(), false), (deflate(), true)] {
        let mut pair = new_pair(config.clone(), config, 3);
        // Not open yet: both are queued and sent when the handshake ends.
        pair.side_mut(CLIENT).send_text_str("early").unwrap();
        pair.side_mut(CLIENT).send_binary_slice(&[1, 2, 3]).unwrap();
        pair.run_until_idle();
        let got: Vec<Message> = pair
            .take_events(SERVER)
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            [Message::from("early"), Message::from(vec![1u8, 2, 3])]
        );
        let opened = pair.take_events(CLIENT);
        assert!(matches!(opened.as_slice(), [Event::Open(_)]), "{opened:?}");

        let text = "compressible ".repeat(100);
        pair.record();
        pair.side_mut(SERVER).send_text_str(&text).unwrap();
        pair.run_until_idle();
        let events = pair.take_events(CLIENT);
        assert!(
            matches!(events.as_slice(), [Event::Message(Message::Text(t))] if t.as_str() == text),
            "{events:?}"
        );
        let frames = decode_frames(pair.wire(SERVER));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].rsv == 0x40, compressed, "RSV1 iff deflate");
        assert_eq!(frames[0].payload.len() < text.len(), compressed);
    }
}

#[test]
fn refused_borrowed_sends_hand_back_an_owned_copy() {
    let mut conn = open(Role::Server, Config::default().with_max_send_queue(64));
    let err = conn.send_binary_slice(&[7u8; 100]).unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::QueueFull);
    assert_eq!(err.payload(), &Message::from(vec![7u8; 100]));
    assert_eq!(conn.buffered_amount(), 0, "nothing was queued");

    conn.close(CloseCode::NORMAL, "bye").unwrap();
    let err = conn.send_text_str("late").unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::Closed);
    assert_eq!(err.payload(), &Message::from("late"));
}

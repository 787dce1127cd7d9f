//! Connections made with `Connection::after_handshake`, as after hyper's
//! upgrade or on an HTTP/2 extended CONNECT stream (RFC 8441): no HTTP/1.1
//! handshake, frames at once, masking rules unchanged, and an extension
//! negotiated elsewhere passed in.

mod common;

use common::ws::{decode_frames, frame, WireFrame};
use sansproto::ws::{
    CloseCode, Config, Connection, Error, Event, Extension, ExtensionFactory, Message,
    ProtocolViolation, Role,
};
use std::time::Instant;

fn pair(
    client_ext: Option<Box<dyn Extension>>,
    server_ext: Option<Box<dyn Extension>>,
) -> (Connection, Connection) {
    let client = Connection::after_handshake(
        Role::Client,
        Config::default(),
        Some("chat.v2".into()),
        client_ext,
        sansproto::seeded_random(8),
    );
    let server = Connection::after_handshake(
        Role::Server,
        Config::default(),
        Some("chat.v2".into()),
        server_ext,
        sansproto::seeded_random(9),
    );
    (client, server)
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Moves `from`'s output to `to`, one byte at a time (the stream may cut
/// anywhere), and returns the bytes moved.
fn deliver(from: &mut Connection, to: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    from.poll_transmit(&mut wire);
    for b in wire.chunks(1) {
        to.receive(b).unwrap();
    }
    wire
}

#[test]
fn messages_flow_at_once_with_the_masking_rules_of_rfc_6455() {
    let (mut client, mut server) = pair(None, None);
    assert!(client.is_open() && server.is_open());
    assert_eq!(client.protocol(), Some("chat.v2"));
    assert_eq!(server.protocol(), Some("chat.v2"));

    client.send("from the client").unwrap();
    client.send_binary(vec![1u8, 2, 3]).unwrap();
    client.ping("c").unwrap();
    let wire = deliver(&mut client, &mut server);
    // No HTTP at all: the first byte is a frame's.
    assert_eq!(wire[0], 0x81);
    let frames = decode_frames(&wire);
    assert_eq!(frames.len(), 3);
    assert!(
        frames.iter().all(|f| f.mask.is_some()),
        "client frames are masked"
    );
    assert_eq!(frames[0].payload, b"from the client");
    assert_eq!(
        events(&mut server),
        [
            Event::Message(Message::from("from the client")),
            Event::Message(Message::from(vec![1u8, 2, 3])),
            Event::Ping("c".into()),
        ]
    );

    server.send("from the server").unwrap();
    let wire = deliver(&mut server, &mut client);
    let frames = decode_frames(&wire);
    // The automatic pong, then the message: server frames are not masked.
    assert!(frames.iter().all(|f| f.mask.is_none()), "{frames:?}");
    assert_eq!(
        events(&mut client),
        [
            Event::Pong {
                payload: "c".into(),
                matched: true
            },
            Event::Message(Message::from("from the server")),
        ]
    );

    client.close(CloseCode::NORMAL, "done").unwrap();
    deliver(&mut client, &mut server);
    deliver(&mut server, &mut client);
    assert!(client.is_finished() && server.is_finished());
    for (side, c) in [("client", &mut client), ("server", &mut server)] {
        let ev = events(c);
        let [Event::Closed(closed)] = ev.as_slice() else {
            panic!("{side}: {ev:?}");
        };
        assert_eq!(
            (closed.code, closed.clean),
            (CloseCode::NORMAL, true),
            "{side}"
        );
    }
}

#[test]
fn a_server_still_refuses_unmasked_frames_and_a_client_masked_ones() {
    let (mut client, mut server) = pair(None, None);
    let unmasked = frame(true, 0x1, None, b"hi");
    assert_eq!(
        server.receive(&unmasked),
        Err(Error::Protocol(ProtocolViolation::UnmaskedClientFrame))
    );
    let masked = frame(true, 0x1, Some([1, 2, 3, 4]), b"hi");
    assert_eq!(
        client.receive(&masked),
        Err(Error::Protocol(ProtocolViolation::MaskedServerFrame))
    );
    // Each answers with a 1002 Close.
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let close = &decode_frames(&out)[0];
    assert_eq!(
        (close.opcode, &close.payload[..2]),
        (0x8, &1002u16.to_be_bytes()[..])
    );
}

#[test]
fn timers_run_as_on_any_open_connection() {
    let t0 = Instant::now();
    let config = Config::default().with_keepalive(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(5),
    );
    let mut client = Connection::after_handshake(
        Role::Client,
        config,
        None,
        None,
        sansproto::seeded_random(1),
    );
    client.handle_timeout(t0);
    // No handshake deadline: only the keepalive.
    assert_eq!(
        client.poll_timeout(),
        Some(t0 + std::time::Duration::from_secs(5))
    );
    client.handle_timeout(t0 + std::time::Duration::from_secs(5));
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    let frames = decode_frames(&out);
    assert!(matches!(
        frames.as_slice(),
        [WireFrame {
            opcode: 0x9,
            mask: Some(_),
            ..
        }]
    ));
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use sansproto::ws::{DeflateConfig, PerMessageDeflate, RSV1};

    /// Both ends of a permessage-deflate agreement made outside the
    /// connections: the server answers the client's offer, the client
    /// accepts the answer.
    fn negotiated(config: DeflateConfig) -> (Box<dyn Extension>, Box<dyn Extension>) {
        let client_side = PerMessageDeflate::new(config.clone());
        let server_side = PerMessageDeflate::new(config);
        let offer = client_side.offer();
        let (answer, server_ext) = server_side.accept_offer(&[&offer]).unwrap();
        let client_ext = client_side.accept_response(&answer).unwrap();
        (client_ext, server_ext)
    }

    fn text(i: usize) -> String {
        format!(
            "{{\"seq\":{i},\"payload\":\"{}\"}}",
            "compressible ".repeat(40)
        )
    }

    #[test]
    fn messages_are_compressed_both_ways() {
        for config in [
            DeflateConfig::default(),
            DeflateConfig::default()
                .with_client_no_context_takeover(true)
                .with_server_no_context_takeover(true),
            DeflateConfig::default().with_client_max_window_bits(9),
        ] {
            let (client_ext, server_ext) = negotiated(config.clone());
            let (mut client, mut server) = pair(Some(client_ext), Some(server_ext));
            for i in 0..3 {
                client.send(text(i)).unwrap();
                let wire = deliver(&mut client, &mut server);
                let frames = decode_frames(&wire);
                assert_eq!(frames.len(), 1);
                assert_eq!(frames[0].rsv, RSV1, "{config:?}: compressed");
                assert!(frames[0].mask.is_some());
                assert!(
                    wire.len() < text(i).len() / 4,
                    "{config:?}: {} bytes",
                    wire.len()
                );
                assert_eq!(
                    events(&mut server),
                    [Event::Message(Message::from(text(i)))]
                );

                server.send(text(i + 10)).unwrap();
                let wire = deliver(&mut server, &mut client);
                let frames = decode_frames(&wire);
                assert_eq!(frames[0].rsv, RSV1);
                assert!(frames[0].mask.is_none());
                assert!(wire.len() < text(i).len() / 4);
                assert_eq!(
                    events(&mut client),
                    [Event::Message(Message::from(text(i + 10)))]
                );
            }
        }
    }

    #[test]
    fn without_the_extension_compressed_frames_are_refused() {
        let (client_ext, _) = negotiated(DeflateConfig::default());
        let mut client = Connection::after_handshake(
            Role::Client,
            Config::default(),
            None,
            Some(client_ext),
            sansproto::seeded_random(2),
        );
        let mut plain_server = Connection::after_handshake(
            Role::Server,
            Config::default(),
            None,
            None,
            sansproto::seeded_random(3),
        );
        client.send(text(0)).unwrap();
        let mut wire = Vec::new();
        client.poll_transmit(&mut wire);
        assert_eq!(
            plain_server.receive(&wire),
            Err(Error::Protocol(ProtocolViolation::UnnegotiatedRsv))
        );
    }
}

//! `memory_usage()` against a counting allocator: what a machine reports
//! holding is what dropping it frees, within 10 %, idle, mid-message, with
//! deflate state, with unpolled events and with a full send queue.

use sansproto::ws::{
    Config, Connection, DeflateConfig, ExtensionFactory, ExtensionOffer, PerMessageDeflate, Role,
};
use sansproto::MemoryUsage;

mod common;

use common::alloc::{live, serial, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Drops `machine` and returns what that freed, beside what it reported
/// holding just before.
fn freed_by_drop<M>(machine: Box<M>, usage: impl Fn(&M) -> MemoryUsage) -> (usize, MemoryUsage) {
    let reported = usage(&machine);
    let before = live();
    drop(machine);
    let freed = usize::try_from(before - live()).expect("dropping frees");
    (freed, reported)
}

/// Asserts `reported` is within 10 % of `freed`.
fn agrees(state: &str, freed: usize, reported: MemoryUsage) {
    let total = reported.total();
    eprintln!("{state}: allocator {freed} B, reported {total} B ({reported:?})");
    let diff = freed.abs_diff(total);
    assert!(
        diff * 10 <= freed,
        "{state}: reported {total} B, dropping freed {freed} B ({reported:?})"
    );
}

fn session(role: Role, config: Config) -> Box<Connection> {
    Box::new(Connection::after_handshake(
        role,
        config,
        None,
        None,
        sansproto::seeded_random(1),
    ))
}

/// Sends `messages` from a fresh client and returns its wire bytes.
fn client_wire(config: &Config, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut client = session(Role::Client, config.clone());
    for m in messages {
        client.send_binary(m.clone()).unwrap();
    }
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    wire
}

fn ws_usage(c: &Connection) -> MemoryUsage {
    c.memory_usage()
}

#[test]
fn ws_idle() {
    let _serial = serial();
    let mut server = session(Role::Server, Config::default());
    let wire = client_wire(&Config::default(), &[b"hello".to_vec()]);
    server.receive(&wire).unwrap();
    while server.poll_event().is_some() {}
    let (freed, reported) = freed_by_drop(server, ws_usage);
    agrees("ws idle", freed, reported);
}

#[test]
fn ws_mid_frame() {
    let _serial = serial();
    let mut server = session(Role::Server, Config::default());
    let wire = client_wire(&Config::default(), &[vec![9u8; 100_000]]);
    server.receive(&wire[..60_000]).unwrap();
    let (freed, reported) = freed_by_drop(server, ws_usage);
    assert!(reported.receive >= 60_000);
    agrees("ws mid-frame", freed, reported);
}

#[test]
fn ws_mid_frame_after_many_small_ones() {
    let _serial = serial();
    // Many small messages consumed from the front of the receive buffer,
    // then a large frame that arrives in two reads: the buffer grows
    // while its front is consumed.
    let mut messages: Vec<Vec<u8>> = (0..400).map(|i| vec![i as u8; 100]).collect();
    messages.push(vec![9u8; 200_000]);
    let wire = client_wire(&Config::default(), &messages);
    let small = 400 * 106;
    for first in [small + 50_000, small + 100, small + 70_000, small + 100_000] {
        let mut server = session(Role::Server, Config::default());
        server.receive(&wire[..first]).unwrap();
        while server.poll_event().is_some() {}
        // Something allocated behind the buffer, so that growing it moves it.
        let behind = std::hint::black_box(vec![1u8; 64]);
        server.receive(&wire[first..small + 150_000]).unwrap();
        assert!(server.poll_event().is_none());
        let (freed, reported) = freed_by_drop(server, ws_usage);
        drop(behind);
        agrees("ws mid-frame after small ones", freed, reported);
    }
}

#[test]
fn ws_mid_message() {
    let _serial = serial();
    let config = Config::default().with_fragment_size(16 << 10);
    let mut server = session(Role::Server, Config::default());
    let wire = client_wire(&config, &[vec![9u8; 200_000]]);
    // Ten whole fragments and part of the eleventh.
    server.receive(&wire[..10 * (16 << 10) + 5_000]).unwrap();
    assert!(server.poll_event().is_none());
    let (freed, reported) = freed_by_drop(server, ws_usage);
    assert!(reported.reassembly >= 10 * (16 << 10));
    agrees("ws mid-message", freed, reported);
}

#[test]
fn ws_unpolled_events() {
    let _serial = serial();
    let mut server = session(Role::Server, Config::default());
    let messages: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; 3_000]).collect();
    let wire = client_wire(&Config::default(), &messages);
    server.receive(&wire).unwrap();
    let (freed, reported) = freed_by_drop(server, ws_usage);
    assert!(reported.events >= 60_000);
    agrees("ws unpolled events", freed, reported);
}

#[test]
fn ws_full_send_queue() {
    let _serial = serial();
    let config = Config::default().with_max_send_queue(256 << 10);
    let mut server = session(Role::Server, config);
    let mut sent = 0;
    while server.send_binary(vec![1u8; 10_000]).is_ok() {
        sent += 1;
    }
    assert!(sent >= 20);
    let (freed, reported) = freed_by_drop(server, ws_usage);
    assert!(reported.send >= 200_000);
    agrees("ws full send queue", freed, reported);
}

/// A connection with permessage-deflate negotiated (context takeover both
/// ways), so both zlib states stay between messages.
fn deflate_pair() -> (Box<Connection>, Box<Connection>) {
    let factory = PerMessageDeflate::new(DeflateConfig::default());
    let offer = ExtensionOffer::parse_list("permessage-deflate")
        .unwrap()
        .remove(0);
    let (_, server_ext) = factory.accept_offer(&[&offer]).unwrap();
    let client_ext = factory.accept_response(&offer).unwrap();
    let make = |role, ext| {
        Box::new(Connection::after_handshake(
            role,
            Config::default(),
            None,
            Some(ext),
            sansproto::seeded_random(2),
        ))
    };
    (
        make(Role::Client, client_ext),
        make(Role::Server, server_ext),
    )
}

#[test]
fn ws_deflate_state() {
    let _serial = serial();
    let (mut client, mut server) = deflate_pair();
    let text = "the same words again and again ".repeat(300);
    client.send_text(text.as_str()).unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    server.receive(&wire).unwrap();
    while server.poll_event().is_some() {}
    server.send_text(text.as_str()).unwrap();
    wire.clear();
    server.poll_transmit(&mut wire);
    drop(client);
    let (freed, reported) = freed_by_drop(server, ws_usage);
    assert!(reported.compression > 300_000);
    agrees("ws deflate", freed, reported);
}

mod prefix {
    use super::{agrees, freed_by_drop, serial};
    use sansproto::prefix::{Config, Connection};
    use sansproto::MemoryUsage;

    fn usage(c: &Connection) -> MemoryUsage {
        c.memory_usage()
    }

    /// `frames` frames of `len` bytes each, as the default layout (4-byte
    /// big-endian length) writes them.
    fn wire(frames: usize, len: usize) -> Vec<u8> {
        let mut sender = Connection::new(Config::default());
        for i in 0..frames {
            sender.send(vec![i as u8; len]).unwrap();
        }
        let mut out = Vec::new();
        sender.poll_transmit(&mut out);
        out
    }

    #[test]
    fn idle() {
        let _serial = serial();
        let mut c = Box::new(Connection::new(Config::default()));
        c.receive(&wire(1, 5)).unwrap();
        while c.poll_event().is_some() {}
        let (freed, reported) = freed_by_drop(c, usage);
        agrees("prefix idle", freed, reported);
    }

    #[test]
    fn mid_frame() {
        let _serial = serial();
        let mut c = Box::new(Connection::new(Config::default()));
        c.receive(&wire(1, 100_000)[..70_000]).unwrap();
        let (freed, reported) = freed_by_drop(c, usage);
        assert!(reported.receive >= 70_000);
        agrees("prefix mid-frame", freed, reported);
    }

    #[test]
    fn unpolled_frames() {
        let _serial = serial();
        let mut c = Box::new(Connection::new(Config::default()));
        // Reads of a socket read's size, as the adapters make them.
        for piece in wire(40, 2_000).chunks(64 << 10) {
            c.receive(piece).unwrap();
        }
        let (freed, reported) = freed_by_drop(c, usage);
        assert!(reported.events >= 40 * 2_000 / 2);
        agrees("prefix unpolled frames", freed, reported);
        // Tiny frames beside large ones, unpolled: each read's frames are
        // split off in batches, the tiny ones copied out.
        let mut c = Box::new(Connection::new(Config::default()));
        let (tiny, large) = (wire(1, 1), wire(1, 60 << 10));
        for _ in 0..20 {
            c.receive(&[&tiny[..], &large, &tiny, &tiny].concat())
                .unwrap();
        }
        let (freed, reported) = freed_by_drop(c, usage);
        assert!(reported.events >= 20 * (60 << 10));
        agrees("prefix unpolled tiny and large frames", freed, reported);
    }

    #[test]
    fn full_send_queue() {
        let _serial = serial();
        let config = Config::builder().max_queued_bytes(200_000).build().unwrap();
        let mut c = Box::new(Connection::new(config));
        while c.send(vec![7u8; 9_000]).is_ok() {}
        let (freed, reported) = freed_by_drop(c, usage);
        assert!(reported.send >= 180_000);
        agrees("prefix full send queue", freed, reported);
    }
}

mod datagram {
    use super::{agrees, freed_by_drop, serial};
    use sansproto::bytes::Bytes;
    use sansproto::datagram::{Config, Endpoint, Segmentation};
    use sansproto::MemoryUsage;
    use std::net::SocketAddr;
    use std::time::Instant;

    type Node = Endpoint<SocketAddr>;

    fn usage(e: &Node) -> MemoryUsage {
        e.memory_usage()
    }

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 1000 + i))
    }

    /// The datagrams `config`'s endpoint sends for a message of `len`.
    fn datagrams(config: &Config, len: usize) -> Vec<Bytes> {
        let mut sender =
            Endpoint::with_random(config.clone(), sansproto::seeded_random(1)).unwrap();
        sender.send(addr(999), Bytes::from(vec![3u8; len])).unwrap();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while sender.poll_transmit(&mut buf).is_some() {
            out.push(Bytes::from(std::mem::take(&mut buf)));
        }
        out
    }

    #[test]
    fn idle_peers() {
        let _serial = serial();
        let mut e = Box::new(Endpoint::new(Config::default()).unwrap());
        let now = Instant::now();
        for i in 0..100 {
            e.receive(addr(i), Bytes::from_static(b"hi"), now).unwrap();
        }
        while e.poll_event().is_some() {}
        let (freed, reported) = freed_by_drop(e, usage);
        agrees("datagram idle peers", freed, reported);
    }

    #[test]
    fn mid_message() {
        let _serial = serial();
        let config = Config::segmented();
        let mut e = Box::new(Endpoint::new(config.clone()).unwrap());
        let now = Instant::now();
        for i in 0..20 {
            let mut parts = datagrams(&config, 50_000);
            parts.pop(); // each message one fragment short
            for part in parts {
                e.receive(addr(i), part, now).unwrap();
            }
        }
        while e.poll_event().is_some() {}
        let (freed, reported) = freed_by_drop(e, usage);
        assert!(reported.reassembly >= 20 * 48_000);
        agrees("datagram mid-message", freed, reported);
    }

    #[test]
    fn unpolled_messages_and_a_full_send_queue() {
        let _serial = serial();
        let mut config = Config::segmented();
        config.segmentation = Some(Segmentation::default());
        let mut e = Box::new(Endpoint::new(config.clone()).unwrap());
        let now = Instant::now();
        for i in 0..10 {
            for part in datagrams(&config, 20_000) {
                e.receive(addr(i), part, now).unwrap();
            }
        }
        while e.send(addr(0), Bytes::from(vec![5u8; 30_000])).is_ok() {}
        let (freed, reported) = freed_by_drop(e, usage);
        assert!(reported.events >= 200_000 && reported.send > 0);
        agrees(
            "datagram unpolled messages, full send queue",
            freed,
            reported,
        );
    }
}

#[test]
fn ws_client_reading_a_refusals_body() {
    let _serial = serial();
    let request = sansproto::ws::ClientRequest::new("example.com", "/");
    let mut client = Box::new(Connection::client(Config::default(), request).unwrap());
    client.poll_transmit(&mut Vec::new());
    client
        .receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 12000\r\n\r\n")
        .unwrap();
    for _ in 0..11 {
        client.receive(&[b'x'; 1000]).unwrap();
    }
    let (freed, reported) = freed_by_drop(client, |c| c.memory_usage());
    assert!(freed > 11_000, "{freed}");
    agrees("ws client reading a refusal's body", freed, reported);
}

#[test]
fn ws_server_deciding_an_upgrade() {
    let _serial = serial();
    let mut server = Box::new(Connection::server_with_decision(Config::default()));
    let cookie = "c".repeat(6000);
    let request = format!(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Cookie: {cookie}\r\n\r\n"
    );
    server.receive(request.as_bytes()).unwrap();
    while server.poll_event().is_some() {}
    let (freed, reported) = freed_by_drop(server, |c| c.memory_usage());
    assert!(freed > 6000, "{freed}");
    agrees("ws server deciding an upgrade", freed, reported);
}

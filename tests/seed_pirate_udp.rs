//! The `pirate_udp` example, as built, over loopback: its server driven by
//! raw `std::net` datagrams, checked byte for byte against the session
//! header and close notice of `src/datagram/mod.rs` (kind `10` message,
//! `11` close notice with a reason and the receiver's id, `12` keepalive),
//! through the MTU, a kick, a stale datagram, a self-kick, idle expiry and
//! keepalives; then its own client's script.

mod common;

use common::examples::{run_client, Server};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const MTU: usize = 1472;
const IDLE: Duration = Duration::from_millis(800);
/// The server's keepalive interval: a quarter of `IDLE`.
const KEEPALIVE: Duration = Duration::from_millis(200);

fn message(id: u32, json: &[u8]) -> Vec<u8> {
    [&[0x10][..], &id.to_be_bytes(), json].concat()
}

fn notice(sender: u32, reason: u8, receiver: u32) -> Vec<u8> {
    [
        &[0x11][..],
        &sender.to_be_bytes(),
        &[reason],
        &receiver.to_be_bytes(),
    ]
    .concat()
}

fn keepalive(id: u32) -> Vec<u8> {
    [&[0x12][..], &id.to_be_bytes()].concat()
}

/// A raw UDP socket posing as one peer with session id `id`.
struct Raw {
    socket: UdpSocket,
    server: SocketAddr,
    id: u32,
    /// The server's session id, from its first message.
    server_id: Option<u32>,
    /// Keepalives received from the server.
    keepalives: usize,
}

impl Raw {
    fn new(server: SocketAddr, id: u32) -> Raw {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        Raw {
            socket,
            server,
            id,
            server_id: None,
            keepalives: 0,
        }
    }

    fn send(&self, datagram: &[u8]) {
        self.socket.send_to(datagram, self.server).unwrap();
    }

    fn send_json(&self, json: &str) {
        self.send(&message(self.id, json.as_bytes()));
    }

    /// The next datagram that is not a keepalive, if one comes within
    /// `wait`. Every datagram is at most 1472 bytes, and every keepalive
    /// is exactly `12 | the server's id`.
    fn recv_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.socket.set_read_timeout(Some(left)).unwrap();
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(_) => return None,
            };
            assert_eq!(from, self.server);
            assert!(n <= MTU, "a {n}-byte datagram from the server");
            let datagram = buf[..n].to_vec();
            if datagram.first() == Some(&0x12) {
                let server_id = self.server_id.expect("a keepalive after a message");
                assert_eq!(datagram, keepalive(server_id));
                self.keepalives += 1;
                continue;
            }
            return Some(datagram);
        }
    }

    fn recv(&mut self) -> Vec<u8> {
        self.recv_within(Duration::from_secs(10))
            .expect("a datagram from the server")
    }

    /// The next message: `10 | the server's id | JSON`.
    fn json(&mut self) -> String {
        let d = self.recv();
        assert_eq!(d[0], 0x10, "a message, not {d:02x?}");
        let id = u32::from_be_bytes(d[1..5].try_into().unwrap());
        assert_ne!(id, 0);
        assert_eq!(*self.server_id.get_or_insert(id), id);
        String::from_utf8(d[5..].to_vec()).unwrap()
    }

    /// The next datagram is a 10-byte close notice for this session:
    /// `11 | the server's id | reason | our id`. Returns it.
    fn expect_notice(&mut self, reason: u8) -> Vec<u8> {
        let server_id = self.server_id.expect("a session");
        let d = self.recv();
        assert_eq!(d.len(), 10);
        assert_eq!(d, notice(server_id, reason, self.id));
        d
    }
}

#[test]
fn peer_table_mtu_kick_stale_expiry_and_keepalives() {
    let args = ["server", "127.0.0.1:0", "--idle", "800"];
    let server = Server::start("pirate_udp", &args, " on ", false);
    let addr: SocketAddr = server.address.parse().unwrap();

    // The first datagram opens peer 1; the answer carries the server's id.
    let mut x = Raw::new(addr, 0x0a0b_0c0d);
    x.send(&[&[0x10, 0x0a, 0x0b, 0x0c, 0x0d][..], br#"{"type":"hello"}"#].concat());
    assert_eq!(x.json(), r#"{"type":"welcome","peer":1,"idle_ms":800}"#);

    // MTU: a 1467-byte reply is one 1472-byte datagram; one byte more is
    // refused and an error sent instead.
    x.send_json(r#"{"type":"pad","len":1467}"#);
    let d = x.recv();
    assert_eq!(d.len(), MTU);
    assert_eq!(&d[..5], &message(x.server_id.unwrap(), b"")[..]);
    let pad = format!(r#"{{"type":"pad","data":"{}"}}"#, "x".repeat(1467 - 24));
    assert_eq!(&d[5..], pad.as_bytes());
    for len in [1468, 9000] {
        x.send_json(&format!(r#"{{"type":"pad","len":{len}}}"#));
        let error = format!(
            r#"{{"type":"error","reason":"{len}-byte reply refused: message exceeds the 1467-byte limit"}}"#
        );
        assert_eq!(x.json(), error);
    }
    x.send_json(r#"{"type":"pad","len":10}"#);
    assert_eq!(x.json(), r#"{"type":"error","reason":"bad pad length"}"#);

    // A 1473-byte datagram is dropped unanswered; a 1472-byte one is taken.
    let padded = |json: &str, len: usize| format!("{json:<0$}", len - 5);
    x.send_json(&padded(r#"{"type":"pad","len":30}"#, MTU + 1));
    x.send_json(&padded(r#"{"type":"who"}"#, MTU));
    assert_eq!(x.json(), r#"{"type":"peers","ids":[1]}"#);
    // Bare JSON (what a Node Pirate peer sends: no session header), a body
    // that is no JSON, and JSON of no known type.
    x.send(br#"{"type":"who"}"#);
    x.send_json("{oops");
    x.send_json(r#"{"a":1}"#);
    assert_eq!(x.json(), r#"{"type":"error","reason":"unknown message"}"#);

    // Peer 1 kicks peer 2: 2 is told with a close notice, reason 1, its id.
    let mut y = Raw::new(addr, 0x1111_1111);
    y.send_json(r#"{"type":"hello"}"#);
    assert_eq!(y.json(), r#"{"type":"welcome","peer":2,"idle_ms":800}"#);
    x.send_json(r#"{"type":"who"}"#);
    assert_eq!(x.json(), r#"{"type":"peers","ids":[1,2]}"#);
    x.send_json(r#"{"type":"kick","peer":2}"#);
    assert_eq!(x.json(), r#"{"type":"kicked","peer":2}"#);
    let y_server = y.server_id.unwrap();
    let kicked = y.expect_notice(1);
    assert_eq!(kicked[0], 0x11);
    assert_eq!(kicked[1..5], y_server.to_be_bytes());
    assert_eq!(kicked[5..], [0x01, 0x11, 0x11, 0x11, 0x11]);

    // A stale datagram of the kicked session: dropped, answered with the
    // notice again, no peer reopened.
    y.send_json(r#"{"type":"who"}"#);
    y.expect_notice(1);
    x.send_json(r#"{"type":"who"}"#);
    assert_eq!(x.json(), r#"{"type":"peers","ids":[1]}"#);

    // A new session id from the same address is a new peer, with a new
    // server id; it kicks itself: the answer, then its notice.
    y.id = 0x2222_2222;
    y.server_id = None;
    y.send_json(r#"{"type":"hello"}"#);
    assert_eq!(y.json(), r#"{"type":"welcome","peer":3,"idle_ms":800}"#);
    assert_ne!(y.server_id, Some(y_server));
    y.send_json(r#"{"type":"kick","peer":3}"#);
    assert_eq!(y.json(), r#"{"type":"kicked","peer":3}"#);
    y.expect_notice(1);
    x.send_json(r#"{"type":"kick","peer":3}"#);
    assert_eq!(x.json(), r#"{"type":"error","reason":"no such peer"}"#);

    // Peer 4 says hello, then nothing: after the idle timeout it is told
    // it expired (reason 2), having heard the server's keepalives. Peer 1
    // meanwhile sends only keepalives, for two idle timeouts, and stays.
    let started = Instant::now();
    let mut z = Raw::new(addr, 0x3333_3333);
    z.send_json(r#"{"type":"hello"}"#);
    assert_eq!(z.json(), r#"{"type":"welcome","peer":4,"idle_ms":800}"#);
    x.send_json(r#"{"type":"who"}"#);
    assert_eq!(x.json(), r#"{"type":"peers","ids":[1,4]}"#);
    let x_quiet = Instant::now();
    let mut last = Instant::now();
    let expired = loop {
        if last.elapsed() >= KEEPALIVE {
            x.send(&keepalive(x.id));
            last = Instant::now();
        }
        if let Some(d) = z.recv_within(Duration::from_millis(50)) {
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never expired");
    };
    assert_eq!(expired, notice(z.server_id.unwrap(), 2, 0x3333_3333));
    let waited = started.elapsed();
    assert!(waited >= IDLE.mul_f32(0.95), "expired after {waited:?}");
    assert!(z.keepalives >= 1, "peer 4 heard no keepalive");
    while x_quiet.elapsed() < IDLE * 2 {
        x.send(&keepalive(x.id));
        std::thread::sleep(KEEPALIVE);
    }
    x.send_json(r#"{"type":"who"}"#);
    assert_eq!(x.json(), r#"{"type":"peers","ids":[1]}"#);
    assert!(x.keepalives >= 1, "peer 1 heard no keepalive");
    // The expired session's late datagram is answered with reason 2.
    z.send_json(r#"{"type":"who"}"#);
    z.expect_notice(2);

    // Peer 1 closes its side with a notice of its own (reason 1, the one
    // `Endpoint::close` sends): the server takes it and drops the peer.
    x.send(&notice(x.id, 1, x.server_id.unwrap()));
    let mut w = Raw::new(addr, 0x4444_4444);
    w.send_json(r#"{"type":"hello"}"#);
    assert_eq!(w.json(), r#"{"type":"welcome","peer":5,"idle_ms":800}"#);
    w.send_json(r#"{"type":"who"}"#);
    assert_eq!(w.json(), r#"{"type":"peers","ids":[5]}"#);

    let log = server.stop();
    for line in [
        "peer 1 opened from 127.0.0.1:",
        ", session 0x0a0b0c0d\n",
        "exceeds the 1472-byte mtu",
        "unknown session datagram kind 0x7b",
        "peer 1: skipped a message that is no JSON",
        "peer 2 kicked by peer 1\npeer 2 closed: kicked, told so\n",
        "datagram of closed session 0x11111111",
        ", session 0x22222222\n",
        "peer 3 kicked by peer 3\n",
        "peer 4 closed: nothing heard for 800ms, told it expired\n",
        "datagram of closed session 0x33333333",
        "peer 1 closed: the peer closed its side (Kicked)\n",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }

    // The example's client against a fresh server.
    let server = Server::start("pirate_udp", &args, " on ", false);
    let client = run_client("pirate_udp", &server.address);
    let log = server.stop();
    assert!(client.status.success(), "{client:?}\n{log}");
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "a: welcome, peer 1\n\
         b: welcome, peer 2\n\
         a: peers [1,2]\n\
         a: kicked peer 2\n\
         b: closed by the server: ClosedByPeer(Kicked)\n\
         b: replayed a datagram of the kicked session: dropped, answered with a close notice (Kicked)\n\
         a: a 1467-byte reply in one 1472-byte datagram\n\
         a: error: 1468-byte reply refused: message exceeds the 1467-byte limit\n\
         a: a 1468-byte message refused here: message exceeds the 1467-byte limit\n\
         silent: welcome, peer 3\n\
         a: peers [1,3]\n\
         a: quiet for 1600 ms, kept open by keepalives\n\
         a: peers [1]\n\
         silent: closed by the server: ClosedByPeer(Expired)\n\
         a: left\n"
    );
}

//! The `pomelo` example, as built, over loopback: its server driven by raw
//! `std::net` packages (`WIRE-FORMATS.md` §3 and its derived vectors)
//! through the handshake, requests, notify, pushes, heartbeats at the
//! interval the handshake gave, the heartbeat timeout, kick and the
//! package limit; and its own client's scripted session.

mod common;

use common::examples::{run_client, Server};
use common::prefix::hex;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

const HEARTBEAT: [u8; 4] = [3, 0, 0, 0];
const ACK: [u8; 4] = [2, 0, 0, 0];
const HELLO: &[u8] = br#"{"sys":{"type":"raw-test","version":"1"},"user":{}}"#;
const WELCOME: &str = concat!(
    r#"{"code":200,"sys":{"heartbeat":1,"dict":{"#,
    r#""connector.entryHandler.entry":1,"connector.entryHandler.notify":2,"#,
    r#""connector.entryHandler.kick":3,"connector.entryHandler.never":4,"onNotify":258"#,
    r#"},"useDict":true}}"#
);

/// A package: type, 3-byte big-endian length, body.
fn package(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    [&[kind], &len[1..], body].concat()
}

/// A request with a compressed route.
fn request_code(id: &[u8], code: u16, body: &[u8]) -> Vec<u8> {
    package(4, &[&[0x01], id, &code.to_be_bytes(), body].concat())
}

/// A request with a route string.
fn request_name(id: &[u8], route: &str, body: &[u8]) -> Vec<u8> {
    let head = [&[0x00], id, &[route.len() as u8], route.as_bytes()].concat();
    package(4, &[&head, body].concat())
}

/// A notify with a compressed route.
fn notify_code(code: u16, body: &[u8]) -> Vec<u8> {
    package(4, &[&[0x03], &code.to_be_bytes()[..], body].concat())
}

/// A response to request `id` (LEB128 bytes).
fn response(id: &[u8], body: &[u8]) -> Vec<u8> {
    package(4, &[&[0x04], id, body].concat())
}

/// What the reader thread saw: a whole package, or the end of the stream,
/// and when.
enum Seen {
    Package(Vec<u8>, Instant),
    End(Instant),
}

/// A raw client: packages are read on a thread of their own and stamped
/// with their arrival time, so heartbeats can be timed whatever the test
/// does meanwhile.
struct Peer {
    stream: TcpStream,
    seen: Receiver<Seen>,
    heartbeats: Vec<Instant>,
}

impl Peer {
    fn connect(addr: &str) -> Peer {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let (tx, seen) = mpsc::channel();
        thread::spawn(move || loop {
            let mut header = [0u8; 4];
            if let Err(e) = reader.read_exact(&mut header) {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                    ),
                    "{e}"
                );
                let _ = tx.send(Seen::End(Instant::now()));
                return;
            }
            let len = u32::from_be_bytes([0, header[1], header[2], header[3]]);
            let mut body = vec![0; len as usize];
            if reader.read_exact(&mut body).is_err() {
                let _ = tx.send(Seen::End(Instant::now()));
                return;
            }
            let whole = [&header[..], &body].concat();
            if tx.send(Seen::Package(whole, Instant::now())).is_err() {
                return;
            }
        });
        Peer {
            stream,
            seen,
            heartbeats: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next package that is not a heartbeat (`None` at the end of the
    /// stream); heartbeats on the way are checked byte for byte and timed.
    fn next(&mut self) -> Option<Vec<u8>> {
        self.next_within(Duration::from_secs(10))
            .expect("a package or the end within 10 s")
            .0
    }

    /// As `next`, giving up after `wait`; with the arrival time.
    fn next_within(&mut self, wait: Duration) -> Option<(Option<Vec<u8>>, Instant)> {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(Seen::Package(p, at)) if p == HEARTBEAT => self.heartbeats.push(at),
                Ok(Seen::Package(p, at)) => return Some((Some(p), at)),
                Ok(Seen::End(at)) => return Some((None, at)),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("the reader ended"),
            }
        }
    }

    /// Shakes hands; returns the reply's package.
    fn handshake(&mut self) -> Vec<u8> {
        self.send(&package(1, HELLO));
        let reply = self.next().expect("a handshake reply");
        self.send(&ACK);
        reply
    }
}

#[test]
fn handshake_requests_pushes_heartbeats_and_kick() {
    let server = Server::start("pomelo", &["server", "127.0.0.1:0"], " on ", false);
    let mut p = Peer::connect(&server.address);

    // Data before the handshake is ignored (pomelo's handler.js); the
    // handshake reply carries the heartbeat, in seconds, and the dictionary.
    p.send(&request_code(&[1], 1, b"{}"));
    let reply = p.handshake();
    assert_eq!(reply, package(1, WELCOME.as_bytes()));
    let sys: serde_json::Value = serde_json::from_slice(&reply[4..]).unwrap();
    let interval = Duration::from_secs(sys["sys"]["heartbeat"].as_u64().unwrap());
    assert_eq!(interval, Duration::from_secs(1));
    let acked = Instant::now();

    // The derived response of §3: id 1, body {"code":200}.
    p.send(&request_code(&[1], 1, br#"{"user":"raw"}"#));
    let derived = hex("04 00 00 0e 04 01 7b 22 63 6f 64 65 22 3a 32 30 30 7d");
    assert_eq!(derived, response(&[1], br#"{"code":200}"#));
    assert_eq!(p.next(), Some(derived));

    // The derived push of §3: a notify to code 2 is pushed back on
    // onNotify, compressed route 0x0102, with its body {}.
    p.send(&notify_code(2, b"{}"));
    let derived = hex("04 00 00 05 07 01 02 7b 7d");
    assert_eq!(p.next(), Some(derived));

    // Request id 128 is LEB128 `80 01` both ways; the route as a string.
    p.send(&request_name(
        &[0x80, 0x01],
        "connector.entryHandler.entry",
        b"{}",
    ));
    assert_eq!(
        p.next(),
        Some(hex(
            "04 00 00 0f 04 80 01 7b 22 63 6f 64 65 22 3a 32 30 30 7d"
        ))
    );

    // A route with no code: the response, then a push with a route string.
    // Two requests in one write (a batch), then one request cut at every
    // few bytes: the decoder takes packages as they come.
    let chat = request_name(
        &[0xac, 0x02],
        "chat.chatHandler.send",
        br#"{"content":"hi"}"#,
    );
    let unknown = request_name(&[0x7f], "no.such.route", b"{}");
    p.send(&[chat.clone(), unknown].concat());
    assert_eq!(p.next(), Some(response(&[0xac, 0x02], br#"{"code":200}"#)));
    let on_chat = [&[0x06, 6][..], b"onChat", br#"{"content":"hi"}"#].concat();
    assert_eq!(p.next(), Some(package(4, &on_chat)));
    assert_eq!(
        p.next(),
        Some(response(
            &[0x7f],
            br#"{"code":500,"msg":"no handler for no.such.route"}"#
        ))
    );
    for piece in chat.chunks(3) {
        p.send(piece);
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(p.next(), Some(response(&[0xac, 0x02], br#"{"code":200}"#)));
    assert_eq!(p.next(), Some(package(4, &on_chat)));

    // A request the server never answers: nothing comes back but
    // heartbeats, every interval from the ack, while ours keep the
    // session open past the 2 × interval timeout.
    p.send(&request_code(&[2], 4, b"{}"));
    let until = Instant::now() + interval * 4;
    while Instant::now() < until {
        p.send(&HEARTBEAT);
        assert_eq!(p.next_within(interval / 2), None, "only heartbeats");
    }
    let beats = &p.heartbeats;
    assert!(
        beats.len() >= 3,
        "{} heartbeats in 4 intervals",
        beats.len()
    );
    let first = beats[0].duration_since(acked);
    assert!(
        first >= interval.mul_f32(0.8),
        "first heartbeat after {first:?}"
    );
    for pair in beats.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        let tolerated = interval.mul_f32(0.6)..interval.mul_f32(1.8);
        assert!(tolerated.contains(&gap), "heartbeats {gap:?} apart");
    }

    // Kick: a kick package, then the end of the stream.
    p.send(&notify_code(3, b"{}"));
    assert_eq!(p.next(), Some(package(5, br#"{"reason":"kick"}"#)));
    assert_eq!(p.next(), None);
    let log = server.stop();
    assert!(
        log.contains(r#"session 1: handshake from "raw-test" "1""#),
        "{log}"
    );
    assert!(log.contains("session 1: kicked"), "{log}");
}

#[test]
fn silent_oversize_and_malformed_peers_are_dropped() {
    let server = Server::start("pomelo", &["server", "127.0.0.1:0"], " on ", false);
    let addr = server.address.as_str();

    // Silent after the ack: a heartbeat after the interval, then the
    // connection ends at the 2 × 1 s heartbeat timeout.
    let mut silent = Peer::connect(addr);
    assert_eq!(silent.handshake(), package(1, WELCOME.as_bytes()));
    let acked = Instant::now();
    let (end, at) = silent.next_within(Duration::from_secs(10)).unwrap();
    assert_eq!(end, None);
    let waited = at.duration_since(acked);
    assert!(
        (Duration::from_millis(1800)..Duration::from_secs(6)).contains(&waited),
        "dropped after {waited:?}"
    );
    assert!(
        !silent.heartbeats.is_empty(),
        "no heartbeat before the drop"
    );

    // A handshake without sys.type and sys.version: code 501, then the end.
    let mut old = Peer::connect(addr);
    old.send(&package(1, b"{}"));
    assert_eq!(old.next(), Some(package(1, br#"{"code":501}"#)));
    assert_eq!(old.next(), None);

    // A body over 64 KiB: dropped as soon as its header is read.
    let mut big = Peer::connect(addr);
    big.handshake();
    big.send(&hex("04 01 00 01 00"));
    assert_eq!(big.next(), None);
    // The server logs the decode error once its side has lingered until
    // ours closes too.
    drop(big);

    // A request id cut short, a route over the message's end, a kick
    // from the client: each ends its connection.
    for bad in [
        package(4, &[0x00, 0x80]),
        package(4, &[0x02, 0x05, b'a']),
        package(5, b"{}"),
    ] {
        let mut p = Peer::connect(addr);
        p.handshake();
        p.send(&bad);
        assert_eq!(p.next(), None, "{bad:02x?}");
    }
    drop(silent);
    thread::sleep(Duration::from_secs(1));
    let log = server.stop();
    assert!(
        log.contains("session 1: nothing heard for 2s, dropped"),
        "{log}"
    );
    assert!(
        log.contains("session 2: dropped: handshake without"),
        "{log}"
    );
    assert!(
        log.contains("session 3: dropped: frame length 65537"),
        "{log}"
    );
    assert!(
        log.contains("session 4: dropped: request id cut short"),
        "{log}"
    );
    assert!(log.contains("session 5: dropped: route cut short"), "{log}");
    assert!(log.contains("session 6: dropped: package type 5"), "{log}");
}

#[test]
fn the_example_client_runs_its_script() {
    let server = Server::start("pomelo", &["server", "127.0.0.1:0"], " on ", false);
    let client = run_client("pomelo", &server.address);
    let log = server.stop();
    assert!(client.status.success(), "{client:?}\n{log}");
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "handshake: code 200, heartbeat 1s (timeout 2s), 5 routes in the dictionary\n\
         request 127 connector.entryHandler.entry (route code 1): {\"code\":200}\n\
         request 128 chat.chatHandler.send: {\"code\":200}\n\
         push onChat: {\"content\":\"hello\"}\n\
         notify connector.entryHandler.notify (route code 2): {\"n\":1}\n\
         push onNotify (route code 258): {\"n\":1}\n\
         request 129 connector.entryHandler.never (route code 4): no response in time\n\
         3 heartbeats heard: still open past the 2s timeout\n\
         notify connector.entryHandler.kick (route code 3): {}\n\
         kicked: {\"reason\":\"kick\"}\n\
         closed by the server\n"
    );
    assert!(
        log.contains(r#"handshake from "sansproto" "0.1.0""#),
        "{log}"
    );
}

//! The blocking module end to end over loopback: a thread-per-connection
//! server (`blocking::serve`) and clients (`blocking::connect` and
//! `blocking::drive`), 100 connections at once, every echo checked; the
//! same server shape for length-prefixed frames.

use sansproto::ws::{CloseCode, Config, Connection, Event, Message};
use sansproto::{blocking, prefix};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

fn ws_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        blocking::serve(
            listener,
            200,
            || Connection::server(Config::default()),
            |conn, event| {
                if let Event::Message(m) = event {
                    conn.send(m).unwrap();
                }
            },
        )
    });
    addr
}

/// One client: sends `n` messages, closes once all came back; returns
/// the echoes and how the connection ended.
fn client(addr: SocketAddr, id: usize, n: usize) -> (Vec<Message>, Option<CloseCode>) {
    let (mut stream, mut conn) =
        blocking::connect(&format!("ws://{addr}/echo"), Config::default()).unwrap();
    for i in 0..n {
        conn.send(format!("client {id} message {i}")).unwrap();
    }
    let (mut echoes, mut closed) = (Vec::new(), None);
    let failure = blocking::drive(&mut stream, &mut conn, |conn, event| match event {
        Event::Message(m) => {
            echoes.push(m);
            if echoes.len() == n {
                conn.close(CloseCode::NORMAL, "done").unwrap();
            }
        }
        Event::Closed(c) => closed = Some(c.code),
        _ => {}
    })
    .unwrap();
    assert_eq!(failure, None);
    (echoes, closed)
}

#[test]
fn a_hundred_connections_echo_through_serve_and_connect() {
    let addr = ws_echo_server();
    let clients: Vec<_> = (0..100)
        .map(|id| thread::spawn(move || (id, client(addr, id, 20))))
        .collect();
    for handle in clients {
        let (id, (echoes, closed)) = handle.join().unwrap();
        let expected: Vec<Message> = (0..20)
            .map(|i| Message::from(format!("client {id} message {i}")))
            .collect();
        assert_eq!(echoes, expected, "client {id}");
        assert_eq!(closed, Some(CloseCode::NORMAL), "client {id}");
    }
}

#[test]
fn connect_refuses_wss_and_a_bad_url_before_opening_anything() {
    let e = blocking::connect("wss://127.0.0.1:1/", Config::default()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = blocking::connect("http://127.0.0.1:1/", Config::default()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn serve_drives_length_prefixed_connections_too() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        blocking::serve(
            listener,
            1,
            || prefix::Connection::new(prefix::Config::default()),
            |conn, event| {
                if let prefix::Event::Frame(f) = event {
                    conn.send(f).unwrap();
                }
            },
        )
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut conn = prefix::Connection::new(prefix::Config::default());
    for m in ["one", "two", "three"] {
        conn.send(m.as_bytes().to_vec()).unwrap();
    }
    let mut echoes = Vec::new();
    let failure = blocking::drive(&mut stream, &mut conn, |conn, event| {
        if let prefix::Event::Frame(f) = event {
            echoes.push(f);
            if echoes.len() == 3 {
                conn.close();
            }
        }
    })
    .unwrap();
    assert_eq!(failure, None);
    assert_eq!(echoes, ["one", "two", "three"]);
}

/// A peer that sends one message and then reads nothing: the server's
/// answer (8 MiB, then a Close) cannot go out. The close timeout ends the
/// machine while the write waits, the last output gets its linger, and
/// `drive` returns: its thread is not held for ever.
#[test]
fn drive_gives_up_on_a_peer_that_reads_nothing() {
    use sansproto::ws::Role;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, ended) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut config = Config::default();
        config.close_timeout = Some(Duration::from_millis(300));
        let random = sansproto::seeded_random(1);
        let mut conn = Connection::after_handshake(Role::Server, config, None, None, random);
        let start = Instant::now();
        let result = blocking::drive(&mut stream, &mut conn, |conn, event| {
            if let Event::Message(_) = event {
                conn.send(vec![0u8; 8 << 20]).unwrap();
                conn.close(CloseCode::NORMAL, "bye").unwrap();
            }
        });
        done.send((result.map_err(|e| e.kind()), start.elapsed()))
            .unwrap();
    });
    let mut peer = TcpStream::connect(addr).unwrap();
    // A masked "hi", then nothing read.
    std::io::Write::write_all(&mut peer, b"\x81\x82\x00\x00\x00\x00hi").unwrap();
    let (result, took) = ended
        .recv_timeout(Duration::from_secs(20))
        .expect("drive returned");
    // The close timeout (0.3 s), then the linger (2 s), then the end.
    assert!(took >= Duration::from_millis(2300), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(result.unwrap_err(), std::io::ErrorKind::TimedOut);
    drop(peer);
}

/// A peer that reads slowly but steadily gets all of a finished machine's
/// last output, however much longer than the linger that takes.
#[test]
fn drive_keeps_writing_to_a_peer_that_reads_slowly() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    const FRAMES: usize = 12;
    const LEN: usize = 1 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut conn = prefix::Connection::new(prefix::Config::default());
        for _ in 0..FRAMES {
            conn.send(vec![5u8; LEN]).unwrap();
        }
        conn.close();
        blocking::drive(&mut stream, &mut conn, |_, _| {}).map(|_| ())
    });
    let mut peer = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    let (mut got, mut chunk) = (0, vec![0u8; 64 << 10]);
    // About 4 MB/s: some 3 s in all, past the 2 s linger.
    loop {
        thread::sleep(Duration::from_millis(15));
        match peer.read(&mut chunk).unwrap() {
            0 => break,
            n => got += n,
        }
    }
    assert_eq!(got, FRAMES * (LEN + 4));
    assert!(
        start.elapsed() > Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    server.join().unwrap().unwrap();
}

/// A payload whose every byte depends on its place, so that a byte lost,
/// repeated or moved shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A server on loopback that sends `payload` at once and drives the
/// connection with keepalive on (a ping after 0.2 s without input, failure
/// 0.3 s after it when nothing came), reporting every `Closed` event it
/// sees; the thread returns `drive`'s outcome.
fn keepalive_server(
    payload: Vec<u8>,
) -> (
    SocketAddr,
    std::sync::mpsc::Receiver<sansproto::ws::Closed>,
    thread::JoinHandle<std::io::Result<Option<sansproto::ws::Error>>>,
) {
    use sansproto::ws::Role;
    use std::time::Duration;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, closes) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let config = Config::default()
            .with_keepalive(Duration::from_millis(200), Duration::from_millis(300));
        let random = sansproto::seeded_random(1);
        let mut conn = Connection::after_handshake(Role::Server, config, None, None, random);
        conn.send(payload).unwrap();
        blocking::drive(&mut stream, &mut conn, |_, event| {
            if let Event::Closed(c) = event {
                let _ = seen.send(c);
            }
        })
    });
    (addr, closes, server)
}

/// What a client saw, read to the end.
#[derive(Default)]
struct Seen {
    messages: Vec<Message>,
    pongs: usize,
    closed: Option<sansproto::ws::Closed>,
}

/// A sans-IO client reading `peer` to the end, `chunk` bytes at a time
/// with `pause` after each read, and writing whatever its connection
/// queues (its pongs to the server's pings, auto-pong on) after each read;
/// with `ping_every`, it also pings that often until a message came. It
/// closes once a message came.
fn read_to_the_end(
    peer: &mut TcpStream,
    conn: &mut Connection,
    chunk: usize,
    pause: std::time::Duration,
    ping_every: Option<std::time::Duration>,
) -> Seen {
    use std::io::{Read, Write};
    use std::time::Instant;
    let (mut seen, mut input, mut output) = (Seen::default(), vec![0u8; chunk], Vec::new());
    let mut pinged = Instant::now();
    let mut on_event = |conn: &mut Connection, event| match event {
        Event::Message(m) => {
            seen.messages.push(m);
            let _ = conn.close(CloseCode::NORMAL, "done");
        }
        Event::Pong { .. } => seen.pongs += 1,
        Event::Closed(c) => seen.closed = Some(c),
        _ => {}
    };
    loop {
        match peer.read(&mut input).unwrap() {
            0 => conn.receive_eof().unwrap(),
            n => blocking::feed(conn, &input[..n], &mut on_event).unwrap(),
        }
        while let Some(event) = conn.poll_event() {
            on_event(conn, event);
        }
        conn.handle_timeout(Instant::now());
        if ping_every.is_some_and(|every| pinged.elapsed() >= every) && conn.is_open() {
            conn.ping(&b"alive"[..]).unwrap();
            pinged = Instant::now();
        }
        conn.poll_transmit(&mut output);
        peer.write_all(&output).unwrap();
        output.clear();
        if conn.is_finished() {
            break;
        }
        thread::sleep(pause);
    }
    seen
}

fn client_conn() -> Connection {
    let random = sansproto::seeded_random(2);
    Connection::after_handshake(
        sansproto::ws::Role::Client,
        Config::default(),
        None,
        None,
        random,
    )
}

/// A live client that reads a large message slowly, for several times the
/// server's pong timeout, answering pings at once and pinging the server as
/// it goes. A keepalive ping from the server would wait behind the message,
/// so what shows the client alive is its own traffic, which the server
/// reads while its write waits: it does not fail the connection, the
/// message arrives whole, the pings are answered and the close is clean.
#[test]
fn drive_hears_a_slow_reader_that_keeps_talking_during_a_long_write() {
    use std::time::{Duration, Instant};
    const LEN: usize = 12 << 20;
    let (addr, closes, server) = keepalive_server(pattern(LEN));
    let mut peer = TcpStream::connect(addr).unwrap();
    let mut conn = client_conn();
    let start = Instant::now();
    // 16 KiB reads, 2 ms apart: about 8 MB/s, some 1.5 s in all.
    let seen = read_to_the_end(
        &mut peer,
        &mut conn,
        16 << 10,
        Duration::from_millis(2),
        Some(Duration::from_millis(100)),
    );
    let took = start.elapsed();
    drop(peer);
    assert_eq!(server.join().unwrap().unwrap(), None);
    assert!(took > Duration::from_secs(1), "{took:?}");
    assert_eq!(seen.messages.len(), 1);
    assert!(
        seen.messages[0].as_bytes() == pattern(LEN),
        "the message changed"
    );
    let closed = seen.closed.expect("the client saw the close");
    assert_eq!(
        (closed.code, closed.by_peer, closed.clean),
        (CloseCode::NORMAL, false, true),
        "{closed:?}"
    );
    assert!(seen.pongs > 0, "the server answered none of the pings");
    let closed = closes.try_recv().expect("the server saw the close");
    assert_eq!((closed.code, closed.by_peer), (CloseCode::NORMAL, true));
}

/// A peer that sends its Close and then reads nothing until the server has
/// seen it: the server, with a large message still waiting to go out, sees
/// the Close at its next deadline rather than once the message is written;
/// the peer then gets the whole message and the answer to its Close.
#[test]
fn drive_sees_a_close_that_arrives_during_a_long_write() {
    use std::io::Write;
    use std::time::Duration;
    const LEN: usize = 8 << 20;
    let (addr, closes, server) = keepalive_server(pattern(LEN));
    let mut peer = TcpStream::connect(addr).unwrap();
    let mut conn = client_conn();
    conn.close(CloseCode::NORMAL, "bye").unwrap();
    let mut output = Vec::new();
    conn.poll_transmit(&mut output);
    peer.write_all(&output).unwrap();
    let Ok(closed) = closes.recv_timeout(Duration::from_secs(5)) else {
        panic!(
            "the server did not see the Close while its write waited; drive: {:?}",
            server.join().unwrap()
        );
    };
    assert_eq!((closed.code, closed.by_peer), (CloseCode::NORMAL, true));
    let seen = read_to_the_end(&mut peer, &mut conn, 64 << 10, Duration::ZERO, None);
    drop(peer);
    assert_eq!(server.join().unwrap().unwrap(), None);
    assert_eq!(seen.messages.len(), 1);
    assert!(
        seen.messages[0].as_bytes() == pattern(LEN),
        "the message changed"
    );
    let closed = seen.closed.expect("the client saw the close");
    assert_eq!((closed.code, closed.clean), (CloseCode::NORMAL, true));
}

/// A peer that never reads but keeps sending (a ping every 50 ms) while
/// the server's write of a large message is stuck: what it sends is heard
/// only as far as it reads, so its pings do not count as activity for ever;
/// the pong timeout ends the machine and the linger gives the output up.
#[test]
fn a_peer_that_sends_but_never_reads_does_not_hold_drive() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let (addr, _closes, server) = keepalive_server(pattern(12 << 20));
    let mut peer = TcpStream::connect(addr).unwrap();
    let mut conn = client_conn();
    let start = Instant::now();
    let mut output = Vec::new();
    while start.elapsed() < Duration::from_secs(8) && !server.is_finished() {
        conn.ping(&b"x"[..]).unwrap();
        conn.poll_transmit(&mut output);
        peer.write_all(&output).unwrap();
        output.clear();
        thread::sleep(Duration::from_millis(50));
    }
    let finished = server.is_finished();
    drop(peer);
    let outcome = server.join().unwrap();
    assert!(
        finished,
        "drive still held by a peer that reads nothing after 8 s"
    );
    let err = outcome.expect_err("the output is given up");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
}

/// A pipelining client that reads its echoes slowly but steadily: while
/// the echo server's write waits, input is read no faster than the client
/// reads, so the echoes sent from the callback fit in the send queue and
/// TCP backpressure is not turned into `QueueFull`.
#[test]
fn reading_during_a_write_keeps_the_peers_backpressure() {
    use sansproto::ws::Role;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    const N: usize = 40;
    const LEN: usize = 256 << 10;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = Arc::new(AtomicUsize::new(0));
    let refused2 = Arc::clone(&refused);
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let config = Config::default()
            .with_keepalive(Duration::from_millis(100), Duration::from_secs(10))
            .with_max_send_queue(1 << 20);
        let mut conn = Connection::after_handshake(
            Role::Server,
            config,
            None,
            None,
            sansproto::seeded_random(1),
        );
        blocking::drive(&mut stream, &mut conn, |conn, event| {
            if let Event::Message(m) = event {
                if conn.send(m).is_err() {
                    refused2.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });
    let mut peer = TcpStream::connect(addr).unwrap();
    let mut conn = client_conn();
    let mut wire = Vec::new();
    for _ in 0..N {
        conn.send(pattern(LEN)).unwrap();
        conn.poll_transmit(&mut wire);
    }
    let mut writer = peer.try_clone().unwrap();
    let w = thread::spawn(move || writer.write_all(&wire));
    // Read the echoes slowly: 16 KiB every 2 ms.
    let (mut got, mut input) = (0usize, vec![0u8; 16 << 10]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got < N * LEN && std::time::Instant::now() < deadline {
        match peer.read(&mut input) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        thread::sleep(Duration::from_millis(2));
    }
    let _ = w.join();
    let refused = refused.load(Ordering::Relaxed);
    drop(peer);
    let _ = server.join();
    assert_eq!(refused, 0, "echoes refused with QueueFull");
    assert!(got >= N * LEN, "every echo came back: {got} bytes");
}

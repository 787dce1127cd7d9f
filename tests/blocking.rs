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

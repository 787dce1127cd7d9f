//! The `pirate_tcp` example, as built, over loopback: its server driven by
//! raw `std::net` frames (4-byte BE length + JSON, `WIRE-FORMATS.md` §1)
//! through the session table, a kick, heartbeats and the idle timeout, and
//! its own client's three sessions.

mod common;

use common::examples::{run_client, Server};
use common::prefix::hex;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const HEARTBEAT: &[u8] = br#"{"type":"heartbeat"}"#;

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn frame(body: &[u8]) -> Vec<u8> {
    [&(body.len() as u32).to_be_bytes()[..], body].concat()
}

/// The next frame that is not a heartbeat (`None` at end of stream);
/// every heartbeat seen on the way is checked byte for byte and counted.
fn next(s: &mut TcpStream, heartbeats: &mut usize) -> Option<String> {
    loop {
        let mut header = [0u8; 4];
        match s.read_exact(&mut header) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                return None
            }
            Err(e) => panic!("no frame and no close: {e}"),
        }
        let mut body = vec![0; u32::from_be_bytes(header) as usize];
        s.read_exact(&mut body).unwrap();
        if body == HEARTBEAT {
            assert_eq!(header, [0, 0, 0, 0x14]);
            *heartbeats += 1;
            continue;
        }
        return Some(String::from_utf8(body).unwrap());
    }
}

#[test]
fn sessions_kick_heartbeat_and_idle_timeout() {
    let server = Server::start("pirate_tcp", &["server", "127.0.0.1:0"], " on ", false);
    let addr = server.address.as_str();
    let mut beats = 0;

    // Two sessions, numbered from 1, each welcomed.
    let mut x = connect(addr);
    let welcome = hex("00 00 00 1e") // 30 bytes
        .into_iter()
        .chain(br#"{"type":"welcome","session":1}"#.iter().copied())
        .collect::<Vec<u8>>();
    let mut got = vec![0; welcome.len()];
    x.read_exact(&mut got).unwrap();
    assert_eq!(got, welcome);
    let mut y = connect(addr);
    assert_eq!(
        next(&mut y, &mut beats).as_deref(),
        Some(r#"{"type":"welcome","session":2}"#)
    );

    // The §1 vector: a frame the server reads, but no message it knows.
    let a1 = hex("00 00 00 07 7b 22 61 22 3a 31 7d");
    assert_eq!(a1, frame(br#"{"a":1}"#));
    x.write_all(&a1).unwrap();
    assert_eq!(
        next(&mut x, &mut beats).as_deref(),
        Some(r#"{"type":"error","reason":"unknown message"}"#)
    );
    // A frame that is no JSON is skipped; the next one is answered.
    x.write_all(&[frame(b"{oops"), frame(br#"{"type":"who"}"#)].concat())
        .unwrap();
    assert_eq!(
        next(&mut x, &mut beats).as_deref(),
        Some(r#"{"type":"sessions","ids":[1,2]}"#)
    );

    // Session 1 kicks session 2: 2 gets the kick message, then the end of
    // the stream; 1 is told.
    x.write_all(&frame(br#"{"type":"kick","session":2}"#))
        .unwrap();
    assert_eq!(
        next(&mut y, &mut beats).as_deref(),
        Some(r#"{"type":"kick","reason":"kicked by session 1"}"#)
    );
    assert_eq!(next(&mut y, &mut beats), None);
    assert_eq!(
        next(&mut x, &mut beats).as_deref(),
        Some(r#"{"type":"kicked","session":2}"#)
    );
    x.write_all(&frame(br#"{"type":"kick","session":2}"#))
        .unwrap();
    assert_eq!(
        next(&mut x, &mut beats).as_deref(),
        Some(r#"{"type":"error","reason":"no such session"}"#)
    );

    // A frame over the 64 KiB limit: that session only is dropped.
    let mut z = connect(addr);
    assert!(next(&mut z, &mut beats).is_some());
    z.write_all(&hex("00 01 00 00 7b")).unwrap();
    assert_eq!(next(&mut z, &mut beats), None);

    // A session that sends nothing hears heartbeats (every 200 ms) and
    // is closed after 1 s of silence, while one that sends heartbeats
    // stays open.
    let started = Instant::now();
    let mut silent = connect(addr);
    assert_eq!(
        next(&mut silent, &mut beats).as_deref(),
        Some(r#"{"type":"welcome","session":4}"#)
    );
    let before = beats;
    for _ in 0..8 {
        x.write_all(&frame(HEARTBEAT)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(next(&mut silent, &mut beats), None);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(beats - before >= 3, "{} heartbeats", beats - before);
    x.write_all(&frame(br#"{"type":"who"}"#)).unwrap();
    assert_eq!(
        next(&mut x, &mut beats).as_deref(),
        Some(r#"{"type":"sessions","ids":[1]}"#)
    );
    drop(x);
    let log = server.stop();
    assert!(log.contains("session 2 kicked by session 1"), "{log}");
    assert!(log.contains("session 4: nothing heard for 1s"), "{log}");

    // The example's client against a fresh server: three sessions.
    let server = Server::start("pirate_tcp", &["server", "127.0.0.1:0"], " on ", false);
    let client = run_client("pirate_tcp", &server.address);
    let log = server.stop();
    assert!(client.status.success(), "{client:?}\n{log}");
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "b: welcome, session 1\n\
         b: kicked: kicked by session 2\n\
         b: closed by the server\n\
         a: welcome, session 2\n\
         a: sessions [1,2]\n\
         a: kicked session 1\n\
         a: still open after 8 heartbeats\n\
         silent: welcome, session 3\n\
         silent: closed by the server\n\
         silent: that was the server's idle timeout\n"
    );
}

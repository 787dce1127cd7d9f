//! The `prefix_echo` example's server, as built, on port 0: it echoes a
//! client's frames and survives clients that claim oversized lengths or hang
//! up mid-frame; the example's own client gets every echo.

mod common;

use common::examples::{build, Server};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::Duration;

/// Reads until the server closes the connection; returns what it sent.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // Closing with our unread bytes still queued resets the connection.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("server did not close the connection: {e}"),
        }
    }
}

#[test]
fn echo_server_survives_bad_clients() {
    let server = Server::start("prefix_echo", &["server", "127.0.0.1:0"], " on ", true);
    let addr = server.address.as_str();

    // Claims a 4 GiB frame: the server drops this connection only.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xff, b'{', b'}']).unwrap();
    assert!(read_to_close(&mut s).is_empty());

    // A good frame, then half of the next one, then a hang-up.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"\x00\x00\x00\x07{\"a\":1}\x00\x00\x00\x10{\"b\"")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s), b"\x00\x00\x00\x07{\"a\":1}");

    // Hang up mid-header without reading anything.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[0, 0]).unwrap();
    drop(s);

    // Frames split across writes and several frames in one write.
    let mut s = TcpStream::connect(addr).unwrap();
    let wire = b"\x00\x00\x00\x02[]\x00\x00\x00\x04null\x00\x00\x00\x00";
    s.write_all(&wire[..3]).unwrap();
    thread::sleep(Duration::from_millis(20));
    s.write_all(&wire[3..9]).unwrap();
    thread::sleep(Duration::from_millis(20));
    s.write_all(&wire[9..]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s), wire);

    // And the example's own client still gets every echo.
    let client = Command::new(build(&["prefix_echo"]).remove(0))
        .args(["client", addr])
        .output()
        .unwrap();
    let log = server.stop();
    assert!(client.status.success(), "{client:?}\n{log}");
    assert_eq!(client.stdout, b"all echoes matched\n");
}

//! The `sockhop` example, as built, over loopback: its server driven by
//! raw `std::net` bytes through the JSON-lines handshake and into binary
//! mode in the middle of one write (`WIRE-FORMATS.md` §4), its limits, and
//! its own client's send, callback and timeout.

mod common;

use common::examples::{run_client, Server};
use common::prefix::hex;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads exactly as many bytes as `expected` holds and compares.
fn expect(s: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0; expected.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
    assert_eq!(got, expected);
}

/// Reads until the server closes the connection.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => got,
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
}

/// A binary-mode message, laid out by hand: u32 LE length (not counting
/// itself or the message id), message id, type, data, callback id.
fn binary(msg_id: u8, type_name: &str, data: &[u8], callback: Option<&str>) -> Vec<u8> {
    let mut fields = vec![type_name.len() as u8];
    fields.extend_from_slice(type_name.as_bytes());
    fields.extend_from_slice(&(data.len() as u32).to_le_bytes());
    fields.extend_from_slice(data);
    if let Some(id) = callback {
        let mut padded = [0u8; 36];
        padded[..id.len()].copy_from_slice(id.as_bytes());
        fields.extend_from_slice(&padded);
    }
    let mut out = (fields.len() as u32).to_le_bytes().to_vec();
    out.push(msg_id);
    out.extend(fields);
    out
}

const SERVER_HANDSHAKE: &[u8] = b"{\"type\":\"SockhopHandshake\",\"data\":{\"protocol_version\":2,\
\"library_version\":\"sansproto\",\"request_binary_mode\":true},\"id\":\"1\"}\n";
const TRANSITION: &[u8] = b"{\"type\":\"SockhopBinaryModeTransition\",\"data\":{}}\n";

/// Connects and completes the handshake both ways; returns the stream
/// with both directions in JSON mode still for the server's receiving.
fn handshake(addr: &str) -> TcpStream {
    let mut s = connect(addr);
    // The server asks first, as every Sockhop 2 side does on connect.
    expect(&mut s, SERVER_HANDSHAKE);
    // A line that is no JSON is skipped, as Sockhop skips corrupted data.
    s.write_all(
        b"not json\n\
          {\"type\":\"SockhopHandshake\",\"data\":{\"protocol_version\":2,\"request_binary_mode\":true},\"id\":\"c-1\"}\n\
          {\"type\":\"Object\",\"data\":{\"allow_binary_mode\":true},\"callback_id\":\"1\"}\n",
    )
    .unwrap();
    // Our handshake answered; its own answered, so it switches to binary.
    expect(
        &mut s,
        &[
            &b"{\"type\":\"Object\",\"data\":{\"allow_binary_mode\":true},\"callback_id\":\"c-1\"}\n"[..],
            TRANSITION,
        ]
        .concat(),
    );
    s
}

#[test]
fn json_lines_switch_to_binary_mid_write_and_callbacks_match() {
    let server = Server::start("sockhop", &["server", "127.0.0.1:0"], " on ", false);
    let addr = server.address.as_str();

    // The derived `send("hi")` of §4, laid out by hand.
    let send_hi = hex("0f 00 00 00 0a 06 53 74 72 69 6e 67 04 00 00 00 22 68 69 22");
    assert_eq!(binary(10, "String", b"\"hi\"", None), send_hi);

    let mut s = handshake(addr);
    // Our transition line and three binary messages in one write: the
    // server's receiving switches right after the line, mid-read.
    let request = binary(11, "String", b"\"what time\"", Some("c-2"));
    let buffer = binary(13, "Buffer", &[0, 1, 0xff], None);
    let ignored = binary(11, "Ignore", b"null", Some("c-3"));
    s.write_all(&[TRANSITION, &send_hi, &request, &buffer, &ignored].concat())
        .unwrap();
    // The send echoed byte for byte; the callback answered under our id
    // (message id 12); the buffer echoed; nothing for `Ignore`.
    let reply = binary(12, "Object", b"{\"echo\":\"what time\"}", Some("c-2"));
    expect(&mut s, &[&send_hi[..], &reply, &buffer].concat());
    // A buffer callback (14) is answered with the same bytes (15).
    s.write_all(&binary(14, "Buffer", b"\x07\x08", Some("c-4")))
        .unwrap();
    expect(&mut s, &binary(15, "Buffer", b"\x07\x08", Some("c-4")));
    // A length over the 1 MiB limit: the connection is dropped at the
    // header, nothing more is sent.
    s.write_all(&hex("ff ff ff 7f 0a")).unwrap();
    assert!(read_to_close(&mut s).is_empty());

    // A JSON line that never ends: dropped once it passes 64 KiB.
    let mut s = connect(addr);
    expect(&mut s, SERVER_HANDSHAKE);
    let _ = s.write_all(&vec![b' '; 70 * 1024]);
    assert!(read_to_close(&mut s).is_empty());

    // A binary message whose fields overrun its frame: dropped.
    let mut s = handshake(addr);
    let mut bad = binary(10, "String", b"\"hi\"", None);
    bad[5] = 200; // the type name claims 200 bytes
    s.write_all(&[TRANSITION, &bad].concat()).unwrap();
    assert!(read_to_close(&mut s).is_empty());

    // The example's client: handshake, then a send, a buffer, a callback
    // answered and one timed out, matched by id (1 was the handshake's).
    let client = run_client("sockhop", addr);
    let log = server.stop();
    assert!(client.status.success(), "{client:?}\n{log}");
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "handshake answered: sending binary\n\
         the server sends binary\n\
         receive String \"hi\"\n\
         receive Buffer 010203\n\
         callback 2 (\"what time\") answered: Object {\"echo\":\"what time\"}\n\
         callback 3 (\"anyone?\") timed out\n"
    );
    // The switch fell inside a read: bytes after the transition line were
    // already buffered, and were decoded as binary.
    let mid_read = log.lines().any(|l| {
        l.split("receiving binary, ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            .is_some_and(|n| n > 0)
    });
    assert!(mid_read, "{log}");
    assert!(log.contains("skipped") || log.contains("Skipped"), "{log}");
}

//! The `tarantool` example, as built, over loopback: its server answered
//! by raw `std::net` bytes (the vectors of `WIRE-FORMATS.md` §2), and its
//! own client's pipelined, id-wrapping exchange.

mod common;

use common::examples::{run_client, Server};
use common::prefix::hex;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SELECT: u32 = 17;
const INSERT: u32 = 13;

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads exactly `n` bytes (however the server cut its writes).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    s.read_exact(&mut got).unwrap();
    got
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

fn packet(kind: u32, id: u32, body: &[u8]) -> Vec<u8> {
    [
        &kind.to_le_bytes()[..],
        &(body.len() as u32).to_le_bytes(),
        &id.to_le_bytes(),
        body,
    ]
    .concat()
}

fn error_reply(kind: u32, id: u32, code: u32, message: &str) -> Vec<u8> {
    let body = [
        &((code << 8) | 2).to_le_bytes()[..],
        message.as_bytes(),
        b"\0",
    ]
    .concat();
    packet(kind, id, &body)
}

fn ping(id: u32) -> Vec<u8> {
    packet(0xff00, id, b"")
}

/// The derived select of §2: space 0, index 0, offset 0, no limit, one
/// key `[1]`, id 7.
fn derived_select() -> Vec<u8> {
    hex("11 00 00 00 1d 00 00 00 07 00 00 00 | 00 00 00 00 00 00 00 00 00 00 00 00 ff ff ff ff 01 00 00 00 \
         | 01 00 00 00 04 01 00 00 00")
}

#[test]
fn the_server_answers_the_vectors_out_of_order() {
    let server = Server::start("tarantool", &["server", "127.0.0.1:0"], " on ", false);
    let addr = server.address.as_str();

    // Ping (the §2 vector) and the derived select, pipelined in one write:
    // the replies come back in reverse order, each cut across writes. The
    // select finds the server's seed tuple [1, "hi"]: one tuple whose size
    // (8) counts its fields, not its field count.
    let mut s = connect(addr);
    let ping_1 = hex("00 ff 00 00 00 00 00 00 01 00 00 00");
    assert_eq!(ping(1), ping_1);
    s.write_all(&[ping_1.clone(), derived_select()].concat())
        .unwrap();
    let select_reply = hex(
        "11 00 00 00 18 00 00 00 07 00 00 00 | 00 00 00 00 | 01 00 00 00 \
         | 08 00 00 00 02 00 00 00 04 01 00 00 00 02 68 69",
    );
    let both = [select_reply.clone(), ping_1.clone()].concat();
    assert_eq!(read_n(&mut s, both.len()), both);

    // Ids are echoed unchanged, repeated ones and 0 and 2^32 - 1 too.
    s.write_all(&[ping(u32::MAX), ping(0), ping(0)].concat())
        .unwrap();
    let expected = [ping(0), ping(0), ping(u32::MAX)].concat();
    assert_eq!(read_n(&mut s, 36), expected);

    // Error replies: return code (code << 8 | 2) and a NUL-terminated
    // message, in the layout of the derived error reply of §2.
    assert_eq!(
        error_reply(SELECT, 7, 2, "x"),
        hex("11 00 00 00 06 00 00 00 07 00 00 00 02 02 00 00 78 00")
    );
    let mut no_space = derived_select();
    no_space[12] = 9; // space 9
    s.write_all(&no_space).unwrap();
    let reply = error_reply(SELECT, 7, 57, "Space 9 does not exist");
    assert_eq!(&reply[12..16], [0x02, 0x39, 0, 0]);
    assert_eq!(read_n(&mut s, reply.len()), reply);
    s.write_all(&packet(SELECT, 7, &[0, 0, 0, 0])).unwrap();
    let reply = error_reply(SELECT, 7, 2, "Illegal parameters, 4 bytes wanted, 0 left");
    assert_eq!(read_n(&mut s, reply.len()), reply);

    // Insert: BOX_ADD (2) refuses a key that exists; with BOX_RETURN_TUPLE
    // (1) a new tuple comes back. Field lengths are BER varints: 300 is
    // `82 2c`.
    let mut insert = hex("00 00 00 00 02 00 00 00 | 02 00 00 00 04 01 00 00 00 01 61");
    s.write_all(&packet(INSERT, 8, &insert)).unwrap();
    let reply = error_reply(INSERT, 8, 55, "Tuple already exists");
    assert_eq!(read_n(&mut s, reply.len()), reply);
    let long = vec![b'z'; 300];
    insert = [
        &hex("00 00 00 00 03 00 00 00 | 02 00 00 00 04 05 00 00 00 82 2c")[..],
        &long,
    ]
    .concat();
    s.write_all(&packet(INSERT, 9, &insert)).unwrap();
    let body = [
        &hex("00 00 00 00 01 00 00 00 | 33 01 00 00 | 02 00 00 00 04 05 00 00 00 82 2c")[..],
        &long,
    ]
    .concat();
    let reply = packet(INSERT, 9, &body);
    assert_eq!(read_n(&mut s, reply.len()), reply);

    // A select may name a key many times, but its reply stays under the
    // 1 MiB body limit: four copies of a 300 kB tuple are refused with
    // ER_MEMORY_ISSUE (7), status 1 ("try again").
    let big = vec![b'b'; 300_000];
    let insert = [
        &hex("00 00 00 00 00 00 00 00 | 02 00 00 00 04 06 00 00 00 92 a7 60")[..],
        &big,
    ]
    .concat();
    s.write_all(&packet(INSERT, 10, &insert)).unwrap();
    let reply = packet(INSERT, 10, &hex("00 00 00 00 01 00 00 00"));
    assert_eq!(read_n(&mut s, reply.len()), reply);
    let mut select = hex("00 00 00 00 00 00 00 00 00 00 00 00 ff ff ff ff 04 00 00 00");
    for _ in 0..4 {
        select.extend(hex("01 00 00 00 04 06 00 00 00"));
    }
    s.write_all(&packet(SELECT, 11, &select)).unwrap();
    let body = [&hex("01 07 00 00")[..], b"the reply would pass 1 MiB\0"].concat();
    let reply = packet(SELECT, 11, &body);
    assert_eq!(read_n(&mut s, reply.len()), reply);
    drop(s);

    // A body over the server's 1 MiB limit: the connection is dropped at
    // the header, before the body is awaited, with no reply.
    let mut s = connect(addr);
    s.write_all(&hex("11 00 00 00 00 00 00 80 07 00 00 00"))
        .unwrap();
    assert!(read_to_close(&mut s).is_empty());
    // A field length that is no int32_varint (six BER bytes): an error
    // reply, and the connection goes on.
    let mut s = connect(addr);
    let bad = hex("00 00 00 00 00 00 00 00 00 00 00 00 ff ff ff ff 01 00 00 00 | 01 00 00 00 80 80 80 80 80 01");
    s.write_all(&[packet(SELECT, 3, &bad), ping(4)].concat())
        .unwrap();
    let reply = error_reply(
        SELECT,
        3,
        2,
        "Illegal parameters, field length: varint longer than 5 bytes",
    );
    let both = [ping(4), reply].concat();
    assert_eq!(read_n(&mut s, both.len()), both);
    drop(s);

    // The example's client: seven requests pipelined, ids from just below
    // 2^32 wrapping to 0, every reply matched to its request by id.
    let client = run_client("tarantool", addr);
    let log = server.stop();
    assert!(client.status.success(), "{client:?}\n{log}");
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "ping id 4294967293: ok\n\
         select (space 0, key 1) id 4294967294: 1 tuple(s) [1, \"hi\"]\n\
         insert (space 0, [2, \"there\"]) id 4294967295: 1 tuple(s) [2, \"there\"]\n\
         select (space 0, key 2) id 0: 1 tuple(s) [2, \"there\"]\n\
         insert (space 0, [1, \"again\"]) id 1: error 0x3702: Tuple already exists\n\
         select (space 9, key 1) id 2: error 0x3902: Space 9 does not exist\n\
         ping id 3: ok\n\
         arrival order: 3 2 1 0 4294967295 4294967294 4294967293\n"
    );
}

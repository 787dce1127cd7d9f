//! Real wire formats carried by the `prefix` machines: each vector decoded
//! whole, byte by byte, split at every point and with a partial next frame,
//! and re-encoded byte for byte.

mod common;

use bytes::Bytes;
use common::prefix::{check_vector, frames, hex};
use sansproto::prefix::varint::{Varint, VarintFormat};
use sansproto::prefix::{ByteOrder, Config, Decoded, Encoder};

fn encode(config: &Config, header: &[u8], body: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(config)
        .encode_parts(header, body, &mut out)
        .expect("encode");
    out
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

// ---------------------------------------------------------------------------
// 1. Four-byte big-endian length + JSON.

#[test]
fn u32_be_json() {
    let config = Config::default();
    let wire = hex("00 00 00 07 7b 22 61 22 3a 31 7d");
    check_vector(&config, &wire, &frames(&[br#"{"a":1}"#]));
    assert_eq!(encode(&config, &[], &[br#"{"a":1}"#]), wire);

    // Several messages in one read, one of them empty.
    let msgs: [&[u8]; 3] = [br#"{"a":1}"#, b"", br#"["x",{"y":null}]"#];
    let mut wire = Vec::new();
    for m in msgs {
        wire.extend(encode(&config, &[], &[m]));
    }
    check_vector(&config, &wire, &frames(&msgs));
}

// ---------------------------------------------------------------------------
// 2. Tarantool 1.5 iproto: LE u32 type, body length, request id; the id is
// not counted by the length, hence the +4 adjustment. The whole 12-byte
// header is kept so the type and id can be read.

const SELECT: u32 = 17;
const PING: u32 = 0xff00;

fn iproto() -> Config {
    Config::builder()
        .length_field_offset(4)
        .length_field_width(4)
        .byte_order(ByteOrder::LittleEndian)
        .length_adjustment(4)
        .strip(0)
        // The server refuses a body length over 2^31; our body counts the id.
        .max_payload_length((1 << 31) + 4)
        .build()
        .unwrap()
}

/// (type, request id, body) of one iproto packet.
fn iproto_split(frame: &[u8]) -> (u32, u32, &[u8]) {
    assert_eq!(u32_le(frame, 4) as usize, frame.len() - 12);
    (u32_le(frame, 0), u32_le(frame, 8), &frame[12..])
}

fn iproto_encode(kind: u32, id: u32, body: &[u8]) -> Vec<u8> {
    encode(&iproto(), &kind.to_le_bytes(), &[&id.to_le_bytes(), body])
}

/// Reads a tuple's fields: cardinality then `<int32_varint><data>` each.
fn tuple_fields(mut t: &[u8]) -> Vec<&[u8]> {
    let ber = Varint::new(VarintFormat::Ber).with_max_bytes(5);
    let n = u32_le(t, 0);
    t = &t[4..];
    (0..n)
        .map(|_| {
            let (len, used) = ber.decode(t).unwrap().unwrap();
            let (field, rest) = t[used..].split_at(len as usize);
            t = rest;
            field
        })
        .collect()
}

#[test]
fn tarantool_ping() {
    let request = hex("00 ff 00 00 00 00 00 00 01 00 00 00");
    check_vector(&iproto(), &request, &frames(&[&request]));
    assert_eq!(iproto_encode(PING, 1, b""), request);
    let (kind, id, body) = iproto_split(&request);
    assert_eq!((kind, id, body), (PING, 1, &b""[..]));
    // The reply echoes the bare header; ids may repeat or be zero.
    let replies = [
        iproto_encode(PING, 1, b""),
        iproto_encode(PING, 0, b""),
        iproto_encode(PING, 0, b""),
    ];
    let wire = replies.concat();
    let expected: Vec<&[u8]> = replies.iter().map(|r| &r[..]).collect();
    check_vector(&iproto(), &wire, &frames(&expected));
}

#[test]
fn tarantool_select_request() {
    let wire = hex(
        "11 00 00 00 1d 00 00 00 07 00 00 00 | 00 00 00 00 00 00 00 00 00 00 00 00 ff ff ff ff 01 00 00 00 \
         | 01 00 00 00 04 01 00 00 00",
    );
    check_vector(&iproto(), &wire, &frames(&[&wire]));
    let (kind, id, body) = iproto_split(&wire);
    assert_eq!((kind, id), (SELECT, 7));
    let (space, index, offset, limit, keys) = (
        u32_le(body, 0),
        u32_le(body, 4),
        u32_le(body, 8),
        u32_le(body, 12),
        u32_le(body, 16),
    );
    assert_eq!((space, index, offset, limit, keys), (0, 0, 0, u32::MAX, 1));
    assert_eq!(tuple_fields(&body[20..]), [&1u32.to_le_bytes()[..]]);
    assert_eq!(iproto_encode(SELECT, 7, body), wire);
}

#[test]
fn tarantool_select_reply() {
    // Derived: return code 0, two tuples: (u32 1, "hi") and a 300-byte field
    // whose length is the BER varint 82 2c. Each tuple's <size> counts its
    // fields' bytes, not the cardinality.
    let big = vec![b'z'; 300];
    let mut wire = hex(
        "11 00 00 00 4e 01 00 00 07 00 00 00 | 00 00 00 00 | 02 00 00 00 \
         | 08 00 00 00 02 00 00 00 04 01 00 00 00 02 68 69 \
         | 2e 01 00 00 01 00 00 00 82 2c",
    );
    wire.extend_from_slice(&big);
    check_vector(&iproto(), &wire, &frames(&[&wire]));

    let (kind, id, body) = iproto_split(&wire);
    assert_eq!(
        (kind, id, u32_le(body, 0), u32_le(body, 4)),
        (SELECT, 7, 0, 2)
    );
    let mut rest = &body[8..];
    let mut tuples = Vec::new();
    while !rest.is_empty() {
        let size = u32_le(rest, 0) as usize;
        let (tuple, tail) = rest[4..].split_at(4 + size);
        tuples.push(tuple_fields(tuple));
        rest = tail;
    }
    assert_eq!(
        tuples,
        [vec![&1u32.to_le_bytes()[..], b"hi"], vec![&big[..]]]
    );
    assert_eq!(iproto_encode(SELECT, 7, body), wire);
}

#[test]
fn tarantool_error_reply() {
    let wire = hex("11 00 00 00 06 00 00 00 07 00 00 00 02 02 00 00 78 00");
    check_vector(&iproto(), &wire, &frames(&[&wire]));
    let (kind, id, body) = iproto_split(&wire);
    let code = u32_le(body, 0);
    assert_eq!((kind, id, code & 0xff, code >> 8), (SELECT, 7, 2, 2));
    assert_eq!(&body[4..], b"x\0");
    assert_eq!(iproto_encode(SELECT, 7, body), wire);
}

#[test]
fn tarantool_ber_varint() {
    let ber = Varint::new(VarintFormat::Ber);
    assert_eq!(ber.decode(&hex("82 2c")), Ok(Some((300, 2))));
    let mut out = Vec::new();
    ber.encode(300, &mut out).unwrap();
    assert_eq!(out, hex("82 2c"));
    // Tarantool's int32_varint is 1 to 5 bytes.
    let int32 = ber.with_max_bytes(5);
    assert_eq!(
        int32.decode(&hex("8f ff ff ff 7f")),
        Ok(Some((u32::MAX as u64, 5)))
    );
    assert!(int32.decode(&hex("80 80 80 80 80 01")).is_err());
}

// ---------------------------------------------------------------------------
// 3. Pomelo packages: type byte, 3-byte BE length; the type is kept.

fn pomelo() -> Config {
    Config::builder()
        .length_field_offset(1)
        .length_field_width(3)
        .strip(0)
        .max_frame_length(1 << 20)
        .build()
        .unwrap()
}

const HEARTBEAT: u8 = 3;
const DATA: u8 = 4;

/// A Pomelo message inside a data package.
#[derive(Debug, PartialEq)]
struct Message<'a> {
    kind: u8,
    id: Option<u64>,
    route: Option<Result<u16, &'a [u8]>>,
    body: &'a [u8],
}

fn pomelo_message(package: &[u8]) -> Message<'_> {
    assert_eq!(package[0], DATA);
    let mut m = &package[4..];
    let flag = m[0];
    m = &m[1..];
    let kind = (flag >> 1) & 0x07;
    let id = if kind == 0 || kind == 2 {
        let (id, used) = Varint::new(VarintFormat::Leb128)
            .decode(m)
            .unwrap()
            .unwrap();
        m = &m[used..];
        Some(id)
    } else {
        None
    };
    let route = if kind != 2 {
        if flag & 1 == 1 {
            let code = u16::from_be_bytes([m[0], m[1]]);
            m = &m[2..];
            Some(Ok(code))
        } else {
            let n = m[0] as usize;
            let r = &m[1..1 + n];
            m = &m[1 + n..];
            Some(Err(r))
        }
    } else {
        None
    };
    Message {
        kind,
        id,
        route,
        body: m,
    }
}

#[test]
fn pomelo_heartbeat_and_handshake_ack() {
    for wire in [hex("03 00 00 00"), hex("02 00 00 00")] {
        check_vector(&pomelo(), &wire, &frames(&[&wire]));
        assert_eq!(encode(&pomelo(), &wire[..1], &[]), wire);
    }
}

#[test]
fn pomelo_handshake() {
    let body = br#"{"sys":{"type":"rust","version":"0.1.0"},"user":{}}"#;
    let wire = encode(&pomelo(), &[1], &[body]);
    assert_eq!(&wire[..4], [1, 0, 0, body.len() as u8]);
    check_vector(&pomelo(), &wire, &frames(&[&wire]));
}

#[test]
fn pomelo_data_packages() {
    let push = hex("04 00 00 05 07 01 02 7b 7d");
    check_vector(&pomelo(), &push, &frames(&[&push]));
    assert_eq!(
        pomelo_message(&push),
        Message {
            kind: 3,
            id: None,
            route: Some(Ok(0x0102)),
            body: b"{}"
        }
    );
    let response = hex("04 00 00 0e 04 01 7b 22 63 6f 64 65 22 3a 32 30 30 7d");
    check_vector(&pomelo(), &response, &frames(&[&response]));
    assert_eq!(
        pomelo_message(&response),
        Message {
            kind: 2,
            id: Some(1),
            route: None,
            body: br#"{"code":200}"#
        }
    );
    // Request id 128 is the LEB128 80 01.
    let wire = encode(
        &pomelo(),
        &[DATA],
        &[&[0x04, 0x80, 0x01], br#"{"code":200}"#],
    );
    assert_eq!(&wire[..7], hex("04 00 00 0f 04 80 01"));
    assert_eq!(pomelo_message(&wire).id, Some(128));
    assert_eq!(encode(&pomelo(), &push[..1], &[&push[4..]]), push);
    assert_eq!(
        encode(&pomelo(), &response[..1], &[&response[4..]]),
        response
    );
}

#[test]
fn pomelo_batch_in_one_buffer() {
    let packages = [
        hex("03 00 00 00"),
        hex("04 00 00 05 07 01 02 7b 7d"),
        hex("04 00 00 0e 04 01 7b 22 63 6f 64 65 22 3a 32 30 30 7d"),
        hex("02 00 00 00"),
    ];
    let batch = packages.concat();
    let expected: Vec<&[u8]> = packages.iter().map(|p| &p[..]).collect();
    check_vector(&pomelo(), &batch, &frames(&expected));

    // sendBatch: one output buffer, sized once, payloads copied once.
    let items: Vec<(&[u8], &[u8])> = packages.iter().map(|p| (&p[..1], &p[4..])).collect();
    let mut out = Vec::new();
    let n = Encoder::new(&pomelo())
        .encode_batch(items.iter().copied(), &mut out)
        .unwrap();
    assert_eq!(n, batch.len());
    assert_eq!(out, batch);
    assert_eq!(out.capacity(), batch.len());
    assert_eq!(packages[0][0], HEARTBEAT);
}

// ---------------------------------------------------------------------------
// 4. Sockhop binary mode: u32 LE length, then a 1-byte message id that the
// length does not count (15 = 1 + 6 + 4 + 4 below), then the fields. The
// length field is stripped; the message id is kept.

fn sockhop() -> Config {
    Config::builder()
        .byte_order(ByteOrder::LittleEndian)
        .length_adjustment(1)
        .max_payload_length(16 << 20)
        .build()
        .unwrap()
}

#[test]
fn sockhop_binary() {
    let wire = hex("0f 00 00 00 0a 06 53 74 72 69 6e 67 04 00 00 00 22 68 69 22");
    check_vector(&sockhop(), &wire, &frames(&[&wire[4..]]));
    let p = &wire[4..];
    assert_eq!(p[0], 10, "message id: json");
    let name_len = p[1] as usize;
    assert_eq!(&p[2..2 + name_len], b"String");
    let data_len = u32_le(p, 2 + name_len) as usize;
    assert_eq!(&p[6 + name_len..], br#""hi""#);
    assert_eq!(data_len, 4);
    assert_eq!(encode(&sockhop(), &[], &[p]), wire);
    // Two messages back to back, a buffer message (id 13) after the JSON one.
    let buffer = encode(
        &sockhop(),
        &[],
        &[&[13, 6], b"Buffer", &3u32.to_le_bytes(), b"\x01\x02\x03"],
    );
    assert_eq!(&buffer[..4], 14u32.to_le_bytes());
    let both = [wire.clone(), buffer.clone()].concat();
    check_vector(&sockhop(), &both, &frames(&[&wire[4..], &buffer[4..]]));
}

// ---------------------------------------------------------------------------
// 5. Netty's LengthFieldBasedFrameDecoder javadoc cases.

const HELLO: &[u8] = b"HELLO, WORLD";

fn netty(offset: usize, width: usize, adjustment: i64, strip: usize) -> Config {
    Config::builder()
        .length_field_offset(offset)
        .length_field_width(width)
        .length_adjustment(adjustment)
        .strip(strip)
        .build()
        .unwrap()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn netty_case_1_and_2() {
    let wire = cat(&[&[0x00, 0x0c], HELLO]);
    check_vector(&netty(0, 2, 0, 0), &wire, &frames(&[&wire]));
    check_vector(&netty(0, 2, 0, 2), &wire, &frames(&[HELLO]));
    assert_eq!(encode(&netty(0, 2, 0, 0), &[], &[HELLO]), wire);
}

#[test]
fn netty_case_3_length_counts_whole_frame() {
    let wire = cat(&[&[0x00, 0x0e], HELLO]);
    check_vector(&netty(0, 2, -2, 0), &wire, &frames(&[&wire]));
    assert_eq!(encode(&netty(0, 2, -2, 0), &[], &[HELLO]), wire);
    // The same layout through length_includes_header instead of -2.
    let includes = Config::builder()
        .length_field_width(2)
        .length_includes_header(true)
        .strip(0)
        .build()
        .unwrap();
    check_vector(&includes, &wire, &frames(&[&wire]));
    assert_eq!(encode(&includes, &[], &[HELLO]), wire);
}

#[test]
fn netty_case_4_header_before_length() {
    let wire = cat(&[&[0xca, 0xfe, 0x00, 0x00, 0x0c], HELLO]);
    check_vector(&netty(2, 3, 0, 0), &wire, &frames(&[&wire]));
    assert_eq!(encode(&netty(2, 3, 0, 0), &[0xca, 0xfe], &[HELLO]), wire);
}

#[test]
fn netty_case_5_header_after_length() {
    let wire = cat(&[&[0x00, 0x00, 0x0c, 0xca, 0xfe], HELLO]);
    check_vector(&netty(0, 3, 2, 0), &wire, &frames(&[&wire]));
    assert_eq!(
        encode(&netty(0, 3, 2, 0), &[], &[&[0xca, 0xfe], HELLO]),
        wire
    );
}

#[test]
fn netty_case_6_two_headers_strip_three() {
    let wire = cat(&[&[0xca, 0x00, 0x0c, 0xfe], HELLO]);
    let out = cat(&[&[0xfe], HELLO]);
    check_vector(&netty(1, 2, 1, 3), &wire, &frames(&[&out]));
    assert_eq!(encode(&netty(1, 2, 1, 3), &[0xca], &[&out]), wire);
}

#[test]
fn netty_case_7_two_headers_length_counts_all() {
    let wire = cat(&[&[0xca, 0x00, 0x10, 0xfe], HELLO]);
    let out = cat(&[&[0xfe], HELLO]);
    check_vector(&netty(1, 2, -3, 3), &wire, &frames(&[&out]));
    assert_eq!(encode(&netty(1, 2, -3, 3), &[0xca], &[&out]), wire);
}

#[test]
fn netty_cases_back_to_back() {
    // Several case-6 frames in one read, followed by each other's halves.
    let one = cat(&[&[0xca, 0x00, 0x0c, 0xfe], HELLO]);
    let wire = [one.clone(), one.clone(), one].concat();
    let out = Bytes::from(cat(&[&[0xfe], HELLO]));
    check_vector(&netty(1, 2, 1, 3), &wire, &vec![Decoded::Frame(out); 3]);
}

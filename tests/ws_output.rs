//! Vectored output (`output()`, a `bytes::Buf` of chunks): large payloads
//! are written from the message they came from, never copied, a client
//! masks an owned payload in place, and the bytes equal what
//! `poll_transmit` copies out, for every partial-write split.

mod common;

use bytes::{Buf, Bytes};
use common::alloc::{measure, serial, Counting};
use sansproto::ws::{encode_frame, Config, Event, Message, OpCode, Role, Session};
use std::io::IoSlice;

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1 << 20;

fn session(role: Role) -> Session {
    Session::new(
        role,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(4),
    )
}

/// Everything `output()` holds, written out through `chunks_vectored`.
fn write_vectored(s: &mut Session) -> Vec<u8> {
    let mut written = Vec::new();
    let mut out = s.output();
    while out.has_remaining() {
        let mut slots = [IoSlice::new(&[]); 8];
        let n = out.chunks_vectored(&mut slots);
        let len: usize = slots[..n].iter().map(|s| s.len()).sum();
        for slot in &slots[..n] {
            written.extend_from_slice(slot);
        }
        out.advance(len);
    }
    written
}

#[test]
fn a_server_sends_a_1_mib_payload_without_copying_it() {
    let _serial = serial();
    let payload = Bytes::from(vec![0x5a; MIB]);
    let mut s = session(Role::Server);
    let ((), growth) = measure("vectored_1_mib_send", || {
        for _ in 0..4 {
            s.send(Message::Binary(payload.clone())).unwrap();
            let mut out = s.output();
            let mut slots = [IoSlice::new(&[]); 4];
            assert_eq!(out.chunks_vectored(&mut slots), 2);
            assert_eq!(&*slots[0], &[0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0]);
            assert_eq!(slots[1].as_ptr(), payload.as_ptr(), "the payload itself");
            assert_eq!(slots[1].len(), MIB);
            let n = out.remaining();
            out.advance(n);
        }
    });
    // Four 1 MiB payloads went out; a copy of one would be 1 MiB.
    assert!(growth < 4 << 10, "{growth} bytes allocated");
    assert_eq!(s.buffered_amount(), 0);
}

#[test]
fn a_received_message_is_echoed_from_where_it_was_read() {
    let _serial = serial();
    let mut wire = Vec::new();
    encode_frame(
        &mut wire,
        true,
        0,
        OpCode::Binary,
        Some([1, 2, 3, 4]),
        &vec![7u8; MIB],
    );
    let mut s = session(Role::Server);
    let space = s.receive_buffer(wire.len()).unwrap();
    space[..wire.len()].copy_from_slice(&wire);
    s.commit_received(wire.len()).unwrap();
    let Some(Event::Message(m)) = s.poll_event() else {
        panic!("no message");
    };
    let at = m.as_bytes().as_ptr();
    let (written, growth) = measure("vectored_echo", || {
        s.send(m).unwrap();
        let out = s.output();
        let mut slots = [IoSlice::new(&[]); 4];
        assert_eq!(out.chunks_vectored(&mut slots), 2);
        assert_eq!(slots[1].as_ptr(), at, "written from the receive buffer");
        write_vectored(&mut s)
    });
    assert_eq!(written.len(), 10 + MIB);
    // The only copy is the test's own `written`.
    assert!(growth < MIB + (64 << 10) + (4 << 10), "{growth} bytes");
}

#[test]
fn a_client_masks_an_owned_payload_in_place() {
    let _serial = serial();
    let owned = Bytes::from(vec![0x33u8; MIB]);
    let at = owned.as_ptr();
    let mut c = session(Role::Client);
    let ((), growth) = measure("vectored_masked_owned", || {
        c.send(Message::Binary(owned)).unwrap();
        let out = c.output();
        let mut slots = [IoSlice::new(&[]); 4];
        assert_eq!(out.chunks_vectored(&mut slots), 2);
        assert_eq!(slots[1].as_ptr(), at, "masked where it lay");
    });
    assert!(growth < 4 << 10, "{growth} bytes allocated");
    // The peer reads it back unmasked.
    let wire = write_vectored(&mut c);
    let mut server = session(Role::Server);
    server.receive(&wire).unwrap();
    assert_eq!(
        server.poll_event(),
        Some(Event::Message(Message::Binary(vec![0x33u8; MIB].into())))
    );
}

/// Small and large messages, a shared payload a client must copy, a ping.
fn mixed(role: Role) -> Session {
    let mut s = session(role);
    let big = Bytes::from((0..5000u32).map(|i| i as u8).collect::<Vec<u8>>());
    s.send("small").unwrap();
    s.send(Message::Binary(big.clone())).unwrap();
    s.ping(&b"p"[..]).unwrap();
    s.send(Message::Binary(big)).unwrap();
    s.send("tail").unwrap();
    s
}

#[test]
fn output_equals_poll_transmit_for_every_partial_write() {
    for role in [Role::Server, Role::Client] {
        let mut expected = Vec::new();
        mixed(role).poll_transmit(&mut expected);
        for first in 0..=expected.len() {
            let mut s = mixed(role);
            let mut written = Vec::new();
            let mut out = s.output();
            let mut take = first;
            while take > 0 {
                let chunk = out.chunk();
                let n = take.min(chunk.len());
                written.extend_from_slice(&chunk[..n]);
                out.advance(n);
                take -= n;
            }
            // Then the rest, some of it through `poll_transmit`.
            s.poll_transmit(&mut written);
            assert_eq!(written, expected, "{role:?}, first write {first}");
        }
    }
}

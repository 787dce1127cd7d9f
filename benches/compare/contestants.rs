//! The contestants: sansproto, tungstenite and fastwebsockets receiving
//! and encoding the same frames over the same in-memory transport.

use crate::input::{RecvCase, Tally};
use crate::transport::{MemStream, Sink, IO_CHUNK};
use bytes::Bytes;
use sansproto::ws::{Config, Connection, Event, Message, Role};

pub fn ours(role: Role) -> Connection {
    // Limits as the peers' defaults: 16 MiB frames, 64 MiB messages.
    Connection::after_handshake(
        role,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(1),
    )
}

pub fn ours_receive(case: &RecvCase) -> Tally {
    let mut conn = ours(Role::Server);
    let mut t = Tally::default();
    for chunk in case.wire.chunks(IO_CHUNK) {
        conn.receive(chunk).expect("valid frames");
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => t.add(m.as_bytes()),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    t
}

/// The same, reading straight into the connection's buffer (as much as
/// it asks for, which the stream caps as it caps every peer's reads).
pub fn ours_receive_into(case: &RecvCase) -> Tally {
    let mut conn = ours(Role::Server);
    let mut stream = MemStream::new(&case.wire);
    let mut t = Tally::default();
    loop {
        let space = conn.receive_buffer(IO_CHUNK).expect("events are polled");
        let n = std::io::Read::read(&mut stream, space).expect("in memory");
        if n == 0 {
            break;
        }
        conn.commit_received(n).expect("valid frames");
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => t.add(m.as_bytes()),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    t
}

/// The same, appending to the connection's own buffer without zeroing it
/// (`receive_buf_mut`, as a tokio server reads with `try_read_buf`).
pub fn ours_receive_append(case: &RecvCase) -> Tally {
    let mut conn = ours(Role::Server);
    let mut stream = MemStream::new(&case.wire);
    let mut t = Tally::default();
    loop {
        let buf = conn.receive_buf_mut(IO_CHUNK).expect("events are polled");
        if stream.read_buf(buf) == 0 {
            break;
        }
        conn.commit_appended().expect("valid frames");
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => t.add(m.as_bytes()),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    t
}

pub fn tungstenite_config() -> tungstenite::protocol::WebSocketConfig {
    // The defaults: 128 KiB read buffer, 16 MiB frames, 64 MiB messages.
    tungstenite::protocol::WebSocketConfig::default()
}

pub fn tungstenite_receive(case: &RecvCase) -> Tally {
    use tungstenite::Message as M;
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(&case.wire),
        tungstenite::protocol::Role::Server,
        Some(tungstenite_config()),
    );
    let mut t = Tally::default();
    while t.messages < case.expected.messages {
        match ws.read().expect("valid frames") {
            M::Binary(b) => t.add(&b),
            M::Text(s) => t.add(s.as_bytes()),
            other => panic!("unexpected message {other:?}"),
        }
    }
    t
}

pub fn fastwebsockets_receive(rt: &tokio::runtime::Runtime, case: &RecvCase) -> Tally {
    use fastwebsockets::OpCode as Op;
    rt.block_on(async {
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(&case.wire),
            fastwebsockets::Role::Server,
        );
        // Its defaults otherwise: auto-pong, auto-close, masks applied, and
        // text frames validated as UTF-8.
        ws.set_max_message_size(64 << 20);
        let mut t = Tally::default();
        while t.messages < case.expected.messages {
            let frame = ws.read_frame().await.expect("valid frames");
            match frame.opcode {
                Op::Binary | Op::Text => t.add(&frame.payload),
                other => panic!("unexpected opcode {other:?}"),
            }
        }
        t
    })
}

pub const SMALL_FRAMES: usize = 1_000_000;

/// sansproto sending a borrowed payload (`send_binary_slice`), as
/// fastwebsockets' `Payload::Borrowed`, or an owned `Bytes` (`send`).
pub fn ours_encode_small(payload: &Bytes, borrowed: bool) -> (usize, u8) {
    let mut conn = ours(Role::Server);
    let mut sink = Sink::new();
    let mut out = Vec::new();
    for _ in 0..SMALL_FRAMES {
        if borrowed {
            conn.send_binary_slice(payload)
        } else {
            conn.send(Message::Binary(payload.clone()))
        }
        .expect("room to send");
        if conn.buffered_amount() >= IO_CHUNK {
            conn.poll_transmit(&mut out);
            sink.write_all(&out);
            out.clear();
        }
    }
    conn.poll_transmit(&mut out);
    sink.write_all(&out);
    (sink.total, sink.last_write().last().copied().unwrap_or(0))
}

pub fn tungstenite_encode_small(payload: &Bytes) -> (usize, u8) {
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(&[]),
        tungstenite::protocol::Role::Server,
        Some(tungstenite_config()),
    );
    for _ in 0..SMALL_FRAMES {
        ws.write(tungstenite::Message::Binary(payload.clone()))
            .expect("room to send");
    }
    ws.flush().expect("flushed");
    let sink = &ws.get_ref().sink;
    (sink.total, sink.last_write().last().copied().unwrap_or(0))
}

pub fn fastwebsockets_encode_small(rt: &tokio::runtime::Runtime, payload: &Bytes) -> (usize, u8) {
    use fastwebsockets::{Frame, Payload};
    rt.block_on(async {
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(&[]),
            fastwebsockets::Role::Server,
        );
        for _ in 0..SMALL_FRAMES {
            ws.write_frame(Frame::binary(Payload::Borrowed(payload)))
                .await
                .expect("written");
        }
        ws.flush().await.expect("flushed");
        let sink = ws.into_inner().sink;
        (sink.total, sink.last_write().last().copied().unwrap_or(0))
    })
}

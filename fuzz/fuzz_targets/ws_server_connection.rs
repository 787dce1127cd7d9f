//! An open server connection (small limits, streaming on or off) driven by
//! an arbitrary sequence of operations: raw bytes, well-formed masked frames
//! built from arbitrary fields and split anywhere, sends, pings, closes with
//! any code, a virtual clock moved by arbitrary amounts, end of stream, and
//! polling.
//!
//! Checked throughout: nothing panics; once an error is seen, every later
//! `receive` and `receive_eof` returns that same error; at most one
//! `Closed`, the last event, after which the connection is finished and
//! refuses sends; text is UTF-8 (whole messages, and streamed pieces once
//! a message ends); messages and pieces respect the size limits; the bytes
//! sent are whole, unmasked, well-formed frames with nothing but a Pong
//! after a Close.

#![no_main]

use sansproto_fuzz::ws_wire;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sansproto::ws::{
    encode_frame, CloseCode, Config, Connection, Error, Event, Message, MessageKind, OpCode, Role,
    RSV1,
};
use std::time::{Duration, Instant};
use ws_wire::Wire;

const MAX_FRAME: usize = 4 << 10;
const MAX_MESSAGE: usize = 16 << 10;
const MAX_OPS: usize = 512;

#[derive(Arbitrary, Debug)]
struct Input {
    stream_frames: bool,
    auto_pong: bool,
    fragment_size: u16,
    send_queue: u16,
    keepalive: Option<(u16, u16)>,
    close_timeout: Option<u16>,
    /// Feed input by reading into the connection's own buffer instead of
    /// `receive`: `receive_buffer` + `commit_received` (false) or
    /// `receive_buf_mut` + `commit_appended` (true).
    read_into: Option<bool>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Receive(Vec<u8>),
    Frame(Frame),
    SendText(String),
    SendBinary(Vec<u8>),
    SendFilled { len: u16, text: bool },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close { code: u16, reason: String },
    Advance(u32),
    Eof,
    Poll,
}

#[derive(Arbitrary, Debug)]
struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: FrameOpCode,
    mask: [u8; 4],
    payload: Payload,
    /// Feed the frame in two pieces, cut here.
    split: Option<u16>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FrameOpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Text(String),
    Close { code: u16, reason: String },
    Filled { len: u16, byte: u8 },
}

impl Frame {
    fn encode(&self) -> Vec<u8> {
        let opcode = match self.opcode {
            FrameOpCode::Continuation => OpCode::Continuation,
            FrameOpCode::Text => OpCode::Text,
            FrameOpCode::Binary => OpCode::Binary,
            FrameOpCode::Close => OpCode::Close,
            FrameOpCode::Ping => OpCode::Ping,
            FrameOpCode::Pong => OpCode::Pong,
        };
        let payload = match &self.payload {
            Payload::Bytes(b) => b.clone(),
            Payload::Text(s) => s.as_bytes().to_vec(),
            Payload::Close { code, reason } => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(reason.as_bytes());
                p
            }
            Payload::Filled { len, byte } => vec![*byte; usize::from(*len)],
        };
        let rsv = if self.rsv1 { RSV1 } else { 0 };
        let mut out = Vec::with_capacity(payload.len() + 14);
        encode_frame(&mut out, self.fin, rsv, opcode, Some(self.mask), &payload);
        out
    }
}

/// What has been observed so far, and the checks on it.
struct Seen {
    stream: bool,
    sticky: Option<Error>,
    closed: bool,
    /// Streaming mode: the kind and text so far of the message in pieces.
    piece: Option<(MessageKind, Vec<u8>)>,
    wire: Wire,
    read_into: Option<bool>,
}

impl Seen {
    /// Records the connection's error, which may never change once set.
    fn note_error(&mut self, conn: &Connection) {
        if let Some(e) = &self.sticky {
            assert_eq!(conn.error(), Some(e), "the sticky error changed");
        }
        self.sticky = conn.error().cloned();
        if self.closed {
            assert!(conn.is_finished(), "not finished after Closed");
        }
    }

    /// Checks a `receive` or `receive_eof` result against the sticky error.
    fn input_result(&mut self, conn: &Connection, result: Result<(), Error>) {
        if let Some(e) = &self.sticky {
            assert_eq!(result.as_ref(), Err(e), "input after an error");
        }
        if let Err(e) = &result {
            assert_eq!(
                conn.error(),
                Some(e),
                "returned error is not the sticky one"
            );
        }
        self.note_error(conn);
    }

    fn poll(&mut self, conn: &mut Connection) {
        while let Some(event) = conn.poll_event() {
            assert!(!self.closed, "{event:?} after Closed");
            match event {
                Event::Message(m) => {
                    assert!(!self.stream, "whole message in streaming mode");
                    assert!(m.len() <= MAX_MESSAGE, "message of {} bytes", m.len());
                    if let Message::Text(t) = &m {
                        assert!(
                            std::str::from_utf8(t.as_bytes()).is_ok(),
                            "text is not UTF-8"
                        );
                    }
                }
                Event::Fragment {
                    kind,
                    data,
                    first,
                    last,
                } => {
                    assert!(self.stream, "piece outside streaming mode");
                    assert!(data.len() <= MAX_FRAME, "piece of {} bytes", data.len());
                    assert_eq!(first, self.piece.is_none(), "wrong first flag");
                    let (k, mut text) = self.piece.take().unwrap_or((kind, Vec::new()));
                    assert_eq!(k, kind, "message kind changed between pieces");
                    if kind == MessageKind::Text {
                        text.extend_from_slice(&data);
                    }
                    if last {
                        assert!(
                            std::str::from_utf8(&text).is_ok(),
                            "streamed text is not UTF-8"
                        );
                    } else {
                        self.piece = Some((kind, text));
                    }
                }
                Event::Ping(p) | Event::Pong { payload: p, .. } => {
                    assert!(p.len() <= 125, "control payload of {} bytes", p.len());
                }
                Event::Closed(_) => {
                    assert!(conn.is_finished(), "Closed but not finished");
                    self.closed = true;
                }
                other => panic!("unexpected event on an open connection: {other:?}"),
            }
        }
        let mut out = Vec::new();
        conn.poll_transmit(&mut out);
        self.wire.feed(&out);
        self.note_error(conn);
    }

    fn receive(&mut self, conn: &mut Connection, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut rest = data;
        let mut polled = false;
        loop {
            let result = match self.read_into {
                None => conn.receive(rest),
                Some(false) => match conn.receive_buffer(rest.len()) {
                    Some(space) => {
                        assert!(space.len() >= rest.len(), "less space than asked for");
                        space[..rest.len()].copy_from_slice(rest);
                        conn.commit_received(rest.len()).map(|()| rest.len())
                    }
                    None => Ok(0),
                },
                Some(true) => match conn.receive_buf_mut(rest.len()) {
                    Some(buf) => {
                        assert!(
                            buf.capacity() - buf.len() >= rest.len(),
                            "less room than asked for"
                        );
                        buf.extend_from_slice(rest);
                        conn.commit_appended().map(|()| rest.len())
                    }
                    None => Ok(0),
                },
            };
            let taken = *result.as_ref().unwrap_or(&0);
            self.input_result(conn, result.map(|_| ()));
            assert!(taken == 0 || taken == rest.len(), "a partial take");
            rest = &rest[taken..];
            if rest.is_empty() || conn.error().is_some() {
                return;
            }
            // The event queue is full: once polled, the bytes are taken.
            assert!(!polled, "bytes refused after every event was polled");
            self.poll(conn);
            polled = true;
        }
    }
}

fuzz_target!(|input: Input| {
    let mut config = Config::default()
        .with_max_frame_size(MAX_FRAME)
        .with_max_pending_events(8)
        .with_max_message_size(MAX_MESSAGE)
        .with_max_send_queue(256 + usize::from(input.send_queue))
        .with_stream_frames(input.stream_frames)
        .with_auto_pong(input.auto_pong)
        .with_fragment_size(usize::from(input.fragment_size % 2048))
        .with_close_timeout(
            input
                .close_timeout
                .map(|ms| Duration::from_millis(u64::from(ms) + 1)),
        );
    if let Some((interval, timeout)) = input.keepalive {
        config = config.with_keepalive(
            Duration::from_millis(u64::from(interval) + 1),
            Duration::from_millis(u64::from(timeout) + 1),
        );
    }
    let random = sansproto::seeded_random(0);
    let mut conn = Connection::after_handshake(Role::Server, config, None, None, random);
    let mut now = Instant::now();
    conn.handle_timeout(now);

    let mut seen = Seen {
        stream: input.stream_frames,
        sticky: None,
        closed: false,
        piece: None,
        wire: Wire::new(false),
        read_into: input.read_into,
    };

    for op in input.ops.iter().take(MAX_OPS) {
        match op {
            Op::Receive(bytes) => seen.receive(&mut conn, bytes),
            Op::Frame(frame) => {
                let bytes = frame.encode();
                let cut = frame
                    .split
                    .map_or(bytes.len(), |s| usize::from(s) % (bytes.len() + 1));
                let (a, b) = bytes.split_at(cut);
                seen.receive(&mut conn, a);
                seen.receive(&mut conn, b);
            }
            Op::SendText(s) => {
                let r = conn.send_text(s.as_str());
                assert!(!(seen.closed && r.is_ok()), "send accepted after Closed");
            }
            Op::SendBinary(b) => {
                let r = conn.send_binary(b.clone());
                assert!(!(seen.closed && r.is_ok()), "send accepted after Closed");
            }
            Op::SendFilled { len, text } => {
                let len = usize::from(*len);
                let r = if *text {
                    conn.send_text("é".repeat(len / 2))
                } else {
                    conn.send_binary(vec![0xa5; len])
                };
                assert!(!(seen.closed && r.is_ok()), "send accepted after Closed");
            }
            Op::Ping(p) => {
                let r = conn.ping(p.clone());
                assert!(!(seen.closed && r.is_ok()), "ping accepted after Closed");
            }
            Op::Pong(p) => {
                let _ = conn.pong(p.clone());
            }
            Op::Close { code, reason } => {
                let r = conn.close(CloseCode(*code), reason);
                if r.is_ok() {
                    assert!(CloseCode(*code).is_sendable(), "close({code}) accepted");
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(*ms % 600_000));
                conn.handle_timeout(now);
                if let Some(at) = conn.poll_timeout() {
                    assert!(
                        at > now,
                        "timer due at {at:?} left after handle_timeout({now:?})"
                    );
                }
            }
            Op::Eof => {
                let result = conn.receive_eof();
                seen.input_result(&conn, result);
            }
            Op::Poll => seen.poll(&mut conn),
        }
        seen.note_error(&conn);
    }
    seen.poll(&mut conn);
});

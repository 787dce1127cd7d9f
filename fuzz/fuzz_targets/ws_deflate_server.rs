//! A server connection with permessage-deflate negotiated (parameters chosen
//! by the input) receives compressed frames: messages compressed by a client
//! connection with the matching extension, split anywhere, mixed with frames
//! whose RSV1 payload is arbitrary (not valid deflate, or a bomb).
//!
//! Events are polled after every step, or (when `lazy`) only when asked
//! or when the server refuses input, so that input waits behind inflated
//! messages while deadlines pass and the stream ends.
//!
//! Checked: nothing panics; while only well-formed compressed messages have
//! been sent, the server receives exactly what the client sent, also when a
//! deadline passes or the stream ends before they are polled; no message
//! ever exceeds the configured size limit; once an error is seen it stays.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sansproto::ws::{
    encode_frame, Config, Connection, DeflateConfig, Event, ExtensionFactory, ExtensionOffer,
    Message, OpCode, PerMessageDeflate, Role, RSV1,
};
use std::time::{Duration, Instant};

const MAX_MESSAGE: usize = 64 << 10;

#[derive(Arbitrary, Debug)]
struct Input {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_bits: Option<u8>,
    client_bits: Option<u8>,
    fragment_size: u16,
    stream_frames: bool,
    lazy: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The client compresses and sends a message; the wire is cut at `split`.
    Send {
        text: bool,
        data: Vec<u8>,
        repeat: u8,
        split: u16,
    },
    /// A frame with RSV1 and an arbitrary payload.
    Raw {
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
    },
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    Poll,
    /// Time passes: `handle_timeout` this many seconds later.
    Wait(u8),
    /// The stream ends; no more steps.
    Eof,
}

fn offer(input: &Input) -> ExtensionOffer {
    let mut s = String::from("permessage-deflate");
    if input.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if input.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if let Some(b) = input.server_bits {
        s.push_str(&format!("; server_max_window_bits={}", 8 + b % 8));
    }
    if let Some(b) = input.client_bits {
        s.push_str(&format!("; client_max_window_bits={}", 8 + b % 8));
    }
    ExtensionOffer::parse_list(&s).unwrap().remove(0)
}

fuzz_target!(|input: Input| {
    let factory = PerMessageDeflate::new(DeflateConfig::default().with_threshold(0));
    let Some((response, server_ext)) = factory.accept_offer(&[&offer(&input)]) else {
        return;
    };
    let client_ext = factory
        .accept_response(&response)
        .expect("own response is acceptable");
    let config = Config::default()
        .with_max_frame_size(MAX_MESSAGE)
        .with_max_message_size(MAX_MESSAGE)
        .with_stream_frames(input.stream_frames);
    let mut server = Connection::after_handshake(
        Role::Server,
        config,
        None,
        Some(server_ext),
        sansproto::seeded_random(1),
    );
    let client_config = Config::default().with_fragment_size(usize::from(input.fragment_size));
    let mut client = Connection::after_handshake(
        Role::Client,
        client_config,
        None,
        Some(client_ext),
        sansproto::seeded_random(2),
    );

    let mut sent: Vec<Message> = Vec::new();
    let mut received: Vec<u8> = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    let mut clean = true;
    let mut error = None;
    let mut wire = Vec::new();
    let mut now = Instant::now();
    server.handle_timeout(now);

    for op in input.ops.into_iter().take(256) {
        let mut feed: Vec<Vec<u8>> = Vec::new();
        match op {
            Op::Send {
                text,
                data,
                repeat,
                split,
            } => {
                let mut body = data.repeat(usize::from(repeat % 32) + 1);
                body.truncate(MAX_MESSAGE);
                let message = if text {
                    Message::from(String::from_utf8_lossy(&body).into_owned())
                } else {
                    Message::Binary(body.into())
                };
                if client.send(message.clone()).is_err() {
                    continue;
                }
                sent.push(message);
                wire.clear();
                client.poll_transmit(&mut wire);
                let cut = usize::from(split) % (wire.len() + 1);
                feed.push(wire[..cut].to_vec());
                feed.push(wire[cut..].to_vec());
            }
            Op::Raw {
                fin,
                opcode,
                payload,
            } => {
                let opcode = OpCode::from_u8(opcode & 0x0f).unwrap_or(OpCode::Binary);
                let mut frame = Vec::new();
                encode_frame(&mut frame, fin, RSV1, opcode, Some([9, 8, 7, 6]), &payload);
                feed.push(frame);
                clean = false;
            }
            Op::Bytes(b) => {
                feed.push(b);
                clean = false;
            }
            Op::Poll => drain(&mut server, &mut messages, &mut received),
            Op::Wait(secs) => {
                now += Duration::from_secs(u64::from(secs));
                server.handle_timeout(now);
            }
            Op::Eof => {
                if let Err(e) = server.receive_eof() {
                    error.get_or_insert(e);
                }
                break;
            }
        }
        for piece in feed {
            let mut rest = &piece[..];
            while !rest.is_empty() {
                match server.receive(rest) {
                    Ok(taken) => {
                        assert!(taken == 0 || taken == rest.len(), "a partial take");
                        rest = &rest[taken..];
                        if taken == 0 {
                            // The event queue is full: poll, then offer again.
                            drain(&mut server, &mut messages, &mut received);
                        }
                    }
                    Err(e) => {
                        if let Some(first) = &error {
                            assert_eq!(first, &e, "the sticky error changed");
                        }
                        error = Some(e);
                        break;
                    }
                }
            }
        }
        server.handle_timeout(now);
        if !input.lazy {
            drain(&mut server, &mut messages, &mut received);
        }
        if let Some(e) = server.error() {
            if let Some(first) = &error {
                assert_eq!(first, e, "the sticky error changed");
            }
            error = Some(e.clone());
        }
    }
    drain(&mut server, &mut messages, &mut received);
    if clean && error.is_none() && server.error().is_none() {
        assert_eq!(messages, sent, "compressed messages arrive as sent");
    }
});

/// Hands every event to the checks: whole messages, and streamed pieces
/// joined into messages.
fn drain(server: &mut Connection, messages: &mut Vec<Message>, received: &mut Vec<u8>) {
    while let Some(event) = server.poll_event() {
        match event {
            Event::Message(m) => {
                assert!(m.len() <= MAX_MESSAGE);
                messages.push(m);
            }
            Event::Fragment {
                data, last, kind, ..
            } => {
                received.extend_from_slice(&data);
                assert!(received.len() <= MAX_MESSAGE * 2);
                if last {
                    let body = std::mem::take(received);
                    messages.push(match kind {
                        sansproto::ws::MessageKind::Text => {
                            Message::from(String::from_utf8(body).expect("streamed text is UTF-8"))
                        }
                        sansproto::ws::MessageKind::Binary => Message::Binary(body.into()),
                    });
                }
            }
            _ => {}
        }
    }
}

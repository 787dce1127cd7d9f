//! Sockhop 2.x over loopback: JSON lines until the handshake, then binary
//! mode, switched in the middle of a read without losing a byte; remote
//! callbacks matched by id with a `Correlator`, and one timing out.
//!
//! ```text
//! cargo run --example sockhop -- server 127.0.0.1:0     # prints its address
//! cargo run --example sockhop -- client 127.0.0.1:PORT  # prints what it got
//! ```
//!
//! The wire, in `WIRE-FORMATS.md` §4's terms, and where each piece comes
//! from (Daxbot/sockhop):
//!
//! - JSON phase: `\n`-terminated JSON objects `{"type":T,"data":D}`, with
//!   `"id":ID` on a callback request and `"callback_id":ID` on its
//!   response (lib/JSONObjectBuffer.js; `send` and
//!   `_trigger_remote_callback` in lib/SockhopClient.js). A line that is
//!   not such an object is skipped, as Sockhop skips corrupted data.
//! - Handshake (lib/SockhopClient.js `connect`, lib/SockhopHandshake.js):
//!   each side sends a callback request of type `SockhopHandshake`, data
//!   `{"protocol_version":2,"library_version":…,"request_binary_mode":true}`;
//!   the other answers with type `Object`, data `{"allow_binary_mode":…}`.
//!   A side whose handshake is answered with `true` sends
//!   `{"type":"SockhopBinaryModeTransition","data":{}}` and sends binary
//!   from then on; the other side receives binary from the byte after that
//!   line, which may sit in the same read.
//! - Binary mode (§4; lib/ObjectBuffer.js): u32 LE length, adjusted by +1
//!   for the message id byte after it (10 json, 11 json callback request,
//!   12 json callback response, 13 buffer, 14 buffer callback request, 15
//!   buffer callback response); the type name as a u8 length and UTF-8;
//!   the data as a u32 LE length and JSON text or raw bytes; the callback
//!   id as 36 NUL-padded bytes on 11, 12, 14 and 15.
//! - Limits: Sockhop sets none. Here a JSON line holds at most 64 KiB and a
//!   binary payload at most 1 MiB; a peer over either
//!   loses its connection.
//! - Callback ids: Sockhop sends UUIDs (36 characters); this example sends
//!   its `Correlator`'s ids in decimal (any id up to 36 bytes fits the
//!   field) and echoes a peer's id as received.
//! - Buffers travel in binary mode only here (Sockhop base64-encodes them
//!   in JSON mode, README "Sending a buffer").
//!
//! The server echoes plain messages, answers callback requests with
//! `{"echo":data}` (buffers with the same bytes), and never answers a
//! request of type `Ignore`.

mod peer;

use bytes::Bytes;
use peer::{Callback, Data, Event, Message, Peer};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

/// Drives `peer` over `stream` until `on_event` says stop, the peer
/// hangs up, or it breaks the protocol.
fn run(
    stream: &mut TcpStream,
    peer: &mut Peer,
    mut on_event: impl FnMut(&mut Peer, Event, Instant) -> bool,
) -> Result<(), String> {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        peer.handle_timeout(now);
        let mut go_on = true;
        while let Some(event) = peer.poll_event() {
            go_on &= on_event(peer, event, now);
        }
        stream
            .write_all(&peer.take_output())
            .map_err(|e| format!("write: {e}"))?;
        if !go_on {
            return Ok(());
        }
        let wait = peer.poll_timeout().map(|t| {
            t.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        stream.set_read_timeout(wait).map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) if peer.buffered() == 0 => return Ok(()),
            Ok(0) => {
                return Err(format!(
                    "the peer hung up inside a message ({} bytes)",
                    peer.buffered()
                ))
            }
            Ok(n) => peer.receive(chunk.get(..n).unwrap_or_default())?,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// The server's side of one connection.
fn serve_connection(stream: &mut TcpStream, who: &str) -> Result<(), String> {
    let mut peer = Peer::new(Instant::now());
    run(stream, &mut peer, |peer, event, _| {
        let result = match event {
            Event::Message(Message {
                type_name,
                data,
                callback: Callback::Request(id),
            }) => {
                if type_name == "Ignore" {
                    eprintln!("{who}: not answering callback {id}");
                    Ok(())
                } else if let Data::Json(v) = data {
                    peer.respond(&id, "Object", Data::Json(serde_json::json!({ "echo": v })))
                } else {
                    peer.respond(&id, "Buffer", data)
                }
            }
            Event::Message(Message {
                type_name, data, ..
            }) => peer.send(&type_name, data),
            Event::BinaryReceive { buffered } => {
                eprintln!("{who}: receiving binary, {buffered} bytes of it already buffered");
                Ok(())
            }
            other => {
                eprintln!("{who}: {other:?}");
                Ok(())
            }
        };
        result.map_err(|e| eprintln!("{who}: {e}")).is_ok()
    })
}

fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let who = stream
                .peer_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string());
            match serve_connection(&mut stream, &who) {
                Ok(()) => eprintln!("{who}: closed"),
                Err(e) => eprintln!("{who}: dropped: {e}"),
            }
        });
    }
}

/// The scripted client: handshake, then a send, a buffer, a callback that
/// is answered and one that times out.
fn client(addr: &str) -> Result<Vec<String>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut peer = Peer::new(Instant::now());
    let mut lines = Vec::new();
    let mut waiting = None; // echoes and callbacks still to come
    let mut failure = None;
    run(&mut stream, &mut peer, |peer, event, now| {
        let line = match event {
            Event::Handshake { binary: true } => {
                // Queued right behind the transition line: the server
                // switches to binary in the middle of its read.
                let script = (|| -> Result<(), String> {
                    peer.send("String", Data::Json("hi".into()))?;
                    peer.send("Buffer", Data::Buffer(Bytes::from_static(&[1, 2, 3])))?;
                    peer.request(
                        "String",
                        Data::Json("what time".into()),
                        "what time",
                        now,
                        Duration::from_secs(5),
                    )?;
                    peer.request(
                        "Ignore",
                        Data::Json("anyone?".into()),
                        "anyone?",
                        now,
                        Duration::from_millis(300),
                    )?;
                    Ok(())
                })();
                waiting = Some(4);
                failure = script.err();
                "handshake answered: sending binary".to_string()
            }
            Event::Handshake { binary: false } => {
                failure = Some("no binary mode".into());
                return false;
            }
            Event::BinaryReceive { .. } => "the server sends binary".to_string(),
            Event::Message(m) => {
                waiting = waiting.map(|w: usize| w.saturating_sub(1));
                format!("receive {} {}", m.type_name, m.data)
            }
            Event::Reply { id, token, message } => {
                waiting = waiting.map(|w: usize| w.saturating_sub(1));
                format!(
                    "callback {id} ({token:?}) answered: {} {}",
                    message.type_name, message.data
                )
            }
            Event::TimedOut { id, token } => {
                waiting = waiting.map(|w: usize| w.saturating_sub(1));
                format!("callback {id} ({token:?}) timed out")
            }
            Event::Skipped(why) => format!("skipped a line: {why}"),
        };
        lines.push(line);
        failure.is_none() && waiting != Some(0)
    })?;
    match (failure, waiting) {
        (Some(e), _) => Err(e),
        (None, Some(0)) => Ok(lines),
        (None, _) => Err(format!("the server hung up early, after: {lines:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => match TcpListener::bind(addr) {
            Ok(listener) => {
                if let Ok(local) = listener.local_addr() {
                    println!("sockhop on {local}");
                }
                serve(listener);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bind {addr}: {e}");
                ExitCode::FAILURE
            }
        },
        (Some("client"), Some(addr)) => match client(addr) {
            Ok(lines) => {
                lines.iter().for_each(|l| println!("{l}"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("client: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: sockhop server ADDR | client ADDR");
            ExitCode::from(2)
        }
    }
}

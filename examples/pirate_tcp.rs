//! Pirate's TCP driver over loopback: 4-byte length + JSON frames, a server
//! with a session table that can kick a session, and heartbeats with an
//! idle timeout on both sides.
//!
//! ```text
//! cargo run --example pirate_tcp -- server 127.0.0.1:0     # prints its address
//! cargo run --example pirate_tcp -- client 127.0.0.1:PORT  # three scripted sessions
//! ```
//!
//! The wire, in `WIRE-FORMATS.md` §1's terms, and where each piece comes
//! from:
//!
//! - Framing: a u32 big-endian length of the body, then the body, JSON
//!   (§1; Pirate's docs/drivers.md "Example: TCP", whose `_send` writes
//!   `writeUInt32BE(data.length)` and whose `Reader` slices frames and
//!   `JSON.parse`s each). That `Reader` has no limit; here a frame holds at
//!   most [`MAX_FRAME`] bytes, header included, and a peer over it loses
//!   its connection. A frame that is no JSON is logged and skipped, as the
//!   `Reader` does ("Log malformed frame").
//! - Sessions: one per connection, as the driver's `server` calls
//!   `_accept` per `connection` event; the server numbers them from 1 and
//!   keeps them in a table.
//! - Messages: the driver contract fixes none, so these are this example's
//!   own JSON objects, each with a `"type"`. The server sends
//!   `{"type":"welcome","session":N}` on accept, answers
//!   `{"type":"who"}` with `{"type":"sessions","ids":[…]}` and
//!   `{"type":"kick","session":N}` with `{"type":"kicked","session":N}`,
//!   and anything else with `{"type":"error","reason":…}`.
//! - Kick: the kicked session gets `{"type":"kick","reason":…}`, then its
//!   connection is closed (the driver's `_end`: `socket.end()`, a graceful
//!   close after what was written).
//! - Heartbeat: `{"type":"heartbeat"}` every 200 ms from each side
//!   (`prefix::Connection`'s heartbeat), and a connection that hears nothing
//!   for 1 s ends (its idle timeout).

use sansproto::blocking;
use sansproto::prefix::{Config, Connection, Encoder, Event};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Largest frame either side accepts, its 4-byte header included.
pub const MAX_FRAME: usize = 64 * 1024;
const HEARTBEAT: Duration = Duration::from_millis(200);
const IDLE: Duration = Duration::from_secs(1);
const HEARTBEAT_JSON: &[u8] = br#"{"type":"heartbeat"}"#;

/// The heartbeat frame, encoded once (the connection sends it verbatim).
fn heartbeat_frame() -> Vec<u8> {
    let mut frame = Vec::new();
    Encoder::new(&Config::default())
        .encode(&[], HEARTBEAT_JSON, &mut frame)
        .expect("a short frame");
    frame
}

/// 4-byte BE length + body, frames up to [`MAX_FRAME`]; with `heartbeat`,
/// the 200 ms heartbeat; the idle timeout after `idle`.
fn config(heartbeat: bool, idle: Duration) -> Config {
    let builder = Config::builder()
        .max_frame_length(MAX_FRAME)
        .idle_timeout(idle);
    let builder = if heartbeat {
        builder.heartbeat(HEARTBEAT, heartbeat_frame())
    } else {
        builder
    };
    builder.build().expect("valid layout")
}

/// A JSON string, escaped.
fn json_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// A frame's JSON and its `"type"` (empty when it has none).
fn parse(frame: &[u8]) -> Result<(String, Value), String> {
    let value: Value = serde_json::from_slice(frame).map_err(|e| format!("not JSON: {e}"))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok((kind.to_string(), value))
}

/// One connected client in the server's table.
struct Session {
    stream: TcpStream,
    conn: Connection,
    /// Bytes taken from the connection, not yet written.
    out: Vec<u8>,
    /// Set once our side is shut: read and discard until the peer closes
    /// too, or until then.
    lingering: Option<Instant>,
}

/// The server: one thread, every session's machine in one table. `std`
/// has no readiness API, so the loop polls nonblocking sockets and sleeps
/// briefly when nothing moved (a real server would wait in epoll or mio).
fn serve(listener: TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut sessions: BTreeMap<u64, Session> = BTreeMap::new();
    let mut next_id = 1;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        let mut moved = false;
        while let Ok((stream, addr)) = listener.accept() {
            moved = true;
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            let mut conn = Connection::new(config(true, IDLE));
            conn.handle_timeout(now); // starts the timers
            let welcome = format!(r#"{{"type":"welcome","session":{next_id}}}"#);
            let _ = conn.send(welcome.into_bytes());
            eprintln!("session {next_id} opened from {addr}");
            let session = Session {
                stream,
                conn,
                out: Vec::new(),
                lingering: None,
            };
            sessions.insert(next_id, session);
            next_id += 1;
        }
        let mut events = Vec::new();
        for (&id, s) in sessions.iter_mut() {
            moved |= read(id, s, &mut chunk, &mut events, now);
            s.conn.handle_timeout(now);
            while let Some(event) = s.conn.poll_event() {
                events.push((id, event));
            }
        }
        for (id, event) in events {
            on_event(&mut sessions, id, event);
        }
        sessions.retain(|&id, s| {
            // Taken only once the last bytes are written, so a peer that
            // does not read is held to the connection's send queue limit.
            if s.out.is_empty() {
                s.conn.poll_transmit(&mut s.out);
            }
            moved |= write(s);
            keep(id, s, now)
        });
        if !moved {
            let next = sessions
                .values()
                .filter_map(|s| s.conn.poll_timeout())
                .min();
            let nap = next.map_or(Duration::from_millis(5), |t| {
                t.saturating_duration_since(now)
            });
            thread::sleep(nap.clamp(Duration::from_millis(1), Duration::from_millis(5)));
        }
    }
}

/// Feeds what the session's socket has; true if anything arrived.
fn read(
    id: u64,
    s: &mut Session,
    chunk: &mut [u8],
    events: &mut Vec<(u64, Event)>,
    now: Instant,
) -> bool {
    match s.stream.read(chunk) {
        Ok(0) if s.lingering.is_some() => {
            s.lingering = Some(now); // the peer closed: done
            true
        }
        Ok(0) => {
            if let Err(e) = s.conn.receive_eof() {
                eprintln!("session {id}: {e}");
            }
            true
        }
        // Our side is closed: the bytes are discarded.
        Ok(_) if s.lingering.is_some() => true,
        Ok(n) => {
            let data = chunk.get(..n).unwrap_or_default();
            let fed = blocking::feed(&mut s.conn, data, &mut |_, event| events.push((id, event)));
            if let Err(e) = fed {
                eprintln!("session {id}: dropped: {e}");
            }
            true
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => {
            eprintln!("session {id}: {e}");
            s.conn.close();
            s.lingering = Some(now);
            true
        }
    }
}

/// Writes what the socket takes; true if anything went.
fn write(s: &mut Session) -> bool {
    let mut moved = false;
    while !s.out.is_empty() {
        match s.stream.write(&s.out) {
            Ok(n) if n > 0 => {
                s.out.drain(..n);
                moved = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // The peer is gone: nothing more can be sent.
            _ => {
                s.out.clear();
                s.conn.close();
                s.lingering = Some(Instant::now());
                break;
            }
        }
    }
    moved
}

/// Whether the session stays in the table: a finished connection has its
/// last bytes written, its write side shut, and lingers until the peer
/// closes (at most 1 s) so that those bytes are not lost to a reset.
fn keep(id: u64, s: &mut Session, now: Instant) -> bool {
    if !s.conn.is_finished() || !s.out.is_empty() {
        return true;
    }
    match s.lingering {
        None => {
            let _ = s.stream.shutdown(Shutdown::Write);
            s.lingering = Some(now + IDLE);
            true
        }
        Some(until) if now < until => true,
        Some(_) => {
            eprintln!("session {id} closed");
            false
        }
    }
}

/// The server's answer to one event of session `id`.
fn on_event(sessions: &mut BTreeMap<u64, Session>, id: u64, event: Event) {
    let frame = match event {
        Event::Frame(frame) => frame,
        Event::IdleTimeout => {
            return eprintln!("session {id}: nothing heard for {IDLE:?}, closing")
        }
        _ => return,
    };
    let reply = match parse(&frame) {
        Ok((kind, _)) if kind == "heartbeat" => return,
        Ok((kind, _)) if kind == "who" => {
            let open: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| !s.conn.is_finished())
                .map(|(id, _)| id.to_string())
                .collect();
            format!(r#"{{"type":"sessions","ids":[{}]}}"#, open.join(","))
        }
        Ok((kind, msg)) if kind == "kick" => match msg.get("session").and_then(Value::as_u64) {
            Some(target) if target != id && kick(sessions, target, id) => {
                format!(r#"{{"type":"kicked","session":{target}}}"#)
            }
            _ => format!(
                r#"{{"type":"error","reason":{}}}"#,
                json_str("no such session")
            ),
        },
        Ok(_) => format!(
            r#"{{"type":"error","reason":{}}}"#,
            json_str("unknown message")
        ),
        Err(e) => return eprintln!("session {id}: skipped a frame: {e}"),
    };
    if let Some(s) = sessions.get_mut(&id) {
        if let Err(e) = s.conn.send(reply.into_bytes()) {
            eprintln!("session {id}: {}", e.kind());
        }
    }
}

/// Sends session `target` a kick message and closes it; false if no such
/// session is open.
fn kick(sessions: &mut BTreeMap<u64, Session>, target: u64, by: u64) -> bool {
    let Some(s) = sessions.get_mut(&target).filter(|s| !s.conn.is_finished()) else {
        return false;
    };
    let reason = format!("kicked by session {by}");
    let _ = s
        .conn
        .send(format!(r#"{{"type":"kick","reason":{}}}"#, json_str(&reason)).into_bytes());
    // Closed: no more input is taken, what is queued still goes out.
    s.conn.close();
    eprintln!("session {target} {reason}");
    true
}

/// One scripted client connection, driven on its own thread until the
/// server closes it (or `on_frame` closes it): its log lines.
fn session(
    addr: &str,
    name: &str,
    heartbeat: bool,
    mut on_frame: impl FnMut(&mut Connection, &str, &Value, &mut Vec<String>),
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return vec![format!("{name}: connect: {e}")],
    };
    let _ = stream.set_nodelay(true);
    // The silent session's own idle timeout is long: the server's comes first.
    let idle = if heartbeat { IDLE } else { IDLE * 5 };
    let mut conn = Connection::new(config(heartbeat, idle));
    let mut by_us = false;
    let result = blocking::drive(&mut stream, &mut conn, |conn, event| match event {
        Event::Frame(frame) => match parse(&frame) {
            Ok((kind, msg)) => {
                on_frame(conn, &kind, &msg, &mut lines);
                by_us |= conn.is_finished();
            }
            Err(e) => lines.push(format!("{name}: malformed frame: {e}")),
        },
        Event::IdleTimeout => lines.push(format!("{name}: the server went quiet")),
        _ => {}
    });
    match result {
        Ok(None) if by_us => {}
        Ok(None) => lines.push(format!("{name}: closed by the server")),
        Ok(Some(e)) => lines.push(format!("{name}: the server broke the framing: {e}")),
        Err(e) => lines.push(format!("{name}: i/o error: {e}")),
    }
    lines
}

fn send(conn: &mut Connection, json: String) {
    let _ = conn.send(json.into_bytes());
}

/// Three sessions: `b` is kicked by `a`; `a` stays open on heartbeats
/// alone past the idle timeout; `silent` sends nothing and is timed out.
fn client(addr: &str) -> Result<Vec<String>, String> {
    let wait = Duration::from_secs(10);
    let (b_id, b_welcomed) = mpsc::channel();
    let addr_b = addr.to_string();
    let b = thread::spawn(move || {
        session(&addr_b, "b", true, |_, kind, msg, lines| match kind {
            "welcome" => {
                let id = msg["session"].as_u64().unwrap_or(0);
                lines.push(format!("b: welcome, session {id}"));
                let _ = b_id.send(id);
            }
            "kick" => lines.push(format!(
                "b: kicked: {}",
                msg["reason"].as_str().unwrap_or("?")
            )),
            "heartbeat" => {}
            _ => lines.push(format!("b: unexpected {msg}")),
        })
    });
    let target = b_welcomed
        .recv_timeout(wait)
        .map_err(|_| "b was never welcomed")?;
    let (kicked, a_kicked) = mpsc::channel();
    let addr_a = addr.to_string();
    let a = thread::spawn(move || {
        let mut heartbeats = None;
        session(&addr_a, "a", true, |conn, kind, msg, lines| match kind {
            "welcome" => {
                lines.push(format!("a: welcome, session {}", msg["session"]));
                send(conn, r#"{"type":"who"}"#.into());
            }
            "sessions" => {
                lines.push(format!("a: sessions {}", msg["ids"]));
                send(conn, format!(r#"{{"type":"kick","session":{target}}}"#));
            }
            "kicked" => {
                lines.push(format!("a: kicked session {}", msg["session"]));
                heartbeats = Some(0);
                let _ = kicked.send(());
            }
            // Eight server heartbeats (1.6 s) outlast the 1 s idle timeout:
            // ours kept the session open.
            "heartbeat" => match heartbeats.as_mut() {
                Some(n) if *n == 7 => {
                    lines.push("a: still open after 8 heartbeats".into());
                    conn.close();
                }
                Some(n) => *n += 1,
                None => {}
            },
            _ => lines.push(format!("a: unexpected {msg}")),
        })
    });
    a_kicked
        .recv_timeout(wait)
        .map_err(|_| "a never kicked b")?;
    let addr_s = addr.to_string();
    let silent = thread::spawn(move || {
        let start = Instant::now();
        let mut lines = session(&addr_s, "silent", false, |_, kind, msg, lines| {
            if kind == "welcome" {
                lines.push(format!("silent: welcome, session {}", msg["session"]));
            }
        });
        if start.elapsed() >= IDLE.mul_f32(0.9)
            && lines
                .last()
                .is_some_and(|l| l.ends_with("closed by the server"))
        {
            lines.push("silent: that was the server's idle timeout".into());
        }
        lines
    });
    let mut lines = Vec::new();
    for handle in [b, a, silent] {
        lines.extend(handle.join().map_err(|_| "a session thread panicked")?);
    }
    Ok(lines)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => match TcpListener::bind(addr) {
            Ok(listener) => {
                if let Ok(local) = listener.local_addr() {
                    println!("pirate tcp on {local}");
                }
                match serve(listener) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("server: {e}");
                        ExitCode::FAILURE
                    }
                }
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
            eprintln!("usage: pirate_tcp server ADDR | client ADDR");
            ExitCode::from(2)
        }
    }
}

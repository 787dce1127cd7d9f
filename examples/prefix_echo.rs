//! TCP echo over length-prefixed JSON (a 4-byte big-endian length, then the
//! JSON text), on blocking `std::net` sockets, one thread per connection,
//! each connection driven through the generic `Driver` loop.
//!
//! ```text
//! cargo run --example prefix_echo -- server 127.0.0.1:7000
//! cargo run --example prefix_echo -- client 127.0.0.1:7000
//! ```
//!
//! The server echoes every frame back. A peer that claims an oversized
//! length, or hangs up in the middle of a frame, only loses its own
//! connection. The client sends a few JSON messages, checks the echoes and
//! exits 0, or non-zero on a mismatch or error.

use sansproto::blocking;
use sansproto::prefix::{Config, Connection, Event};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// Largest frame either side accepts, header included.
pub const MAX_FRAME: usize = 1 << 20;

/// The transport: 4-byte BE length of the JSON text, 1 MiB frames at most,
/// connections dropped after `idle` without traffic.
pub fn config(idle: Duration) -> Config {
    Config::builder()
        .max_frame_length(MAX_FRAME)
        .idle_timeout(idle)
        .build()
        .expect("valid layout")
}

/// Accepts connections forever, echoing frames on a thread per connection.
pub fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        thread::spawn(move || {
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string());
            let mut conn = Connection::new(config(Duration::from_secs(60)));
            let result = blocking::drive(&mut stream, &mut conn, |conn, event| match event {
                Event::Frame(payload) => {
                    if let Err(e) = conn.send(payload) {
                        eprintln!("{peer}: {e}; closing");
                        conn.close();
                    }
                }
                Event::IdleTimeout => eprintln!("{peer}: idle, closing"),
                other => eprintln!("{peer}: {other:?}"),
            });
            match result {
                Ok(None) => eprintln!("{peer}: closed"),
                Ok(Some(e)) => eprintln!("{peer}: dropped: {e}"),
                Err(e) => eprintln!("{peer}: i/o error: {e}"),
            }
        });
    }
}

/// Sends a few JSON messages and checks that each comes back unchanged.
pub fn client(addr: impl ToSocketAddrs) -> Result<(), String> {
    let messages = [
        r#"{"seq":1,"text":"hello"}"#.to_string(),
        r#"{"seq":2,"list":[1,2,3],"nested":{"ok":true}}"#.to_string(),
        r#"{}"#.to_string(),
        format!(r#"{{"seq":4,"big":"{}"}}"#, "x".repeat(100_000)),
    ];
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let mut conn = Connection::new(config(Duration::from_secs(5)));
    for m in &messages {
        conn.send(m.as_bytes()).map_err(|e| e.to_string())?;
    }
    let mut echoes = Vec::new();
    let mut timed_out = false;
    let failure = blocking::drive(&mut stream, &mut conn, |conn, event| match event {
        Event::Frame(frame) => {
            echoes.push(frame);
            if echoes.len() == messages.len() {
                conn.close();
            }
        }
        Event::IdleTimeout => timed_out = true,
        _ => {}
    })
    .map_err(|e| format!("i/o: {e}"))?;
    if let Some(e) = failure {
        return Err(format!("server broke the framing: {e}"));
    }
    if timed_out {
        return Err(format!(
            "timed out after {} of {} echoes",
            echoes.len(),
            messages.len()
        ));
    }
    if echoes.len() != messages.len() {
        return Err(format!(
            "got {} echoes for {} messages",
            echoes.len(),
            messages.len()
        ));
    }
    for (i, (sent, got)) in messages.iter().zip(&echoes).enumerate() {
        if sent.as_bytes() != &got[..] {
            return Err(format!(
                "echo {i} differs: sent {} bytes, got {}",
                sent.len(),
                got.len()
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => match TcpListener::bind(addr) {
            Ok(listener) => {
                if let Ok(local) = listener.local_addr() {
                    eprintln!("echoing length-prefixed frames on {local}");
                }
                serve(listener);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bind {addr}: {e}");
                ExitCode::FAILURE
            }
        },
        (Some("client"), Some(addr)) => match client(addr.as_str()) {
            Ok(()) => {
                println!("all echoes matched");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("client: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: prefix_echo server ADDR | client ADDR");
            ExitCode::from(2)
        }
    }
}

//! Pomelo's hybrid connector over loopback: a server that shakes hands,
//! answers requests, pushes, beats and kicks, and a scripted client that
//! learns its heartbeat and route dictionary from the handshake.
//!
//! ```text
//! cargo run --example pomelo -- server 127.0.0.1:0 [HEARTBEAT_SECONDS]  # prints its address
//! cargo run --example pomelo -- client 127.0.0.1:PORT                   # prints what happened
//! ```
//!
//! The wire, in `WIRE-FORMATS.md` §3's terms, and where each piece comes
//! from:
//!
//! - Package: type byte (1 handshake, 2 handshake-ack, 3 heartbeat, 4 data,
//!   5 kick), 3-byte big-endian body length, body (§3; pomelo-protocol
//!   `Package`). Framed by `prefix` with the length at offset 1, nothing
//!   stripped (the type byte is read from the frame). A batch is packages
//!   back to back (§3), which the decoder takes as they come. Pomelo sets no
//!   package limit; here a body over [`wire::MAX_BODY`] (64 KiB) ends the connection.
//! - Message, inside a data package: flag byte (bit 0 route compressed,
//!   bits 1–3 type: 0 request, 1 notify, 2 response, 3 push; bit 4 gzip),
//!   the request id of a request or response as LEB128
//!   (`prefix::varint`, at most 5 bytes, 1 ..= 2^31 − 1: Pomelo's client
//!   counts from 1 and its coder treats id 0 as "no id"), the route of a
//!   request, notify or push, then the body (§3; pomelo-protocol
//!   `Message`). A route is a 2-byte big-endian code when compressed, else
//!   1-byte length + UTF-8, read and written by a `prefix` codec with a
//!   1-byte length field. A response has no route (pomelo `coder.js`
//!   `composeResponse`). This example refuses gzip (bit 4) and the unused
//!   bits 5–7, and any message it cannot decode ends the connection.
//! - Handshake: the client sends `{"sys":{"type":…,"version":…},"user":{}}`
//!   (pomelo-jsclient's handshake buffer); the server answers `{"code":200,
//!   "sys":{"heartbeat":N,"dict":{route:code,…},"useDict":true}}`, or
//!   `{"code":501}` when `sys.type` or `sys.version` is missing, and then
//!   closes (pomelo `commands/handshake.js`: CODE_OLD_CLIENT, `sendForce`
//!   then `disconnect`). N is in seconds. The client answers 200 with the
//!   handshake-ack `02 00 00 00`.
//! - States: packages out of turn (data before the ack, a second
//!   handshake) are ignored; a package type the server has no handler for
//!   (5, or unknown) ends the connection (pomelo `common/handler.js`).
//! - Heartbeat: both sides learn N from the handshake (the client from the
//!   reply) and send `03 00 00 00` every N seconds from the ack on
//!   (`Connection::set_heartbeat`); each drops a peer silent for 2 × N
//!   (`set_idle_timeout`; pomelo `commands/heartbeat.js` and its client:
//!   heartbeat timeout = interval × 2). Pomelo's server only answers the
//!   client's heartbeats, and its client sends one N seconds after each it
//!   hears; here both send on their own timer, so a raw client can check
//!   the server's interval. Before the ack the server's idle timeout is the
//!   same 2 × N; the client allows 5 s for the handshake reply. A reply
//!   without a heartbeat (or 0) means none, as for Pomelo's client.
//! - Kick: a kick package with `{"reason":…}` (pomelo `commands/kick.js`),
//!   then the server closes.
//!
//! This server's own routes: `connector.entryHandler.entry` (request,
//! answered `{"code":200}`), `chat.chatHandler.send` (request: answered
//! `{"code":200}`, then its body pushed back on `onChat`),
//! `connector.entryHandler.notify` (notify: its body pushed back on
//! `onNotify`), `connector.entryHandler.never` (request, never answered)
//! and `connector.entryHandler.kick` (request or notify: kicks the sender).
//! A request to another route is answered `{"code":500,…}`; a message to
//! a route code the dictionary lacks is dropped (pomelo `coder.js`). The
//! dictionary gives codes 1 to 4 to the `connector.entryHandler` routes
//! and 0x0102 to `onNotify` (so that the push of `{}` is §3's derived
//! vector), none to `chat.chatHandler.send` and `onChat`, so both route
//! forms cross the wire. The server sends each message it can to a
//! compressed route, the client too. A body that is no JSON counts as
//! `{}`, as pomelo's `coder.js` has it. Each connection is its own session:
//! pushes go back to the connection that caused them. At most
//! [`server::MAX_SESSIONS`] (256) are served at once; one more is closed
//! when accepted.
//!
//! The client's own choices: its request ids come from a `Correlator`
//! starting at 127, so the second takes two LEB128 bytes (`80 01`); a
//! request waits 5 s for its response, the one to
//! `connector.entryHandler.never` 500 ms.

mod client;
mod server;
mod wire;

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

/// The server's heartbeat interval, unless given on the command line.
const HEARTBEAT_SECONDS: u64 = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => {
            let seconds = match args.get(3).map(|s| s.parse::<u64>()) {
                None => HEARTBEAT_SECONDS,
                Some(Ok(s)) if (1..=3600).contains(&s) => s,
                Some(_) => {
                    eprintln!("the heartbeat is 1 to 3600 seconds");
                    return ExitCode::from(2);
                }
            };
            match TcpListener::bind(addr) {
                Ok(listener) => {
                    if let Ok(local) = listener.local_addr() {
                        println!("pomelo on {local}");
                    }
                    server::serve(listener, Duration::from_secs(seconds));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bind {addr}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        (Some("client"), Some(addr)) => match client::run(addr) {
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
            eprintln!("usage: pomelo server ADDR [HEARTBEAT_SECONDS] | client ADDR");
            ExitCode::from(2)
        }
    }
}

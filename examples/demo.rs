//! Demo: a page at `GET /` whose script opens a WebSocket back to this server
//! (on `/echo`) and shows the echoed text and binary messages.
//!
//! The server decides each upgrade: one on another path is answered 404,
//! and one whose `Origin` is present and not the demo's own (the page a
//! browser loaded from this server) is answered 403, so another site's
//! page cannot open a WebSocket here with the visitor's browser. Clients
//! that send no `Origin` (command-line tools, other servers) connect.
//!
//! `cargo run --example demo` (listens on 127.0.0.1:8080; the first argument
//! overrides the address), then open <http://127.0.0.1:8080/>.

use sansproto::ws::{
    Accept, CloseCode, Config, Connection, DeflateConfig, Event, OriginPolicy, Reject,
};
use std::net::TcpListener;
use std::time::Duration;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>sansproto echo</title>
<style>
 body { font: 15px system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; }
 #log { border: 1px solid #ccc; padding: .5rem; min-height: 8rem; white-space: pre-wrap; font-family: monospace; }
 .in { color: #065; } .out { color: #036; } .sys { color: #888; }
</style></head>
<body>
<h1>sansproto WebSocket echo</h1>
<p><input id="text" value="Hello, κόσμε! 👋" size="40">
<button id="send-text">Send text</button>
<button id="send-binary">Send binary</button>
<button id="close">Close</button></p>
<div id="log"></div>
<script>
const log = (cls, msg) => {
  const line = document.createElement('div');
  line.className = cls; line.textContent = msg;
  document.getElementById('log').appendChild(line);
};
const ws = new WebSocket(`ws://${location.host}/echo`);
ws.binaryType = 'arraybuffer';
const sendText = (t) => { ws.send(t); log('out', `text sent: ${t}`); };
const sendBinary = (b) => { ws.send(b); log('out', `binary sent: [${b.join(', ')}]`); };
ws.onopen = () => {
  log('sys', `open (extensions: ${ws.extensions || 'none'})`);
  sendText('Hello, κόσμε! 👋');
  sendBinary(new Uint8Array([0, 1, 2, 253, 254, 255]));
  sendText('echo '.repeat(40).trim());
};
ws.onmessage = (e) => {
  if (typeof e.data === 'string') log('in', `text echo: ${e.data}`);
  else log('in', `binary echo: [${Array.from(new Uint8Array(e.data)).join(', ')}]`);
};
ws.onclose = (e) => log('sys', `closed: code ${e.code} ${e.reason}`);
document.getElementById('send-text').onclick = () => sendText(document.getElementById('text').value);
document.getElementById('send-binary').onclick = () => sendBinary(new Uint8Array([0, 1, 2, 253, 254, 255]));
document.getElementById('close').onclick = () => ws.close(1000, 'bye');
</script>
</body></html>
"#;

/// Logs a line; a closed stdout does not stop the server.
fn log(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    println!("demo listening: open http://{local}/");
    // The page's own origin, under the names a browser on this machine
    // reaches it by.
    let mut origins = vec![format!("http://{local}")];
    if local.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", local.port()));
    }
    let policy = OriginPolicy::allow(origins);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let policy = policy.clone();
        std::thread::spawn(move || {
            let config = Config::default()
                .with_max_message_size(16 << 20)
                .with_keepalive(Duration::from_secs(30), Duration::from_secs(30))
                .with_deflate(DeflateConfig::default());
            let mut conn = Connection::server_with_decision(config);
            let _ = sansproto::blocking::drive(&mut stream, &mut conn, |conn, event| match event {
                Event::Upgrade(request) => {
                    let refused = match policy.check(&request) {
                        Err(forbidden) => Some(forbidden),
                        Ok(()) if request.path() != "/echo" => {
                            Some(Reject::new(404).with_body("no WebSocket here\n"))
                        }
                        Ok(()) => None,
                    };
                    let _ = match refused {
                        Some(refusal) => {
                            let origin = request.origin().unwrap_or("none");
                            log(format_args!(
                                "upgrade on {} from origin {origin} refused: {}",
                                request.request.path, refusal.status
                            ));
                            conn.reject(refusal).map_err(drop)
                        }
                        None => conn.accept(Accept::new()).map_err(drop),
                    };
                }
                Event::HttpRequest(req) => {
                    let _ = match (req.method.as_str(), req.path.as_str()) {
                        ("GET", "/") | ("GET", "/index.html") => conn.send_http_response(
                            200,
                            "OK",
                            &[("Content-Type", "text/html; charset=utf-8")],
                            PAGE.as_bytes(),
                        ),
                        _ => conn.send_http_response(
                            404,
                            "Not Found",
                            &[("Content-Type", "text/plain")],
                            b"not found\n",
                        ),
                    };
                }
                Event::Open(open) => {
                    let path = open.request.map(|r| r.path).unwrap_or_default();
                    log(format_args!("websocket open on {path}"));
                }
                Event::Message(m) => {
                    let refused = conn.send(m).is_err();
                    if refused {
                        let _ = conn.close(CloseCode::POLICY_VIOLATION, "send queue full");
                    }
                }
                Event::Closed(c) => log(format_args!("websocket closed: {} {}", c.code, c.reason)),
                _ => {}
            });
        });
    }
    Ok(())
}

//! Echo server for the Autobahn test suite (`kosoku fuzzingclient`).
//!
//! `cargo run --release --example autobahn_server -- 127.0.0.1:9001`

use sansproto::ws::{Config, Connection, DeflateConfig, Event};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("autobahn echo server on ws://{}", listener.local_addr()?);
    // Compress every message, even the shortest, so every case exercises
    // the compressor.
    let config = Config::default()
        .with_header("Server", "sansproto")
        .map_err(std::io::Error::other)?
        .with_deflate(DeflateConfig::default().with_threshold(0));
    sansproto::blocking::serve(
        listener,
        1024,
        move || Connection::server(config.clone()),
        |conn, event| match event {
            Event::Message(m) => {
                let _ = conn.send(m);
            }
            Event::HttpRequest(_) => {
                let _ = conn.send_http_response(404, "Not Found", &[], b"WebSocket only\n");
            }
            _ => {}
        },
    );
    Ok(())
}

//! A WebSocket client over TLS (`wss://`), with rustls, optionally through
//! an HTTP CONNECT proxy.
//!
//! ```text
//! cargo run -p sansproto-tls --example wss_client -- URL CA.pem [--proxy http://[user:pass@]host:port] [MESSAGE...]
//! ```
//!
//! `CA.pem` is the only certificate trusted (the server's self-signed one,
//! as `wss_server --write-cert` writes it). The client sends each message,
//! then a ping, prints the echoes and the pong, and closes.
//!
//! Through a proxy, TLS runs inside the tunnel: the proxy's CONNECT exchange
//! comes first on the TCP stream, and only once the proxy answers 2xx does
//! the TLS handshake start — one `ProxiedClient` chaining the proxy into
//! TLS into the WebSocket connection, driven by the same loop.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sansproto::ws::proxy::ProxyRequest;
use sansproto::ws::Message;
use sansproto_tls::client::{client_config, run};
use std::io;
use std::net::TcpStream;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || {
        eprintln!(
            "usage: wss_client URL CA.pem [--proxy http://[user:pass@]host:port] [MESSAGE...]"
        );
        std::process::exit(2);
    };
    let (Some(url), Some(ca)) = (args.next(), args.next()) else {
        usage()
    };
    let mut proxy = None;
    let mut messages = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--proxy" => proxy = Some(args.next().unwrap_or_else(|| usage())),
            _ => messages.push(Message::from(arg)),
        }
    }
    if messages.is_empty() {
        messages.push(Message::from("Hello over TLS"));
    }
    let roots = CertificateDer::pem_file_iter(&ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(io::Error::other)?;
    let tls_config = client_config(roots).map_err(io::Error::other)?;
    let dial = match &proxy {
        Some(p) => {
            ProxyRequest::from_url(p, "unused:1")
                .map_err(io::Error::other)?
                .proxy
        }
        None => sansproto::ws::proxy::websocket_target(&url).map_err(io::Error::other)?,
    };
    let stream = TcpStream::connect(&dial)?;
    let report = run(stream, tls_config, &url, proxy.as_deref(), messages)?;
    if let Some(e) = &report.tls_error {
        eprintln!("TLS failed: {e}");
        std::process::exit(1);
    }
    if let Some(r) = &report.refused {
        eprintln!("proxy refused: {} {}", r.status, r.reason);
        std::process::exit(1);
    }
    println!(
        "extension: {}",
        report.extension.as_deref().unwrap_or("none")
    );
    for m in &report.echoes {
        println!("echo: {m:?}");
    }
    println!("pong: {}", report.pong);
    match &report.closed {
        Some(c) => println!("closed: {} {} (clean: {})", c.code, c.reason, c.clean),
        None => println!("closed without a closing handshake"),
    }
    Ok(())
}

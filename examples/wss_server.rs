//! A WebSocket echo server over TLS (`wss://`), with rustls.
//!
//! Both rustls and the WebSocket connection are sans-IO, so one blocking
//! loop per TCP connection drives the two chained: TLS records in, plaintext
//! to the connection, its output through TLS and out.
//!
//! ```text
//! cargo run --example wss_server -- [ADDR] [--cert CERT.pem --key KEY.pem] [--write-cert PATH]
//! ```
//!
//! `ADDR` defaults to 127.0.0.1:9443. Without `--cert`/`--key` a self-signed
//! certificate for `localhost` and `127.0.0.1` is generated at start;
//! `--write-cert PATH` writes it as PEM so that `wss_client` can trust it:
//!
//! ```text
//! cargo run --example wss_server -- --write-cert /tmp/wss.pem &
//! cargo run --example wss_client -- wss://localhost:9443/ /tmp/wss.pem hello
//! ```

mod common;
#[path = "common/tls.rs"]
mod tls;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};
use sansproto::ws::{CloseCode, Config, Connection, DeflateConfig, Event};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use tls::Tls;

/// A self-signed certificate for `names` (DNS names or IP addresses), its
/// private key, and the certificate as PEM.
pub fn self_signed(
    names: &[&str],
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>, String), rcgen::Error> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    Ok((
        certified.cert.der().clone(),
        key.into(),
        certified.cert.pem(),
    ))
}

/// TLS settings for a server presenting `cert` (ring as the crypto provider).
pub fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok(Arc::new(config))
}

/// Serves one accepted TCP connection: TLS, then a WebSocket that echoes
/// every message until the client closes.
pub fn serve(mut stream: TcpStream, tls_config: Arc<ServerConfig>) -> io::Result<()> {
    let session = ServerConnection::new(tls_config).map_err(io::Error::other)?;
    let config = Config::default()
        .with_max_message_size(16 << 20)
        .with_deflate(DeflateConfig::default());
    let mut machine = Tls::new(session, Connection::server(config));
    common::drive(&mut stream, &mut machine, |machine, event| {
        let conn = machine.inner_mut();
        match event {
            Event::HttpRequest(_) => {
                let _ = conn.send_http_response(
                    426,
                    "Upgrade Required",
                    &[("Upgrade", "websocket")],
                    b"this is a WebSocket endpoint\n",
                );
            }
            Event::Message(m) => {
                let refused = conn.send(m).is_err();
                if refused {
                    let _ = conn.close(CloseCode::POLICY_VIOLATION, "send queue full");
                }
            }
            _ => {}
        }
    })
}

fn load(cert: &str, key: &str) -> io::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let cert = CertificateDer::from_pem_file(cert).map_err(io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
    Ok((cert, key))
}

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:9443".to_owned();
    let (mut cert, mut key, mut write_cert) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cert" => cert = args.next(),
            "--key" => key = args.next(),
            "--write-cert" => write_cert = args.next(),
            _ if !arg.starts_with("--") => addr = arg,
            _ => {
                eprintln!(
                    "usage: wss_server [ADDR] [--cert CERT.pem --key KEY.pem] [--write-cert PATH]"
                );
                std::process::exit(2);
            }
        }
    }
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => load(&c, &k)?,
        (None, None) => {
            let (cert, key, pem) =
                self_signed(&["localhost", "127.0.0.1"]).map_err(io::Error::other)?;
            if let Some(path) = write_cert {
                std::fs::write(&path, pem)?;
                println!("self-signed certificate written to {path}");
            }
            (cert, key)
        }
        _ => {
            eprintln!("--cert and --key go together");
            std::process::exit(2);
        }
    };
    let tls_config = server_config(cert, key).map_err(io::Error::other)?;
    let listener = TcpListener::bind(&addr)?;
    println!("wss echo server on wss://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let tls_config = tls_config.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, tls_config) {
                eprintln!("connection ended: {e}");
            }
        });
    }
    Ok(())
}

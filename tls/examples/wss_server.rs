//! A WebSocket echo server over TLS (`wss://`), with rustls.
//!
//! Both rustls and the WebSocket connection are sans-IO, so one blocking
//! loop per TCP connection drives the two chained: TLS records in, plaintext
//! to the connection, its output through TLS and out.
//!
//! ```text
//! cargo run -p sansproto-tls --example wss_server -- [ADDR] [--cert CERT.pem --key KEY.pem] [--write-cert PATH]
//! ```
//!
//! `ADDR` defaults to 127.0.0.1:9443. Without `--cert`/`--key` a self-signed
//! certificate for `localhost` and `127.0.0.1` is generated at start;
//! `--write-cert PATH` writes it as PEM so that `wss_client` can trust it:
//!
//! ```text
//! cargo run -p sansproto-tls --example wss_server -- --write-cert /tmp/wss.pem &
//! cargo run -p sansproto-tls --example wss_client -- wss://localhost:9443/ /tmp/wss.pem hello
//! ```

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sansproto_tls::server::{self_signed, serve, server_config};
use std::io;
use std::net::TcpListener;

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

//! The `wss_server` and `wss_client` examples talk to each other over TLS
//! on loopback, directly and through a CONNECT proxy, with a self-signed
//! certificate generated here (rcgen) as the client's only root.

mod common;

use common::connect_proxy;
use sansproto::ws::{CloseCode, Message};
use sansproto_tls::{client as wss_client, server as wss_server};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

/// A TLS echo server for `names`, accepting `connections` connections, and
/// a client configuration that trusts its certificate alone.
fn server(names: &[&str], connections: usize) -> (SocketAddr, Arc<rustls::ClientConfig>) {
    let (cert, key, pem) = wss_server::self_signed(names).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let server_config = wss_server::server_config(cert.clone(), key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let config = server_config.clone();
            thread::spawn(move || wss_server::serve(stream.unwrap(), config));
        }
    });
    (addr, wss_client::client_config(vec![cert]).unwrap())
}

fn messages() -> Vec<Message> {
    vec![
        Message::from("hello over TLS"),
        Message::from(vec![0u8, 1, 2, 253, 254, 255]),
        Message::from("x".repeat(100_000)),
    ]
}

fn check(report: &wss_client::Report) {
    assert_eq!(report.echoes, messages());
    assert!(report.pong);
    assert!(report.refused.is_none());
    assert!(report.tls_error.is_none());
    // Both examples offer and accept permessage-deflate.
    assert_eq!(report.extension.as_deref(), Some("permessage-deflate"));
    let closed = report.closed.as_ref().expect("closing handshake");
    assert_eq!((closed.code, closed.clean), (CloseCode::NORMAL, true));
}

#[test]
fn client_and_server_examples_over_tls() {
    let (addr, client_config) = server(&["localhost", "127.0.0.1"], 2);
    for url in [
        format!("wss://localhost:{}/echo", addr.port()),
        format!("wss://127.0.0.1:{}/echo", addr.port()),
    ] {
        let stream = TcpStream::connect(addr).unwrap();
        let report = wss_client::run(stream, client_config.clone(), &url, None, messages())
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        check(&report);
    }
}

#[test]
fn the_client_refuses_a_certificate_for_another_name() {
    let (addr, client_config) = server(&["other.example"], 1);
    let stream = TcpStream::connect(addr).unwrap();
    let url = format!("wss://localhost:{}/", addr.port());
    let report = wss_client::run(stream, client_config, &url, None, messages()).unwrap();
    assert!(
        matches!(
            report.tls_error,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{:?}",
        report.tls_error
    );
    assert!(report.echoes.is_empty());
    assert!(report.extension.is_none(), "the WebSocket never opened");
}

#[test]
fn tls_inside_a_connect_tunnel() {
    let (addr, client_config) = server(&["localhost"], 1);
    let proxy = connect_proxy::connect_proxy(Some("Basic dXNlcjpwYXNz"));
    // The proxy dials `localhost`; TLS checks the certificate against the
    // URL's name, end to end through the tunnel.
    let stream = TcpStream::connect(proxy).unwrap();
    let report = wss_client::run(
        stream,
        client_config,
        &format!("wss://localhost:{}/", addr.port()),
        Some(&format!("http://user:pass@{proxy}")),
        messages(),
    )
    .unwrap();
    check(&report);
}

#[test]
fn a_refused_tunnel_never_starts_tls() {
    let (addr, client_config) = server(&["localhost"], 1);
    let proxy = connect_proxy::connect_proxy(Some("Basic dXNlcjpwYXNz"));
    let stream = TcpStream::connect(proxy).unwrap();
    let report = wss_client::run(
        stream,
        client_config,
        &format!("wss://localhost:{}/", addr.port()),
        Some(&format!("http://{proxy}")),
        messages(),
    )
    .unwrap();
    assert_eq!(report.refused.map(|r| r.status), Some(407));
    assert!(report.echoes.is_empty() && report.closed.is_none());
}

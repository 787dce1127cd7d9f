//! `wss://` through the tokio adapter: the caller's tokio-rustls connector
//! wraps the TCP connection (straight to the server, or the tunnel of a
//! CONNECT proxy), with a self-signed certificate as the only root.

mod common;

use common::connect_proxy::connect_proxy;
use rustls::pki_types::ServerName;
use sansproto::tokio::WebSocket;
use sansproto::ws::{CloseCode, Config, DeflateConfig, Message};
use sansproto_tls::{client as wss_client, server as wss_server};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A tokio TLS echo server for `localhost`; returns its address and a
/// connector that trusts its certificate alone.
async fn tls_echo_server() -> (SocketAddr, TlsConnector) {
    let (cert, key, _) = wss_server::self_signed(&["localhost"]).unwrap();
    let acceptor = TlsAcceptor::from(wss_server::server_config(cert.clone(), key).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let tls = acceptor.accept(tcp).await.unwrap();
                let config = Config::default().with_deflate(DeflateConfig::default());
                let mut ws = WebSocket::accept(tls, config).await.unwrap();
                while let Some(Ok(message)) = ws.next().await {
                    ws.send(message).await.unwrap();
                }
            });
        }
    });
    let client = wss_client::client_config(vec![cert]).unwrap();
    (addr, TlsConnector::from(client))
}

async fn echo_over_wss(addr: SocketAddr, connector: TlsConnector, proxy: Option<&str>) {
    let url = format!("wss://localhost:{}/echo", addr.port());
    let config = Config::default().with_deflate(DeflateConfig::default());
    let mut ws = WebSocket::connect_url_with(&url, proxy, config, |tcp, url| {
        let name = ServerName::try_from(url.host.clone()).map_err(std::io::Error::other);
        async move { connector.connect(name?, tcp).await }
    })
    .await
    .unwrap();
    for message in [
        Message::from("hello over TLS"),
        Message::from(vec![0u8, 1, 2, 253, 254, 255]),
        Message::from("x".repeat(100_000)),
    ] {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), message);
    }
    // permessage-deflate was negotiated and used both ways.
    let stats = ws.connection().stats();
    assert!(stats.compression_tx.messages >= 1 && stats.compression_rx.messages >= 1);
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
}

#[tokio::test]
async fn wss_straight_to_the_server() {
    let (addr, connector) = tls_echo_server().await;
    echo_over_wss(addr, connector, None).await;
}

#[tokio::test]
async fn wss_through_a_connect_proxy() {
    let (addr, connector) = tls_echo_server().await;
    let proxy = connect_proxy(None);
    echo_over_wss(addr, connector, Some(&format!("http://{proxy}"))).await;
}

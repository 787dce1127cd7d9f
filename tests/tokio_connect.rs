//! Client connections from a URL through the tokio adapter: straight to
//! the server, through an HTTP CONNECT proxy (with credentials from the
//! proxy URL), a refusing proxy, and a layer put on by the caller.
#![cfg(feature = "tokio")]

use sansproto::tokio::{Error, WebSocket};
use sansproto::ws::proxy::{ProxyError, SetupError};
use sansproto::ws::{CloseCode, Config, Message};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server; returns its address.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut ws = WebSocket::accept(stream, Config::default()).await.unwrap();
                while let Some(Ok(message)) = ws.next().await {
                    ws.send(message).await.unwrap();
                }
            });
        }
    });
    addr
}

/// A CONNECT proxy that answers every request with `status`, opening the
/// tunnel on 200; returns its address and the request heads it read.
async fn connect_proxy(status: u16) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    head.push(client.read_u8().await.unwrap());
                }
                let head = String::from_utf8(head).unwrap();
                let target = head.split(' ').nth(1).unwrap().to_owned();
                seen.lock().unwrap().push(head);
                if status != 200 {
                    let reply = format!("HTTP/1.1 {status} No\r\nContent-Length: 0\r\n\r\n");
                    client.write_all(reply.as_bytes()).await.unwrap();
                    return;
                }
                let mut server = TcpStream::connect(target).await.unwrap();
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (addr, heads)
}

async fn echo_once(ws: &mut WebSocket<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>) {
    for i in 0..3 {
        let sent = Message::from(format!("message {i}"));
        ws.send(sent.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), sent);
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
}

#[tokio::test]
async fn a_ws_url_connects_straight_to_the_server() {
    let server = echo_server().await;
    let url = format!("ws://{server}/echo");
    let mut ws = WebSocket::connect_url(&url, None, Config::default())
        .await
        .unwrap();
    echo_once(&mut ws).await;
}

#[tokio::test]
async fn a_proxy_tunnels_the_connection_with_the_credentials_of_its_url() {
    let server = echo_server().await;
    let (proxy, heads) = connect_proxy(200).await;
    let url = format!("ws://{server}/echo");
    let proxy_url = format!("http://alice:s3cret@{proxy}");
    let mut ws = WebSocket::connect_url(&url, Some(&proxy_url), Config::default())
        .await
        .unwrap();
    echo_once(&mut ws).await;
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].starts_with(&format!("CONNECT {server} HTTP/1.1\r\n")));
    // base64("alice:s3cret")
    assert!(heads[0].contains("Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n"));
}

#[tokio::test]
async fn a_refusing_proxy_is_reported_with_its_status() {
    let server = echo_server().await;
    let (proxy, _) = connect_proxy(407).await;
    let url = format!("ws://{server}/echo");
    let proxy_url = format!("http://{proxy}");
    let error = WebSocket::connect_url(&url, Some(&proxy_url), Config::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Proxy(ProxyError::Status(407))),
        "{error:?}"
    );
}

#[tokio::test]
async fn bad_urls_are_setup_errors() {
    let wss = WebSocket::connect_url("wss://example.com/", None, Config::default()).await;
    assert!(matches!(
        wss,
        Err(Error::Setup(SetupError::WebSocketUrl(_)))
    ));
    let http = WebSocket::connect_url("http://example.com/", None, Config::default()).await;
    assert!(matches!(
        http,
        Err(Error::Setup(SetupError::WebSocketUrl(_)))
    ));
    let proxy = WebSocket::connect_url("ws://example.com/", Some("socks5://p"), Config::default());
    assert!(matches!(
        proxy.await,
        Err(Error::Setup(SetupError::ProxyUrl(_)))
    ));
}

#[tokio::test]
async fn the_callers_layer_wraps_the_tunnel() {
    let server = echo_server().await;
    let (proxy, _) = connect_proxy(200).await;
    let url = format!("ws://{server}/echo?x=1");
    let wrapped = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&wrapped);
    let mut ws = WebSocket::connect_url_with(
        &url,
        Some(&format!("http://{proxy}")),
        Config::default(),
        |tcp, url| {
            *seen.lock().unwrap() = Some((url.host.clone(), url.port, url.target.clone()));
            async move { Ok(tcp) }
        },
    )
    .await
    .unwrap();
    echo_once(&mut ws).await;
    let expected = (
        server.ip().to_string(),
        server.port(),
        "/echo?x=1".to_owned(),
    );
    assert_eq!(wrapped.lock().unwrap().clone(), Some(expected));
}

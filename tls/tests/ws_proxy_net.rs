//! A WebSocket client through a real CONNECT proxy over loopback: the proxy
//! and the echo server are written here with std::net threads, and the
//! client is the crate's `ProxiedClient` under `sansproto::blocking::drive`.

mod common;

use bytes::Bytes;
use common::connect_proxy::connect_proxy;
use sansproto::ws::proxy::{ProxiedClient, ProxiedError, ProxiedEvent, ProxyError, ProxyEvent};
use sansproto::ws::{CloseCode, Config, Connection, Event, Message};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

/// A WebSocket echo server on a loopback port, one thread per connection.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut conn = Connection::server(Config::default());
                let _ = sansproto::blocking::drive(&mut stream, &mut conn, |conn, event| {
                    if let Event::Message(m) = event {
                        conn.send(m).unwrap();
                    }
                });
            });
        }
    });
    addr
}

/// Runs a proxied client against `ws_url` through `proxy_url`; on open it
/// sends a text and a binary message and a ping, and closes once both
/// echoes and the pong are back. Returns every event and the final error.
fn run_client(proxy_url: &str, ws_url: &str) -> (Vec<ProxiedEvent>, Option<ProxiedError>) {
    let mut client = ProxiedClient::from_urls(proxy_url, ws_url, Config::default()).unwrap();
    let mut stream = TcpStream::connect(client.proxy().address()).unwrap();
    let mut events = Vec::new();
    let mut replies = 0;
    sansproto::blocking::drive(&mut stream, &mut client, |client, event| {
        match &event {
            ProxiedEvent::Ws(Event::Open(_)) => {
                client.send_text("through the tunnel").unwrap();
                client.send_binary(vec![0u8, 1, 2, 254, 255]).unwrap();
                client.ping("are you there").unwrap();
            }
            ProxiedEvent::Ws(Event::Message(_) | Event::Pong { .. }) => {
                replies += 1;
                if replies == 3 {
                    client.close(CloseCode::NORMAL, "done").unwrap();
                }
            }
            _ => {}
        }
        events.push(event);
    })
    .unwrap();
    (events, client.error())
}

#[test]
fn text_binary_ping_and_close_through_a_connect_proxy() {
    let echo = echo_server();
    let proxy = connect_proxy(Some("Basic dXNlcjpwYXNz"));
    let (events, error) = run_client(
        &format!("http://user:pass@{proxy}"),
        &format!("ws://{echo}/echo"),
    );
    assert_eq!(error, None);
    let ws: Vec<Event> = events
        .iter()
        .cloned()
        .filter_map(ProxiedEvent::into_ws)
        .collect();
    assert!(
        matches!(
            events.first(),
            Some(ProxiedEvent::Proxy(ProxyEvent::Connected(r))) if r.status == 200
        ),
        "{events:?}"
    );
    // The server answers the ping as it reads it, before its application
    // echoes the messages read with it: the pong may come first.
    let [Event::Open(_), middle @ .., Event::Closed(closed)] = ws.as_slice() else {
        panic!("{events:?}");
    };
    let messages: Vec<&Message> = middle
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        [
            &Message::from("through the tunnel"),
            &Message::Binary(Bytes::from_static(&[0, 1, 2, 254, 255]))
        ]
    );
    let pongs: Vec<_> = middle
        .iter()
        .filter(|e| !matches!(e, Event::Message(_)))
        .collect();
    assert_eq!(
        pongs,
        [&Event::Pong {
            payload: Bytes::from_static(b"are you there"),
            matched: true
        }]
    );
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert!(closed.clean && !closed.by_peer);
}

#[test]
fn missing_or_wrong_credentials_get_407() {
    let echo = echo_server();
    let proxy = connect_proxy(Some("Basic dXNlcjpwYXNz"));
    for proxy_url in [
        format!("http://{proxy}"),
        format!("http://user:wrong@{proxy}"),
    ] {
        let (events, error) = run_client(&proxy_url, &format!("ws://{echo}/"));
        assert_eq!(
            error,
            Some(ProxiedError::Proxy(ProxyError::Status(407))),
            "{proxy_url}"
        );
        let [ProxiedEvent::Proxy(ProxyEvent::Refused(r))] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert_eq!(r.status, 407);
        assert_eq!(
            r.headers.get_str("Proxy-Authenticate"),
            Some("Basic realm=\"test proxy\"")
        );
        assert_eq!(&r.body[..], b"credentials required");
    }
}

#[test]
fn an_unreachable_target_gets_502() {
    // A port nothing listens on: bound, then released.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = connect_proxy(None);
    let (events, error) = run_client(&format!("http://{proxy}"), &format!("ws://{closed}/"));
    assert_eq!(error, Some(ProxiedError::Proxy(ProxyError::Status(502))));
    let [ProxiedEvent::Proxy(ProxyEvent::Refused(r))] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(r.status, 502);
    assert_eq!(r.body, format!("cannot connect to {closed}").as_bytes());
}

/// Starts the `demo` example (built by `cargo test` beside the tests) on a
/// free loopback port and returns it with its address.
fn demo_server() -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let demo = profile_dir
        .join("examples")
        .join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    assert!(demo.exists(), "{} not built", demo.display());
    let mut child = std::process::Command::new(demo)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Keep reading what the demo logs, so its prints never hit a closed pipe.
    thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    // "demo listening: open http://127.0.0.1:PORT/"
    let addr = line
        .trim()
        .trim_end_matches('/')
        .rsplit("http://")
        .next()
        .unwrap()
        .to_owned();
    (child, addr)
}

#[test]
fn the_demo_server_echoes_through_a_connect_proxy() {
    let (mut demo, addr) = demo_server();
    let proxy = connect_proxy(None);
    let (events, error) = run_client(&format!("http://{proxy}"), &format!("ws://{addr}/echo"));
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(error, None);
    let ws: Vec<Event> = events
        .into_iter()
        .filter_map(ProxiedEvent::into_ws)
        .collect();
    let messages: Vec<&Message> = ws
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        [
            &Message::from("through the tunnel"),
            &Message::Binary(Bytes::from_static(&[0, 1, 2, 254, 255]))
        ]
    );
    assert!(ws.contains(&Event::Pong {
        payload: Bytes::from_static(b"are you there"),
        matched: true
    }));
    let Some(Event::Closed(closed)) = ws.last() else {
        panic!("{ws:?}");
    };
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert!(closed.clean);
}

/// Sends one upgrade request to the demo and returns the status line of
/// its answer.
fn demo_answer(addr: &str, path: &str, origin: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the demo closed without answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_demo_decides_each_upgrade_by_origin_and_path() {
    let (mut demo, addr) = demo_server();
    let own = format!("http://{addr}");
    let answers = [
        demo_answer(&addr, "/echo", Some("http://evil.example")),
        demo_answer(&addr, "/other", None),
        demo_answer(&addr, "/other", Some(&own)),
        demo_answer(&addr, "/echo", None),
        demo_answer(&addr, "/echo", Some(&own)),
    ];
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(
        answers,
        [
            "HTTP/1.1 403 Forbidden",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 101 Switching Protocols",
            "HTTP/1.1 101 Switching Protocols",
        ]
    );
}

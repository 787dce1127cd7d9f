//! A CONNECT proxy for tests, on a loopback port, written with std::net
//! threads: it parses `CONNECT host:port`, checks `Proxy-Authorization`
//! when configured, connects to the target, answers `200 Connection
//! established` and splices bytes both ways.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::Duration;

/// A CONNECT proxy on a loopback port. With `credentials` set, requests
/// must carry exactly that `Proxy-Authorization` value.
pub fn connect_proxy(credentials: Option<&'static str>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            thread::spawn(move || tunnel(stream, credentials));
        }
    });
    addr
}

/// Serves one CONNECT request: 407 without the right credentials, 502 when
/// the target cannot be reached, otherwise 200 and bytes spliced both ways.
fn tunnel(mut client: TcpStream, credentials: Option<&str>) {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        assert!(head.len() < 8192, "request head too long");
    };
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut fields);
    assert!(request.parse(&head[..end]).unwrap().is_complete());
    assert_eq!(request.method, Some("CONNECT"));
    let target = request.path.unwrap().to_owned();
    let host = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Host"))
        .map(|h| h.value);
    assert_eq!(host, Some(target.as_bytes()), "Host names the target");
    let authorization = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Proxy-Authorization"))
        .map(|h| h.value);
    let reply = |client: &mut TcpStream, status: &str, extra: &str, body: &str| {
        let reply = format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(reply.as_bytes());
        linger_close(client);
    };
    if let Some(expected) = credentials {
        if authorization != Some(expected.as_bytes()) {
            return reply(
                &mut client,
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"test proxy\"\r\n",
                "credentials required",
            );
        }
    }
    // Names resolve locally (the tests only use `localhost` and addresses).
    let upstream = target.to_socket_addrs().ok().and_then(|mut addrs| {
        addrs.find_map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).ok())
    });
    let Some(mut upstream) = upstream else {
        return reply(
            &mut client,
            "502 Bad Gateway",
            "",
            &format!("cannot connect to {target}"),
        );
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    client.set_read_timeout(None).unwrap();
    // Anything the client sent behind its request goes on to the target.
    upstream.write_all(&head[end..]).unwrap();
    let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// Half-closes and drains the stream briefly, so the reply is not lost to
/// a reset.
fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

//! Byte vectors for the CONNECT exchange: the request's exact bytes, and
//! proxy replies fed whole, byte by byte, split at every point, and with
//! the tunnel's first bytes right behind them.

use bytes::Bytes;
use sansproto::ws::proxy::{
    Credentials, ProxiedClient, ProxiedError, ProxiedEvent, Proxy, ProxyConfig, ProxyError,
    ProxyEvent, ProxyRequest, SetupError,
};
use sansproto::ws::FieldError;
use sansproto::ws::{
    ClientRequest, Config, Connection, Event, HttpResponse, MalformedHttp, Message,
};

fn request_bytes(r: ProxyRequest) -> String {
    let mut p = Proxy::new(r, ProxyConfig::default()).unwrap();
    let mut out = Vec::new();
    p.poll_transmit(&mut out);
    // Queued once: a second call gives nothing.
    assert_eq!(p.poll_transmit(&mut Vec::new()), 0);
    String::from_utf8(out).unwrap()
}

#[test]
fn connect_request_without_credentials() {
    let r = ProxyRequest::from_url("http://proxy.example:3128", "example.com:443").unwrap();
    assert_eq!(r.proxy, "proxy.example:3128");
    assert_eq!(r.credentials, None);
    assert_eq!(
        request_bytes(r),
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    );
}

#[test]
fn connect_request_with_credentials_from_the_url() {
    let r =
        ProxyRequest::from_url("http://user:pass@proxy.example:3128", "example.com:80").unwrap();
    assert_eq!(
        request_bytes(r),
        "CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\
         Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"
    );
}

#[test]
fn connect_request_with_caller_headers_in_order() {
    let r = ProxyRequest::new("10.1.2.3:8080", "[2001:db8::1]:9001")
        .with_credentials("user", "pass")
        .with_header("User-Agent", "sansproto-test")
        .unwrap()
        .with_header("Proxy-Connection", "keep-alive")
        .unwrap();
    assert_eq!(
        request_bytes(r),
        "CONNECT [2001:db8::1]:9001 HTTP/1.1\r\nHost: [2001:db8::1]:9001\r\n\
         Proxy-Authorization: Basic dXNlcjpwYXNz\r\nUser-Agent: sansproto-test\r\n\
         Proxy-Connection: keep-alive\r\n\r\n"
    );
}

#[test]
fn proxy_urls() {
    let r = ProxyRequest::from_url("http://proxy", "h:1").unwrap();
    assert_eq!(r.proxy, "proxy:80");
    let r = ProxyRequest::from_url("HTTP://[::1]:3128/", "h:1").unwrap();
    assert_eq!(r.proxy, "[::1]:3128");
    // Escapes are decoded; a password may hold '@' and ':' when escaped.
    let r = ProxyRequest::from_url("http://us%65r:p%40s%3As@proxy:1", "h:1").unwrap();
    assert_eq!(
        r.credentials,
        Some(Credentials {
            user: "user".into(),
            password: "p@s:s".into()
        })
    );
    // A user without a password sends an empty one.
    let r = ProxyRequest::from_url("http://alice@proxy:1", "h:1").unwrap();
    assert_eq!(
        r.credentials.as_ref().unwrap().basic().as_deref(),
        Ok("Basic YWxpY2U6")
    );
    // The password never shows in debug output.
    assert!(!format!("{r:?}").contains("p@s"));
    let r = ProxyRequest::from_url("http://u:secret@proxy:1", "h:1").unwrap();
    assert!(!format!("{r:?}").contains("secret"), "{r:?}");

    for bad in [
        "https://proxy:1",
        "socks5://proxy:1",
        "proxy:3128",
        "http://",
        "http://proxy:0",
        "http://proxy:99999",
        "http://proxy:1/path",
        "http://proxy:1?q",
        "http://pro xy:1",
        "http://u:%zz@proxy:1",
        "http://[::1:3128",
        "http://evil\\@proxy:1",
    ] {
        assert!(
            matches!(
                ProxyRequest::from_url(bad, "h:1"),
                Err(SetupError::ProxyUrl(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn unusable_request_fields_are_refused_before_anything_is_sent() {
    let new = |r: ProxyRequest| Proxy::new(r, ProxyConfig::default()).map(|_| ());
    for target in [
        "example.com",
        "example.com:",
        "a b:1",
        "h:1\r\nX: y",
        ":80",
        "[::1]",
    ] {
        assert_eq!(
            new(ProxyRequest::new("p:1", target)),
            Err(SetupError::Target(target.into())),
            "{target:?}"
        );
    }
    let base = || ProxyRequest::new("p:1", "h:1");
    // Refused by the call that supplies the field...
    for (name, value, err) in [
        ("X-A", "1\r\nInjected: 2", FieldError::Value("X-A".into())),
        ("Bad Name", "1", FieldError::Name("Bad Name".into())),
        ("", "1", FieldError::Name("".into())),
        ("Host", "other:1", FieldError::Reserved("Host".into())),
        (
            "proxy-authorization",
            "x",
            FieldError::Reserved("proxy-authorization".into()),
        ),
    ] {
        assert_eq!(
            base().with_header(name, value).map(|_| ()),
            Err(SetupError::Field(err.clone())),
            "{name:?}"
        );
        // ...and by the request, when set straight into the public field.
        let mut r = base();
        r.headers.push((name.into(), value.into()));
        assert_eq!(new(r), Err(SetupError::Field(err)), "{name:?}");
    }
    assert_eq!(
        new(base().with_credentials("a:b", "c")),
        Err(SetupError::Field(FieldError::UserName))
    );
    // CR and LF in a password are harmless: it travels in base64.
    assert!(new(base().with_credentials("a", "b\r\nc")).is_ok());
}

/// What a fresh `Proxy` reports for `pieces`, fed in order, then end of
/// stream when `eof`.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<ProxyEvent>,
    error: Option<ProxyError>,
    tunnel: Bytes,
}

fn feed(pieces: &[&[u8]], eof: bool) -> Outcome {
    let mut p = Proxy::new(ProxyRequest::new("p:1", "h:1"), ProxyConfig::default()).unwrap();
    let mut error = None;
    let mut events = Vec::new();
    let mut tunnel = Vec::new();
    for piece in pieces {
        if let Err(e) = p.receive(piece) {
            // Sticky: the same error from every later call.
            assert!(error.is_none() || error.as_ref() == Some(&e));
            error = Some(e);
        }
        events.extend(std::iter::from_fn(|| p.poll_event()));
        tunnel.extend_from_slice(&p.take_buffered());
    }
    if eof {
        if let Err(e) = p.receive_eof() {
            error = Some(e);
        }
        events.extend(std::iter::from_fn(|| p.poll_event()));
    }
    if let Some(e) = &error {
        assert_eq!(p.error(), Some(e));
        assert!(p.is_finished());
    }
    Outcome {
        events,
        error,
        tunnel: tunnel.into(),
    }
}

/// Feeds `bytes` whole, byte by byte, and split in two at every point, and
/// checks that every way gives `expected`.
fn check_every_split(bytes: &[u8], eof: bool, expected: &Outcome) {
    assert_eq!(&feed(&[bytes], eof), expected, "whole");
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(&feed(&singles, eof), expected, "byte by byte");
    for i in 0..=bytes.len() {
        assert_eq!(
            &feed(&[&bytes[..i], &bytes[i..]], eof),
            expected,
            "split at {i}"
        );
    }
}

fn response(status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    HttpResponse {
        status,
        reason: reason.into(),
        headers: sansproto::ws::Headers(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), Bytes::copy_from_slice(v.as_bytes())))
                .collect(),
        ),
        body: Bytes::copy_from_slice(body),
    }
}

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

#[test]
fn reply_200_opens_the_tunnel() {
    let expected = Outcome {
        events: vec![ProxyEvent::Connected(response(
            200,
            "Connection established",
            &[],
            b"",
        ))],
        error: None,
        tunnel: Bytes::new(),
    };
    check_every_split(ESTABLISHED, false, &expected);
    // The end of the stream after the tunnel opened is not the proxy's
    // business.
    check_every_split(ESTABLISHED, true, &expected);
}

#[test]
fn bytes_behind_the_200_belong_to_the_tunnel() {
    let mut bytes = ESTABLISHED.to_vec();
    bytes.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x02hi");
    let expected = Outcome {
        events: vec![ProxyEvent::Connected(response(
            200,
            "Connection established",
            &[],
            b"",
        ))],
        error: None,
        tunnel: Bytes::copy_from_slice(&bytes[ESTABLISHED.len()..]),
    };
    check_every_split(&bytes, false, &expected);
}

#[test]
fn interim_replies_and_http_1_0_and_headers_on_a_200() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nVia: 1.1 squid\r\n\
        Content-Length: 99\r\n\r\ntunnel";
    let expected = Outcome {
        events: vec![ProxyEvent::Connected(response(
            200,
            "OK",
            &[("Via", "1.1 squid"), ("Content-Length", "99")],
            b"",
        ))],
        error: None,
        // Content-Length on a 2xx to CONNECT is ignored (RFC 9110 §9.3.6).
        tunnel: Bytes::from_static(b"tunnel"),
    };
    check_every_split(bytes, false, &expected);
}

#[test]
fn a_folded_field_in_a_reply_is_read_with_its_fold_as_one_space() {
    // RFC 9112 §5.2: a user agent replaces each obs-fold with SP.
    let reply = b"HTTP/1.1 200 Connection established\r\nVia: 1.1\r\n proxy,\r\n\t 1.0 edge\r\n\
        X-After: 1\r\n\r\n";
    let mut bytes = reply.to_vec();
    bytes.extend_from_slice(b"tunnel");
    let expected = Outcome {
        events: vec![ProxyEvent::Connected(response(
            200,
            "Connection established",
            &[("Via", "1.1 proxy, 1.0 edge"), ("X-After", "1")],
            b"",
        ))],
        error: None,
        tunnel: Bytes::new(),
    };
    check_every_split(reply, false, &expected);
    let with_tunnel = Outcome {
        tunnel: Bytes::from_static(b"tunnel"),
        ..expected
    };
    check_every_split(&bytes, false, &with_tunnel);
}

const REPLY_407: &[u8] = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
    Proxy-Authenticate: Basic realm=\"sansproto\"\r\nContent-Type: text/plain\r\n\
    Content-Length: 21\r\n\r\nauthentication needed";

fn refused_407() -> Outcome {
    Outcome {
        events: vec![ProxyEvent::Refused(response(
            407,
            "Proxy Authentication Required",
            &[
                ("Proxy-Authenticate", "Basic realm=\"sansproto\""),
                ("Content-Type", "text/plain"),
                ("Content-Length", "21"),
            ],
            b"authentication needed",
        ))],
        error: Some(ProxyError::Status(407)),
        tunnel: Bytes::new(),
    }
}

#[test]
fn reply_407_with_a_body() {
    check_every_split(REPLY_407, false, &refused_407());
    // Bytes after the body are not the proxy's reply and are ignored.
    let mut trailing = REPLY_407.to_vec();
    trailing.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
    check_every_split(&trailing, false, &refused_407());
    check_every_split(&trailing, true, &refused_407());
}

#[test]
fn reply_502_with_a_body_until_the_end_of_the_stream() {
    let bytes = b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\ncannot reach h:1\n";
    let refused = Outcome {
        events: vec![ProxyEvent::Refused(response(
            502,
            "Bad Gateway",
            &[("Connection", "close")],
            b"cannot reach h:1\n",
        ))],
        error: Some(ProxyError::Status(502)),
        tunnel: Bytes::new(),
    };
    check_every_split(bytes, true, &refused);
    // Until the stream ends the body may go on: nothing is reported.
    let waiting = Outcome {
        events: vec![],
        error: None,
        tunnel: Bytes::new(),
    };
    check_every_split(bytes, false, &waiting);
}

#[test]
fn reply_502_without_a_body() {
    let bytes = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    let refused = Outcome {
        events: vec![ProxyEvent::Refused(response(
            502,
            "Bad Gateway",
            &[("Content-Length", "0")],
            b"",
        ))],
        error: Some(ProxyError::Status(502)),
        tunnel: Bytes::new(),
    };
    check_every_split(bytes, false, &refused);
}

#[test]
fn reply_503_with_a_chunked_body() {
    let bytes = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n7;ext=1\r\n, proxy\r\n0\r\nTrailer: x\r\n\r\n";
    let refused = Outcome {
        events: vec![ProxyEvent::Refused(response(
            503,
            "Service Unavailable",
            &[("Transfer-Encoding", "chunked")],
            b"hello, proxy",
        ))],
        error: Some(ProxyError::Status(503)),
        tunnel: Bytes::new(),
    };
    check_every_split(bytes, false, &refused);
}

#[test]
fn malformed_and_truncated_replies() {
    let malformed = |b: &[u8]| feed(&[b], false).error;
    assert_eq!(
        malformed(b"HTTP/1.1 2xx OK\r\n\r\n"),
        Some(ProxyError::Malformed(MalformedHttp::Status))
    );
    assert_eq!(
        malformed(b"SSH-2.0-OpenSSH\r\n\r\n"),
        Some(ProxyError::Malformed(MalformedHttp::Version))
    );
    assert_eq!(
        malformed(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"),
        Some(ProxyError::Malformed(MalformedHttp::HeaderName))
    );
    let cut = feed(&[b"HTTP/1.1 200 Connection est"], true);
    assert_eq!(cut.error, Some(ProxyError::Eof));
    assert!(cut.events.is_empty());
    assert_eq!(feed(&[], true).error, Some(ProxyError::Eof));
}

/// A seeded client's upgrade request, and the server's 101 answer to it.
fn handshake(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut twin = Connection::client_with_random(
        Config::default(),
        ClientRequest::new("example.com", "/chat"),
        sansproto::seeded_random(seed),
    )
    .unwrap();
    let mut request = Vec::new();
    twin.poll_transmit(&mut request);
    let mut server = Connection::server(Config::default());
    server.receive(&request).unwrap();
    let mut response = Vec::new();
    server.poll_transmit(&mut response);
    (request, response)
}

fn proxied_client(seed: u64) -> ProxiedClient {
    let proxy = Proxy::new(
        ProxyRequest::new("proxy:3128", "example.com:80").with_credentials("user", "pass"),
        ProxyConfig::default(),
    )
    .unwrap();
    ProxiedClient::with_random(
        proxy,
        Config::default(),
        ClientRequest::new("example.com", "/chat"),
        sansproto::seeded_random(seed),
    )
    .unwrap()
}

#[test]
fn the_101_and_a_frame_right_behind_the_200_reach_the_websocket_client() {
    let (upgrade, switching) = handshake(9);
    let mut reply = ESTABLISHED.to_vec();
    reply.extend_from_slice(&switching);
    reply.extend_from_slice(&[0x81, 0x05]);
    reply.extend_from_slice(b"hello");
    reply.extend_from_slice(&[0x89, 0x01, b'p']); // and a ping

    let run = |pieces: &[&[u8]]| {
        let mut c = proxied_client(9);
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert_eq!(
            out,
            b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\
              Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"
        );
        out.clear();
        c.send_text("queued").unwrap();
        for piece in pieces {
            c.receive(piece).unwrap();
        }
        c.poll_transmit(&mut out);
        let events: Vec<ProxiedEvent> = std::iter::from_fn(|| c.poll_event()).collect();
        (events, out, c.is_open())
    };
    let (events, out, open) = run(&[&reply]);
    assert!(open);
    let [ProxiedEvent::Proxy(ProxyEvent::Connected(ok)), ProxiedEvent::Ws(Event::Open(_)), ProxiedEvent::Ws(Event::Message(m)), ProxiedEvent::Ws(Event::Ping(p))] =
        events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(ok.status, 200);
    assert_eq!(m, &Message::from("hello"));
    assert_eq!(&p[..], b"p");
    // Through the tunnel: the upgrade request, then the queued message and
    // the automatic pong (both masked client frames).
    assert!(
        out.starts_with(&upgrade),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    let frames = &out[upgrade.len()..];
    assert_eq!(frames[0], 0x81);
    assert_eq!(frames[1], 0x80 | 6);
    assert_eq!(frames[2 + 4 + 6], 0x8a);

    let singles: Vec<&[u8]> = reply.chunks(1).collect();
    assert_eq!(run(&singles), (events.clone(), out.clone(), true));
    for i in 0..=reply.len() {
        assert_eq!(
            run(&[&reply[..i], &reply[i..]]),
            (events.clone(), out.clone(), true),
            "split at {i}"
        );
    }
}

#[test]
fn a_refusal_ends_the_proxied_client_without_websocket_events() {
    let mut c = proxied_client(3);
    c.send_text("never sent").unwrap();
    let err = c.receive(REPLY_407).unwrap_err();
    assert_eq!(err, ProxiedError::Proxy(ProxyError::Status(407)));
    let events: Vec<ProxiedEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(
        events,
        refused_407()
            .events
            .into_iter()
            .map(ProxiedEvent::Proxy)
            .collect::<Vec<_>>()
    );
    assert!(c.is_finished());
    assert!(!c.is_tunnel_open());
    assert_eq!(c.error(), Some(err.clone()));
    // Sticky, and nothing but the CONNECT request ever goes out.
    assert_eq!(c.receive(ESTABLISHED), Err(err.clone()));
    assert_eq!(c.receive_eof(), Err(err));
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert!(out.starts_with(b"CONNECT "));
    assert!(out.ends_with(b"\r\n\r\n") && !out.windows(4).any(|w| w == b"GET "));
    assert!(c.send_text("late").is_err());
    assert!(c.ping("p").is_err());
    assert!(c.close(sansproto::ws::CloseCode::NORMAL, "").is_err());
    assert_eq!(c.proxy().response().map(|r| r.status), Some(407));
}

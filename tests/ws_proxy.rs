//! The CONNECT exchange under a virtual clock and against replies that
//! push its limits.

use sansproto::ws::proxy::{
    ProxiedClient, ProxiedError, ProxiedEvent, Proxy, ProxyConfig, ProxyError, ProxyEvent,
    ProxyRequest, SetupError,
};
use sansproto::ws::{ClientRequest, Config, Connection, Error, Event, MalformedHttp, TimeoutKind};
use sansproto::Driver;
use std::time::{Duration, Instant};

fn proxy(config: ProxyConfig) -> Proxy {
    Proxy::new(ProxyRequest::new("proxy:3128", "example.com:80"), config).unwrap()
}

fn events(p: &mut Proxy) -> Vec<ProxyEvent> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

/// The one event `p` reported: a refusal.
fn refused(p: &mut Proxy) -> sansproto::ws::HttpResponse {
    match events(p).as_slice() {
        [ProxyEvent::Refused(r)] => r.clone(),
        other => panic!("expected one refusal, got {other:?}"),
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn the_reply_deadline_starts_at_the_first_timer_call() {
    let t0 = Instant::now();
    let mut p = proxy(ProxyConfig::default().with_handshake_timeout(Some(10 * SECOND)));
    assert_eq!(p.poll_timeout(), None);
    p.handle_timeout(t0);
    assert_eq!(p.poll_timeout(), Some(t0 + 10 * SECOND));
    // Part of a reply does not move the deadline.
    p.receive(b"HTTP/1.1 200 Conn").unwrap();
    p.handle_timeout(t0 + 9 * SECOND);
    assert_eq!(p.error(), None);
    assert_eq!(p.poll_timeout(), Some(t0 + 10 * SECOND));
    p.handle_timeout(t0 + 10 * SECOND);
    assert_eq!(p.error(), Some(&ProxyError::Timeout));
    assert!(p.is_finished() && !p.is_connected());
    assert_eq!(p.poll_timeout(), None);
    assert!(events(&mut p).is_empty());
    // Sticky; the rest of the reply changes nothing.
    assert_eq!(
        p.receive(b"ection established\r\n\r\n"),
        Err(ProxyError::Timeout)
    );
    assert_eq!(p.receive_eof(), Err(ProxyError::Timeout));
    // Extra timer calls are harmless.
    p.handle_timeout(t0 + 20 * SECOND);
    assert_eq!(p.error(), Some(&ProxyError::Timeout));
}

#[test]
fn no_deadline_after_the_tunnel_opens_or_when_none_is_configured() {
    let t0 = Instant::now();
    let mut p = proxy(ProxyConfig::default());
    p.handle_timeout(t0);
    p.receive(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    assert_eq!(p.poll_timeout(), None);
    p.handle_timeout(t0 + 3600 * SECOND);
    assert!(p.is_connected() && p.error().is_none());

    let mut p = proxy(ProxyConfig::default().with_handshake_timeout(None));
    p.handle_timeout(t0);
    assert_eq!(p.poll_timeout(), None);
    p.handle_timeout(t0 + 3600 * SECOND);
    assert_eq!(p.error(), None);
}

#[test]
fn a_refusal_whose_body_stalls_is_reported_at_the_deadline() {
    let t0 = Instant::now();
    let mut p = proxy(ProxyConfig::default().with_handshake_timeout(Some(5 * SECOND)));
    p.handle_timeout(t0);
    p.receive(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 100\r\n\r\npartial")
        .unwrap();
    assert!(events(&mut p).is_empty());
    p.handle_timeout(t0 + 5 * SECOND);
    let r = refused(&mut p);
    assert_eq!((r.status, &r.body[..]), (502, &b"partial"[..]));
    assert_eq!(p.error(), Some(&ProxyError::Status(502)));
    assert_eq!(p.response(), Some(&r));
}

#[test]
fn the_websocket_handshake_deadline_counts_from_the_tunnel() {
    let t0 = Instant::now();
    let proxy_config = ProxyConfig::default().with_handshake_timeout(Some(10 * SECOND));
    let ws_config = Config::default().with_handshake_timeout(Some(30 * SECOND));
    let mut c = ProxiedClient::new(
        proxy(proxy_config),
        ws_config,
        ClientRequest::new("example.com", "/"),
    )
    .unwrap();
    c.handle_timeout(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + 10 * SECOND));
    c.receive(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    assert!(c.is_tunnel_open());
    // The loop calls handle_timeout after every read: the connection's
    // timers start there.
    c.handle_timeout(t0 + 8 * SECOND);
    assert_eq!(c.poll_timeout(), Some(t0 + 38 * SECOND));
    // The proxy's deadline no longer applies.
    c.handle_timeout(t0 + 20 * SECOND);
    assert_eq!(c.error(), None);
    assert!(!c.is_finished());
    c.handle_timeout(t0 + 38 * SECOND);
    assert_eq!(
        c.error(),
        Some(ProxiedError::Ws(Error::Timeout(TimeoutKind::Handshake)))
    );
    assert!(c.is_finished());
}

#[test]
fn a_proxy_timeout_finishes_the_proxied_client() {
    let t0 = Instant::now();
    let mut c = ProxiedClient::new(
        proxy(ProxyConfig::default().with_handshake_timeout(Some(SECOND))),
        Config::default(),
        ClientRequest::new("example.com", "/"),
    )
    .unwrap();
    // Through the shared trait, as a generic loop would.
    Driver::handle_timeout(&mut c, t0);
    Driver::handle_timeout(&mut c, t0 + SECOND);
    assert!(Driver::is_finished(&c));
    assert_eq!(c.error(), Some(ProxiedError::Proxy(ProxyError::Timeout)));
    assert_eq!(Driver::poll_event(&mut c), None);
}

#[test]
fn head_size_and_header_count_limits() {
    let config = ProxyConfig::default().with_head_limits(64, 2);
    // No end of head within the limit: refused as soon as the limit passes,
    // whether or not the end arrives in the same read.
    let mut p = proxy(config.clone());
    p.receive(&[b'a'; 64]).unwrap();
    assert_eq!(p.receive(b"b"), Err(ProxyError::TooLarge(64)));
    let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    long.resize(80, b'x');
    long.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        proxy(config.clone()).receive(&long),
        Err(ProxyError::TooLarge(64))
    );
    // A head of exactly the limit is fine.
    let mut exact = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    exact.resize(60, b'x');
    exact.extend_from_slice(b"\r\n\r\n");
    assert_eq!(exact.len(), 64);
    let mut p = proxy(config.clone());
    p.receive(&exact).unwrap();
    assert!(p.is_connected());

    let three = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        proxy(config.clone()).receive(three),
        Err(ProxyError::TooManyHeaders(2))
    );
    assert!(proxy(config)
        .receive(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n")
        .is_ok());
}

#[test]
fn a_claimed_length_is_not_waited_for_past_the_body_limit() {
    let config = ProxyConfig::default().with_max_body_size(8);
    let mut p = proxy(config.clone());
    let head = b"HTTP/1.1 407 Auth\r\nContent-Length: 18446744073709551615\r\n\r\n";
    p.receive(head).unwrap();
    p.receive(b"0123").unwrap();
    assert!(events(&mut p).is_empty());
    assert_eq!(p.receive(b"456789"), Err(ProxyError::Status(407)));
    let r = refused(&mut p);
    assert_eq!(&r.body[..], b"01234567");

    // The same limit for a body read until the end of the stream...
    let mut p = proxy(config.clone());
    p.receive(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").unwrap();
    assert_eq!(p.receive(&[b'z'; 100]), Err(ProxyError::Status(502)));
    let r = refused(&mut p);
    assert_eq!(&r.body[..], b"zzzzzzzz");

    // ...and for chunks, whatever size they claim.
    let mut p = proxy(config);
    p.receive(b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n")
        .unwrap();
    assert_eq!(p.receive(&[b'c'; 9]), Err(ProxyError::Status(502)));
    let r = refused(&mut p);
    assert_eq!(&r.body[..], b"cccccccc");
}

#[test]
fn a_broken_chunked_body_ends_the_refusal_with_what_arrived() {
    for (tail, body) in [
        (&b"3\r\nabcXY"[..], &b"abc"[..]),
        (b"zz\r\n", b""),
        (b"3\r\nabc\r\n12345678901234567890\r\n", b"abc"),
    ] {
        let mut bytes = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        bytes.extend_from_slice(tail);
        let mut p = proxy(ProxyConfig::default());
        assert_eq!(p.receive(&bytes), Err(ProxyError::Status(502)), "{tail:?}");
        let r = refused(&mut p);
        assert_eq!(&r.body[..], body, "{tail:?}");
    }
    // A chunk-size line that never ends is cut off at 1 KiB.
    let mut p = proxy(ProxyConfig::default());
    p.receive(b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n1;")
        .unwrap();
    p.receive(&[b'e'; 1000]).unwrap();
    assert_eq!(p.receive(&[b'e'; 100]), Err(ProxyError::Status(502)));
}

#[test]
fn other_transfer_codings_read_until_the_end_and_bad_lengths_fail() {
    for header in [
        "Transfer-Encoding: gzip",
        "Transfer-Encoding: chunked, gzip",
    ] {
        let mut p = proxy(ProxyConfig::default());
        p.receive(format!("HTTP/1.1 403 Forbidden\r\n{header}\r\n\r\nno").as_bytes())
            .unwrap();
        p.receive(b" way").unwrap();
        assert_eq!(p.receive_eof(), Err(ProxyError::Status(403)), "{header}");
        let r = refused(&mut p);
        assert_eq!(&r.body[..], b"no way", "{header}");
    }
    // Where the body ends is not known: the reply is discarded (RFC 9112
    // §6.3 item 5).
    for header in ["Content-Length: ten", "Content-Length: -1"] {
        let mut p = proxy(ProxyConfig::default());
        let reply = format!("HTTP/1.1 403 Forbidden\r\n{header}\r\n\r\nno");
        let err = ProxyError::Malformed(MalformedHttp::ContentLength);
        assert_eq!(p.receive(reply.as_bytes()), Err(err.clone()), "{header}");
        assert_eq!(p.poll_event(), None, "{header}");
        assert_eq!(p.receive_eof(), Err(err), "{header}");
    }
}

#[test]
fn a_101_or_304_reply_is_a_refusal_without_a_body() {
    for status in [101, 304] {
        let mut p = proxy(ProxyConfig::default());
        let reply = format!("HTTP/1.1 {status} X\r\n\r\nrest");
        assert_eq!(p.receive(reply.as_bytes()), Err(ProxyError::Status(status)));
        let r = refused(&mut p);
        assert!(r.body.is_empty());
    }
}

#[test]
fn commands_before_the_tunnel_wait_for_the_websocket_to_open() {
    let mut c = ProxiedClient::new(
        proxy(ProxyConfig::default()),
        Config::default(),
        ClientRequest::new("example.com", "/"),
    )
    .unwrap();
    c.send_text("first").unwrap();
    c.ping("p").unwrap();
    assert!(!c.is_open());
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert!(out.starts_with(b"CONNECT ") && out.ends_with(b"\r\n\r\n"));
    assert_eq!(out.windows(4).filter(|w| w == b"\r\n\r\n").count(), 1);
    // Nothing more until the proxy answers, however often it is asked.
    out.clear();
    assert_eq!(c.poll_transmit(&mut out), 0);
    c.receive(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    c.poll_transmit(&mut out);
    assert!(out.starts_with(b"GET / HTTP/1.1\r\n"));
    // The server answers; the queued message and ping follow the 101.
    let mut server = Connection::server(Config::default());
    server.receive(&out).unwrap();
    let mut back = Vec::new();
    server.poll_transmit(&mut back);
    c.receive(&back).unwrap();
    let mut frames = Vec::new();
    c.poll_transmit(&mut frames);
    server.receive(&frames).unwrap();
    let got: Vec<Event> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(
        matches!(got.as_slice(), [Event::Open(_), Event::Message(m), Event::Ping(p)]
        if m.as_bytes() == b"first" && &p[..] == b"p")
    );
    let ev: Vec<ProxiedEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(matches!(
        ev.as_slice(),
        [
            ProxiedEvent::Proxy(ProxyEvent::Connected(_)),
            ProxiedEvent::Ws(Event::Open(_))
        ]
    ));
    assert!(c.is_open());
    assert_eq!(ev.into_iter().filter_map(ProxiedEvent::into_ws).count(), 1);
}

#[test]
fn urls_set_the_target_and_the_host() {
    let mut c = ProxiedClient::from_urls(
        "http://proxy:8080",
        "ws://example.com/chat?room=1",
        Config::default(),
    )
    .unwrap();
    assert_eq!(c.proxy().address(), "proxy:8080");
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(
        out,
        b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n"
    );
    c.receive(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    out.clear();
    c.poll_transmit(&mut out);
    assert!(out.starts_with(b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\n"));

    assert!(
        ProxiedClient::from_urls("http://p", "http://example.com/", Config::default()).is_err()
    );
    // Without TLS over the tunnel a wss:// upgrade, and the credentials in
    // its URL, would go out in plain text: refused.
    let wss = ProxiedClient::from_urls(
        "http://proxy:8080",
        "wss://alice:secret@example.com/",
        Config::default(),
    );
    assert_eq!(wss.unwrap_err(), SetupError::NeedsTls);
    assert_eq!(
        sansproto::ws::proxy::websocket_target("wss://example.com/").unwrap(),
        "example.com:443"
    );
    assert!(ProxiedClient::from_urls("ftp://p", "ws://example.com/", Config::default()).is_err());
}

mod properties {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9-]{0,15}"
    }

    fn value() -> impl Strategy<Value = String> {
        "[ -~]{0,40}".prop_map(|v| v.trim().to_owned())
    }

    /// A refusal encoded with its body framed by Content-Length or as
    /// random chunks, then cut at random points: the proxy reports exactly
    /// the status, headers and body that were encoded.
    /// Status, header fields, body chunks, and whether to send them chunked.
    type Reply = (u16, Vec<(String, String)>, Vec<Vec<u8>>, bool);

    fn reply() -> impl Strategy<Value = Reply> {
        (
            400u16..600,
            vec((token(), value()), 0..6),
            vec(vec(any::<u8>(), 0..200), 0..5),
            any::<bool>(),
        )
    }

    proptest! {
        #[test]
        fn refusals_decode_to_what_was_encoded_however_cut(
            (status, mut headers, chunks, chunked) in reply(),
            cuts in vec(0usize..64, 0..12),
        ) {
            headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("Content-Length") && !k.eq_ignore_ascii_case("Transfer-Encoding")
            });
            let body: Vec<u8> = chunks.concat();
            let framing = if chunked {
                ("Transfer-Encoding".to_owned(), "chunked".to_owned())
            } else {
                ("Content-Length".to_owned(), body.len().to_string())
            };
            headers.push(framing);
            let mut bytes = format!("HTTP/1.1 {status} Refused\r\n").into_bytes();
            for (k, v) in &headers {
                bytes.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            if chunked {
                for c in chunks.iter().filter(|c| !c.is_empty()) {
                    bytes.extend_from_slice(format!("{:X}\r\n", c.len()).as_bytes());
                    bytes.extend_from_slice(c);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            } else {
                bytes.extend_from_slice(&body);
            }

            let mut p = proxy(ProxyConfig::default());
            let mut rest = &bytes[..];
            let mut result = Ok(());
            for cut in cuts.into_iter().chain([usize::MAX]) {
                let (piece, tail) = rest.split_at(cut.min(rest.len()));
                rest = tail;
                result = p.receive(piece);
                if result.is_err() {
                    break;
                }
            }
            prop_assert_eq!(result, Err(ProxyError::Status(status)));
            let r = refused(&mut p);
            prop_assert_eq!(r.status, status);
            prop_assert_eq!(&r.body[..], &body[..]);
            let got: Vec<(String, String)> = r
                .headers
                .0
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8(v.to_vec()).unwrap()))
                .collect();
            prop_assert_eq!(got, headers);
        }
    }
}

/// Whether `debug` shows `secret` as text or as a list of byte values.
fn shows(debug: &str, secret: &str) -> bool {
    let bytes: Vec<String> = secret.bytes().map(|b| b.to_string()).collect();
    debug.contains(secret) || debug.contains(&bytes.join(", "))
}

#[test]
fn debug_output_never_shows_credentials_or_header_values() {
    // user:pass, alice:secret, and an API key, in every form they are
    // sent in.
    let secrets = [
        "pass",
        "dXNlcjpwYXNz",
        "secret",
        "YWxpY2U6c2VjcmV0",
        "s3cr3t-token",
    ];
    let config = Config::default()
        .with_header("X-Api-Key", "s3cr3t-token")
        .unwrap();
    let mut client = ProxiedClient::from_urls(
        "http://user:pass@proxy:3128",
        "ws://alice:secret@example.com/",
        config.clone(),
    )
    .unwrap();
    let direct = Connection::client(
        config,
        ClientRequest::from_url("ws://alice:secret@example.com/").unwrap(),
    )
    .unwrap();
    let mut states = vec![format!("{client:?}"), format!("{direct:?}")];
    // Once the tunnel is open the upgrade request is queued in its turn.
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    client.receive(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    states.push(format!("{client:?}"));
    for debug in &states {
        for secret in secrets {
            assert!(!shows(debug, secret), "{secret:?} in {debug}");
        }
    }
}

#[test]
fn after_a_refusal_nothing_is_left_to_write() {
    // A loop that writes until `buffered_amount()` is 0 ends: what the
    // connection queued can never go out once the proxy refused.
    let mut c = ProxiedClient::new(
        proxy(ProxyConfig::default()),
        Config::default(),
        ClientRequest::new("example.com", "/"),
    )
    .unwrap();
    c.send_text("x").unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert!(out.starts_with(b"CONNECT "));
    let refused = c.receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(refused, Err(ProxiedError::Proxy(ProxyError::Status(403))));
    assert_eq!(c.buffered_amount(), 0);
    out.clear();
    c.poll_transmit(&mut out);
    assert!(out.is_empty(), "{out:?}");
}

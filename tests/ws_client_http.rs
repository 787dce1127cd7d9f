//! The client's HTTP: URLs (credentials never reach `Host`) and refusal
//! bodies in every framing, fed whole, byte by byte and with trailing
//! bytes.

mod common;

use common::ws::every_cut;
use sansproto::ws::proxy::{
    ProxiedClient, ProxiedEvent, Proxy, ProxyConfig, ProxyError, ProxyEvent, ProxyRequest,
};
use sansproto::ws::{
    ClientRequest, Config, Connection, Error, Event, HandshakeError, MalformedHttp, UrlError, WsUrl,
};
use std::time::{Duration, Instant};

fn output(c: &mut Connection) -> String {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    String::from_utf8(out).unwrap()
}

fn head_fields(request: &str) -> Vec<&str> {
    request.split("\r\n").collect()
}

#[test]
fn userinfo_in_a_url_never_reaches_host() {
    for (url, host, target) in [
        ("ws://user:pw@example.com:8080/x", "example.com:8080", "/x"),
        (
            "WSS://user:pw@example.com/x?q=1#frag",
            "example.com",
            "/x?q=1",
        ),
        ("ws://user:pw@[::1]:9001", "[::1]:9001", "/"),
        ("ws://user@example.com:80/", "example.com", "/"),
    ] {
        let req = ClientRequest::from_url(url).unwrap();
        let mut c = Connection::client(Config::default(), req).unwrap();
        let request = output(&mut c);
        let fields = head_fields(&request);
        assert_eq!(fields[0], format!("GET {target} HTTP/1.1"), "{url}");
        assert_eq!(fields[1], format!("Host: {host}"), "{url}");
        assert!(
            !request.contains("pw@") && !request.contains("user@"),
            "{request}"
        );
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("Authorization: Basic ")),
            "{request}"
        );
    }
    // Through a proxy: neither the CONNECT request nor the Host header in
    // the tunnel carries them.
    let mut client = ProxiedClient::from_urls(
        "http://proxy.example:3128",
        "ws://user:pw@example.com:8080/x",
        Config::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    assert_eq!(
        out,
        b"CONNECT example.com:8080 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"
    );
    client.receive(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    assert!(matches!(
        client.poll_event(),
        Some(ProxiedEvent::Proxy(ProxyEvent::Connected(_)))
    ));
    out.clear();
    client.poll_transmit(&mut out);
    let request = String::from_utf8(out).unwrap();
    assert!(
        request.starts_with("GET /x HTTP/1.1\r\nHost: example.com:8080\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nAuthorization: Basic dXNlcjpwdw==\r\n"),
        "{request}"
    );
}

#[test]
fn bad_urls_are_refused_without_repeating_them() {
    for (url, err) in [
        ("ws://example.com#frag", None),
        ("ws://h:99999/", Some(UrlError::Port)),
        ("ws://h:abc/", Some(UrlError::Port)),
        ("ws://:80/", Some(UrlError::Host)),
        ("ws:///x", Some(UrlError::Host)),
        ("ftp://h/", Some(UrlError::Scheme("ws or wss"))),
        ("ws://u:s%zzret@h/", Some(UrlError::Userinfo)),
        // Browsers end the authority at `\` (host evil.com), RFC 3986 reads
        // it as user information (host good.com): neither is guessed.
        ("ws://evil.com\\@good.com/", Some(UrlError::Host)),
        ("ws://u\\:secret@h/", Some(UrlError::Host)),
        ("ws://h\\x/", Some(UrlError::Host)),
        ("ws://h/a\\b", Some(UrlError::Target)),
    ] {
        match (ClientRequest::from_url(url), err) {
            (Ok(r), None) => assert_eq!((r.host.as_str(), r.path.as_str()), ("example.com", "/")),
            (Err(e), Some(want)) => {
                assert_eq!(e, want, "{url}");
                assert!(!e.to_string().contains("ret"), "{e}");
            }
            (r, want) => panic!("{url}: {r:?}, wanted {want:?}"),
        }
    }
}

const CHUNKED_403: &[u8] = b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\
    Transfer-Encoding: chunked\r\n\r\n7\r\norigin \r\n\
    b;why=policy\r\nnot allowed\r\n0\r\n\r\n";

fn client() -> Connection {
    let req = ClientRequest::new("example.com", "/chat");
    let mut c = Connection::client_with_random(Config::default(), req, sansproto::seeded_random(3))
        .unwrap();
    output(&mut c);
    c
}

#[test]
fn a_chunked_refusal_is_reported_with_its_body() {
    for (name, pieces) in [
        ("whole", vec![CHUNKED_403.to_vec()]),
        (
            "byte by byte",
            CHUNKED_403.iter().map(|b| vec![*b]).collect(),
        ),
        ("trailing", vec![[CHUNKED_403, b"\x81\x00junk"].concat()]),
    ] {
        let mut c = client();
        let mut result = Ok(0);
        for piece in &pieces {
            result = c.receive(piece);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(Error::Handshake(HandshakeError::Status(403))),
            "{name}"
        );
        let Some(Event::Rejected(r)) = c.poll_event() else {
            panic!("{name}")
        };
        assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden"));
        assert_eq!(&r.body[..], b"origin not allowed", "{name}");
        assert_eq!(r.headers.get_str("content-type"), Some("text/plain"));
        assert!(c.is_finished());
        assert_eq!(c.poll_event(), None);
    }
}

#[test]
fn a_refusal_cut_by_the_deadline_or_eof_is_still_the_refusal() {
    let cut = &CHUNKED_403[..CHUNKED_403.len() - 20];
    for end in ["deadline", "eof"] {
        let mut c = client();
        let t0 = Instant::now();
        c.handle_timeout(t0);
        c.receive(cut).unwrap();
        match end {
            "deadline" => c.handle_timeout(t0 + Duration::from_secs(30)),
            _ => assert!(c.receive_eof().is_err()),
        }
        assert_eq!(
            c.error(),
            Some(&Error::Handshake(HandshakeError::Status(403))),
            "{end}"
        );
        let Some(Event::Rejected(r)) = c.poll_event() else {
            panic!("{end}")
        };
        assert_eq!(&r.body[..], b"origin ", "{end}: the body so far");
    }
}

#[test]
fn refusal_bodies_by_length_and_until_eof() {
    let mut c = client();
    let reply = b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nlaterXX";
    assert!(c.receive(reply).is_err());
    let Some(Event::Rejected(r)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(&r.body[..], b"late");

    let mut c = client();
    c.receive(b"HTTP/1.1 400 Bad Request\r\n\r\nno ").unwrap();
    c.receive(b"length").unwrap();
    assert!(c.receive_eof().is_err());
    let Some(Event::Rejected(r)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(&r.body[..], b"no length");
}

/// After an interim (1xx) reply, the next head is judged on what a head
/// may hold, whatever is buffered behind it: a bare LF past the size limit
/// is the size limit, fed whole or cut anywhere, and a large read behind
/// the interim reply is not copied in whole.
#[test]
fn after_an_interim_reply_the_next_head_is_judged_alike_however_it_is_cut() {
    let limit = 512;
    let config = Config::default().with_handshake_limits(limit, 8);
    let mut wire = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 403 No\r\n".to_vec();
    wire.extend(vec![b'a'; 600]);
    wire.extend(b"\n\n");
    let outcome = |pieces: &[&[u8]]| {
        let mut c =
            Connection::client(config.clone(), ClientRequest::new("example.com", "/")).unwrap();
        pieces
            .iter()
            .find_map(|p| c.receive(p).err())
            .expect("refused")
    };
    let whole = outcome(&[&wire]);
    assert_eq!(whole, Error::Handshake(HandshakeError::TooLarge(limit)));
    for at in 0..=wire.len() {
        let (a, b) = wire.split_at(at);
        assert_eq!(outcome(&[a, b]), whole, "cut at {at}");
    }
    // Within the limit, the bare LF itself is the verdict, cut or not.
    let mut short = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 No\n\r\n".to_vec();
    short.extend(vec![b'z'; 1 << 20]);
    let bare = outcome(&[&short]);
    assert_eq!(
        bare,
        Error::Handshake(HandshakeError::Malformed(MalformedHttp::BareLf))
    );
    let bytes: Vec<&[u8]> = short[..60].chunks(1).collect();
    assert_eq!(outcome(&bytes), bare);
}

#[test]
fn characters_a_uri_cannot_hold_are_percent_encoded_in_the_target() {
    for (url, target) in [
        (
            "ws://h/a\"b<c>{d}|e^f`g",
            "/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60g",
        ),
        ("ws://h?q={\"k\":[1]}", "/?q=%7B%22k%22:[1]%7D"),
        ("ws://h/%7B?a=%20#{frag}", "/%7B?a=%20"),
    ] {
        assert_eq!(WsUrl::parse(url).unwrap().target, target, "{url}");
        let req = ClientRequest::from_url(url).unwrap();
        let mut c = Connection::client(Config::default(), req).unwrap();
        let request = output(&mut c);
        assert_eq!(head_fields(&request)[0], format!("GET {target} HTTP/1.1"));
    }
}

/// What a client reports for a refusal `wire`, fed in `pieces` and then,
/// when `eof`, the end of the stream: the error and the events.
fn client_outcome(pieces: &[Vec<u8>], eof: bool) -> (Option<Error>, Vec<Event>) {
    let mut c = client();
    let mut error = pieces.iter().find_map(|p| c.receive(p).err());
    if eof && error.is_none() {
        error = c.receive_eof().err();
    }
    (error, std::iter::from_fn(|| c.poll_event()).collect())
}

/// What a CONNECT proxy client reports for the same reply.
fn proxy_outcome(pieces: &[Vec<u8>], eof: bool) -> (Option<ProxyError>, Vec<ProxyEvent>) {
    let mut p = Proxy::new(ProxyRequest::new("p:1", "h:443"), ProxyConfig::default()).unwrap();
    let mut error = pieces.iter().find_map(|piece| p.receive(piece).err());
    if eof && error.is_none() {
        error = p.receive_eof().err();
    }
    (error, std::iter::from_fn(|| p.poll_event()).collect())
}

/// Feeds a refusal to a WebSocket client and to a CONNECT proxy client,
/// every way `every_cut` gives (with `trailing`), then the end of the
/// stream when `eof`. Both report `body` with the refusal, or fail with
/// `malformed` and report nothing (the reply is discarded, RFC 9112 §6.3
/// item 5).
fn refusal_reads(wire: &[u8], trailing: &[u8], eof: bool, want: Result<&[u8], MalformedHttp>) {
    for (way, pieces) in every_cut(wire, trailing) {
        let (error, events) = client_outcome(&pieces, eof);
        let (proxy_error, proxy_events) = proxy_outcome(&pieces, eof);
        match want {
            Ok(body) => {
                assert_eq!(
                    error,
                    Some(Error::Handshake(HandshakeError::Status(407))),
                    "{way}"
                );
                assert_eq!(proxy_error, Some(ProxyError::Status(407)), "{way}");
                let [Event::Rejected(r)] = events.as_slice() else {
                    panic!("{way}: {events:?}");
                };
                let [ProxyEvent::Refused(p)] = proxy_events.as_slice() else {
                    panic!("{way}: {proxy_events:?}");
                };
                assert_eq!((&r.body[..], &p.body[..]), (body, body), "{way}");
                assert_eq!(**r, *p, "{way}");
            }
            Err(m) => {
                let e = Error::Handshake(HandshakeError::Malformed(m));
                assert_eq!(error, Some(e), "{way}");
                assert_eq!(proxy_error, Some(ProxyError::Malformed(m)), "{way}");
                assert_eq!((events, proxy_events), (vec![], vec![]), "{way}");
            }
        }
    }
}

fn reply_407(fields: &str, body: &[u8]) -> Vec<u8> {
    let head = format!("HTTP/1.1 407 Proxy Authentication Required\r\n{fields}\r\n");
    [head.as_bytes(), body].concat()
}

#[test]
fn a_repeated_content_length_of_one_value_frames_the_body() {
    for fields in [
        "Content-Length: 4, 4\r\n",
        "Content-Length: 4,4\r\n",
        "Content-Length: 4\r\nContent-Length: 4\r\n",
    ] {
        // What follows the 4 bytes is not the refusal's.
        refusal_reads(
            &reply_407(fields, b"auth"),
            b"HTTP/1.1 200 OK\r\n\r\n",
            false,
            Ok(b"auth"),
        );
    }
}

#[test]
fn a_content_length_that_is_not_one_number_fails_the_handshake() {
    for fields in [
        "Content-Length: +4\r\n",
        "Content-Length: -4\r\n",
        "Content-Length: 4 4\r\n",
        "Content-Length: 0x4\r\n",
        "Content-Length: \r\n",
        "Content-Length: 4, 9\r\n",
        "Content-Length: 4\r\nContent-Length: 9\r\n",
        "Content-Length: 99999999999999999999\r\n",
    ] {
        refusal_reads(
            &reply_407(fields, b"auth"),
            b"",
            true,
            Err(MalformedHttp::ContentLength),
        );
    }
    // Both framing fields (RFC 9112 §6.3 item 3) is an error too.
    let both = "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n";
    let wire = reply_407(both, b"4\r\nauth\r\n0\r\n\r\n");
    refusal_reads(&wire, b"", true, Err(MalformedHttp::ConflictingFraming));
}

#[test]
fn a_body_whose_last_coding_is_not_chunked_runs_until_the_stream_ends() {
    let body = b"0\r\n\r\nmore body";
    for fields in [
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    ] {
        let wire = reply_407(fields, body);
        refusal_reads(&wire, b"", true, Ok(body));
        // Until then nothing is reported: the body may go on.
        for (way, pieces) in every_cut(&wire, b"") {
            assert_eq!(client_outcome(&pieces, false), (None, vec![]), "{way}");
            assert_eq!(proxy_outcome(&pieces, false), (None, vec![]), "{way}");
        }
    }
    // `chunked` last is chunked, whatever comes before it.
    let wire = reply_407(
        "Transfer-Encoding: gzip, chunked\r\n",
        b"4\r\nauth\r\n0\r\n\r\n",
    );
    refusal_reads(&wire, b"HTTP/1.1 200 OK\r\n\r\n", false, Ok(b"auth"));
}

#[test]
fn transfer_encoding_in_an_http_1_0_refusal_runs_until_the_stream_ends() {
    // RFC 9112 §6.1: the framing of an HTTP/1.0 message with
    // Transfer-Encoding is faulty, Content-Length or not; what follows the
    // head is the body until the connection closes.
    let body = b"4\r\nauth\r\n0\r\n\r\nmore";
    for fields in [
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
    ] {
        let head = format!("HTTP/1.0 407 Proxy Authentication Required\r\n{fields}\r\n");
        let wire = [head.as_bytes(), body].concat();
        refusal_reads(&wire, b"", true, Ok(body));
    }
}

//! The server's side of the opening handshake (RFC 6455 §4): plain HTTP
//! requests, refused upgrades and the status codes they get.

mod common;

use bytes::Bytes;
use common::ws::every_cut;
use sansproto::ws::{
    ClientRequest, Config, Connection, Error, Event, HandshakeError, Headers, HttpRequest,
    MalformedHttp, SendErrorKind,
};

/// A parsed HTTP response: status, reason, header fields, body.
struct Parsed {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parsed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one complete HTTP response; the body is what follows the head
/// and must be exactly `Content-Length` bytes.
fn parse_response(bytes: &[u8]) -> Parsed {
    let mut storage = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut storage);
    let head = match r.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("not a complete response ({other:?}): {bytes:?}"),
    };
    let parsed = Parsed {
        status: r.code.unwrap(),
        reason: r.reason.unwrap().to_owned(),
        headers: r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect(),
        body: bytes[head..].to_vec(),
    };
    let len: usize = parsed
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(len, parsed.body.len(), "body length");
    parsed
}

fn request(method: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    request_to(method, "/chat", fields)
}

fn request_to(method: &str, target: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in fields {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The fields of a valid upgrade request, minus `without`, plus `extra`.
fn upgrade_fields<'a>(without: &[&str], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    f.retain(|(k, _)| !without.contains(k));
    f.extend_from_slice(extra);
    f
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    out
}

/// A client frame (an empty masked text message) sent behind a request.
const FRAME: &[u8] = b"\x81\x80\0\0\0\0";

/// Feeds a refused upgrade request whole, split at every byte, byte by
/// byte, and each again with a frame right behind it; returns the parsed
/// error response after checking it is the same every way and the error
/// is sticky.
fn refused(config: &Config, req: &[u8], expected: HandshakeError) -> Parsed {
    refused_fed(config, &every_cut(req, FRAME), expected)
}

/// [`refused`], fed each of `ways` (named pieces).
fn refused_fed(
    config: &Config,
    ways: &[(String, Vec<Vec<u8>>)],
    expected: HandshakeError,
) -> Parsed {
    let mut responses = Vec::new();
    for (way, pieces) in ways {
        let mut server = Connection::server(config.clone());
        let mut first = None;
        for p in pieces {
            match (server.receive(p), &first) {
                (Ok(taken), None) => assert_eq!(taken, p.len(), "{way}"),
                (Err(e), None) => first = Some(e),
                (r, Some(e)) => assert_eq!(r.as_ref(), Err(e), "{way}"),
            }
        }
        let e = first.unwrap_or_else(|| panic!("{way}: the request was not refused"));
        assert_eq!(e, Error::Handshake(expected.clone()), "{way}");
        assert_eq!(
            events(&mut server),
            [],
            "{way}: no event for a refused upgrade"
        );
        assert!(server.is_finished(), "{way}");
        assert_eq!(server.receive(b"more"), Err(e.clone()), "{way}: sticky");
        assert_eq!(server.receive_eof(), Err(e.clone()), "{way}: sticky");
        responses.push(output(&mut server));
        assert_eq!(
            output(&mut server),
            b"",
            "{way}: the response is queued once"
        );
    }
    for (r, (way, _)) in responses.iter().zip(ways) {
        assert_eq!(r, &responses[0], "{way}");
    }
    parse_response(&responses[0])
}

#[test]
fn a_head_with_bare_lf_line_ends_gets_400_at_once() {
    for req in [
        &b"GET / HTTP/1.1\nHost: h\nUpgrade: websocket\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\nUpgrade: websocket\r\n\r\n",
    ] {
        let r = refused(
            &Config::default(),
            req,
            HandshakeError::Malformed(MalformedHttp::BareLf),
        );
        assert_eq!(r.status, 400);
    }
}

#[test]
fn one_huge_read_of_header_bytes_gets_431() {
    let mut req = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    req.resize(1 << 20, b'a');
    // Splitting a megabyte at every byte is slow: whole, byte by byte and
    // with a frame behind it.
    let ways = [
        ("whole".to_owned(), vec![req.clone()]),
        (
            "byte by byte".to_owned(),
            req.chunks(1).map(<[u8]>::to_vec).collect(),
        ),
        ("trailing".to_owned(), vec![[&req, FRAME].concat()]),
    ];
    let r = refused_fed(
        &Config::default(),
        &ways,
        HandshakeError::TooLarge(16 << 10),
    );
    assert_eq!(r.status, 431);
}

#[test]
fn plain_get_is_reported_and_answered_with_send_http_response() {
    let req = request("GET", &[("Host", "example.com"), ("Accept", "*/*")]);
    let expected = Event::HttpRequest(Box::new(HttpRequest {
        method: "GET".into(),
        path: "/chat".into(),
        headers: Headers(vec![
            ("Host".into(), Bytes::from_static(b"example.com")),
            ("Accept".into(), Bytes::from_static(b"*/*")),
        ]),
    }));
    for split in 1..req.len() {
        let mut server = Connection::server(Config::default());
        server.receive(&req[..split]).unwrap();
        assert_eq!(events(&mut server), [], "split {split}");
        server.receive(&req[split..]).unwrap();
        assert_eq!(
            events(&mut server),
            std::slice::from_ref(&expected),
            "split {split}"
        );
    }

    let mut server = Connection::server(Config::default());
    server.receive(&req).unwrap();
    assert_eq!(events(&mut server), [expected]);
    assert_eq!(output(&mut server), b"", "the application answers");
    assert!(!server.is_finished());
    assert!(!server.is_open());
    server
        .send_http_response(
            404,
            "Not Found",
            &[("Content-Type", "text/plain")],
            b"no such page",
        )
        .unwrap();
    let resp = parse_response(&output(&mut server));
    assert_eq!((resp.status, resp.reason.as_str()), (404, "Not Found"));
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert_eq!(resp.body, b"no such page");
    assert!(server.is_finished());
    let again = server.send_http_response(200, "OK", &[], b"");
    assert_eq!(again.unwrap_err().kind(), &SendErrorKind::WrongState);
}

#[test]
fn a_plain_requests_body_is_kept_for_the_application() {
    let mut req = request("POST", &[("Host", "h"), ("Content-Length", "4")]);
    req.extend_from_slice(b"da");
    let mut server = Connection::server(Config::default());
    server.receive(&req).unwrap();
    server.receive(b"ta").unwrap();
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::HttpRequest(r)] if r.method == "POST"
    ));
    assert_eq!(server.take_buffered(), Bytes::from_static(b"data"));
}

#[test]
fn a_plain_request_left_unanswered_fails_at_the_peers_end() {
    let mut server = Connection::server(Config::default());
    server.receive(&request("GET", &[("Host", "h")])).unwrap();
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::HttpRequest(_)]
    ));
    // The peer half-closes without an answer having been queued: nothing
    // can come any more, so the exchange is over, as for an undecided
    // upgrade, and nothing is sent.
    let e = server.receive_eof().unwrap_err();
    assert_eq!(e, Error::Handshake(HandshakeError::Eof));
    assert!(server.is_finished());
    assert_eq!(server.error(), Some(&e));
    assert_eq!(output(&mut server), b"");
    let late = server.send_http_response(200, "OK", &[], b"");
    assert_eq!(late.unwrap_err().kind(), &SendErrorKind::WrongState);
    assert_eq!(server.receive(b"x"), Err(e));

    // Answered first, the end of the stream changes nothing.
    let mut server = Connection::server(Config::default());
    server.receive(&request("GET", &[("Host", "h")])).unwrap();
    server
        .send_http_response(204, "No Content", &[], b"")
        .unwrap();
    assert_eq!(server.receive_eof(), Ok(()));
    assert_eq!(server.error(), None);
    assert_eq!(parse_response(&output(&mut server)).status, 204);
}

#[test]
fn http_response_fields_cannot_inject_headers() {
    let mut server = Connection::server(Config::default());
    server.receive(&request("GET", &[("Host", "h")])).unwrap();
    let _ = events(&mut server);
    for (reason, headers) in [
        ("OK\r\nX-Evil: 1", vec![]),
        ("OK", vec![("X-A", "1\r\nX-Evil: 1")]),
        ("OK", vec![("X-A\r\nX-Evil", "1")]),
    ] {
        assert!(server
            .send_http_response(200, reason, &headers, b"")
            .is_err());
    }
    assert_eq!(output(&mut server), b"");
    server.send_http_response(200, "OK", &[], b"").unwrap();
}

#[test]
fn send_http_response_is_refused_on_a_websocket_connection() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&request("GET", &upgrade_fields(&[], &[])))
        .unwrap();
    let err = server.send_http_response(200, "OK", &[], b"").unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::WrongState);
}

#[test]
fn wrong_version_gets_426_with_the_supported_version() {
    for version in [Some("8"), Some("12"), Some("14"), Some("13, 8"), None] {
        let mut fields = upgrade_fields(&["Sec-WebSocket-Version"], &[]);
        if let Some(v) = version {
            fields.push(("Sec-WebSocket-Version", v));
        }
        let resp = refused(
            &Config::default(),
            &request("GET", &fields),
            HandshakeError::Version,
        );
        assert_eq!(resp.status, 426, "version {version:?}");
        assert_eq!(resp.header("Sec-WebSocket-Version"), Some("13"));
    }
}

#[test]
fn missing_or_bad_key_gets_400() {
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[("Sec-WebSocket-Key", "c2hvcnQ=")], // 5 bytes, not 16
        &[("Sec-WebSocket-Key", "not base64!!")],
        &[
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    ];
    for extra in cases {
        let fields = upgrade_fields(&["Sec-WebSocket-Key"], extra);
        let resp = refused(
            &Config::default(),
            &request("GET", &fields),
            HandshakeError::Header("Sec-WebSocket-Key"),
        );
        assert_eq!(resp.status, 400, "{extra:?}");
    }
}

#[test]
fn missing_connection_upgrade_gets_400() {
    let fields = upgrade_fields(&["Connection"], &[("Connection", "keep-alive")]);
    let resp = refused(
        &Config::default(),
        &request("GET", &fields),
        HandshakeError::Header("Connection"),
    );
    assert_eq!(resp.status, 400);
}

#[test]
fn upgrade_with_another_method_gets_405() {
    for method in ["POST", "PUT", "get"] {
        let resp = refused(
            &Config::default(),
            &request(method, &upgrade_fields(&[], &[])),
            HandshakeError::Method(method.into()),
        );
        assert_eq!(resp.status, 405, "{method}");
        assert_eq!(resp.header("Allow"), Some("GET"));
    }
}

#[test]
fn malformed_request_gets_400() {
    let mut server = Connection::server(Config::default());
    let e = server
        .receive(b"GET /chat HTTP/1.1\r\nNo colon here\r\n\r\n")
        .unwrap_err();
    assert_eq!(
        e,
        Error::Handshake(HandshakeError::Malformed(MalformedHttp::HeaderName))
    );
    assert_eq!(parse_response(&output(&mut server)).status, 400);
    assert_eq!(server.receive(b"x"), Err(e));
}

#[test]
fn header_names_and_tokens_are_case_insensitive() {
    let fields = [
        ("host", "h"),
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, UPGRADE"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];
    let mut server = Connection::server(Config::default());
    server.receive(&request("GET", &fields)).unwrap();
    assert!(server.is_open());
    let resp = output(&mut server);
    let text = String::from_utf8(resp).unwrap();
    assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

#[test]
fn eof_during_the_handshake_fails_without_a_response() {
    let mut server = Connection::server(Config::default());
    server.receive(b"GET /chat HTTP/1.1\r\nHost").unwrap();
    let e = server.receive_eof().unwrap_err();
    assert_eq!(e, Error::Handshake(HandshakeError::Eof));
    assert_eq!(output(&mut server), b"");
    assert!(server.is_finished());
    assert_eq!(server.receive(b"x"), Err(e));

    let mut client = Connection::client(Config::default(), ClientRequest::new("h", "/")).unwrap();
    client.receive(b"HTTP/1.1 101 Swi").unwrap();
    assert_eq!(
        client.receive_eof(),
        Err(Error::Handshake(HandshakeError::Eof))
    );
    assert_eq!(events(&mut client), []);
}

/// Feeds an upgrade request every way (see [`refused`]) to a server that
/// accepts it; checks that every way writes the same bytes and that the
/// frame behind the request, when there is one, is read as a message.
/// Returns what was written.
fn accepted(req: &[u8]) -> String {
    let mut written = Vec::new();
    for (way, pieces) in every_cut(req, FRAME) {
        let mut server = Connection::server(Config::default());
        for p in &pieces {
            assert_eq!(server.receive(p), Ok(p.len()), "{way}");
        }
        assert!(server.is_open(), "{way}");
        let got = events(&mut server);
        assert!(matches!(got[0], Event::Open(_)), "{way}: {got:?}");
        let messages = if way.ends_with("trailing") { 1 } else { 0 };
        assert_eq!(got.len(), 1 + messages, "{way}: {got:?}");
        written.push(output(&mut server));
    }
    assert!(written.iter().all(|w| w == &written[0]));
    String::from_utf8(written.swap_remove(0)).unwrap()
}

const SWITCHING: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

#[test]
fn an_upgrade_request_with_a_body_gets_400_and_its_body_is_never_read_as_frames() {
    // The body is a masked "hi" frame: read on, it would be a message.
    let hi = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    let chunked_hi = [b"6\r\n".as_slice(), &hi[..6], b"\r\n0\r\n\r\n"].concat();
    for (framing, body, expected) in [
        (("Content-Length", "8"), &hi[..], HandshakeError::Body),
        (("Content-Length", "8, 8"), &hi[..], HandshakeError::Body),
        (
            ("Transfer-Encoding", "chunked"),
            &chunked_hi[..],
            HandshakeError::Body,
        ),
        (("Transfer-Encoding", "gzip"), &hi[..], HandshakeError::Body),
        (
            ("Content-Length", "+8"),
            &hi[..],
            HandshakeError::Malformed(MalformedHttp::ContentLength),
        ),
        (
            ("Content-Length", "8, 9"),
            &hi[..],
            HandshakeError::Malformed(MalformedHttp::ContentLength),
        ),
    ] {
        let mut req = request("GET", &upgrade_fields(&[], &[framing]));
        req.extend_from_slice(body);
        let resp = refused(&Config::default(), &req, expected);
        assert_eq!(resp.status, 400, "{framing:?}");
    }
    // Both framing fields: RFC 9112 §6.3 item 3 (smuggling).
    let both = [("Transfer-Encoding", "chunked"), ("Content-Length", "0")];
    let resp = refused(
        &Config::default(),
        &request("GET", &upgrade_fields(&[], &both)),
        HandshakeError::Malformed(MalformedHttp::ConflictingFraming),
    );
    assert_eq!(resp.status, 400);
    // Content-Length 0 is no body.
    let zero = request("GET", &upgrade_fields(&[], &[("Content-Length", "0")]));
    assert_eq!(accepted(&zero), SWITCHING);
}

#[test]
fn expect_100_continue_gets_a_100_before_the_101() {
    let req = request("GET", &upgrade_fields(&[], &[("Expect", "100-continue")]));
    assert_eq!(
        accepted(&req),
        format!("HTTP/1.1 100 Continue\r\n\r\n{SWITCHING}")
    );
    // With a body it is refused before any 100 goes out.
    let with_body = upgrade_fields(&[], &[("Expect", "100-continue"), ("Content-Length", "2")]);
    let resp = refused(
        &Config::default(),
        &request("GET", &with_body),
        HandshakeError::Body,
    );
    assert_eq!(resp.status, 400);
}

#[test]
fn a_missing_repeated_or_invalid_host_gets_400() {
    let bad: [&[(&str, &str)]; 7] = [
        &[],
        &[("Host", "good.example"), ("Host", "evil.example")],
        &[("Host", "good.example"), ("Host", "good.example")],
        &[("Host", "a b")],
        &[("Host", "h:99999")],
        &[("Host", "u@h")],
        &[("Host", "")],
    ];
    for hosts in bad {
        let resp = refused(
            &Config::default(),
            &request("GET", &upgrade_fields(&["Host"], hosts)),
            HandshakeError::Header("Host"),
        );
        assert_eq!(resp.status, 400, "{hosts:?}");
    }
    for host in ["[::1]:9001", "example.com:8080", "10.0.0.1"] {
        let req = request("GET", &upgrade_fields(&["Host"], &[("Host", host)]));
        assert_eq!(accepted(&req), SWITCHING, "{host}");
    }
}

#[test]
fn a_get_with_a_target_in_another_form_gets_400() {
    for target in [
        "*",
        "server.example.com:80",
        "chat",
        "http://user@server.example.com/chat",
        "ftp://server.example.com/chat",
        "http:///chat",
    ] {
        let resp = refused(
            &Config::default(),
            &request_to("GET", target, &upgrade_fields(&[], &[])),
            HandshakeError::Malformed(MalformedHttp::Target),
        );
        assert_eq!(resp.status, 400, "{target}");
    }
    let absolute = "http://server.example.com/chat?x=1";
    let req = request_to("GET", absolute, &upgrade_fields(&[], &[]));
    assert_eq!(accepted(&req), SWITCHING);
}

//! The application decides each upgrade: Origin, path and subprotocol
//! checks, refusals and acceptances, checked against the exact bytes.
//! Every request is fed whole, byte by byte, and with trailing bytes; the
//! HTTP/1.1 checks also split it at every byte.

mod common;

use common::ws::every_cut;
use sansproto::ws::{
    Accept, Config, Connection, Event, FieldError, HandshakeError, MalformedHttp, Message,
    OriginPolicy, Reject, SendErrorKind, UpgradeRequest,
};
use std::time::{Duration, Instant};

/// RFC 6455 §1.3's request, with an Origin and a path of our choosing.
fn upgrade(path: &str, origin: Option<&str>, protocols: Option<&str>) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n"
    );
    if let Some(o) = origin {
        r.push_str(&format!("Origin: {o}\r\n"));
    }
    if let Some(p) = protocols {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// RFC 6455 §5.7: a masked "Hello" from the client.
const HELLO: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// How a request reaches the server.
#[derive(Debug, Clone, Copy)]
enum Feed {
    Whole,
    ByteByByte,
    /// Whole, with a client frame right behind it in the same read.
    Trailing,
}

const FEEDS: [Feed; 3] = [Feed::Whole, Feed::ByteByByte, Feed::Trailing];

/// A deciding server fed `request`; returns it with the reported upgrade.
fn decide(request: &[u8], feed: Feed) -> (Connection, UpgradeRequest) {
    let pieces = match feed {
        Feed::Whole => vec![request.to_vec()],
        Feed::ByteByByte => request.chunks(1).map(<[u8]>::to_vec).collect(),
        Feed::Trailing => vec![[request, HELLO].concat()],
    };
    decide_fed(&pieces, &format!("{feed:?}"))
}

/// A deciding server fed `pieces` (fed `way`); returns it with the
/// reported upgrade.
fn decide_fed(pieces: &[Vec<u8>], way: &str) -> (Connection, UpgradeRequest) {
    let mut server = Connection::server_with_decision(Config::default());
    server.handle_timeout(Instant::now());
    for p in pieces {
        assert_eq!(server.receive(p), Ok(p.len()), "{way}");
    }
    let Some(Event::Upgrade(up)) = server.poll_event() else {
        panic!("{way}: no upgrade event");
    };
    assert_eq!(server.poll_event(), None);
    // Nothing is sent before the application answers.
    let mut out = Vec::new();
    assert_eq!(server.poll_transmit(&mut out), 0, "{way}");
    assert!(!server.is_open());
    (server, *up)
}

/// The application of the demo: Origin must be ours (or absent), the
/// path must be `/echo`.
fn judge(server: &mut Connection, up: &UpgradeRequest) {
    let policy = OriginPolicy::allow(["http://127.0.0.1:8080"]);
    match policy.check(up) {
        Err(refusal) => server.reject(refusal).unwrap(),
        Ok(()) if up.path() != "/echo" => server.reject(Reject::new(404)).unwrap(),
        Ok(()) => {
            let answer = Accept::new()
                .with_protocol("chat.v1")
                .with_header("X-Served-By", "node-7")
                .unwrap();
            server.accept(answer).unwrap()
        }
    }
}

fn output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    out
}

#[test]
fn an_upgrade_from_another_origin_is_refused_with_403() {
    let request = upgrade("/echo", Some("http://evil.example"), Some("chat.v1"));
    for feed in FEEDS {
        let (mut server, up) = decide(&request, feed);
        assert_eq!(up.origin(), Some("http://evil.example"));
        judge(&mut server, &up);
        assert_eq!(
            output(&mut server),
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 19\r\nConnection: close\r\n\r\n\
              origin not allowed\n",
            "{feed:?}"
        );
        assert!(server.is_finished());
        assert_eq!(server.poll_event(), None, "{feed:?}: no Open, no message");
        assert_eq!(server.error(), None);
    }
}

#[test]
fn an_upgrade_on_another_path_is_refused_with_404() {
    let request = upgrade("/other?x=1", None, None);
    for feed in FEEDS {
        let (mut server, up) = decide(&request, feed);
        assert_eq!(
            (up.path(), up.request.path.as_str()),
            ("/other", "/other?x=1")
        );
        judge(&mut server, &up);
        assert_eq!(
            output(&mut server),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "{feed:?}"
        );
        assert!(server.is_finished());
        // Later input is ignored; nothing more is written.
        server.receive(HELLO).unwrap();
        assert_eq!(output(&mut server), b"");
    }
}

#[test]
fn an_upgrade_is_accepted_with_a_chosen_subprotocol_and_an_extra_header() {
    for origin in [Some("http://127.0.0.1:8080"), None] {
        let request = upgrade("/echo", origin, Some("chat.v2, chat.v1"));
        for feed in FEEDS {
            let (mut server, up) = decide(&request, feed);
            assert_eq!(up.protocols, ["chat.v2", "chat.v1"]);
            judge(&mut server, &up);
            assert_eq!(
                output(&mut server),
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                  Sec-WebSocket-Protocol: chat.v1\r\nX-Served-By: node-7\r\n\r\n",
                "{feed:?}"
            );
            assert!(server.is_open());
            assert_eq!(server.protocol(), Some("chat.v1"));
            let Some(Event::Open(opened)) = server.poll_event() else {
                panic!()
            };
            assert_eq!(opened.protocol.as_deref(), Some("chat.v1"));
            if let Feed::Trailing = feed {
                // The frame that arrived behind the request was kept.
                assert_eq!(
                    server.poll_event(),
                    Some(Event::Message(Message::from("Hello")))
                );
            } else {
                server.receive(HELLO).unwrap();
                assert_eq!(
                    server.poll_event(),
                    Some(Event::Message(Message::from("Hello")))
                );
            }
        }
    }
}

#[test]
fn bad_answers_are_handed_back_with_a_typed_error() {
    let request = upgrade("/echo", None, Some("chat.v1"));
    let (mut server, _) = decide(&request, Feed::Whole);
    let err = server
        .accept(Accept::new().with_protocol("chat.v9"))
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::Field(FieldError::NotOffered("chat.v9".into()))
    );
    assert_eq!(err.payload(), &Accept::new().with_protocol("chat.v9"));
    let mut refusal = Reject::new(403);
    refusal
        .headers
        .push(("X".into(), "v\r\n\r\nHTTP/1.1 200 OK".into()));
    let err = server.reject(refusal).unwrap_err();
    assert_eq!(
        err.kind(),
        &SendErrorKind::Field(FieldError::Value("X".into()))
    );
    let err = server.reject(Reject::new(101)).unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::Field(FieldError::Status(101)));
    // Nothing went out; the request still waits for a good answer.
    assert_eq!(output(&mut server), b"");
    server.accept(Accept::new()).unwrap();
    assert!(server.is_open());
    // Answers outside the decision are refused.
    assert_eq!(
        server.accept(Accept::new()).unwrap_err().kind(),
        &SendErrorKind::WrongState
    );
    let mut auto = Connection::server(Config::default());
    assert_eq!(
        auto.reject(Reject::new(403)).unwrap_err().kind(),
        &SendErrorKind::WrongState
    );
}

#[test]
fn the_deadline_and_a_bound_apply_while_the_application_decides() {
    let config = Config::default()
        .with_handshake_timeout(Some(Duration::from_secs(5)))
        .with_handshake_limits(1024, 64);
    let t0 = Instant::now();
    let mut server = Connection::server_with_decision(config.clone());
    server.handle_timeout(t0);
    server.receive(&upgrade("/echo", None, None)).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Upgrade(_))));
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    server.handle_timeout(t0 + Duration::from_secs(5));
    assert!(server.error().is_some());
    assert!(server.is_finished());

    let mut server = Connection::server_with_decision(config);
    server.receive(&upgrade("/echo", None, None)).unwrap();
    assert!(
        server.receive(&[0x82; 1025]).is_err(),
        "early bytes are bounded"
    );
}

#[test]
fn plain_http_responses_check_their_fields() {
    let mut server = Connection::server(Config::default());
    server
        .receive(b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert!(matches!(server.poll_event(), Some(Event::HttpRequest(_))));
    for (status, reason, headers, err) in [
        (
            200,
            "OK",
            vec![("X", "a\r\nb")],
            FieldError::Value("X".into()),
        ),
        (
            200,
            "OK",
            vec![("Bad Name", "a")],
            FieldError::Name("Bad Name".into()),
        ),
        (
            200,
            "OK",
            vec![("Content-Length", "9")],
            FieldError::Reserved("Content-Length".into()),
        ),
        (200, "O\r\nK", vec![], FieldError::Reason),
        (42, "OK", vec![], FieldError::Status(42)),
    ] {
        let err2 = server
            .send_http_response(status, reason, &headers, b"")
            .unwrap_err();
        assert_eq!(err2.kind(), &SendErrorKind::Field(err));
    }
    assert_eq!(output(&mut server), b"");
    server
        .send_http_response(200, "OK", &[("Content-Type", "text/plain")], b"up")
        .unwrap();
    assert_eq!(
        output(&mut server),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
          Connection: close\r\n\r\nup"
    );
    assert!(server.is_finished());
}

#[test]
fn every_unsafe_field_is_refused_on_the_server_side() {
    let fields = [
        (
            "X",
            "v\r\n\r\nHTTP/1.1 200 OK",
            FieldError::Value("X".into()),
        ),
        ("X", "a\nb", FieldError::Value("X".into())),
        ("X", "a\0b", FieldError::Value("X".into())),
        ("Bad Name", "v", FieldError::Name("Bad Name".into())),
        ("A:B", "v", FieldError::Name("A:B".into())),
        ("", "v", FieldError::Name("".into())),
        ("Host", "h", FieldError::Reserved("Host".into())),
        (
            "Sec-WebSocket-Key",
            "k",
            FieldError::Reserved("Sec-WebSocket-Key".into()),
        ),
        (
            "sec-websocket-protocol",
            "p",
            FieldError::Reserved("sec-websocket-protocol".into()),
        ),
        (
            "Connection",
            "close",
            FieldError::Reserved("Connection".into()),
        ),
    ];
    for (name, value, err) in fields {
        // The 101's extra fields, from the configuration or the answer.
        assert_eq!(
            Config::default().with_header(name, value).map(|_| ()),
            Err(err.clone())
        );
        assert_eq!(
            Accept::new().with_header(name, value).map(|_| ()),
            Err(err.clone())
        );
    }
    // A refusal's fields (the framing fields are its own).
    assert_eq!(
        Reject::new(403)
            .with_header("Content-Length", "1")
            .map(|_| ()),
        Err(FieldError::Reserved("Content-Length".into()))
    );
    // Accepted::response_bytes checks the public fields again.
    let (_, up) = decide(&upgrade("/echo", None, Some("a")), Feed::Whole);
    let mut accepted = up.accept(&Config::default(), &Accept::new()).unwrap();
    for (protocol, err) in [
        ("a, b", FieldError::Subprotocol("a, b".into())),
        ("chat v1", FieldError::Subprotocol("chat v1".into())),
        ("", FieldError::Subprotocol("".into())),
    ] {
        accepted.protocol = Some(protocol.into());
        assert_eq!(accepted.response_bytes(), Err(err));
    }
    accepted.protocol = None;
    accepted.accept = "v\r\n\r\nHTTP/1.1 200 OK".into();
    assert_eq!(
        accepted.response_bytes(),
        Err(FieldError::Value("Sec-WebSocket-Accept".into()))
    );
}

/// An upgrade request for `target` with `host` and `extra` fields.
fn upgrade_to(target: &str, host: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// The fields of [`upgrade_to`] for `from_headers`.
const FIELDS: [(&str, &[u8]); 4] = [
    ("Upgrade", b"websocket"),
    ("Connection", b"Upgrade"),
    ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", b"13"),
];

#[test]
fn path_query_and_host_read_alike_for_origin_and_absolute_form_targets() {
    for (target, host, want) in [
        (
            "http://server.example.com/admin?x=1",
            "other.example",
            ("/admin", Some("x=1"), "server.example.com"),
        ),
        (
            "WSS://server.example.com:8443",
            "server.example.com:8443",
            ("/", None, "server.example.com:8443"),
        ),
        (
            "/admin?x=1",
            "server.example.com",
            ("/admin", Some("x=1"), "server.example.com"),
        ),
        ("/a?", "h", ("/a", Some(""), "h")),
    ] {
        let request = upgrade_to(target, host, "");
        for (way, pieces) in every_cut(&request, HELLO) {
            let (mut server, up) = decide_fed(&pieces, &way);
            assert_eq!((up.path(), up.query(), up.host()), want, "{target} {way}");
            assert_eq!(up.request.path, target, "the target as received");
            server.accept(Accept::new()).unwrap();
            assert!(matches!(server.poll_event(), Some(Event::Open(_))), "{way}");
            let hello = way
                .ends_with("trailing")
                .then(|| Event::Message("Hello".into()));
            assert_eq!(server.poll_event(), hello, "{target} {way}");
        }
        // An application that parsed the request itself reads the same.
        let fields = [("Host", host.as_bytes())].into_iter().chain(FIELDS);
        let up = UpgradeRequest::from_headers("GET", target, fields).unwrap();
        assert_eq!((up.path(), up.query(), up.host()), want, "{target}");
        #[cfg(feature = "http")]
        {
            let mut req = http::Request::get(target).header("Host", host);
            for (k, v) in FIELDS {
                req = req.header(k, v);
            }
            let up = UpgradeRequest::from_http(&req.body(()).unwrap()).unwrap();
            assert_eq!(
                (up.path(), up.query(), up.host()),
                want,
                "from_http {target}"
            );
        }
    }
}

#[test]
fn expect_100_continue_gets_its_100_only_with_the_101() {
    let request = upgrade_to("/echo", "h", "Expect: 100-continue\r\n");
    for (way, pieces) in every_cut(&request, HELLO) {
        let (mut server, up) = decide_fed(&pieces, &way);
        assert!(up.expects_continue());
        server.accept(Accept::new()).unwrap();
        let out = output(&mut server);
        assert!(
            out.starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n"),
            "{way}: {:?}",
            String::from_utf8_lossy(&out)
        );
        // A refusal is the final answer; no 100 before it.
        let (mut server, _) = decide_fed(&pieces, &way);
        server.reject(Reject::new(403)).unwrap();
        assert!(
            output(&mut server).starts_with(b"HTTP/1.1 403 Forbidden\r\n"),
            "{way}"
        );
    }
    // The same from headers parsed elsewhere.
    let fields = [("Host", &b"h"[..]), ("Expect", b"100-continue")];
    let up = UpgradeRequest::from_headers("GET", "/", fields.into_iter().chain(FIELDS)).unwrap();
    let accepted = up.accept(&Config::default(), &Accept::new()).unwrap();
    let bytes = accepted.response_bytes().unwrap();
    assert!(bytes.starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 "));
}

/// A request target, header fields besides [`FIELDS`], and the error.
type Case = (
    &'static str,
    &'static [(&'static str, &'static [u8])],
    HandshakeError,
);

#[test]
fn headers_parsed_elsewhere_with_a_body_or_a_bad_host_or_target_are_refused() {
    let cases: [Case; 6] = [
        (
            "/",
            &[("Host", b"h"), ("Content-Length", b"5")],
            HandshakeError::Body,
        ),
        (
            "/",
            &[("Host", b"h"), ("Transfer-Encoding", b"chunked")],
            HandshakeError::Body,
        ),
        (
            "/",
            &[("Host", b"h"), ("Host", b"evil")],
            HandshakeError::Header("Host"),
        ),
        ("/", &[("Host", b"u@h")], HandshakeError::Header("Host")),
        (
            "*",
            &[("Host", b"h")],
            HandshakeError::Malformed(MalformedHttp::Target),
        ),
        (
            "h:80",
            &[("Host", b"h")],
            HandshakeError::Malformed(MalformedHttp::Target),
        ),
    ];
    for (target, extra, err) in cases {
        let fields = extra.iter().copied().chain(FIELDS);
        let got = UpgradeRequest::from_headers("GET", target, fields).unwrap_err();
        assert_eq!(got, err, "{target} {extra:?}");
        assert_eq!(Reject::for_error(&got).status, 400);
    }
}

#[test]
fn credentials_in_a_request_never_show_in_debug_output() {
    let request = upgrade("/echo", None, None);
    let head = std::str::from_utf8(&request).unwrap().trim_end();
    let with_secrets = format!(
        "{head}\r\nCookie: session=s3cr3t-cookie\r\nAuthorization: Bearer s3cr3t-token\r\n\
         X-Trace: visible-7\r\n\r\n"
    );
    for feed in FEEDS {
        let (server, up) = decide(with_secrets.as_bytes(), feed);
        // The server holds the request while the application decides.
        for shown in [
            format!("{server:?}"),
            format!("{up:?}"),
            format!("{:?}", up.request),
        ] {
            // Any field may carry a credential: names only.
            assert!(!shown.contains("visible-7"), "{feed:?}: {shown}");
        }
        // What was received stays readable through the request itself.
        assert_eq!(up.request.headers.get_str("x-trace"), Some("visible-7"));
        let shown = format!("{up:?}");
        assert!(
            shown.contains("Cookie") && shown.contains("X-Trace"),
            "{shown}"
        );
    }
}

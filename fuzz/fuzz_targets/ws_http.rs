//! The HTTP/1.1 layer under every handshake: arbitrary heads and bodies
//! cut into reads at arbitrary points, arbitrary URLs, and arbitrary
//! header fields to write.
//!
//! Checks that no input panics; that a refusal's head and body are read
//! the same however the bytes are cut and within their limits; that a URL
//! the parser takes always makes a request that can be sent, with no user
//! information in it; and that whatever the writers accept parses back as
//! exactly the message that was meant (no field can split a message).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sansproto::ws::{
    Accept, ClientRequest, Config, Connection, Error, Event, Reject, UpgradeRequest,
};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Lengths of the reads the bytes are cut into (the rest is one read).
    cuts: Vec<u8>,
    eof: bool,
    expire: bool,
    /// A well-formed refusal head put before `bytes`.
    head: Option<Head>,
    bytes: Vec<u8>,
    url: String,
    fields: Vec<(String, String)>,
    status: u16,
    reason: String,
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Head {
    status: u16,
    framing: u8,
    chunks: Vec<Vec<u8>>,
}

const MAX: usize = 512;

impl Head {
    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} Reason\r\n", 100 + self.status % 500).into_bytes();
        match self.framing % 4 {
            0 => {}
            1 => out.extend_from_slice(format!("Content-Length: {}\r\n", self.framing).as_bytes()),
            2 => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            _ => out.extend_from_slice(b"Transfer-Encoding: gzip\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        if self.framing % 4 == 2 {
            for c in &self.chunks {
                out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend_from_slice(c);
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }
}

/// What a machine reported: events and errors, in order.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    errors: Vec<Error>,
    finished: bool,
}

fn run(mut conn: Connection, pieces: &[&[u8]], eof: bool, expire: bool) -> Outcome {
    let t0 = Instant::now();
    conn.handle_timeout(t0);
    let mut errors = Vec::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        match conn.receive(piece) {
            // Every event is polled after each piece: all of it is taken.
            Ok(taken) => assert_eq!(taken, piece.len()),
            Err(e) => errors.push(e),
        }
        while let Some(e) = conn.poll_event() {
            events.push(e);
        }
        conn.poll_transmit(&mut out);
    }
    if eof {
        if let Err(e) = conn.receive_eof() {
            errors.push(e);
        }
    }
    if expire {
        let at = conn.poll_timeout();
        conn.handle_timeout(at.unwrap_or(t0) + Duration::from_secs(60));
    }
    while let Some(e) = conn.poll_event() {
        events.push(e);
    }
    errors.dedup();
    Outcome {
        events,
        errors,
        finished: conn.is_finished(),
    }
}

fn cut<'a>(bytes: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    for &c in cuts {
        let n = usize::from(c).min(rest.len());
        let (a, b) = rest.split_at(n);
        pieces.push(a);
        rest = b;
    }
    pieces.push(rest);
    pieces
}

fn config() -> Config {
    Config::default()
        .with_handshake_limits(MAX, 8)
        .with_handshake_timeout(Some(Duration::from_secs(5)))
}

fn client() -> Connection {
    let req = ClientRequest::new("example.com", "/");
    Connection::client_with_random(config(), req, sansproto::seeded_random(1)).unwrap()
}

fn server() -> Connection {
    Connection::server_with_decision(config())
}

fuzz_target!(|input: Input| {
    let mut bytes = input.head.as_ref().map(Head::bytes).unwrap_or_default();
    bytes.extend_from_slice(&input.bytes);

    // Client: a response head and a refusal's body, whole and cut.
    let pieces = cut(&bytes, &input.cuts);
    for make in [client as fn() -> Connection, server] {
        let whole = run(make(), &[&bytes], input.eof, input.expire);
        let split = run(make(), &pieces, input.eof, input.expire);
        assert_eq!(whole, split, "how the bytes are cut changed the outcome");
        for e in &whole.events {
            match e {
                Event::Rejected(r) => assert!(r.body.len() <= MAX),
                Event::Upgrade(u) => assert!(u.request.headers.len() <= 8),
                _ => {}
            }
        }
    }

    // URLs: what parses makes a sendable request without the userinfo.
    if let Ok(req) = ClientRequest::from_url(&input.url) {
        assert!(!req.host.contains('@'), "{:?}", req.host);
        let mut c = Connection::client(Config::default(), req.clone())
            .unwrap_or_else(|e| panic!("{:?} parsed but cannot be sent: {e}", input.url));
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        if let Some(creds) = &req.credentials {
            if !creds.password.is_empty() {
                let text = String::from_utf8_lossy(&out);
                assert!(!text.contains(&format!(":{}@", creds.password)));
            }
        }
        let mut storage = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut storage);
        assert_eq!(
            parsed.parse(&out),
            Ok(httparse::Status::Complete(out.len()))
        );
    }

    // Writers: whatever is accepted parses back as exactly that message.
    let mut reject = Reject::new(input.status);
    reject.reason = input.reason.clone();
    reject.body = input.body.clone().into();
    reject.headers = input.fields.clone();
    if let Ok(out) = reject.response_bytes() {
        let mut storage = vec![httparse::EMPTY_HEADER; input.fields.len() + 2];
        let mut parsed = httparse::Response::new(&mut storage);
        let head = match parsed.parse(&out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("{other:?}: {out:?}"),
        };
        assert_eq!(parsed.code, Some(input.status));
        assert_eq!(parsed.headers.len(), input.fields.len() + 2);
        assert_eq!(&out[head..], &input.body[..]);
    }
    let mut answer = Ok(Accept::new());
    let mut config = Ok(Config::default());
    for (k, v) in &input.fields {
        answer = answer.and_then(|a| a.with_header(k, v));
        config = config.and_then(|c| c.with_header(k, v));
    }
    if let (Ok(answer), Ok(config)) = (answer, config) {
        let headers: [(&str, &[u8]); 5] = [
            ("Host", b"h"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Version", b"13"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        let up = UpgradeRequest::from_headers("GET", "/", headers).unwrap();
        let out = up
            .accept(&config, &answer)
            .unwrap()
            .response_bytes()
            .unwrap();
        let mut storage = vec![httparse::EMPTY_HEADER; 2 * input.fields.len() + 3];
        let mut parsed = httparse::Response::new(&mut storage);
        assert_eq!(
            parsed.parse(&out),
            Ok(httparse::Status::Complete(out.len()))
        );
        assert_eq!(parsed.headers.len(), 2 * input.fields.len() + 3);
    }
});

//! A server connection fed an upgrade request (arbitrary bytes, or a request
//! assembled from arbitrary parts) and whatever follows it, in arbitrary
//! chunk splits, under small handshake limits.
//!
//! Checked after every step: nothing panics; before the handshake ends
//! nothing is sent; a refused handshake answers `HTTP/1.1 4xx` (nothing for
//! end of stream), an accepted one `HTTP/1.1 101` (behind a 100 for
//! `Expect: 100-continue`) with the right accept key;
//! a well-formed request within the limits is accepted; the receive buffer
//! never holds more than the limit plus one chunk; errors are
//! sticky.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sansproto::ws::{accept_key, Config, Connection, Error, Event, HandshakeError};

#[derive(Arbitrary, Debug)]
struct Input {
    max_bytes: u16,
    max_headers: u8,
    head: Head,
    after: Vec<u8>,
    cuts: Vec<u16>,
    eof: bool,
}

#[derive(Arbitrary, Debug)]
enum Head {
    Raw(Vec<u8>),
    Upgrade(Upgrade),
}

/// An upgrade request whose parts are the standard ones unless the input
/// says otherwise.
#[derive(Arbitrary, Debug)]
struct Upgrade {
    method: Option<String>,
    path: Option<String>,
    host: Value,
    upgrade: Value,
    connection: Value,
    key: Key,
    version: Value,
    /// Bit i leaves out required field i.
    omit: u8,
    protocols: Option<String>,
    extra: Vec<(String, String)>,
}

#[derive(Arbitrary, Debug)]
enum Value {
    Standard,
    LowercaseName,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Nonce([u8; 16]),
    Other(String),
}

impl Upgrade {
    /// The request head, and whether it is a valid upgrade request.
    fn build(&self) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut valid = true;
        match &self.method {
            Some(m) => {
                out.extend_from_slice(m.as_bytes());
                valid = false;
            }
            None => out.extend_from_slice(b"GET"),
        }
        out.push(b' ');
        match &self.path {
            Some(p) => {
                out.extend_from_slice(p.as_bytes());
                valid = false;
            }
            None => out.extend_from_slice(b"/chat"),
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let key = match &self.key {
            Key::Nonce(n) => base64(n),
            Key::Other(s) => {
                valid = false;
                s.clone()
            }
        };
        let required = [
            ("Host", &self.host, "server.example.com"),
            ("Upgrade", &self.upgrade, "websocket"),
            ("Connection", &self.connection, "Upgrade"),
            ("Sec-WebSocket-Key", &Value::Other(key), ""),
            ("Sec-WebSocket-Version", &self.version, "13"),
        ];
        for (i, (name, value, standard)) in required.into_iter().enumerate() {
            if self.omit & (1 << i) != 0 {
                valid = false;
                continue;
            }
            let (name, value) = match value {
                Value::Standard => (name.to_owned(), standard),
                Value::LowercaseName => (name.to_ascii_lowercase(), standard),
                Value::Other(v) => {
                    // The key is always given as `Other`; it is valid when
                    // it came from a nonce.
                    if i != 3 {
                        valid = false;
                    }
                    (name.to_owned(), v.as_str())
                }
            };
            field(&mut out, &name, value);
        }
        if let Some(p) = &self.protocols {
            field(&mut out, "Sec-WebSocket-Protocol", p);
            valid = false;
        }
        for (k, v) in &self.extra {
            field(&mut out, k, v);
            valid = false;
        }
        out.extend_from_slice(b"\r\n");
        (out, valid)
    }
}

fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in data.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[derive(Default)]
struct Seen {
    opened: bool,
    http: bool,
    events: usize,
    sticky: Option<Error>,
    out: Vec<u8>,
}

impl Seen {
    /// Polls everything and checks the invariants that hold at any time.
    fn check(&mut self, conn: &mut Connection) {
        while let Some(event) = conn.poll_event() {
            match &event {
                Event::Open(opened) => {
                    assert_eq!(self.events, 0, "Open is not the first event");
                    let request = opened
                        .request
                        .as_ref()
                        .expect("server Open has the request");
                    assert_eq!(request.method, "GET");
                    let key = request
                        .headers
                        .get("Sec-WebSocket-Key")
                        .expect("accepted without a key");
                    let accept =
                        format!("Sec-WebSocket-Accept: {}\r\n", accept_key(key.trim_ascii()));
                    conn.poll_transmit(&mut self.out);
                    assert!(
                        self.out
                            .windows(accept.len())
                            .any(|w| w == accept.as_bytes()),
                        "101 response lacks {accept:?}"
                    );
                    self.opened = true;
                }
                Event::HttpRequest(_) => {
                    assert_eq!(self.events, 0, "HttpRequest is not the first event");
                    self.http = true;
                }
                _ => assert!(self.opened, "{event:?} before the handshake completed"),
            }
            assert!(!(self.http && self.events > 0), "event after HttpRequest");
            self.events += 1;
        }
        conn.poll_transmit(&mut self.out);

        if let Some(e) = &self.sticky {
            assert_eq!(conn.error(), Some(e), "the sticky error changed");
        }
        self.sticky = conn.error().cloned();

        if self.opened {
            // `Expect: 100-continue` gets a 100 first (RFC 9110 §7.8).
            let answer = self
                .out
                .strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n")
                .unwrap_or(&self.out);
            assert!(
                answer.starts_with(b"HTTP/1.1 101 "),
                "accepted but sent {:?}",
                String::from_utf8_lossy(&self.out[..self.out.len().min(40)])
            );
            return;
        }
        match conn.error() {
            None => assert!(self.out.is_empty(), "output before the handshake ended"),
            Some(Error::Handshake(HandshakeError::Eof)) => {
                assert!(self.out.is_empty(), "an answer after end of stream")
            }
            Some(Error::Handshake(e)) => assert!(
                self.out.starts_with(b"HTTP/1.1 4"),
                "refused ({e}) but sent {:?}",
                String::from_utf8_lossy(&self.out[..self.out.len().min(40)])
            ),
            Some(e) => panic!("unexpected error before the handshake completed: {e:?}"),
        }
    }
}

fuzz_target!(|input: Input| {
    let limit = 16 + usize::from(input.max_bytes % 1024);
    let max_headers = 1 + usize::from(input.max_headers % 24);
    let config = Config::default().with_handshake_limits(limit, max_headers);
    let mut conn = Connection::server(config);

    let (mut stream, should_open) = match &input.head {
        Head::Raw(bytes) => (bytes.clone(), false),
        Head::Upgrade(u) => {
            let (head, valid) = u.build();
            let fits = head.len() <= limit && max_headers >= 5;
            (head, valid && fits)
        }
    };
    stream.extend_from_slice(&input.after);

    let mut seen = Seen::default();
    let mut rest = &stream[..];
    let mut cuts = input.cuts.iter();
    let mut largest_chunk = 0;
    while !rest.is_empty() {
        let n = cuts
            .next()
            .map_or(rest.len(), |c| 1 + usize::from(*c % 1024))
            .min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        largest_chunk = largest_chunk.max(chunk.len());

        let before = seen.sticky.clone();
        let result = conn
            .receive(chunk)
            .map(|t| assert_eq!(t, chunk.len(), "events are polled: all is taken"));
        if let Some(e) = before {
            assert_eq!(result, Err(e), "receive after an error");
        }
        if let Err(e) = &result {
            assert_eq!(
                conn.error(),
                Some(e),
                "returned error is not the sticky one"
            );
        }
        seen.check(&mut conn);
        if !seen.opened {
            let held = conn.buffered_input();
            assert!(
                held <= limit + largest_chunk,
                "{held} bytes buffered, limit {limit}, largest chunk {largest_chunk}"
            );
        }
    }
    if input.eof {
        let before = seen.sticky.clone();
        let result = conn.receive_eof();
        if let Some(e) = before {
            assert_eq!(result, Err(e), "receive_eof after an error");
        }
        seen.check(&mut conn);
    }
    if should_open {
        assert!(
            seen.opened,
            "a valid request within the limits was not accepted"
        );
    }
});

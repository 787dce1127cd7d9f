//! A client connection (seeded randomness) fed a server response (arbitrary
//! bytes, or a response assembled from arbitrary parts around the right
//! accept key) and whatever follows it, in arbitrary chunk splits with
//! occasional end of stream.
//!
//! Checked after every step: nothing panics; the request is well formed and
//! nothing else is sent before the handshake ends; after it only masked,
//! well-formed frames are sent; `Open` comes only from a 101 and `Rejected`
//! only from another status, which then is the sticky error; a valid 101
//! within the limits opens the connection; the receive buffer never holds
//! more than the limit plus one chunk; errors are sticky; text is
//! UTF-8; at most one `Closed`, the last event, after which the connection
//! is finished.

#![no_main]

use sansproto_fuzz::ws_wire;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sansproto::ws::{
    accept_key, ClientRequest, Config, Connection, Error, Event, HandshakeError, Message,
};
use ws_wire::Wire;

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    max_bytes: u16,
    max_headers: u8,
    protocols: bool,
    response: Head,
    after: Vec<u8>,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Chunk(u16),
    Eof,
}

#[derive(Arbitrary, Debug)]
enum Head {
    Raw(Vec<u8>),
    Built(Response),
}

/// A response whose parts are those of a valid 101 unless the input says
/// otherwise.
#[derive(Arbitrary, Debug)]
struct Response {
    status: Option<u16>,
    reason: Option<String>,
    upgrade: Value,
    connection: Value,
    accept: Value,
    /// Bit i leaves out required field i.
    omit: u8,
    protocol: Option<String>,
    extensions: Option<String>,
    content_length: Option<u16>,
    extra: Vec<(String, String)>,
}

#[derive(Arbitrary, Debug)]
enum Value {
    Standard,
    LowercaseName,
    Other(String),
}

impl Response {
    /// The response head, and whether it is a valid 101 for `accept`.
    fn build(&self, accept: &str) -> (Vec<u8>, bool) {
        let mut valid = self.status.is_none() && self.reason.is_none();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status.unwrap_or(101),
            self.reason.as_deref().unwrap_or("Switching Protocols")
        )
        .into_bytes();
        let required = [
            ("Upgrade", &self.upgrade, "websocket"),
            ("Connection", &self.connection, "Upgrade"),
            ("Sec-WebSocket-Accept", &self.accept, accept),
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
                    valid = false;
                    (name.to_owned(), v.as_str())
                }
            };
            field(&mut out, &name, value);
        }
        let optional = [
            ("Sec-WebSocket-Protocol", self.protocol.clone()),
            ("Sec-WebSocket-Extensions", self.extensions.clone()),
            ("Content-Length", self.content_length.map(|n| n.to_string())),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                field(&mut out, name, &v);
                valid = false;
            }
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

struct Seen {
    opened: bool,
    rejected: Option<u16>,
    closed: bool,
    events: usize,
    sticky: Option<Error>,
    wire: Wire,
}

impl Seen {
    fn check(&mut self, conn: &mut Connection) {
        while let Some(event) = conn.poll_event() {
            assert!(!self.closed, "{event:?} after Closed");
            match &event {
                Event::Open(opened) => {
                    assert_eq!(self.events, 0, "Open is not the first event");
                    let status = opened.response.as_ref().map(|r| r.status);
                    assert_eq!(status, Some(101), "opened without a 101");
                    self.opened = true;
                }
                Event::Rejected(response) => {
                    assert_eq!(self.events, 0, "Rejected is not the first event");
                    assert_ne!(response.status, 101, "a 101 reported as rejected");
                    self.rejected = Some(response.status);
                }
                Event::HttpRequest(_) => panic!("a client reported an HTTP request"),
                Event::Message(m) => {
                    assert!(self.opened, "message before Open");
                    if let Message::Text(t) = m {
                        assert!(
                            std::str::from_utf8(t.as_bytes()).is_ok(),
                            "text is not UTF-8"
                        );
                    }
                }
                Event::Closed(_) => {
                    assert!(self.opened, "Closed before Open");
                    assert!(conn.is_finished(), "Closed but not finished");
                    self.closed = true;
                }
                _ => assert!(self.opened, "{event:?} before Open"),
            }
            self.events += 1;
        }
        let mut out = Vec::new();
        conn.poll_transmit(&mut out);
        if !self.opened {
            assert!(
                out.is_empty(),
                "sent {} bytes before the handshake ended",
                out.len()
            );
        }
        self.wire.feed(&out);

        if let Some(e) = &self.sticky {
            assert_eq!(conn.error(), Some(e), "the sticky error changed");
        }
        self.sticky = conn.error().cloned();
        if let Some(status) = self.rejected {
            assert_eq!(
                conn.error(),
                Some(&Error::Handshake(HandshakeError::Status(status))),
                "rejected with {status} but failed otherwise"
            );
        }
        if self.closed {
            assert!(conn.is_finished(), "not finished after Closed");
        }
        if !self.opened {
            match conn.error() {
                None | Some(Error::Handshake(_)) => {}
                Some(e) => panic!("unexpected error before the handshake completed: {e:?}"),
            }
        }
    }
}

fn key_of(request: &[u8]) -> String {
    let text = std::str::from_utf8(request).expect("request is ASCII");
    assert!(
        text.starts_with("GET /chat HTTP/1.1\r\n"),
        "request line: {text:?}"
    );
    assert!(text.ends_with("\r\n\r\n"), "request head is not terminated");
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("request has a key");
    key.to_owned()
}

fuzz_target!(|input: Input| {
    let limit = 16 + usize::from(input.max_bytes % 1024);
    let max_headers = 1 + usize::from(input.max_headers % 24);
    let mut config = Config::default().with_handshake_limits(limit, max_headers);
    if input.protocols {
        config = config.with_protocols(["chat", "superchat"]).unwrap();
    }
    let request = ClientRequest::new("server.example.com", "/chat");
    let random = sansproto::seeded_random(input.seed);
    let mut conn = Connection::client_with_random(config, request, random).expect("valid request");

    let mut request = Vec::new();
    conn.poll_transmit(&mut request);
    let accept = accept_key(key_of(&request).as_bytes());

    let (mut stream, valid) = match &input.response {
        Head::Raw(bytes) => (bytes.clone(), false),
        Head::Built(r) => r.build(&accept),
    };
    let head_len = stream.len();
    let should_open = valid && head_len <= limit && max_headers >= 3;
    stream.extend_from_slice(&input.after);

    let mut seen = Seen {
        opened: false,
        rejected: None,
        closed: false,
        events: 0,
        sticky: None,
        wire: Wire::new(true),
    };
    let mut fed = 0;
    let mut early_eof = false;
    let mut largest_chunk = 0;
    let mut steps = input.steps.iter();
    loop {
        let before = seen.sticky.clone();
        let (result, chunk_len) = match steps.next() {
            Some(Step::Eof) => {
                early_eof |= fed < head_len;
                (conn.receive_eof(), 0)
            }
            step => {
                let rest = &stream[fed..];
                if rest.is_empty() {
                    if step.is_none() {
                        break;
                    }
                    continue;
                }
                let n = match step {
                    Some(Step::Chunk(c)) => 1 + usize::from(*c % 1024),
                    _ => rest.len(),
                }
                .min(rest.len());
                fed += n;
                let taken = conn.receive(&rest[..n]);
                (
                    taken.map(|t| assert_eq!(t, n, "events are polled: all is taken")),
                    n,
                )
            }
        };
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
        largest_chunk = largest_chunk.max(chunk_len);
        if !seen.opened {
            let held = conn.buffered_input();
            assert!(
                held <= limit + largest_chunk,
                "{held} bytes buffered, limit {limit}, largest chunk {largest_chunk}"
            );
        }
    }
    if should_open && !early_eof {
        assert!(
            seen.opened,
            "a valid 101 within the limits was not accepted"
        );
    }
});

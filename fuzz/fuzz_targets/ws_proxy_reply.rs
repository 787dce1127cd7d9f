//! Arbitrary proxy replies, cut into reads at arbitrary points, fed to the
//! CONNECT machine with small limits. Checks that no input panics, that the
//! limits hold, that how the reply is cut never changes what is reported,
//! and that the chained WebSocket client reports the same proxy events.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sansproto::ws::proxy::{
    ProxiedClient, ProxiedEvent, Proxy, ProxyConfig, ProxyError, ProxyEvent, ProxyRequest,
};
use sansproto::ws::{ClientRequest, Config};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Lengths of the reads the reply is cut into (the rest is one read).
    cuts: Vec<u8>,
    /// End of stream after the reply.
    eof: bool,
    /// Let the reply deadline pass after the reply.
    expire: bool,
    /// A well-formed start put before `reply`, so that runs reach the
    /// body and tunnel paths often.
    head: Option<Head>,
    reply: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Head {
    status: u16,
    framing: Framing,
    /// End the head here (otherwise `reply` may add header fields).
    complete: bool,
    /// With a complete head and chunked framing: chunks encoded after it.
    chunks: Vec<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
enum Framing {
    None,
    Length(u8),
    Chunked,
    OtherCoding,
}

impl Head {
    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} Reason\r\n", 100 + self.status % 500).into_bytes();
        match self.framing {
            Framing::None => {}
            Framing::Length(n) => {
                out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes())
            }
            Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Framing::OtherCoding => out.extend_from_slice(b"Transfer-Encoding: gzip\r\n"),
        }
        if self.complete {
            out.extend_from_slice(b"\r\n");
            if matches!(self.framing, Framing::Chunked) {
                for chunk in &self.chunks {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        out
    }
}

const MAX_HEAD: usize = 256;
const MAX_HEADERS: usize = 8;
const MAX_BODY: usize = 64;

fn config() -> ProxyConfig {
    ProxyConfig::default()
        .with_head_limits(MAX_HEAD, MAX_HEADERS)
        .with_max_body_size(MAX_BODY)
        .with_handshake_timeout(Some(Duration::from_secs(1)))
}

fn request() -> ProxyRequest {
    ProxyRequest::new("proxy:3128", "example.com:443").with_credentials("user", "pass")
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<ProxyEvent>,
    error: Option<ProxyError>,
    tunnel: Vec<u8>,
}

fn run(pieces: &[&[u8]], input: &Input) -> Outcome {
    let start = Instant::now();
    let mut proxy = Proxy::new(request(), config()).unwrap();
    proxy.handle_timeout(start);
    let mut out = Outcome {
        events: Vec::new(),
        error: None,
        tunnel: Vec::new(),
    };
    for piece in pieces {
        if let Err(e) = proxy.receive(piece) {
            assert!(out.error.is_none() || out.error.as_ref() == Some(&e));
            out.error = Some(e);
        }
        out.tunnel.extend_from_slice(&proxy.take_buffered());
        out.events.extend(std::iter::from_fn(|| proxy.poll_event()));
    }
    if input.eof {
        if let Err(e) = proxy.receive_eof() {
            out.error = Some(e);
        }
    }
    if input.expire {
        proxy.handle_timeout(start + Duration::from_secs(1));
    }
    out.events.extend(std::iter::from_fn(|| proxy.poll_event()));
    if out.error.is_none() {
        out.error = proxy.error().cloned();
    }
    check(&proxy, &out);
    out
}

fn check(proxy: &Proxy, out: &Outcome) {
    assert!(out.events.len() <= 1, "{:?}", out.events);
    match (out.events.first(), &out.error) {
        (Some(ProxyEvent::Connected(r)), None) => {
            assert!((200..300).contains(&r.status));
            assert!(r.body.is_empty());
            assert!(proxy.is_connected());
        }
        (Some(ProxyEvent::Refused(r)), Some(ProxyError::Status(s))) => {
            assert_eq!(r.status, *s);
            assert!(r.body.len() <= MAX_BODY);
            assert!(!(200..300).contains(s));
            assert!(out.tunnel.is_empty());
        }
        (None, Some(e)) => {
            assert!(!matches!(e, ProxyError::Status(_)), "{e:?}");
            assert!(out.tunnel.is_empty());
        }
        (None, None) => assert!(out.tunnel.is_empty() && !proxy.is_finished()),
        other => panic!("inconsistent outcome: {other:?}"),
    }
    if let Some(r) = out.events.first().and_then(|e| match e {
        ProxyEvent::Connected(r) | ProxyEvent::Refused(r) => Some(r),
        _ => None,
    }) {
        assert!(r.headers.len() <= MAX_HEADERS);
        assert_eq!(proxy.response(), Some(r));
    }
}

fuzz_target!(|input: Input| {
    let mut reply = input.head.as_ref().map(Head::bytes).unwrap_or_default();
    reply.extend_from_slice(&input.reply);
    let mut pieces = Vec::new();
    let mut rest = &reply[..];
    for &cut in &input.cuts {
        let n = usize::from(cut).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);

    let cut = run(&pieces, &input);
    let whole = run(&[&reply], &input);
    assert_eq!(cut, whole);

    // The chained client reports the same proxy events, and hands the
    // tunnel's bytes to its WebSocket connection without panicking.
    let proxy = Proxy::new(request(), config()).unwrap();
    let mut client = ProxiedClient::with_random(
        proxy,
        Config::default().with_handshake_limits(MAX_HEAD, MAX_HEADERS),
        ClientRequest::new("example.com", "/"),
        sansproto::seeded_random(1),
    )
    .unwrap();
    let mut events = Vec::new();
    let mut sink = Vec::new();
    for piece in &pieces {
        if let Ok(taken) = client.receive(piece) {
            assert_eq!(taken, piece.len(), "events are polled: all is taken");
        }
        client.poll_transmit(&mut sink);
        events.extend(std::iter::from_fn(|| client.poll_event()));
    }
    if input.eof {
        let _ = client.receive_eof();
        events.extend(std::iter::from_fn(|| client.poll_event()));
    }
    let proxy_events: Vec<ProxyEvent> = events
        .into_iter()
        .filter_map(|e| match e {
            ProxiedEvent::Proxy(p) => Some(p),
            ProxiedEvent::Ws(_) => None,
        })
        .collect();
    if !input.expire {
        assert_eq!(proxy_events, cut.events);
    }
});

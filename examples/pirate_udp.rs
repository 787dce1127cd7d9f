//! Pirate's UDP driver over loopback: JSON messages in datagrams of at most
//! 1472 bytes, a server with a peer table that can kick a peer, idle expiry,
//! keepalives, and stale datagrams of closed sessions dropped.
//!
//! ```text
//! cargo run --example pirate_udp -- server 127.0.0.1:0 [--idle MS] [--keepalive MS]
//! cargo run --example pirate_udp -- client 127.0.0.1:PORT   # three scripted peers
//! ```
//!
//! The wire, and where each piece comes from:
//!
//! - One message, one datagram, no length header: Pirate's docs/drivers.md
//!   "Example: UDP", whose `write` is one `socket.send` of the whole data
//!   ("One `write` operation results in one sent UDP datagram") and whose
//!   `_receive` parses each datagram whole. No segmentation (the driver has
//!   none), so `Config::segmentation` stays `None`.
//! - MTU 1472 (the driver's `const MTU = 1472`; `WIRE-FORMATS.md` §6:
//!   1500 − 20 − 8). The driver's `_send` raises when `data.length > MTU`;
//!   here `Endpoint::send` refuses the message (`TooLarge`) and nothing is
//!   sent: the server answers a request for a reply that does not fit with
//!   an error message instead. Datagrams over 1472 bytes that arrive are
//!   dropped.
//! - Bodies are JSON (`JSON.parse(data.toString('utf8'))`); one that is not
//!   is logged and skipped, as the driver does ("Log malformed frame").
//! - Peer table keyed by address and port (the driver's
//!   `${address}:${port}` identifier and `connections` map); the first
//!   datagram from a new address opens a peer (`accept`), which the server
//!   numbers from 1, and closing it removes it (`end` deletes the entry).
//! - Sessions: *not Pirate's*. The driver has no session state beyond the
//!   address ("Clients and servers do not synchronize any state"). This
//!   example turns on `datagram::Sessions`, whose 5-byte session header
//!   (kind, sender's session id), 10-byte close notices and 5-byte
//!   keepalives are laid out in `src/datagram/mod.rs` ("Session header").
//!   So every message datagram is `10 | id (u32 BE) | JSON`, the largest
//!   JSON message is 1472 − 5 = 1467 bytes, and a Node Pirate peer, which
//!   sends bare JSON, would have its datagrams dropped. In exchange: a
//!   kicked peer is told (notice reason 1) and reports
//!   `ClosedByPeer(Kicked)`; a peer silent past the idle timeout is told
//!   (reason 2, `ClosedByPeer(Expired)`); keepalives keep a quiet peer
//!   open; and a datagram still carrying a closed session's id is dropped
//!   and answered with a notice, instead of opening a new peer.
//! - Messages: the driver contract fixes none, so these are this example's
//!   own JSON objects, each with a `"type"`, as in `pirate_tcp`: `hello` →
//!   `{"type":"welcome","peer":N,"idle_ms":MS}`; `who` →
//!   `{"type":"peers","ids":[…]}`; `{"type":"kick","peer":N}` →
//!   `{"type":"kicked","peer":N}` (a peer may kick itself: the answer goes
//!   out before the notice); `{"type":"pad","len":N}` → a `pad` message of
//!   exactly N bytes (`{"type":"pad","data":"xx…"}`), or an error when it
//!   does not fit; anything else → `{"type":"error","reason":…}`.
//! - Timers: the server's idle timeout is `--idle` (default 1000 ms, at
//!   least 300), its keepalives go to a quiet peer every `--keepalive`
//!   (default a quarter of the idle timeout); the client's peers send
//!   keepalives every 100 ms (the one called `silent` sends none) and give
//!   up on a silent server after 30 s.

use bytes::Bytes;
use sansproto::datagram::{
    CloseReason, Config, Endpoint, Event, NoticeReason, Sessions, MTU_ETHERNET_IPV4,
    SESSION_HEADER_LEN,
};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Largest datagram sent or accepted, the session header included.
pub const MTU: usize = MTU_ETHERNET_IPV4;
const DEFAULT_IDLE: Duration = Duration::from_millis(1000);
const MIN_IDLE: Duration = Duration::from_millis(300);
const CLIENT_KEEPALIVE: Duration = Duration::from_millis(100);
const CLIENT_IDLE: Duration = Duration::from_secs(30);
/// How long the client waits for one answer.
const WAIT: Duration = Duration::from_secs(5);
/// A `pad` reply with no padding.
const PAD_EMPTY: &str = r#"{"type":"pad","data":""}"#;
/// Largest `pad` length the server considers (it refuses anything over the
/// MTU anyway; this only bounds what it builds).
const MAX_PAD: usize = 64 * 1024;
const KIND_CLOSE: u8 = 0x11;
const HELLO: &str = r#"{"type":"hello"}"#;
const WHO: &str = r#"{"type":"who"}"#;

/// Sessions on, no segmentation, MTU 1472, `idle` and `keepalive` timers.
fn config(idle: Duration, keepalive: Option<Duration>) -> Config {
    let mut sessions = Sessions::default();
    sessions.keepalive_interval = keepalive;
    let mut config = Config::default();
    config.mtu = MTU;
    config.idle_timeout = idle;
    config.sessions = Some(sessions);
    config
}

/// The session id in a datagram's session header, if it has one: the
/// endpoint does not say which id a peer uses, so the server reads it off
/// the datagram that opened the peer.
fn wire_session(datagram: &[u8]) -> Option<u32> {
    let id: [u8; 4] = datagram.get(1..SESSION_HEADER_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(id))
}

/// A `pad` message of exactly `len` bytes (at least `PAD_EMPTY.len()`).
fn pad(len: usize) -> String {
    let fill = "x".repeat(len.saturating_sub(PAD_EMPTY.len()));
    format!(r#"{{"type":"pad","data":"{fill}"}}"#)
}

fn error(reason: &str) -> String {
    format!(r#"{{"type":"error","reason":{}}}"#, Value::from(reason))
}

/// Sends every queued datagram.
fn flush(socket: &UdpSocket, endpoint: &mut Endpoint<SocketAddr>, mut sent: impl FnMut(&[u8])) {
    let mut datagram = Vec::with_capacity(MTU);
    while let Some(to) = endpoint.poll_transmit(&mut datagram) {
        match socket.send_to(&datagram, to) {
            Ok(_) => sent(&datagram),
            Err(e) => eprintln!("send to {to}: {e}"),
        }
        datagram.clear();
    }
}

/// Waits until a datagram arrives or the next timer (or `deadline`) is
/// due, feeds what came, runs the timers. Returns the datagram's length.
fn receive_once(
    socket: &UdpSocket,
    endpoint: &mut Endpoint<SocketAddr>,
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<Option<usize>> {
    let until = endpoint
        .poll_timeout()
        .map_or(deadline, |t| t.min(deadline));
    let wait = until.saturating_duration_since(Instant::now());
    socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
    let got = match socket.recv_from(buf) {
        Ok((n, from)) => {
            let datagram = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
            // Events are drained after every datagram: the queue is never
            // full here. Were it, the datagram is lost, as UDP may lose it.
            if let Err(e) = endpoint.receive(from, datagram, Instant::now()) {
                eprintln!("{}: {e}", e.from);
            }
            Some(n)
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock
                    | ErrorKind::TimedOut
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionRefused
            ) =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    endpoint.handle_timeout(Instant::now());
    Ok(got)
}

/// The server: the endpoint's peer table, and this example's number for
/// each of its peers.
struct Server {
    endpoint: Endpoint<SocketAddr>,
    peers: HashMap<SocketAddr, u64>,
    next_number: u64,
    idle: Duration,
}

impl Server {
    /// Handles one event; `datagram` is the one just received, if any.
    fn on_event(&mut self, event: Event<SocketAddr>, datagram: &[u8]) {
        match event {
            Event::PeerOpened { peer } => {
                let number = self.next_number;
                self.next_number += 1;
                let id = wire_session(datagram).unwrap_or(0);
                eprintln!("peer {number} opened from {peer}, session {id:#010x}");
                self.peers.insert(peer, number);
            }
            Event::PeerClosed { peer, reason } => {
                let number = self.peers.remove(&peer).unwrap_or(0);
                let why = match reason {
                    CloseReason::Closed => "kicked, told so".to_string(),
                    CloseReason::IdleTimeout => {
                        format!("nothing heard for {:?}, told it expired", self.idle)
                    }
                    CloseReason::ClosedByPeer(r) => format!("the peer closed its side ({r:?})"),
                    CloseReason::Replaced => "a new session from the same address".to_string(),
                    other => format!("{other:?}"),
                };
                eprintln!("peer {number} closed: {why}");
            }
            Event::Message { peer, payload } => self.on_message(peer, &payload),
            Event::DatagramDropped { peer, error } => {
                eprintln!("dropped a datagram from {peer}: {error}");
            }
            Event::PeerRefused { peer } => eprintln!("refused {peer}: the peer table is full"),
            other => eprintln!("{other:?}"),
        }
    }

    /// Answers one message from `from`.
    fn on_message(&mut self, from: SocketAddr, payload: &[u8]) {
        let Some(&number) = self.peers.get(&from) else {
            return;
        };
        let msg: Value = match serde_json::from_slice(payload) {
            Ok(msg) => msg,
            Err(e) => return eprintln!("peer {number}: skipped a message that is no JSON: {e}"),
        };
        let reply = match msg.get("type").and_then(Value::as_str).unwrap_or_default() {
            "hello" => format!(
                r#"{{"type":"welcome","peer":{number},"idle_ms":{}}}"#,
                self.idle.as_millis()
            ),
            "who" => {
                let mut numbers: Vec<u64> = self.peers.values().copied().collect();
                numbers.sort_unstable();
                let ids: Vec<String> = numbers.iter().map(u64::to_string).collect();
                format!(r#"{{"type":"peers","ids":[{}]}}"#, ids.join(","))
            }
            "kick" => {
                let target = msg.get("peer").and_then(Value::as_u64);
                let found = self
                    .peers
                    .iter()
                    .find(|(_, &n)| Some(n) == target)
                    .map(|(&addr, &n)| (addr, n));
                let Some((addr, target)) = found else {
                    return self.reply(from, error("no such peer"));
                };
                // The answer first: a peer kicking itself still gets it,
                // then the close notice.
                self.reply(from, format!(r#"{{"type":"kicked","peer":{target}}}"#));
                eprintln!("peer {target} kicked by peer {number}");
                self.endpoint.close(&addr);
                return;
            }
            "pad" => {
                let len = msg
                    .get("len")
                    .and_then(Value::as_u64)
                    .and_then(|l| usize::try_from(l).ok())
                    .filter(|l| (PAD_EMPTY.len()..=MAX_PAD).contains(l));
                let Some(len) = len else {
                    return self.reply(from, error("bad pad length"));
                };
                match self.endpoint.send(from, Bytes::from(pad(len))) {
                    Ok(()) => return,
                    Err(e) => error(&format!("{len}-byte reply refused: {}", e.kind())),
                }
            }
            _ => error("unknown message"),
        };
        self.reply(from, reply);
    }

    fn reply(&mut self, to: SocketAddr, json: String) {
        if let Err(e) = self.endpoint.send(to, Bytes::from(json)) {
            eprintln!("cannot answer {to}: {}", e.kind());
        }
    }
}

/// The server loop: one socket, one endpoint, a read timeout from
/// `poll_timeout` so the idle and keepalive timers fire on time.
fn serve(socket: &UdpSocket, idle: Duration, keepalive: Duration) -> Result<(), String> {
    let endpoint = Endpoint::new(config(idle, Some(keepalive))).map_err(|e| e.to_string())?;
    let mut server = Server {
        endpoint,
        peers: HashMap::new(),
        next_number: 1,
        idle,
    };
    // Larger than the MTU, so that a datagram over it is seen whole and
    // dropped by the endpoint rather than cut short here.
    let mut buf = vec![0u8; 65_536];
    loop {
        let tick = Instant::now() + Duration::from_secs(1);
        let len = receive_once(socket, &mut server.endpoint, &mut buf, tick)
            .map_err(|e| e.to_string())?;
        let datagram = buf.get(..len.unwrap_or(0)).unwrap_or_default();
        while let Some(event) = server.endpoint.poll_event() {
            server.on_event(event, datagram);
        }
        flush(socket, &mut server.endpoint, |_| {});
    }
}

/// One scripted peer of the client: its own socket (the server tells
/// peers apart by address) and endpoint.
struct Client {
    name: &'static str,
    socket: UdpSocket,
    server: SocketAddr,
    endpoint: Endpoint<SocketAddr>,
    events: VecDeque<Event<SocketAddr>>,
    /// The last message datagram sent, as it went out.
    last_sent: Vec<u8>,
    /// The length of the last datagram received.
    last_len: usize,
    /// The reason bytes of the close notices received, read off the wire.
    notices: Vec<u8>,
    buf: Vec<u8>,
}

impl Client {
    fn new(name: &'static str, server: SocketAddr, keepalive: bool) -> Result<Self, String> {
        let local = match server {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let socket = UdpSocket::bind(local).map_err(|e| format!("{name}: bind: {e}"))?;
        let keepalive = keepalive.then_some(CLIENT_KEEPALIVE);
        let endpoint = Endpoint::new(config(CLIENT_IDLE, keepalive)).map_err(|e| e.to_string())?;
        Ok(Self {
            name,
            socket,
            server,
            endpoint,
            events: VecDeque::new(),
            last_sent: Vec::new(),
            last_len: 0,
            notices: Vec::new(),
            buf: vec![0u8; 65_536],
        })
    }

    /// Opens the session if it is not open, and sends `json`.
    fn send(&mut self, json: &str) -> Result<(), String> {
        let name = self.name;
        self.endpoint
            .open(self.server, Instant::now())
            .map_err(|e| format!("{name}: open: {e}"))?;
        self.endpoint
            .send(self.server, Bytes::copy_from_slice(json.as_bytes()))
            .map_err(|e| format!("{name}: send: {}", e.kind()))?;
        self.flush();
        Ok(())
    }

    fn flush(&mut self) {
        let last = &mut self.last_sent;
        flush(&self.socket, &mut self.endpoint, |d| {
            if d.len() > SESSION_HEADER_LEN && d.first() == Some(&0x10) {
                last.clear();
                last.extend_from_slice(d);
            }
        });
    }

    /// Waits for one datagram (or the next timer) until `deadline` at the
    /// latest, takes it, and queues the events.
    fn pump(&mut self, deadline: Instant) -> Result<(), String> {
        let got = receive_once(&self.socket, &mut self.endpoint, &mut self.buf, deadline)
            .map_err(|e| format!("{}: {e}", self.name))?;
        if let Some(n) = got {
            self.last_len = n;
            let head = self.buf.get(..n).unwrap_or_default();
            if let (10, Some(&KIND_CLOSE), Some(&reason)) = (n, head.first(), head.get(5)) {
                self.notices.push(reason);
            }
        }
        self.events
            .extend(std::iter::from_fn(|| self.endpoint.poll_event()));
        self.flush();
        Ok(())
    }

    /// The next event, waiting for it until `deadline`.
    fn next_event(&mut self, deadline: Instant) -> Result<Option<Event<SocketAddr>>, String> {
        while self.events.is_empty() && Instant::now() < deadline {
            self.pump(deadline)?;
        }
        Ok(self.events.pop_front())
    }

    /// The next message from the server and its length; an error if the
    /// session closes first or nothing comes in time.
    fn message(&mut self) -> Result<(Value, usize), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next_event(deadline)? {
                Some(Event::Message { payload, .. }) => {
                    let msg = serde_json::from_slice(&payload)
                        .map_err(|e| format!("{}: no JSON from the server: {e}", self.name))?;
                    return Ok((msg, payload.len()));
                }
                Some(Event::PeerClosed { reason, .. }) => {
                    return Err(format!("{}: closed by the server: {reason:?}", self.name))
                }
                Some(_) => {}
                None => return Err(format!("{}: no answer from the server", self.name)),
            }
        }
    }

    /// Waits until `deadline` for the server to close the session (its
    /// reason) while sending nothing but what the endpoint sends on its own
    /// (keepalives); an error on a message.
    fn close_within(&mut self, deadline: Instant) -> Result<Option<CloseReason>, String> {
        while let Some(event) = self.next_event(deadline)? {
            match event {
                Event::PeerClosed { reason, .. } => return Ok(Some(reason)),
                Event::Message { payload, .. } => {
                    let text = String::from_utf8_lossy(&payload);
                    return Err(format!("{}: unexpected {text}", self.name));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn closed(&mut self) -> Result<CloseReason, String> {
        self.close_within(Instant::now() + WAIT)?
            .ok_or_else(|| format!("{}: the server never closed", self.name))
    }

    fn quiet(&mut self, quiet: Duration) -> Result<(), String> {
        match self.close_within(Instant::now() + quiet)? {
            Some(reason) => Err(format!("{}: closed while quiet: {reason:?}", self.name)),
            None => Ok(()),
        }
    }

    /// Sends the last message datagram again, bytes unchanged (its session
    /// id included), bypassing the endpoint, and waits for a close notice.
    fn replay(&mut self) -> Result<Option<NoticeReason>, String> {
        let name = self.name;
        self.socket
            .send_to(&self.last_sent, self.server)
            .map_err(|e| format!("{name}: {e}"))?;
        let seen = self.notices.len();
        let deadline = Instant::now() + WAIT;
        while self.notices.len() == seen && Instant::now() < deadline {
            self.pump(deadline)?;
            if self
                .events
                .iter()
                .any(|e| matches!(e, Event::Message { .. }))
            {
                return Err(format!("{name}: the replay opened a new session"));
            }
        }
        Ok(self
            .notices
            .get(seen)
            .and_then(|&r| NoticeReason::from_byte(r)))
    }
}

fn kind(msg: &Value) -> &str {
    msg["type"].as_str().unwrap_or_default()
}

/// Three peers, in order: `b` is kicked by `a` and replays a datagram of
/// its closed session; `a` hits the MTU, then stays quiet for two idle
/// timeouts on keepalives alone; `silent` says hello, then nothing, and
/// expires.
fn client(server: SocketAddr) -> Result<(), String> {
    let mut a = Client::new("a", server, true)?;
    a.send(HELLO)?;
    let (welcome, _) = a.message()?;
    let idle_ms = welcome["idle_ms"].as_u64().unwrap_or(0);
    if idle_ms <= CLIENT_KEEPALIVE.as_millis() as u64 {
        return Err(format!("a: idle timeout of {idle_ms} ms is too short"));
    }
    println!("a: welcome, peer {}", welcome["peer"]);

    let mut b = Client::new("b", server, true)?;
    b.send(HELLO)?;
    let (welcome, _) = b.message()?;
    let b_peer = welcome["peer"].as_u64().unwrap_or(0);
    println!("b: welcome, peer {b_peer}");

    a.send(WHO)?;
    println!("a: peers {}", a.message()?.0["ids"]);
    a.send(&format!(r#"{{"type":"kick","peer":{b_peer}}}"#))?;
    let (kicked, _) = a.message()?;
    if kind(&kicked) != "kicked" {
        return Err(format!("a: unexpected {kicked}"));
    }
    println!("a: kicked peer {}", kicked["peer"]);
    println!("b: closed by the server: {:?}", b.closed()?);
    match b.replay()? {
        Some(reason) => println!(
            "b: replayed a datagram of the kicked session: dropped, \
             answered with a close notice ({reason:?})"
        ),
        None => return Err("b: the replay was not answered".into()),
    }

    let fits = MTU - SESSION_HEADER_LEN;
    a.send(&format!(r#"{{"type":"pad","len":{fits}}}"#))?;
    let (msg, len) = a.message()?;
    if kind(&msg) != "pad" {
        return Err(format!("a: unexpected {msg}"));
    }
    println!("a: a {len}-byte reply in one {}-byte datagram", a.last_len);
    a.send(&format!(r#"{{"type":"pad","len":{}}}"#, fits + 1))?;
    let (msg, _) = a.message()?;
    println!("a: error: {}", msg["reason"].as_str().unwrap_or_default());
    match a.endpoint.send(server, Bytes::from(pad(fits + 1))) {
        Ok(()) => return Err("a: a message over the MTU was queued".into()),
        Err(e) => println!("a: a {}-byte message refused here: {}", fits + 1, e.kind()),
    }

    let mut silent = Client::new("silent", server, false)?;
    silent.send(HELLO)?;
    println!("silent: welcome, peer {}", silent.message()?.0["peer"]);
    a.send(WHO)?;
    println!("a: peers {}", a.message()?.0["ids"]);
    a.quiet(Duration::from_millis(2 * idle_ms))?;
    println!("a: quiet for {} ms, kept open by keepalives", 2 * idle_ms);
    a.send(WHO)?;
    println!("a: peers {}", a.message()?.0["ids"]);
    println!("silent: closed by the server: {:?}", silent.closed()?);

    // Leaving: the notice says "kicked", the one reason `close` sends.
    a.endpoint.close(&server);
    a.flush();
    println!("a: left");
    Ok(())
}

/// `--idle MS` and `--keepalive MS`, after the address.
fn server_timers(args: &[String]) -> Result<(Duration, Duration), String> {
    let mut idle = DEFAULT_IDLE;
    let mut keepalive = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let ms = rest
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{flag} needs milliseconds"))?;
        match flag.as_str() {
            "--idle" => idle = Duration::from_millis(ms),
            "--keepalive" => keepalive = Some(Duration::from_millis(ms)),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if idle < MIN_IDLE {
        return Err(format!(
            "--idle must be at least {} ms: the client's keepalives go every {} ms",
            MIN_IDLE.as_millis(),
            CLIENT_KEEPALIVE.as_millis()
        ));
    }
    Ok((idle, keepalive.unwrap_or(idle / 4)))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, addr, rest) = match args.as_slice() {
        [mode, addr, rest @ ..] => (mode.as_str(), addr.as_str(), rest),
        _ => {
            eprintln!("usage: pirate_udp server ADDR [--idle MS] [--keepalive MS] | client ADDR");
            return ExitCode::from(2);
        }
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("bad address {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match (mode, rest) {
        ("server", rest) => server_timers(rest).and_then(|(idle, keepalive)| {
            let socket = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
            let local = socket.local_addr().map_err(|e| e.to_string())?;
            println!("pirate udp on {local}");
            serve(&socket, idle, keepalive)
        }),
        ("client", []) => client(addr),
        _ => Err(format!("unknown mode {mode}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pirate_udp: {e}");
            ExitCode::FAILURE
        }
    }
}

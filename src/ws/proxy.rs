//! HTTP CONNECT proxies (RFC 9110 §9.3.6): a tunnel opened on the client's
//! byte stream before the WebSocket handshake.
//!
//! [`Proxy`] is the CONNECT exchange on its own. It queues the request —
//! `CONNECT host:port HTTP/1.1`, `Host`, `Proxy-Authorization: Basic` when
//! the proxy URL carries credentials, then the caller's header fields — and
//! parses the proxy's reply with the same limits as the opening handshake.
//! On a 2xx reply it reports [`ProxyEvent::Connected`], and every byte after
//! the reply's head belongs to the tunnel ([`Proxy::take_buffered`]). On
//! any other status it reads the body (bounded, by `Content-Length`,
//! chunked, or until the end of the stream) and reports
//! [`ProxyEvent::Refused`] with status, headers and body.
//!
//! [`ProxiedClient`] chains a `Proxy` into a WebSocket client
//! [`Connection`](super::Connection): one [`Driver`](crate::Driver) whose
//! events are the proxy's and then the connection's, so the caller's
//! driving loop does not change. Commands issued before the tunnel is up
//! are queued, as they are before the opening handshake completes.
//!
//! ```
//! use sansproto::ws::proxy::{ProxiedClient, ProxiedEvent, ProxyEvent};
//! use sansproto::ws::Config;
//!
//! let mut client = ProxiedClient::from_urls(
//!     "http://user:pass@proxy.example:3128",
//!     "ws://example.com/chat",
//!     Config::default(),
//! )
//! .unwrap();
//! // Open the TCP connection to this address, then run the usual loop.
//! assert_eq!(client.proxy().address(), "proxy.example:3128");
//! client.send_text("hello").unwrap(); // queued until the WebSocket opens
//!
//! let mut out = Vec::new();
//! client.poll_transmit(&mut out);
//! assert_eq!(
//!     out,
//!     b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\
//!       Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"
//! );
//!
//! client.receive(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
//! assert!(matches!(
//!     client.poll_event(),
//!     Some(ProxiedEvent::Proxy(ProxyEvent::Connected(_)))
//! ));
//! // The WebSocket upgrade request goes out through the tunnel.
//! out.clear();
//! client.poll_transmit(&mut out);
//! assert!(out.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
//! ```
//!
//! For `wss:` through a proxy, TLS runs inside the tunnel: chain a driver
//! that wraps the connection in TLS with [`ProxiedClient::chain`] (the
//! `wss_client` example does this with rustls), or drive a [`Proxy`] first
//! and start TLS on [`ProxyEvent::Connected`], feeding it
//! [`Proxy::take_buffered`] before the next bytes read.

mod client;
mod request;

pub use client::{ProxiedClient, ProxiedError, ProxiedEvent};
pub use request::{websocket_target, Credentials, ProxyRequest, SetupError};

use super::handshake::{HandshakeTimer, HttpResponse};
use super::http::body::{BodyReader, BodyStatus};
use super::http::head::{parse_response, HeadError, HeadReader, MalformedHttp};
use crate::buf::{RecvBuf, SendQueue};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Limits and the deadline for the exchange with the proxy.
///
/// ```
/// use std::time::Duration;
/// use sansproto::ws::proxy::ProxyConfig;
/// let c = ProxyConfig::default().with_handshake_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(c.max_body_size, 64 << 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Largest reply head. Default 16 KiB.
    pub max_head_size: usize,
    /// Most header fields in the reply. Default 64.
    pub max_headers: usize,
    /// Most body bytes kept from a refusal; the rest is not waited for.
    /// Default 64 KiB.
    pub max_body_size: usize,
    /// Give up when the reply (with a refusal's body) takes longer, counted
    /// from the first `handle_timeout` call. Default 30 s.
    pub handshake_timeout: Option<Duration>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            max_head_size: 16 << 10,
            max_headers: 64,
            max_body_size: 64 << 10,
            handshake_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl ProxyConfig {
    /// Sets [`ProxyConfig::max_head_size`] and [`ProxyConfig::max_headers`].
    pub fn with_head_limits(mut self, bytes: usize, headers: usize) -> Self {
        self.max_head_size = bytes;
        self.max_headers = headers;
        self
    }

    /// Sets [`ProxyConfig::max_body_size`].
    pub fn with_max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Sets [`ProxyConfig::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.handshake_timeout = t;
        self
    }
}

/// What the proxy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyEvent {
    /// A 2xx reply (its head; the body is empty): the tunnel is open and
    /// every later byte belongs to it.
    Connected(HttpResponse),
    /// Any other final status, with headers and body (at most
    /// [`ProxyConfig::max_body_size`] bytes of it). `receive` returns
    /// [`ProxyError::Status`] from here on.
    Refused(HttpResponse),
}

/// Why the tunnel could not be opened. Sticky: once returned, every later
/// `receive` returns it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy answered with a status other than 2xx (407 when it wants
    /// credentials, 502 when it cannot reach the target…); the reply was
    /// reported as [`ProxyEvent::Refused`].
    #[error("proxy refused the tunnel with status {0}")]
    Status(u16),
    /// The reply is not valid HTTP/1.x, or a refusal's framing fields do
    /// not say where its body ends (it is then discarded, not reported).
    #[error("malformed proxy reply: {0}")]
    Malformed(MalformedHttp),
    /// The reply's head grew past [`ProxyConfig::max_head_size`].
    #[error("proxy reply head larger than {0} bytes")]
    TooLarge(usize),
    /// More header fields than [`ProxyConfig::max_headers`].
    #[error("more than {0} header fields in the proxy reply")]
    TooManyHeaders(usize),
    /// The transport ended before the reply's head was complete.
    #[error("connection closed before the proxy replied")]
    Eof,
    /// [`ProxyConfig::handshake_timeout`] passed without a reply.
    #[error("proxy handshake timed out")]
    Timeout,
}

#[derive(Debug)]
enum State {
    /// Waiting for the reply's head (after any 1xx interim replies).
    Head,
    /// A refusal: reading its body.
    Body(Box<(HttpResponse, BodyReader)>),
    /// 2xx: the tunnel is open.
    Connected,
    /// Refused or failed.
    Failed(ProxyError),
}

/// The client side of an HTTP CONNECT exchange, as a sans-IO machine.
///
/// The request is queued at once; take it with
/// [`poll_transmit`](Self::poll_transmit), feed the proxy's reply to
/// [`receive`](Self::receive), and watch [`poll_event`](Self::poll_event).
///
/// ```
/// use sansproto::ws::proxy::{Proxy, ProxyConfig, ProxyError, ProxyEvent, ProxyRequest};
///
/// let request = ProxyRequest::from_url("http://proxy.example:3128", "example.com:443").unwrap();
/// let mut proxy = Proxy::new(request, ProxyConfig::default()).unwrap();
/// let mut out = Vec::new();
/// proxy.poll_transmit(&mut out);
/// assert_eq!(out, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
///
/// // A TLS record right behind the reply belongs to the tunnel.
/// proxy.receive(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01").unwrap();
/// assert!(matches!(proxy.poll_event(), Some(ProxyEvent::Connected(_))));
/// assert_eq!(&proxy.take_buffered()[..], b"\x16\x03\x01");
///
/// // A refusal carries status, headers and body.
/// let request = ProxyRequest::new("proxy.example:3128", "example.com:443");
/// let mut proxy = Proxy::new(request, ProxyConfig::default()).unwrap();
/// let reply = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
///     Proxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Length: 4\r\n\r\nauth";
/// assert_eq!(proxy.receive(reply), Err(ProxyError::Status(407)));
/// let Some(ProxyEvent::Refused(response)) = proxy.poll_event() else { panic!() };
/// assert_eq!(response.headers.get_str("Proxy-Authenticate"), Some("Basic realm=\"proxy\""));
/// assert_eq!(&response.body[..], b"auth");
/// ```
#[derive(Debug)]
pub struct Proxy {
    address: String,
    config: ProxyConfig,
    state: State,
    head: HeadReader,
    recv: RecvBuf,
    send: SendQueue,
    events: VecDeque<ProxyEvent>,
    response: Option<HttpResponse>,
    timer: HandshakeTimer,
}

impl Proxy {
    /// A CONNECT exchange; the request is queued at once.
    pub fn new(request: ProxyRequest, config: ProxyConfig) -> Result<Self, SetupError> {
        let bytes = request.encode()?;
        // The request is the only thing ever queued.
        let mut send = SendQueue::new(bytes.len());
        send.buf_mut().extend_from_slice(&bytes);
        Ok(Self {
            address: request.proxy,
            config,
            state: State::Head,
            head: HeadReader::default(),
            recv: RecvBuf::new(),
            send,
            events: VecDeque::new(),
            response: None,
            timer: HandshakeTimer::default(),
        })
    }

    /// The proxy's `host:port`, where the transport should be opened.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// True once the proxy answered 2xx.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected)
    }

    /// True once the exchange is over: the tunnel is open (hand the
    /// transport on; do not close it) or the proxy refused or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Connected | State::Failed(_))
    }

    /// The sticky error, once the exchange failed.
    pub fn error(&self) -> Option<&ProxyError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The proxy's final reply, once complete (status, headers, and for a
    /// refusal the body).
    pub fn response(&self) -> Option<&HttpResponse> {
        self.response.as_ref()
    }

    /// Appends the queued request bytes to `out`; returns the count.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.send.drain_into(out)
    }

    /// The queued request bytes as a [`Buf`](bytes::Buf), for a write
    /// straight from the queue.
    pub(crate) fn output(&mut self) -> crate::Output<'_> {
        self.send.output()
    }

    /// Request bytes queued and not yet taken.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.send.len()
    }

    /// Takes the next event.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.events.pop_front()
    }

    /// Once connected: takes the bytes received after the reply's head,
    /// which belong to the tunnel (the start of the WebSocket handshake
    /// response, or of TLS). Later `receive` calls add to them.
    pub fn take_buffered(&mut self) -> Bytes {
        if self.is_connected() {
            self.recv.take_all()
        } else {
            Bytes::new()
        }
    }

    /// Returns bytes [`take_buffered`](Self::take_buffered) gave that the
    /// connection in the tunnel could not take yet, to be taken again.
    pub(crate) fn put_back(&mut self, rest: &[u8]) {
        if self.is_connected() {
            self.recv.extend(rest);
        }
    }

    /// Feeds bytes read from the transport. On a refusal the
    /// [`ProxyEvent::Refused`] event is queued and [`ProxyError::Status`]
    /// is returned, now and by every later call.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        if let Some(e) = self.error() {
            return Err(e.clone());
        }
        if data.is_empty() {
            return Ok(());
        }
        // While a head is awaited, only what it can use is copied in.
        let room = match self.state {
            State::Head => HeadReader::room(self.recv.len(), data, self.config.max_head_size),
            _ => data.len(),
        };
        let (now, later) = data.split_at(room);
        self.recv.extend(now);
        match self.process(later) {
            Ok(()) => Ok(()),
            Err(e) => Err(match self.error() {
                Some(_) => e,
                None => self.fail(e),
            }),
        }
    }

    /// Reports that the transport's read side ended. Before the reply's
    /// head this fails with [`ProxyError::Eof`]; a refusal's body read until
    /// the end of the stream is complete now.
    pub fn receive_eof(&mut self) -> Result<(), ProxyError> {
        match &mut self.state {
            State::Failed(e) => Err(e.clone()),
            State::Head => Err(self.fail(ProxyError::Eof)),
            State::Body(b) => {
                let response = b.1.response(&b.0);
                Err(self.refuse(response))
            }
            State::Connected => Ok(()),
        }
    }

    /// The reply deadline, once started by a first
    /// [`handle_timeout`](Self::handle_timeout) call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.deadline().filter(|_| self.waiting())
    }

    /// Starts the reply deadline on the first call and fails the exchange
    /// when it has passed ([`ProxyError::Timeout`], or for a refusal whose
    /// body is still arriving, [`ProxyEvent::Refused`] with the body so far).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.timer.tick(now, self.config.handshake_timeout) || !self.waiting() {
            return;
        }
        let _ = match &mut self.state {
            State::Body(b) => {
                let response = b.1.response(&b.0);
                self.refuse(response)
            }
            _ => self.fail(ProxyError::Timeout),
        };
    }

    fn waiting(&self) -> bool {
        matches!(self.state, State::Head | State::Body(_))
    }

    fn fail(&mut self, e: ProxyError) -> ProxyError {
        self.state = State::Failed(e.clone());
        e
    }

    /// Reads what is buffered; `later` is the rest of the read, not
    /// buffered until a head was found.
    fn process(&mut self, mut later: &[u8]) -> Result<(), ProxyError> {
        loop {
            match &mut self.state {
                State::Head => {
                    let buf = self.recv.as_slice();
                    let Some(end) = self.head.find(buf, self.config.max_head_size)? else {
                        return Ok(());
                    };
                    let head = buf.split_at(end.min(buf.len())).0;
                    let (response, minor) = parse_response(head, self.config.max_headers)?;
                    self.recv.advance(end);
                    self.on_head(response, minor)?;
                    if matches!(self.state, State::Head) {
                        // An interim reply: only what the next head can use
                        // is copied in.
                        let room =
                            HeadReader::room(self.recv.len(), later, self.config.max_head_size);
                        let (next, rest) = later.split_at(room);
                        self.recv.extend(next);
                        later = rest;
                    } else {
                        self.recv.extend(std::mem::take(&mut later));
                    }
                }
                State::Body(b) => {
                    return match b.1.read(&mut self.recv) {
                        BodyStatus::Partial => Ok(()),
                        _ => {
                            let response = b.1.response(&b.0);
                            Err(self.refuse(response))
                        }
                    };
                }
                State::Connected | State::Failed(_) => return Ok(()),
            }
        }
    }

    fn on_head(&mut self, response: HttpResponse, minor: u8) -> Result<(), ProxyError> {
        let status = response.status;
        self.state = match status {
            // Interim replies: the final one follows.
            100 | 102..=199 => State::Head,
            200..=299 => {
                self.response = Some(response.clone());
                self.events.push_back(ProxyEvent::Connected(response));
                State::Connected
            }
            _ => {
                // A 101 is no tunnel either (and, like 304, has no body).
                match BodyReader::for_response(
                    status,
                    &response.headers,
                    minor,
                    self.config.max_body_size,
                ) {
                    Ok(body) => State::Body(Box::new((response, body))),
                    // Where the body ends is not known: the reply is
                    // discarded (RFC 9112 §6.3 item 5).
                    Err(m) => return Err(ProxyError::Malformed(m)),
                }
            }
        };
        Ok(())
    }

    /// Ends a refusal: reports the reply (with the body read so far).
    fn refuse(&mut self, response: HttpResponse) -> ProxyError {
        let status = response.status;
        self.response = Some(response.clone());
        self.events.push_back(ProxyEvent::Refused(response));
        self.fail(ProxyError::Status(status))
    }
}

impl From<HeadError> for ProxyError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Malformed(m) => Self::Malformed(m),
            HeadError::TooLarge(n) => Self::TooLarge(n),
            HeadError::TooManyHeaders(n) => Self::TooManyHeaders(n),
        }
    }
}

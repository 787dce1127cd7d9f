//! The client's opening handshake as a machine: it sends the request,
//! reads the answer, and hands a 101's result to the open session or
//! reports a refusal with its body.
//!
//! States and their transitions, all in this file:
//!
//! ```text
//! Head ─101, valid──────────────────────────▶ (handed over)
//!  │ └─1xx interim──▶ Head
//!  ├─other status──▶ Body ─body ends, EOF, deadline─▶ Failed(Status) + Event::Rejected
//!  └─bad response, EOF, deadline─────────────────────▶ Failed
//! ```

use super::{accept_key, HandshakeError, HandshakeTimer, Handshaken, Headers, HttpResponse};
use crate::buf::{RecvBuf, SendQueue};
use crate::ws::error::{Error, TimeoutKind};
use crate::ws::extension::{Extension, ExtensionOffer, ExtensionResponseError};
use crate::ws::http::body::{BodyReader, BodyStatus};
use crate::ws::http::field::{
    check_host, check_subprotocol, FieldError, HeadWriter, HANDSHAKE_OWNED,
};
use crate::ws::http::head::{parse_response, HeadReader};
use crate::ws::http::url::{Credentials, UrlError, WsUrl};
use crate::ws::message::{Event, Opened};
use crate::ws::Config;
use std::collections::VecDeque;
use std::time::Instant;

/// Where a client connects: the `Host` header, the request target, an
/// optional `Origin`, and optional credentials for `Authorization: Basic`.
///
/// ```
/// use sansproto::ws::ClientRequest;
/// let r = ClientRequest::from_url("ws://alice:secret@example.com:9001/chat?x=1#top").unwrap();
/// assert_eq!((r.host.as_str(), r.path.as_str()), ("example.com:9001", "/chat?x=1"));
/// // The user information never goes into `Host`: it is sent as
/// // `Authorization: Basic`.
/// assert_eq!(r.credentials.unwrap().user, "alice");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The `Host` header value (`host` or `host:port`).
    pub host: String,
    /// The request target, starting with `/`.
    pub path: String,
    /// The `Origin` header, sent when set.
    pub origin: Option<String>,
    /// Sent as `Authorization: Basic` when set.
    pub credentials: Option<Credentials>,
}

impl ClientRequest {
    /// A request for `path` on `host`.
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            path: path.into(),
            origin: None,
            credentials: None,
        }
    }

    /// The request a `ws://` or `wss://` URL names ([`WsUrl`]): the host,
    /// with the port when it is not the default, as `Host`; path and query
    /// as the target (what a URI may not hold percent-encoded, as
    /// [`WsUrl::target`] says); the fragment dropped. User information in the URL
    /// becomes [`credentials`](Self::credentials), sent as
    /// `Authorization: Basic`, never part of `Host`.
    pub fn from_url(url: &str) -> Result<Self, UrlError> {
        let url = WsUrl::parse(url)?;
        Ok(Self {
            host: url.host_header(),
            path: url.target,
            origin: None,
            credentials: url.credentials,
        })
    }

    /// Sets the `Origin` header.
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Sets the credentials sent as `Authorization: Basic`.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }
}

/// Builds the upgrade request; every field is checked.
pub(crate) fn build_request(
    req: &ClientRequest,
    config: &Config,
    key: &str,
) -> Result<Vec<u8>, FieldError> {
    check_host(&req.host)?;
    let mut w = HeadWriter::request("GET", &req.path, HANDSHAKE_OWNED)?;
    w.own("Host", &req.host)?;
    w.own("Upgrade", "websocket")?;
    w.own("Connection", "Upgrade")?;
    w.own("Sec-WebSocket-Key", key)?;
    w.own("Sec-WebSocket-Version", "13")?;
    if let Some(o) = &req.origin {
        w.own("Origin", o)?;
    }
    if let Some(c) = &req.credentials {
        w.own("Authorization", &c.basic()?)?;
    }
    if !config.protocols().is_empty() {
        for p in config.protocols() {
            check_subprotocol(p)?;
        }
        w.own("Sec-WebSocket-Protocol", &config.protocols().join(", "))?;
    }
    let offers: Vec<String> = config
        .extensions
        .iter()
        .map(|f| f.offer().to_string())
        .collect();
    if !offers.is_empty() {
        w.own("Sec-WebSocket-Extensions", &offers.join(", "))?;
    }
    for (k, v) in config.headers() {
        // The fields this request sets from `req` are its own too.
        let set_here = (k.eq_ignore_ascii_case("Origin") && req.origin.is_some())
            || (k.eq_ignore_ascii_case("Authorization") && req.credentials.is_some());
        if set_here {
            return Err(FieldError::Reserved(k.clone()));
        }
        w.extra(k, v)?;
    }
    Ok(w.finish(b""))
}

#[derive(Debug)]
enum State {
    /// The request is queued; reading the response head.
    Head,
    /// The server refused the upgrade: reading the refusal's body.
    Body(Box<(HttpResponse, BodyReader)>),
    /// The handshake failed (a refusal was reported as `Event::Rejected`).
    Failed(Error),
}

/// The client side of the opening handshake.
#[derive(Debug)]
pub(crate) struct ClientHandshake {
    config: Config,
    key: String,
    state: State,
    head: HeadReader,
    recv: RecvBuf,
    send: SendQueue,
    events: VecDeque<Event>,
    timer: HandshakeTimer,
}

impl ClientHandshake {
    /// Queues the request at once.
    pub(crate) fn new(
        config: Config,
        request: &ClientRequest,
        key: String,
    ) -> Result<Self, FieldError> {
        let bytes = build_request(request, &config, &key)?;
        let mut send = SendQueue::new(config.max_send_queue.max(bytes.len()));
        send.buf_mut().extend_from_slice(&bytes);
        Ok(Self {
            config,
            key,
            state: State::Head,
            head: HeadReader::default(),
            recv: RecvBuf::new(),
            send,
            events: VecDeque::new(),
            timer: HandshakeTimer::default(),
        })
    }

    /// Received bytes held: the head so far, and what followed it.
    pub(crate) fn buffered_input(&self) -> usize {
        self.recv.len()
    }

    /// What the handshake holds on the heap: with a refusal's body being
    /// read, that body (as received data) and the refusal's head.
    pub(crate) fn memory_usage(&self) -> crate::MemoryUsage {
        let mut usage = super::memory_usage(&self.recv, &self.send, &self.events, &self.config);
        if let State::Body(b) = &self.state {
            usage.receive += std::mem::size_of_val(&**b) + b.1.held();
        }
        usage
    }

    pub(crate) fn error(&self) -> Option<&Error> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.send.drain_into(out)
    }

    /// Feeds received bytes; returns the handover on a valid 101.
    pub(crate) fn receive(&mut self, data: &[u8]) -> Result<Option<Handshaken>, Error> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let limit = self.config.max_handshake_size;
        // While a head is awaited, only what it can use is copied in.
        let room = match self.state {
            State::Head => HeadReader::room(self.recv.len(), data, limit),
            _ => data.len(),
        };
        let (now, mut later) = data.split_at(room);
        self.recv.extend(now);
        loop {
            if let State::Body(b) = &mut self.state {
                self.recv.extend(std::mem::take(&mut later));
                return match b.1.read(&mut self.recv) {
                    BodyStatus::Partial => Ok(None),
                    _ => {
                        let response = b.1.response(&b.0);
                        Err(self.refuse(response))
                    }
                };
            }
            let end = match self.head.find(self.recv.as_slice(), limit) {
                Ok(Some(end)) => end,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.fail(HandshakeError::from(e).into())),
            };
            let parsed = parse_response(self.recv.head(end), self.config.max_headers);
            self.recv.advance(end);
            let (response, minor) = match parsed {
                Ok(r) => r,
                Err(e) => return Err(self.fail(HandshakeError::from(e).into())),
            };
            match response.status {
                101 => {
                    self.recv.extend(later);
                    return self.hand_over(response).map(Some);
                }
                // Interim answers: the final one follows, and only what its
                // head can use is copied in.
                100 | 102..=199 => {
                    let room = HeadReader::room(self.recv.len(), later, limit);
                    let (next, rest) = later.split_at(room);
                    self.recv.extend(next);
                    later = rest;
                }
                status => {
                    self.recv.extend(std::mem::take(&mut later));
                    let body = match BodyReader::for_response(
                        status,
                        &response.headers,
                        minor,
                        self.config.max_handshake_size,
                    ) {
                        Ok(body) => body,
                        // Where the body ends is not known: the response
                        // is discarded (RFC 9112 §6.3 item 5).
                        Err(m) => return Err(self.fail(HandshakeError::Malformed(m).into())),
                    };
                    self.state = State::Body(Box::new((response, body)));
                }
            }
        }
    }

    fn hand_over(&mut self, response: HttpResponse) -> Result<Handshaken, Error> {
        let negotiated = match validate_response(&self.config, &self.key, &response.headers) {
            Ok(n) => n,
            Err(e) => return Err(self.fail(e.into())),
        };
        let extension = negotiated
            .extension
            .as_ref()
            .and_then(|_| response.headers.get_str("Sec-WebSocket-Extensions"))
            .map(str::to_owned);
        let mut preamble = Vec::new();
        self.send.drain_into(&mut preamble);
        Ok(Handshaken {
            opened: Opened {
                protocol: negotiated.protocol,
                extension,
                request: None,
                response: Some(response),
            },
            extension: negotiated.extension,
            events: self.events.drain(..).collect(),
            preamble,
            now: self.timer.now(),
            rest: self.recv.take_all(),
        })
    }

    /// Ends a refusal: reports the response (with the body read so far).
    fn refuse(&mut self, response: HttpResponse) -> Error {
        let status = response.status;
        self.events.push_back(Event::Rejected(Box::new(response)));
        self.fail(HandshakeError::Status(status).into())
    }

    pub(crate) fn receive_eof(&mut self) -> Result<(), Error> {
        match &mut self.state {
            State::Failed(e) => Err(e.clone()),
            State::Head => Err(self.fail(HandshakeError::Eof.into())),
            State::Body(b) => {
                let response = b.1.response(&b.0);
                Err(self.refuse(response))
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timer
            .deadline()
            .filter(|_| !matches!(self.state, State::Failed(_)))
    }

    /// The deadline covers the whole answer; a refusal whose body is
    /// still arriving is reported with the body so far.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if !self.timer.tick(now, self.config.handshake_timeout) {
            return;
        }
        match self.state {
            State::Head => {
                let _ = self.fail(Error::Timeout(TimeoutKind::Handshake));
            }
            State::Body(ref mut b) => {
                let response = b.1.response(&b.0);
                let _ = self.refuse(response);
            }
            State::Failed(_) => {}
        }
    }

    fn fail(&mut self, err: Error) -> Error {
        self.state = State::Failed(err.clone());
        err
    }
}

/// What a valid 101 response negotiated.
pub(crate) struct Negotiated {
    pub(crate) protocol: Option<String>,
    pub(crate) extension: Option<Box<dyn Extension>>,
}

/// Checks a 101 response against the request that was sent.
pub(crate) fn validate_response(
    config: &Config,
    key: &str,
    headers: &Headers,
) -> Result<Negotiated, HandshakeError> {
    // RFC 6455 §4.1: `Upgrade` is `websocket` and nothing else (item 2),
    // `Connection` holds `Upgrade` (item 3), and there is one
    // `Sec-WebSocket-Accept`, the one for our key (item 4).
    match headers.list("Upgrade").as_slice() {
        [u] if u.eq_ignore_ascii_case("websocket") => {}
        _ => return Err(HandshakeError::Header("Upgrade")),
    }
    if !headers.has_token("Connection", "upgrade") {
        return Err(HandshakeError::Header("Connection"));
    }
    if headers.single("Sec-WebSocket-Accept") != Some(accept_key(key.as_bytes()).as_bytes()) {
        return Err(HandshakeError::AcceptMismatch);
    }
    let chosen = headers.list("Sec-WebSocket-Protocol");
    let protocol = match chosen.as_slice() {
        [] => None,
        [p] if config.protocols().contains(p) => Some(p.clone()),
        _ => return Err(HandshakeError::Subprotocol(chosen.join(", "))),
    };
    let mut responses = Vec::new();
    for v in headers.get_all("Sec-WebSocket-Extensions") {
        let syntax = || HandshakeError::Extension(ExtensionResponseError::Syntax);
        let v = std::str::from_utf8(v).map_err(|_| syntax())?;
        responses.extend(ExtensionOffer::parse_list(v).map_err(|_| syntax())?);
    }
    let extension = match responses.as_slice() {
        [] => None,
        [r] => {
            let factory = config
                .extensions
                .iter()
                .find(|f| f.name() == r.name)
                .ok_or_else(|| {
                    HandshakeError::Extension(ExtensionResponseError::NotOffered(r.name.clone()))
                })?;
            Some(
                factory
                    .accept_response(r)
                    .map_err(|e| HandshakeError::Extension(ExtensionResponseError::Params(e)))?,
            )
        }
        _ => {
            return Err(HandshakeError::Extension(
                ExtensionResponseError::SeveralAccepted,
            ))
        }
    };
    Ok(Negotiated {
        protocol,
        extension,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn request_bytes() {
        let config = Config::default()
            .with_protocols(["chat"])
            .unwrap()
            .with_header("X-Token", "abc")
            .unwrap();
        let req =
            ClientRequest::new("server.example.com", "/chat").with_origin("http://example.com");
        let bytes = build_request(&req, &config, "dGhlIHNhbXBsZSBub25jZQ==").unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Origin: http://example.com\r\nSec-WebSocket-Protocol: chat\r\nX-Token: abc\r\n\r\n"
        );
        let bad = ClientRequest::new("a\r\nInjected: 1", "/");
        assert_eq!(
            build_request(&bad, &config, "k"),
            Err(FieldError::Host("a\r\nInjected: 1".into()))
        );
    }

    #[test]
    fn credentials_go_to_authorization() {
        let req = ClientRequest::from_url("ws://user:pw@example.com:8080/x").unwrap();
        let bytes = build_request(&req, &Config::default(), "k").unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\r\nHost: example.com:8080\r\n"), "{text}");
        assert!(
            text.contains("\r\nAuthorization: Basic dXNlcjpwdw==\r\n"),
            "{text}"
        );
        assert!(!text.contains("user:pw"), "{text}");
        let config = Config::default()
            .with_header("Authorization", "Bearer t")
            .unwrap();
        assert_eq!(
            build_request(&req, &config, "k"),
            Err(FieldError::Reserved("Authorization".into()))
        );
        // Without credentials in the URL the application's own is sent.
        let plain = ClientRequest::new("h", "/");
        assert!(build_request(&plain, &config, "k").is_ok());
    }

    #[test]
    fn response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let config = Config::default().with_protocols(["chat"]).unwrap();
        let h = |extra: &[(&str, &str)]| {
            let mut v = vec![
                ("Upgrade".to_owned(), Bytes::from_static(b"websocket")),
                ("Connection".to_owned(), Bytes::from_static(b"Upgrade")),
                (
                    "Sec-WebSocket-Accept".to_owned(),
                    Bytes::from_static(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                ),
            ];
            for (k, val) in extra {
                v.retain(|(n, _)| n != k);
                v.push((k.to_string(), Bytes::copy_from_slice(val.as_bytes())));
            }
            Headers(v)
        };
        assert!(validate_response(&config, key, &h(&[]))
            .unwrap()
            .protocol
            .is_none());
        assert_eq!(
            validate_response(&config, key, &h(&[("Sec-WebSocket-Protocol", "chat")]))
                .unwrap()
                .protocol
                .as_deref(),
            Some("chat")
        );
        assert!(matches!(
            validate_response(&config, key, &h(&[("Sec-WebSocket-Protocol", "other")])),
            Err(HandshakeError::Subprotocol(_))
        ));
        assert_eq!(
            validate_response(&config, key, &h(&[("Sec-WebSocket-Accept", "wrong")])).err(),
            Some(HandshakeError::AcceptMismatch)
        );
        assert!(matches!(
            validate_response(
                &config,
                key,
                &h(&[("Sec-WebSocket-Extensions", "permessage-deflate")])
            ),
            Err(HandshakeError::Extension(
                ExtensionResponseError::NotOffered(_)
            ))
        ));
    }
}

//! A WebSocket connection: an opening-handshake machine beside the
//! session it hands over to.
//!
//! [`Connection`] composes the machines the way
//! [`ProxiedClient`](super::proxy::ProxiedClient) composes a proxy
//! exchange and a connection. The [`Session`] exists from the start, in
//! its connecting state: commands go to it straight away (they wait there,
//! charged against the send queue limit), and what the handshake writes
//! and reports is moved into it, so sending, polling events and polling
//! output never ask which phase the connection is in. Received bytes and
//! timers go to the handshake until it hands over; then the session opens
//! ([`Connection::open`], the one transition here), takes the bytes that
//! arrived behind the handshake, and the handshake machine is dropped.
//! `commands.rs` holds the commands and the server's answers to an
//! upgrade.

mod commands;

use super::error::Error;
use super::extension::Extension;
use super::handshake::client::ClientHandshake;
use super::handshake::server::{Decision, ServerHandshake};
use super::handshake::{Accepted, ClientRequest, HandshakeError, Handshaken};
use super::message::Event;
use super::session::{Handover, Session};
use super::Config;
use crate::{default_random, Random};
use base64::Engine;
use bytes::Bytes;
use std::fmt;
use std::time::Instant;

/// Which end of the connection this machine plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepts the upgrade; receives masked frames, sends unmasked ones.
    Server,
    /// Sends the upgrade; masks every frame it sends.
    Client,
}

/// The opening handshake, while it runs.
#[derive(Debug)]
pub(super) enum Handshake {
    Server(ServerHandshake),
    Client(ClientHandshake),
}

/// A WebSocket connection (RFC 6455), server or client, as a sans-IO machine.
///
/// Feed it received bytes with [`receive`](Self::receive), take
/// [`Event`]s with [`poll_event`](Self::poll_event) and bytes to write with
/// [`poll_transmit`](Self::poll_transmit). Commands such as
/// [`send`](Self::send), [`ping`](Self::ping) and [`close`](Self::close)
/// only queue; commands issued before the handshake completes are sent as
/// soon as it does.
///
/// ```
/// use sansproto::ws::{ClientRequest, Config, Connection, Event, Message};
///
/// let mut server = Connection::server(Config::default());
/// let mut client = Connection::client(Config::default(), ClientRequest::new("example.com", "/")).unwrap();
/// client.send("hello").unwrap(); // queued until the handshake completes
///
/// let mut wire = Vec::new();
/// for _ in 0..3 {
///     client.poll_transmit(&mut wire);
///     server.receive(&wire).unwrap();
///     wire.clear();
///     server.poll_transmit(&mut wire);
///     client.receive(&wire).unwrap();
///     wire.clear();
/// }
/// assert!(matches!(server.poll_event(), Some(Event::Open(_))));
/// assert_eq!(server.poll_event(), Some(Event::Message(Message::from("hello"))));
/// ```
pub struct Connection {
    pub(super) session: Session,
    /// The opening handshake, until it hands over (boxed: it is short-lived).
    pub(super) handshake: Option<Box<Handshake>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("handshake", &self.handshake)
            .field("session", &self.session)
            .finish()
    }
}

impl Connection {
    fn handshaking(handshake: Handshake, session: Session) -> Self {
        let mut c = Self {
            session,
            handshake: Some(Box::new(handshake)),
        };
        c.collect();
        c
    }

    /// A server connection that waits for the client's upgrade request and
    /// accepts any valid one with the configured choices (subprotocol,
    /// extensions, extra header fields). To check `Origin`, authenticate,
    /// route by path or choose per request, use
    /// [`server_with_decision`](Self::server_with_decision).
    pub fn server(config: Config) -> Self {
        let session = Session::connecting(Role::Server, config.clone(), default_random());
        let machine = ServerHandshake::new(config, Decision::Auto);
        Self::handshaking(Handshake::Server(machine), session)
    }

    /// A server connection where the application decides each upgrade:
    /// a valid request is reported as [`Event::Upgrade`], and nothing is
    /// sent until [`accept`](Self::accept) or [`reject`](Self::reject)
    /// answers it. Bytes that arrive meanwhile are kept (up to
    /// [`Config::max_handshake_size`]); the handshake deadline still runs.
    ///
    /// ```
    /// use sansproto::ws::{Accept, Config, Connection, Event, OriginPolicy, Reject};
    ///
    /// let mut server = Connection::server_with_decision(Config::default());
    /// server.receive(b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n").unwrap();
    /// let Some(Event::Upgrade(request)) = server.poll_event() else { panic!() };
    /// let policy = OriginPolicy::allow(["https://example.com"]);
    /// match policy.check(&request) {
    ///     Ok(()) if request.path() == "/chat" => server.accept(Accept::new()).unwrap(),
    ///     Ok(()) => server.reject(Reject::new(404)).unwrap(),
    ///     Err(refusal) => server.reject(refusal).unwrap(),
    /// }
    /// let mut out = Vec::new();
    /// server.poll_transmit(&mut out);
    /// assert!(out.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
    /// assert!(server.is_finished());
    /// ```
    pub fn server_with_decision(config: Config) -> Self {
        let session = Session::connecting(Role::Server, config.clone(), default_random());
        let machine = ServerHandshake::new(config, Decision::Application);
        Self::handshaking(Handshake::Server(machine), session)
    }

    /// A server connection whose upgrade request was parsed and accepted
    /// elsewhere ([`accept_headers`](super::accept_headers),
    /// [`UpgradeRequest::accept`](super::UpgradeRequest::accept)). The 101
    /// response is not queued: the HTTP stack that parsed the request
    /// sends it (or write [`Accepted::response_bytes`] yourself).
    pub fn server_accepted(config: Config, accepted: Accepted) -> Self {
        let extension = accepted.extension.map(|(_, e)| e);
        Self::after_handshake(
            Role::Server,
            config,
            accepted.protocol,
            extension,
            default_random(),
        )
    }

    /// A connection whose handshake happened elsewhere (an HTTP/2 extended
    /// CONNECT stream, a proxy that already upgraded), with the negotiated
    /// subprotocol and extension: a [`Session`] from the start.
    ///
    /// Use it after an HTTP server's own upgrade (hyper's `upgrade::on`),
    /// or on an HTTP/2 stream opened by an extended CONNECT (RFC 8441:
    /// `:method CONNECT`, `:protocol websocket`, answered 200): no HTTP/1.1
    /// handshake is sent or expected, no [`Event::Open`] is reported, and
    /// frames flow at once over the stream's bytes. The masking rules are
    /// unchanged: a [`Role::Client`] masks every frame it sends and a
    /// [`Role::Server`] refuses unmasked ones.
    ///
    /// An extension negotiated in those headers comes from the same factory
    /// a handshake would use: the server builds it with
    /// [`ExtensionFactory::accept_offer`](super::ExtensionFactory::accept_offer)
    /// and the client with
    /// [`ExtensionFactory::accept_response`](super::ExtensionFactory::accept_response).
    ///
    /// ```
    /// # #[cfg(feature = "deflate")] {
    /// use sansproto::ws::{
    ///     Config, Connection, DeflateConfig, Event, ExtensionFactory, Message,
    ///     PerMessageDeflate, Role,
    /// };
    ///
    /// // The client offered permessage-deflate in `sec-websocket-extensions`
    /// // of its extended CONNECT; the server's 200 carried its answer.
    /// let deflate = PerMessageDeflate::new(DeflateConfig::default());
    /// let (answer, server_ext) = deflate.accept_offer(&[&deflate.offer()]).unwrap();
    /// let client_ext = deflate.accept_response(&answer).unwrap();
    ///
    /// let random = sansproto::default_random;
    /// let mut client =
    ///     Connection::after_handshake(Role::Client, Config::default(), None, Some(client_ext), random());
    /// let mut server =
    ///     Connection::after_handshake(Role::Server, Config::default(), None, Some(server_ext), random());
    ///
    /// let text = "an HTTP/2 stream carries this, an HTTP/2 stream carries this";
    /// client.send(text).unwrap();
    /// let mut data = Vec::new(); // the stream's DATA frames carry these bytes
    /// client.poll_transmit(&mut data);
    /// assert_eq!(data[0], 0x80 | 0x40 | 0x1, "FIN, RSV1 (compressed), text");
    /// assert_eq!(data[1] & 0x80, 0x80, "masked, as from any client");
    /// server.receive(&data).unwrap();
    /// assert_eq!(server.poll_event(), Some(Event::Message(Message::from(text))));
    /// # }
    /// ```
    pub fn after_handshake(
        role: Role,
        config: Config,
        protocol: Option<String>,
        extension: Option<Box<dyn Extension>>,
        random: Random,
    ) -> Self {
        Self {
            session: Session::new(role, config, protocol, extension, random),
            handshake: None,
        }
    }

    /// A client connection; the upgrade request is queued at once. Every
    /// field of the request is checked first: a bad one is refused with
    /// [`HandshakeError::Field`].
    pub fn client(config: Config, request: ClientRequest) -> Result<Self, HandshakeError> {
        Self::client_with_random(config, request, default_random())
    }

    /// A client connection drawing its handshake key and masking keys from
    /// `random` (seed it for byte-exact tests).
    pub fn client_with_random(
        config: Config,
        request: ClientRequest,
        mut random: Random,
    ) -> Result<Self, HandshakeError> {
        let mut nonce = [0u8; 16];
        random.fill_bytes(&mut nonce);
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let machine = ClientHandshake::new(config.clone(), &request, key)?;
        let session = Session::connecting(Role::Client, config, random);
        Ok(Self::handshaking(Handshake::Client(machine), session))
    }

    /// The session, once the handshake has handed over.
    pub fn session(&self) -> Option<&Session> {
        match self.handshake {
            None => Some(&self.session),
            Some(_) => None,
        }
    }

    /// Server or client.
    pub fn role(&self) -> Role {
        self.session.role()
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.session.protocol()
    }

    /// True between the end of the opening handshake and the sending of a
    /// Close frame: data messages may be sent.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.session.is_open()
    }

    /// Bytes queued for sending and not yet taken by `poll_transmit`
    /// (with the commands waiting for the handshake to complete).
    #[inline]
    pub fn buffered_amount(&self) -> usize {
        self.session.buffered_amount()
    }

    /// What the connection counted so far, the opening handshake's bytes
    /// included; see [`Session::stats`](super::Session::stats) and
    /// [`Stats`](super::Stats).
    ///
    /// ```
    /// use sansproto::ws::{Config, Connection};
    /// let mut server = Connection::server(Config::default());
    /// let request = b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\n\r\n";
    /// server.receive(request).unwrap();
    /// let mut out = Vec::new();
    /// server.poll_transmit(&mut out); // the 101
    /// let stats = server.stats();
    /// assert_eq!(stats.rx.bytes, request.len() as u64);
    /// assert_eq!(stats.tx.bytes, out.len() as u64);
    /// assert_eq!(stats.rx.frames, 0);
    /// ```
    pub fn stats(&self) -> super::Stats {
        let mut stats = self.session.stats();
        if self.session.error().is_none() {
            if let Some(e) = self.error() {
                stats.errors.count(e);
            }
        }
        stats
    }

    /// True while the send queue is above its high mark, until it drains
    /// to its low mark; see
    /// [`Session::is_backpressured`](super::Session::is_backpressured).
    #[inline]
    pub fn is_backpressured(&self) -> bool {
        self.session.is_backpressured()
    }

    /// Received bytes held and not yet handed out as events: during the
    /// opening handshake the head so far (bounded by
    /// [`Config::max_handshake_size`](crate::ws::Config::max_handshake_size))
    /// and what followed it, then an incomplete frame and input waiting
    /// for events to be polled.
    pub fn buffered_input(&self) -> usize {
        let handshake = match self.handshake.as_deref() {
            Some(Handshake::Server(m)) => m.buffered_input(),
            Some(Handshake::Client(m)) => m.buffered_input(),
            None => 0,
        };
        handshake + self.session.buffered_input()
    }

    /// The bytes this connection holds, by part: the session's (see
    /// [`Session::memory_usage`](super::Session::memory_usage)) and,
    /// until it hands over, the opening handshake's.
    pub fn memory_usage(&self) -> crate::MemoryUsage {
        let mut usage = self.session.memory_usage();
        usage.state += std::mem::size_of::<Self>() - std::mem::size_of::<Session>();
        let handshake = match self.handshake.as_deref() {
            Some(Handshake::Server(m)) => m.memory_usage(),
            Some(Handshake::Client(m)) => m.memory_usage(),
            None => return usage,
        };
        usage.add(&handshake);
        usage.state += std::mem::size_of::<Handshake>();
        usage
    }

    /// The sticky error, once the connection has failed.
    pub fn error(&self) -> Option<&Error> {
        match self.handshake.as_deref() {
            Some(Handshake::Server(m)) => m.error(),
            Some(Handshake::Client(m)) => m.error(),
            None => self.session.error(),
        }
    }

    /// Takes the next event.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }

    /// Feeds bytes read from the transport; returns how many were taken:
    /// all of `data`, or none (`Ok(0)`) once
    /// [`Config::max_pending_events`](super::Config::max_pending_events)
    /// events wait to be polled, until they are (then offer the same bytes
    /// again; see [`Session::receive`](super::Session::receive)).
    ///
    /// Events are queued for [`poll_event`](Self::poll_event). On a peer
    /// error the matching Close frame (or HTTP error response) is queued and
    /// the error is returned, now and by every later call. When events
    /// completed before the bad bytes are still waiting to be polled, the
    /// failure waits behind them instead (so replies to them go out before
    /// the Close frame): `receive` returns `Ok`, further input is ignored,
    /// and the failure takes effect when `poll_event` reaches it, reporting
    /// [`Event::Closed`] and making [`error`](Self::error) return it.
    #[inline]
    pub fn receive(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.handshake.is_none() {
            return self.session.receive(data);
        }
        // Bytes offered after the failure are not taken: not counted.
        if let Some(e) = self.error() {
            return Err(e.clone());
        }
        let result = match self.handshake.as_deref_mut() {
            Some(Handshake::Server(m)) => m.receive(data),
            Some(Handshake::Client(m)) => m.receive(data),
            None => Ok(None),
        };
        self.session.count_handshake_input(data.len());
        self.collect();
        if let Some(done) = result? {
            self.open(done)?;
        }
        Ok(data.len())
    }

    /// Space to read from the transport into, at least `min` bytes; then
    /// [`commit_received`](Self::commit_received) the count read. See
    /// [`Session::receive_buffer`](super::Session::receive_buffer): frames
    /// are handed out from where they were read, and `None` means poll
    /// events first.
    #[inline]
    pub fn receive_buffer(&mut self, min: usize) -> Option<&mut [u8]> {
        self.session.receive_buffer(min)
    }

    /// Takes `n` bytes read into the space
    /// [`receive_buffer`](Self::receive_buffer) gave, as
    /// [`receive`](Self::receive) takes bytes.
    #[inline]
    pub fn commit_received(&mut self, n: usize) -> Result<(), Error> {
        if self.handshake.is_none() {
            return self.session.commit_received(n);
        }
        let bytes = self.take_committed(n);
        self.receive(&bytes).map(drop)
    }

    /// Before the session opens: takes the `n` bytes read into the space
    /// [`receive_buffer`](Self::receive_buffer) gave back out of the
    /// session's buffer, for whatever reads ahead of the session (the
    /// handshake, a proxy exchange), and frees the buffer.
    pub(crate) fn take_committed(&mut self, n: usize) -> Bytes {
        let bytes = self.session.take_committed(n);
        self.session.release_empty_buffer();
        bytes
    }

    /// The receive buffer itself, for a read that appends without zeroing
    /// (tokio's `read_buf`); then [`commit_appended`](Self::commit_appended).
    /// See [`Session::receive_buf_mut`](super::Session::receive_buf_mut).
    #[inline]
    pub fn receive_buf_mut(&mut self, min: usize) -> Option<&mut bytes::BytesMut> {
        self.session.receive_buf_mut(min)
    }

    /// Takes the bytes a read appended to the buffer
    /// [`receive_buf_mut`](Self::receive_buf_mut) lent.
    #[inline]
    pub fn commit_appended(&mut self) -> Result<(), Error> {
        if self.handshake.is_none() {
            return self.session.commit_appended();
        }
        let bytes = self.take_appended();
        self.receive(&bytes).map(drop)
    }

    /// The same as [`take_committed`](Self::take_committed), for bytes
    /// appended to the buffer [`receive_buf_mut`](Self::receive_buf_mut)
    /// lent.
    pub(crate) fn take_appended(&mut self) -> Bytes {
        let bytes = self.session.take_appended();
        self.session.release_empty_buffer();
        bytes
    }

    /// Moves what the handshake wrote and reported into the session, the
    /// connection's one output; when the handshake has ended without an
    /// upgrade, the session will not open.
    fn collect(&mut self) {
        let Some(h) = self.handshake.as_deref_mut() else {
            return;
        };
        let mut out = Vec::new();
        let finished = match h {
            Handshake::Server(m) => {
                m.poll_transmit(&mut out);
                while let Some(e) = m.poll_event() {
                    self.session.report(e);
                }
                m.is_finished()
            }
            Handshake::Client(m) => {
                m.poll_transmit(&mut out);
                while let Some(e) = m.poll_event() {
                    self.session.report(e);
                }
                m.is_finished()
            }
        };
        self.session.queue_handshake_output(&out);
        if finished {
            self.session.abandon();
        }
    }

    /// The handshake handed over: the session opens, with the commands
    /// issued meanwhile, and takes the bytes that arrived behind it.
    fn open(&mut self, done: Handshaken) -> Result<(), Error> {
        self.handshake = None;
        self.session.queue_handshake_output(&done.preamble);
        let handover = Handover {
            events: done.events,
            now: done.now,
        };
        self.session.open(done.opened, done.extension, handover)?;
        if done.rest.is_empty() {
            Ok(())
        } else {
            self.session.take_input(&done.rest)
        }
    }

    /// Takes bytes received after a plain HTTP request's head (its body),
    /// up to the handshake size limit.
    pub fn take_buffered(&mut self) -> Bytes {
        match self.handshake.as_deref_mut() {
            Some(Handshake::Server(m)) => m.take_buffered(),
            _ => Bytes::new(),
        }
    }

    /// Appends every queued outgoing byte to `out`; returns the count.
    #[inline]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.session.poll_transmit(out)
    }

    /// The queued output as chunks for a vectored write; see
    /// [`Session::output`](super::Session::output).
    #[inline]
    pub fn output(&mut self) -> crate::Output<'_> {
        self.session.output()
    }

    /// True once there is nothing more to exchange: write out what
    /// `poll_transmit` gives, then close the transport.
    #[inline]
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }

    /// The transport's read side ended.
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        let result = match self.handshake.as_deref_mut() {
            None => return self.session.receive_eof(),
            Some(Handshake::Server(m)) => m.receive_eof(),
            Some(Handshake::Client(m)) => m.receive_eof(),
        };
        self.collect();
        result
    }

    // ----- timers ---------------------------------------------------------

    /// The earliest deadline, once timers were started by a first
    /// [`handle_timeout`](Self::handle_timeout) call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.handshake.as_deref() {
            None => self.session.poll_timeout(),
            Some(Handshake::Server(m)) => m.poll_timeout(),
            Some(Handshake::Client(m)) => m.poll_timeout(),
        }
    }

    /// Runs the timers due at `now` and arms new ones. Call it once when the
    /// connection starts (timers start then) and after every `receive`;
    /// inbound traffic seen since the previous call counts as activity at
    /// `now`. Timers armed by commands in between (a close timeout after
    /// [`close`](Self::close)) count from the latest `now` seen.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.handshake.as_deref_mut() {
            None => return self.session.handle_timeout(now),
            Some(Handshake::Server(m)) => m.handle_timeout(now),
            Some(Handshake::Client(m)) => m.handle_timeout(now),
        }
        self.collect();
    }

    /// The configured close timeout (see `Session::close_timeout`).
    #[cfg(feature = "tokio")]
    pub(crate) fn close_timeout(&self) -> Option<std::time::Duration> {
        self.session.close_timeout()
    }
}

crate::driver::by_inherent_methods!(Connection, Event, Error);

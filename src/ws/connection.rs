//! The connection state machine: commands, sending, timers.

use super::close::{close_payload, CloseCode};
use super::error::{Error, SendError, SendErrorKind, TimeoutKind};
use super::extension::Extension;
use super::frame::{encode_frame, OpCode, MAX_HEADER_LEN};
use super::handshake::client::build_request;
use super::handshake::{Accepted, ClientRequest, HandshakeError, HttpResponse};
use super::message::{Closed, Event, Message, Opened, Text};
use super::utf8::Utf8Validator;
use super::Config;
use crate::buf::{RecvBuf, SendQueue};
use crate::{default_random, Random};
use base64::Engine;
use bytes::Bytes;
use std::collections::VecDeque;
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

#[derive(Debug)]
pub(super) enum State {
    /// Waiting for the client's upgrade request.
    ServerHandshake { scanned: usize },
    /// Waiting for the server's 101 response.
    ClientHandshake { key: String, scanned: usize },
    /// The server refused the upgrade; collecting the response body.
    Rejected {
        response: HttpResponse,
        body_len: Option<usize>,
    },
    /// The request was plain HTTP; the application answers it.
    Http,
    /// Messages flow both ways.
    Open,
    /// This side sent Close and waits for the peer's.
    CloseSent,
    /// Finished.
    Closed,
}

/// A frame whose header has been read and whose payload is arriving.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFrame {
    pub(super) fin: bool,
    pub(super) opcode: OpCode,
    pub(super) mask: Option<[u8; 4]>,
    /// Payload bytes of this frame not yet handed on.
    pub(super) remaining: usize,
    /// How many of the buffered payload bytes are already unmasked/validated.
    pub(super) done: usize,
    /// Mask phase of the first buffered payload byte.
    pub(super) offset: usize,
}

/// A data message being received.
#[derive(Debug)]
pub(super) struct InMessage {
    pub(super) kind: super::MessageKind,
    /// RSV bits of the first frame (the extension's marker).
    pub(super) rsv: u8,
    /// Frame payload bytes received so far (before any extension transform).
    pub(super) wire_len: usize,
    /// Reassembly buffer (unused for single-frame messages).
    pub(super) buf: Vec<u8>,
    /// Frames completed so far.
    pub(super) frames: usize,
    /// Streaming mode: pieces delivered so far.
    pub(super) pieces: usize,
}

/// A command issued before the handshake completed.
#[derive(Debug)]
enum Pending {
    Message(Message),
    Ping(Bytes),
    Pong(Bytes),
    Close(CloseCode, String),
}

#[derive(Debug, Default)]
struct Timers {
    /// The latest `now` passed to `handle_timeout`.
    now: Option<Instant>,
    handshake: Option<Instant>,
    keepalive: Option<Instant>,
    pong: Option<Instant>,
    close: Option<Instant>,
    activity: bool,
}

/// An entry of the event queue. Terminal steps caused by received bytes
/// (failing the connection, answering the peer's Close) wait behind the
/// events before them, so the application can still answer those events
/// (echo a message, say) before the Close frame goes out.
#[derive(Debug)]
pub(super) enum Queued {
    Event(Event),
    /// Whole messages received together, reported one by one.
    Messages(super::recv::WholeMessages),
    Fail(Error),
    PeerClose(Option<CloseCode>, String),
}

/// Outstanding pings remembered to match pongs against.
const MAX_OUTSTANDING_PINGS: usize = 16;

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
    pub(super) role: Role,
    pub(super) config: Config,
    pub(super) state: State,
    pub(super) error: Option<Error>,
    pub(super) recv: RecvBuf,
    pub(super) send: SendQueue,
    pub(super) events: VecDeque<Queued>,
    /// A terminal step is queued behind pending events; input is ignored.
    pub(super) halted: bool,
    pub(super) frame: Option<InFrame>,
    pub(super) message: Option<InMessage>,
    pub(super) utf8: Utf8Validator,
    pub(super) extension: Option<Box<dyn Extension>>,
    pub(super) protocol: Option<String>,
    rng: Random,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    /// `close` was called before the handshake completed.
    close_requested: bool,
    pub(super) pings: VecDeque<Bytes>,
    ping_counter: u64,
    timers: Timers,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("error", &self.error)
            .field("buffered_in", &self.recv.len())
            .field("buffered_out", &self.send.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(role: Role, config: Config, state: State, rng: Random) -> Self {
        let send = SendQueue::new(config.max_send_queue);
        Self {
            role,
            config,
            state,
            error: None,
            recv: RecvBuf::new(),
            send,
            events: VecDeque::new(),
            halted: false,
            frame: None,
            message: None,
            utf8: Utf8Validator::new(),
            extension: None,
            protocol: None,
            rng,
            pending: VecDeque::new(),
            pending_bytes: 0,
            close_requested: false,
            pings: VecDeque::new(),
            ping_counter: 0,
            timers: Timers::default(),
        }
    }

    /// A server connection that waits for the client's upgrade request.
    pub fn server(config: Config) -> Self {
        Self::new(
            Role::Server,
            config,
            State::ServerHandshake { scanned: 0 },
            default_random(),
        )
    }

    /// A server connection whose upgrade request was parsed and accepted
    /// elsewhere ([`accept_headers`](super::accept_headers)). The 101
    /// response is not queued: the HTTP stack that parsed the request sends
    /// it (or write [`Accepted::response_bytes`] yourself).
    pub fn server_accepted(config: Config, accepted: Accepted) -> Self {
        let mut c = Self::new(Role::Server, config, State::Open, default_random());
        c.protocol = accepted.protocol;
        c.extension = accepted.extension.map(|(_, e)| e);
        c
    }

    /// A connection whose handshake happened elsewhere (an HTTP/2 extended
    /// CONNECT stream, a proxy that already upgraded), with the negotiated
    /// subprotocol and extension.
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
        let mut c = Self::new(role, config, State::Open, random);
        c.protocol = protocol;
        c.extension = extension;
        c
    }

    /// A client connection; the upgrade request is queued at once.
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
        let bytes = build_request(&request, &config, &key)?;
        let mut c = Self::new(
            Role::Client,
            config,
            State::ClientHandshake { key, scanned: 0 },
            random,
        );
        c.send.buf_mut().extend_from_slice(&bytes);
        Ok(c)
    }

    /// Server or client.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// True between the end of the opening handshake and the sending of a
    /// Close frame: data messages may be sent.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// Bytes queued for sending and not yet taken by `poll_transmit`.
    pub fn buffered_amount(&self) -> usize {
        self.send.len() + self.pending_bytes
    }

    /// The sticky error, once the connection has failed.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Takes the next event.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(Queued::Messages(batch)) = self.events.front_mut() {
                let message = batch.next();
                if message.is_none() || batch.is_empty() {
                    self.events.pop_front();
                }
                match message {
                    Some(message) => return Some(Event::Message(message)),
                    None => continue,
                }
            }
            match self.events.pop_front()? {
                Queued::Event(e) => return Some(e),
                Queued::Messages(_) => {}
                // A timer may have ended the connection meanwhile; then the
                // queued step has nothing left to do.
                Queued::Fail(err) => {
                    self.halted = false;
                    if !matches!(self.state, State::Closed) {
                        let _ = self.fail(err);
                    }
                }
                Queued::PeerClose(code, reason) => {
                    self.halted = false;
                    if !matches!(self.state, State::Closed) {
                        self.peer_close(code, reason);
                    }
                }
            }
        }
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.events.push_back(Queued::Event(event));
    }

    /// Runs a terminal step now, or queues it behind pending events.
    pub(super) fn terminal(&mut self, step: Queued) -> Result<(), Error> {
        if !self.events.is_empty() {
            self.events.push_back(step);
            self.halted = true;
            return Ok(());
        }
        match step {
            Queued::Fail(err) => Err(self.fail(err)),
            Queued::PeerClose(code, reason) => {
                self.peer_close(code, reason);
                Ok(())
            }
            step @ (Queued::Event(_) | Queued::Messages(_)) => {
                self.events.push_back(step);
                Ok(())
            }
        }
    }

    /// The peer's Close frame: answer it (if this side has not sent one)
    /// and finish.
    pub(super) fn peer_close(&mut self, code: Option<CloseCode>, reason: String) {
        let by_peer = matches!(self.state, State::Open);
        if by_peer {
            self.write_close(code, &reason);
        }
        self.state = State::Closed;
        self.frame = None;
        self.message = None;
        self.emit(Event::Closed(Closed {
            code: code.unwrap_or(CloseCode::NO_STATUS),
            reason,
            clean: true,
            by_peer,
        }));
    }

    /// Appends every queued outgoing byte to `out`; returns the count.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.send.drain_into(out)
    }

    /// True once there is nothing more to exchange: write out what
    /// `poll_transmit` gives, then close the transport.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Waiting for any part of the opening handshake (including a refused
    /// upgrade's body).
    fn handshaking(&self) -> bool {
        self.in_handshake() || matches!(self.state, State::Rejected { .. })
    }

    fn in_handshake(&self) -> bool {
        matches!(
            self.state,
            State::ServerHandshake { .. } | State::ClientHandshake { .. }
        )
    }

    // ----- commands -------------------------------------------------------

    /// Queues a data message (text or binary).
    #[inline(always)]
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        let message = message.into();
        // The common case, encoded right here: open, no extension to
        // transform the message, one frame, and room in the queue.
        let payload = message.as_bytes();
        if self.encodes_at_once(payload.len()) {
            self.write_frame(true, 0, data_opcode(&message), payload);
            return Ok(());
        }
        self.send_queued_or_refused(message)
    }

    /// True when a data message of `len` bytes is encoded into the send
    /// queue right away: open, no extension to transform it, one frame,
    /// and room in the queue.
    #[inline(always)]
    fn encodes_at_once(&self, len: usize) -> bool {
        matches!(self.state, State::Open)
            && self.extension.is_none()
            && len <= self.config.fragment_size.unwrap_or(usize::MAX).max(1)
            && self.send.has_room(len.saturating_add(MAX_HEADER_LEN))
    }

    /// Queues a text message copied from a borrowed `&str`.
    ///
    /// The payload is copied straight into the send queue, so sending from
    /// a buffer the caller reuses costs no allocation; `send_text("...")`
    /// would first copy the text into a new [`Text`]. Only when the
    /// message cannot be encoded at once (before the handshake completes,
    /// with an extension, or when it is fragmented or refused) is it copied
    /// into an owned message first, which a refusal hands back.
    ///
    /// ```
    /// use sansproto::ws::{Config, Connection, Role};
    /// let mut conn = Connection::after_handshake(
    ///     Role::Server, Config::default(), None, None, sansproto::default_random(),
    /// );
    /// let mut line = String::new();
    /// for i in 0..3 {
    ///     line.clear();
    ///     line.push_str(&format!("tick {i}"));
    ///     conn.send_text_str(&line).unwrap();
    /// }
    /// let mut out = Vec::new();
    /// conn.poll_transmit(&mut out);
    /// assert_eq!(&out[..8], b"\x81\x06tick 0");
    /// ```
    #[inline(always)]
    pub fn send_text_str(&mut self, text: &str) -> Result<(), SendError<Message>> {
        if self.encodes_at_once(text.len()) {
            self.write_frame(true, 0, OpCode::Text, text.as_bytes());
            return Ok(());
        }
        self.send_queued_or_refused(Message::Text(text.into()))
    }

    /// Queues a binary message copied from a borrowed slice; see
    /// [`send_text_str`](Self::send_text_str).
    #[inline(always)]
    pub fn send_binary_slice(&mut self, data: &[u8]) -> Result<(), SendError<Message>> {
        if self.encodes_at_once(data.len()) {
            self.write_frame(true, 0, OpCode::Binary, data);
            return Ok(());
        }
        self.send_queued_or_refused(Message::Binary(Bytes::copy_from_slice(data)))
    }

    /// `send` when the message waits for the handshake, is transformed by
    /// an extension, is fragmented, or is refused.
    fn send_queued_or_refused(&mut self, message: Message) -> Result<(), SendError<Message>> {
        let refuse = |kind, payload| Err(SendError { kind, payload });
        match self.state {
            State::Open => {}
            _ if self.in_handshake() => {
                if let Err(kind) = self.admit_pending(message.len()) {
                    return refuse(kind, message);
                }
                self.pending.push_back(Pending::Message(message));
                return Ok(());
            }
            _ => return refuse(SendErrorKind::Closed, message),
        }
        let opcode = data_opcode(&message);
        if !self
            .send
            .has_room(message.len().saturating_add(MAX_HEADER_LEN))
        {
            return refuse(SendErrorKind::QueueFull, message);
        }
        match self.encode_data(opcode, message.as_bytes()) {
            Ok(()) => Ok(()),
            Err(kind) => refuse(kind, message),
        }
    }

    /// Admits a command issued before the handshake completed: it is
    /// charged (with its frame header) against the send queue limit now, and
    /// sent without a second check when the connection opens.
    fn admit_pending(&mut self, len: usize) -> Result<(), SendErrorKind> {
        if self.close_requested {
            return Err(SendErrorKind::Closed);
        }
        let cost = len.saturating_add(MAX_HEADER_LEN);
        if self.buffered_amount().saturating_add(cost) > self.config.max_send_queue {
            return Err(SendErrorKind::QueueFull);
        }
        self.pending_bytes += cost;
        Ok(())
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: impl Into<Text>) -> Result<(), SendError<Message>> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError<Message>> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues a Ping; the matching Pong is reported with `matched: true`.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        let payload = payload.into();
        self.control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited Pong (a one-way heartbeat).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.control(OpCode::Pong, payload.into())
    }

    fn control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError<Bytes>> {
        let refuse = |kind, payload| Err(SendError { kind, payload });
        if payload.len() > 125 {
            return refuse(SendErrorKind::ControlTooLong, payload);
        }
        if self.in_handshake() {
            if let Err(kind) = self.admit_pending(payload.len()) {
                return refuse(kind, payload);
            }
            self.pending.push_back(match opcode {
                OpCode::Ping => Pending::Ping(payload),
                _ => Pending::Pong(payload),
            });
            return Ok(());
        }
        if !matches!(self.state, State::Open) {
            return refuse(SendErrorKind::Closed, payload);
        }
        if !self.send.has_room(payload.len() + MAX_HEADER_LEN) {
            return refuse(SendErrorKind::QueueFull, payload);
        }
        self.write_control(opcode, payload);
        Ok(())
    }

    /// Writes a Ping or Pong, remembering pings to match pongs against.
    fn write_control(&mut self, opcode: OpCode, payload: Bytes) {
        self.write_frame(true, 0, opcode, &payload);
        if opcode == OpCode::Ping {
            if self.pings.len() == MAX_OUTSTANDING_PINGS {
                self.pings.pop_front();
            }
            self.pings.push_back(payload);
        }
    }

    /// Starts the closing handshake: queues a Close frame with `code` and
    /// `reason` (cut to fit 125 bytes). Data received before the peer's
    /// Close arrives is still delivered; sends are refused from now on.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError<()>> {
        let refuse = |kind| Err(SendError { kind, payload: () });
        if !code.is_sendable() {
            return refuse(SendErrorKind::InvalidCloseCode(code.0));
        }
        match self.state {
            State::Open => {
                self.write_close(Some(code), reason);
                self.state = State::CloseSent;
                self.arm_timers();
                Ok(())
            }
            _ if self.in_handshake() && !self.close_requested => {
                self.pending
                    .push_back(Pending::Close(code, reason.to_owned()));
                self.close_requested = true;
                Ok(())
            }
            _ => refuse(SendErrorKind::Closed),
        }
    }

    /// Server side, after [`Event::HttpRequest`]: queues a plain HTTP
    /// response (with `Content-Length` and `Connection: close`), after
    /// which the connection is finished.
    pub fn send_http_response(
        &mut self,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), SendError<()>> {
        if !matches!(self.state, State::Http) {
            return Err(SendError {
                kind: SendErrorKind::WrongState,
                payload: (),
            });
        }
        let safe = |s: &str| super::handshake::is_header_safe(s);
        if !safe(reason) || headers.iter().any(|(k, v)| !safe(k) || !safe(v)) {
            return Err(SendError {
                kind: SendErrorKind::WrongState,
                payload: (),
            });
        }
        let out = self.send.buf_mut();
        out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
        for (k, v) in headers {
            super::handshake::push_header(out, k, v);
        }
        super::handshake::push_header(out, "Content-Length", &body.len().to_string());
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(body);
        self.state = State::Closed;
        Ok(())
    }

    // ----- encoding -------------------------------------------------------

    fn encode_data(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendErrorKind> {
        if let Some(ext) = self.extension.as_mut() {
            let mut encoded = Vec::new();
            if let Some(rsv) = ext
                .encode(opcode, payload, &mut encoded)
                .map_err(SendErrorKind::Extension)?
            {
                self.write_fragments(opcode, rsv, &encoded);
                return Ok(());
            }
        }
        self.write_fragments(opcode, 0, payload);
        Ok(())
    }

    fn write_fragments(&mut self, opcode: OpCode, rsv: u8, payload: &[u8]) {
        let size = self.config.fragment_size.unwrap_or(usize::MAX).max(1);
        if payload.len() <= size {
            self.write_frame(true, rsv, opcode, payload);
            return;
        }
        let count = payload.len().div_ceil(size);
        for (i, chunk) in payload.chunks(size).enumerate() {
            let (op, bits) = if i == 0 {
                (opcode, rsv)
            } else {
                (OpCode::Continuation, 0)
            };
            self.write_frame(i + 1 == count, bits, op, chunk);
        }
    }

    #[inline(always)]
    pub(super) fn write_frame(&mut self, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
        let mask = match self.role {
            Role::Client => Some(self.rng.next_u32().to_ne_bytes()),
            Role::Server => None,
        };
        encode_frame(self.send.buf_mut(), fin, rsv, opcode, mask, payload);
    }

    pub(super) fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
        let payload = close_payload(code, reason);
        self.write_frame(true, 0, OpCode::Close, &payload);
    }

    // ----- transitions ----------------------------------------------------

    /// The opening handshake completed.
    pub(super) fn open(&mut self, opened: Opened) {
        self.state = State::Open;
        self.emit(Event::Open(Box::new(opened)));
        self.pending_bytes = 0;
        self.close_requested = false;
        // Pending commands were admitted against the limits already.
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Message(m) => {
                    let opcode = data_opcode(&m);
                    if let Err(kind) = self.encode_data(opcode, m.as_bytes()) {
                        // Only an extension can fail here; the peer then
                        // gets a close instead of a silently missing message.
                        let _ = self.fail(Error::Send(kind));
                        return;
                    }
                }
                Pending::Ping(b) => self.write_control(OpCode::Ping, b),
                Pending::Pong(b) => self.write_control(OpCode::Pong, b),
                Pending::Close(code, reason) => {
                    self.write_close(Some(code), &reason);
                    self.state = State::CloseSent;
                }
            }
        }
        self.arm_timers();
    }

    /// Fails the connection: queues what the peer should hear, records the
    /// sticky error, and reports the end.
    pub(super) fn fail(&mut self, err: Error) -> Error {
        let was_open = matches!(self.state, State::Open | State::CloseSent);
        match (&self.state, err.close_code()) {
            (State::Open, Some(code)) => self.write_close(Some(code), ""),
            (State::ServerHandshake { .. }, _) => {
                if let Error::Handshake(e) = &err {
                    if *e != HandshakeError::Eof {
                        let resp = super::handshake::server::error_response(e);
                        self.send.buf_mut().extend_from_slice(&resp);
                    }
                }
            }
            _ => {}
        }
        if was_open {
            self.emit(Event::Closed(Closed {
                code: err.close_code().unwrap_or(CloseCode::ABNORMAL),
                reason: err.to_string(),
                clean: false,
                by_peer: false,
            }));
        }
        self.state = State::Closed;
        self.frame = None;
        self.message = None;
        self.pending.clear();
        self.pending_bytes = 0;
        // The first failure is the one reported, now and later.
        self.error.get_or_insert(err).clone()
    }

    /// The transport's read side ended.
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.halted {
            return Ok(());
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Open | State::CloseSent => {
                self.emit(Event::Closed(Closed {
                    code: CloseCode::ABNORMAL,
                    reason: String::new(),
                    clean: false,
                    by_peer: false,
                }));
                Ok(())
            }
            State::Rejected { mut response, .. } => {
                response.body = self.recv.take_all();
                let status = response.status;
                self.emit(Event::Rejected(Box::new(response)));
                Err(self.fail(HandshakeError::Status(status).into()))
            }
            state @ (State::ServerHandshake { .. } | State::ClientHandshake { .. }) => {
                self.state = state;
                Err(self.fail(HandshakeError::Eof.into()))
            }
            State::Http | State::Closed => Ok(()),
        }
    }

    // ----- timers ---------------------------------------------------------

    /// The earliest deadline, once timers were started by a first
    /// [`handle_timeout`](Self::handle_timeout) call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.halted {
            // Suspended while a queued failure or peer Close awaits polling.
            return None;
        }
        let t = &self.timers;
        [t.handshake, t.keepalive, t.pong, t.close]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers due at `now` and arms new ones. Call it once when the
    /// connection starts (timers start then) and after every `receive`;
    /// inbound traffic seen since the previous call counts as activity at
    /// `now`. Timers armed by commands in between (a close timeout after
    /// [`close`](Self::close)) count from the latest `now` seen.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.timers.now = Some(now);
        if self.halted {
            // A failure or the peer's Close waits behind unpolled events and
            // ends the connection when reached; timers have nothing to add.
            return;
        }
        if std::mem::take(&mut self.timers.activity) {
            self.timers.pong = None;
            self.timers.keepalive = None;
        }
        let due = |t: Option<Instant>| t.is_some_and(|at| now >= at);
        if self.handshaking() && due(self.timers.handshake) {
            let _ = self.fail(Error::Timeout(TimeoutKind::Handshake));
        }
        if matches!(self.state, State::Open) {
            if due(self.timers.pong) {
                let _ = self.fail(Error::Timeout(TimeoutKind::Pong));
            } else if due(self.timers.keepalive) {
                self.ping_counter += 1;
                let payload = Bytes::copy_from_slice(&self.ping_counter.to_be_bytes());
                let _ = self.ping(payload);
                self.timers.keepalive = None;
                if self.timers.pong.is_none() {
                    self.timers.pong = Some(now + self.config.pong_timeout);
                }
            }
        }
        if matches!(self.state, State::CloseSent) && due(self.timers.close) {
            let _ = self.fail(Error::Timeout(TimeoutKind::Close));
        }
        self.arm_timers();
    }

    /// Sets the deadlines the current state needs, from the latest `now`.
    fn arm_timers(&mut self) {
        let Some(now) = self.timers.now else { return };
        let handshaking = self.handshaking();
        let (open, closing) = (
            matches!(self.state, State::Open),
            matches!(self.state, State::CloseSent),
        );
        let c = &self.config;
        let t = &mut self.timers;
        match (handshaking, t.handshake) {
            (true, None) => t.handshake = c.handshake_timeout.map(|d| now + d),
            (false, _) => t.handshake = None,
            _ => {}
        }
        if !open {
            t.keepalive = None;
            t.pong = None;
        } else if t.keepalive.is_none() {
            t.keepalive = c.keepalive_interval.map(|d| now + d);
        }
        match (closing, t.close) {
            (true, None) => t.close = c.close_timeout.map(|d| now + d),
            (false, _) => t.close = None,
            _ => {}
        }
    }

    pub(super) fn note_activity(&mut self) {
        self.timers.activity = true;
    }
}

impl crate::Driver for Connection {
    type Event = Event;
    type Error = Error;

    fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        Connection::receive(self, data)
    }
    fn receive_eof(&mut self) -> Result<(), Error> {
        Connection::receive_eof(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        Connection::poll_transmit(self, out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now)
    }
    fn is_finished(&self) -> bool {
        Connection::is_finished(self)
    }
}

/// The opcode a data message's (first) frame carries.
#[inline(always)]
fn data_opcode(message: &Message) -> OpCode {
    match message {
        Message::Text(_) => OpCode::Text,
        Message::Binary(_) => OpCode::Binary,
    }
}

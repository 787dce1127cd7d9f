//! The commands of a [`Connection`]: sending, closing, and a server's
//! answers to an upgrade. Before the handshake hands over they wait in
//! its queue, charged against the send queue limit.

use super::{Connection, Handshake, Machine, Phase};
use crate::ws::close::CloseCode;
use crate::ws::error::{Error, SendError, SendErrorKind};
use crate::ws::frame::MAX_HEADER_LEN;
use crate::ws::handshake::{Accept, Reject};
use crate::ws::message::{Message, Text};
use crate::ws::session::Admitted;
use bytes::Bytes;

impl Connection {
    // ----- the server's answers ------------------------------------------

    /// Accepts the upgrade reported as [`Event::Upgrade`](crate::ws::Event::Upgrade): the 101 is
    /// queued and the connection opens ([`Event::Open`](crate::ws::Event::Open) follows). Refused
    /// with [`SendErrorKind::WrongState`] when no upgrade waits for an
    /// answer, and with [`SendErrorKind::Field`] when the answer cannot be
    /// written (a subprotocol the client did not offer, say); the answer
    /// is handed back.
    pub fn accept(&mut self, answer: Accept) -> Result<(), SendError<Accept>> {
        let result = match &mut self.phase {
            Phase::Handshake(h) => match &mut h.machine {
                Machine::Server(m) => m.accept(&answer),
                Machine::Client(_) => Err(SendErrorKind::WrongState),
            },
            Phase::Session(_) => Err(SendErrorKind::WrongState),
        };
        match result {
            Ok(done) => {
                // A failure of what arrived behind the request is the
                // session's to report, through `receive` and `error`.
                let _ = self.open(done);
                Ok(())
            }
            Err(kind) => Err(SendError {
                kind,
                payload: answer,
            }),
        }
    }

    /// Refuses the upgrade reported as [`Event::Upgrade`](crate::ws::Event::Upgrade): the response is
    /// queued (with `Content-Length` and `Connection: close`), after which
    /// the connection is finished.
    pub fn reject(&mut self, answer: Reject) -> Result<(), SendError<Reject>> {
        let result = match &mut self.phase {
            Phase::Handshake(h) => match &mut h.machine {
                Machine::Server(m) => m.reject(&answer),
                Machine::Client(_) => Err(SendErrorKind::WrongState),
            },
            Phase::Session(_) => Err(SendErrorKind::WrongState),
        };
        result.map_err(|kind| SendError {
            kind,
            payload: answer,
        })
    }

    /// Server side, after [`Event::HttpRequest`](crate::ws::Event::HttpRequest): queues a plain HTTP
    /// response (with `Content-Length` and `Connection: close`), after
    /// which the connection is finished. A field that cannot be written
    /// is refused with [`SendErrorKind::Field`].
    pub fn send_http_response(
        &mut self,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), SendError<()>> {
        let refuse = |kind| SendError { kind, payload: () };
        let mut answer = Reject::new(status)
            .with_reason(reason)
            .with_body(body.to_vec());
        for (k, v) in headers {
            answer = answer
                .with_header(*k, *v)
                .map_err(|f| refuse(SendErrorKind::Field(f)))?;
        }
        match &mut self.phase {
            Phase::Handshake(h) => match &mut h.machine {
                Machine::Server(m) => m.send_http_response(&answer).map_err(refuse),
                Machine::Client(_) => Err(refuse(SendErrorKind::WrongState)),
            },
            Phase::Session(_) => Err(refuse(SendErrorKind::WrongState)),
        }
    }

    // ----- commands -------------------------------------------------------

    /// Queues a data message (text or binary).
    #[inline(always)]
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        match &mut self.phase {
            Phase::Session(s) => s.send(message),
            Phase::Handshake(h) => {
                let message = message.into();
                h.admit(message.len(), Admitted::Message, message)
            }
        }
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
        match &mut self.phase {
            Phase::Session(s) => s.send_text_str(text),
            Phase::Handshake(_) => self.send(Message::Text(text.into())),
        }
    }

    /// Queues a binary message copied from a borrowed slice; see
    /// [`send_text_str`](Self::send_text_str).
    #[inline(always)]
    pub fn send_binary_slice(&mut self, data: &[u8]) -> Result<(), SendError<Message>> {
        match &mut self.phase {
            Phase::Session(s) => s.send_binary_slice(data),
            Phase::Handshake(_) => self.send(Message::Binary(Bytes::copy_from_slice(data))),
        }
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
        match &mut self.phase {
            Phase::Session(s) => s.ping(payload),
            Phase::Handshake(h) => h.admit_control(payload.into(), Admitted::Ping),
        }
    }

    /// Queues an unsolicited Pong (a one-way heartbeat).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        match &mut self.phase {
            Phase::Session(s) => s.pong(payload),
            Phase::Handshake(h) => h.admit_control(payload.into(), Admitted::Pong),
        }
    }

    /// Starts the closing handshake: queues a Close frame with `code` and
    /// `reason` (cut to fit 125 bytes). Data received before the peer's
    /// Close arrives is still delivered; sends are refused from now on.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError<()>> {
        let h = match &mut self.phase {
            Phase::Session(s) => return s.close(code, reason),
            Phase::Handshake(h) => h,
        };
        if !code.is_sendable() {
            return Err(SendError {
                kind: SendErrorKind::InvalidCloseCode(code.0),
                payload: (),
            });
        }
        h.admit(0, |()| Admitted::Close(code, reason.to_owned()), ())
    }
}

impl Handshake {
    pub(super) fn error(&self) -> Option<&Error> {
        match &self.machine {
            Machine::Server(m) => m.error(),
            Machine::Client(m) => m.error(),
        }
    }

    /// Admits a command issued before the handshake completed: it is
    /// charged (with its frame header) against the send queue limit now,
    /// and sent without a second check when the connection opens.
    fn admit<T>(
        &mut self,
        len: usize,
        pending: impl FnOnce(T) -> Admitted,
        payload: T,
    ) -> Result<(), SendError<T>> {
        let refuse = |kind, payload| Err(SendError { kind, payload });
        let (config, queued) = match &self.machine {
            Machine::Server(m) => (m.config(), m.buffered_amount()),
            Machine::Client(m) => (m.config(), m.buffered_amount()),
        };
        let closing = matches!(self.pending.back(), Some(Admitted::Close(..)));
        if closing || self.error().is_some() {
            return refuse(SendErrorKind::Closed, payload);
        }
        let cost = len.saturating_add(MAX_HEADER_LEN);
        let total = queued
            .saturating_add(self.pending_bytes)
            .saturating_add(cost);
        if total > config.max_send_queue {
            return refuse(SendErrorKind::QueueFull, payload);
        }
        self.pending_bytes += cost;
        self.pending.push_back(pending(payload));
        Ok(())
    }

    fn admit_control(
        &mut self,
        payload: Bytes,
        pending: impl FnOnce(Bytes) -> Admitted,
    ) -> Result<(), SendError<Bytes>> {
        if payload.len() > 125 {
            return Err(SendError {
                kind: SendErrorKind::ControlTooLong,
                payload,
            });
        }
        self.admit(payload.len(), pending, payload)
    }
}

//! The commands of a [`Connection`]: sending and closing go straight to
//! the session (which holds them while the handshake runs); a server's
//! answers to an upgrade go to the handshake.

use super::{Connection, Handshake};
use crate::ws::close::CloseCode;
use crate::ws::error::{SendError, SendErrorKind};
use crate::ws::handshake::{Accept, Reject};
use crate::ws::message::{Message, Text};
use crate::ws::prepared::PreparedMessage;
use bytes::Bytes;

impl Connection {
    // ----- the server's answers ------------------------------------------

    /// Accepts the upgrade reported as
    /// [`Event::Upgrade`](crate::ws::Event::Upgrade): the 101 is queued and
    /// the connection opens ([`Event::Open`](crate::ws::Event::Open)
    /// follows). Refused with [`SendErrorKind::WrongState`] when no upgrade
    /// waits for an answer, and with [`SendErrorKind::Field`] when the
    /// answer cannot be written (a subprotocol the client did not offer,
    /// say); the answer is handed back.
    pub fn accept(&mut self, answer: Accept) -> Result<(), SendError<Accept>> {
        let result = match self.handshake.as_deref_mut() {
            Some(Handshake::Server(m)) => m.accept(&answer),
            _ => Err(SendErrorKind::WrongState),
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

    /// Refuses the upgrade reported as
    /// [`Event::Upgrade`](crate::ws::Event::Upgrade): the response is
    /// queued (with `Content-Length` and `Connection: close`), after which
    /// the connection is finished.
    pub fn reject(&mut self, answer: Reject) -> Result<(), SendError<Reject>> {
        let result = match self.handshake.as_deref_mut() {
            Some(Handshake::Server(m)) => m.reject(&answer),
            _ => Err(SendErrorKind::WrongState),
        };
        self.collect();
        result.map_err(|kind| SendError {
            kind,
            payload: answer,
        })
    }

    /// Server side, after
    /// [`Event::HttpRequest`](crate::ws::Event::HttpRequest): queues a
    /// plain HTTP response (with `Content-Length` and `Connection: close`),
    /// after which the connection is finished. A field that cannot be
    /// written is refused with [`SendErrorKind::Field`].
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
        let result = match self.handshake.as_deref_mut() {
            Some(Handshake::Server(m)) => m.send_http_response(&answer).map_err(refuse),
            _ => Err(refuse(SendErrorKind::WrongState)),
        };
        self.collect();
        result
    }

    // ----- commands -------------------------------------------------------

    /// Queues a data message (text or binary). Before the handshake
    /// completes it waits, charged against the send queue limit, and is
    /// sent as soon as the connection opens.
    #[inline(always)]
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        self.session.send(message)
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
        self.session.send_text_str(text)
    }

    /// Queues a binary message copied from a borrowed slice; see
    /// [`send_text_str`](Self::send_text_str).
    #[inline(always)]
    pub fn send_binary_slice(&mut self, data: &[u8]) -> Result<(), SendError<Message>> {
        self.session.send_binary_slice(data)
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: impl Into<Text>) -> Result<(), SendError<Message>> {
        self.session.send_text(text)
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError<Message>> {
        self.session.send_binary(data)
    }

    /// Queues a message encoded once for many connections, sharing the
    /// prepared bytes when this connection would send the same ones; see
    /// [`Session::send_prepared`](crate::ws::Session::send_prepared) and
    /// [`PreparedMessage`] for the rules. Before the handshake completes it
    /// waits as [`send`](Self::send) would.
    #[inline]
    pub fn send_prepared(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), SendError<PreparedMessage>> {
        self.session.send_prepared(prepared)
    }

    /// Queues a data message without the negotiated extension's transform
    /// (with permessage-deflate: uncompressed, RSV1 clear); see
    /// [`Session::send_uncompressed`](crate::ws::Session::send_uncompressed).
    pub fn send_uncompressed(
        &mut self,
        message: impl Into<Message>,
    ) -> Result<(), SendError<Message>> {
        self.session.send_uncompressed(message)
    }

    /// Queues a Ping; the matching Pong is reported with `matched: true`.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.session.ping(payload)
    }

    /// Queues an unsolicited Pong (a one-way heartbeat).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.session.pong(payload)
    }

    /// Starts the closing handshake: queues a Close frame with `code` and
    /// `reason` (cut to fit 125 bytes). Data received before the peer's
    /// Close arrives is still delivered; sends are refused from now on.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError<()>> {
        self.session.close(code, reason)
    }
}

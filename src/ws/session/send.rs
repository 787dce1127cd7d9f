//! The send path: data and control commands, encoding into the send queue.

use super::{Session, State, MAX_OUTSTANDING_PINGS};
use crate::buf::SHARE_MIN;
use crate::ws::close::{close_payload, CloseCode};
use crate::ws::error::{Error, SendError, SendErrorKind};
use crate::ws::frame::{encode_frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::ws::mask::{apply_mask, extend_masked};
use crate::ws::message::{Message, Text};
use crate::ws::Role;
use bytes::Bytes;

/// A command issued before the opening handshake completed, admitted then
/// against the send queue limit (payload and frame header counted).
#[derive(Debug)]
pub(crate) enum Admitted {
    /// A data message.
    Message(Message),
    /// A data message sent without the extension's transform.
    Uncompressed(Message),
    /// A Ping.
    Ping(Bytes),
    /// An unsolicited Pong.
    Pong(Bytes),
    /// The start of the closing handshake.
    Close(CloseCode, String),
}

impl Session {
    /// Carries out, in order, the commands admitted before the handshake
    /// completed, without checking the send queue limit a second time
    /// (the handshake's output in the queue is not charged to them).
    ///
    /// Only the negotiated extension can refuse one (a message it cannot
    /// encode): the session then fails with `Error::Send(kind)`, which
    /// queues a 1011 Close frame instead of a silently missing message,
    /// the rest is dropped, and the error is returned. Nothing follows a
    /// Close: admission refuses commands after one.
    pub(super) fn send_admitted(
        &mut self,
        commands: impl IntoIterator<Item = Admitted>,
    ) -> Result<(), Error> {
        for command in commands {
            if !self.is_open() {
                break;
            }
            match command {
                // Charged when admitted, before the extension was known:
                // when what encoding it would keep (a compressor) does not
                // fit the budget, it goes out uncompressed, as RFC 7692
                // lets any message.
                Admitted::Message(m)
                    if self.data_room(m.len()) == Err(SendErrorKind::OverBudget) =>
                {
                    self.write_uncompressed(m)
                }
                Admitted::Message(m) => {
                    if let Err(kind) = self.encode_data(data_opcode(&m), m.as_bytes()) {
                        return Err(self.fail(Error::Send(kind)));
                    }
                }
                Admitted::Uncompressed(m) => self.write_uncompressed(m),
                Admitted::Ping(b) => self.write_control(OpCode::Ping, b),
                Admitted::Pong(b) => self.write_control(OpCode::Pong, b),
                Admitted::Close(code, reason) => {
                    if let Err(e) = self.close(code, &reason) {
                        return Err(self.fail(Error::Send(e.kind)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues a data message (text or binary).
    #[inline(always)]
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        let message = message.into();
        // The common case, encoded right here: open, no extension to
        // transform the message, one frame, and room in the queue.
        let payload = message.as_bytes();
        if self.encodes_at_once(payload.len()) {
            if payload.len() < SHARE_MIN {
                self.write_frame(true, 0, data_opcode(&message), payload);
            } else {
                let opcode = data_opcode(&message);
                self.write_frame_shared(opcode, message.into_bytes());
            }
            return Ok(());
        }
        self.send_queued_or_refused(message)
    }

    /// True when a data message of `len` bytes is encoded into the send
    /// queue right away: open, no extension to transform it, one frame,
    /// and room in the queue.
    #[inline(always)]
    fn encodes_at_once(&self, len: usize) -> bool {
        len < self.at_once_below && self.send.has_room(len.saturating_add(MAX_HEADER_LEN))
    }

    /// Queues a text message copied from a borrowed `&str`.
    ///
    /// The payload is copied straight into the send queue, so sending from
    /// a buffer the caller reuses costs no allocation; `send_text("...")`
    /// would first copy the text into a new [`Text`]. Only when the
    /// message cannot be encoded at once (with an extension, or when it is
    /// fragmented or refused) is it copied into an owned message first,
    /// which a refusal hands back.
    ///
    /// ```
    /// use sansproto::ws::{Config, Role, Session};
    /// let mut session = Session::new(
    ///     Role::Server, Config::default(), None, None, sansproto::default_random(),
    /// );
    /// let mut line = String::new();
    /// for i in 0..3 {
    ///     line.clear();
    ///     line.push_str(&format!("tick {i}"));
    ///     session.send_text_str(&line).unwrap();
    /// }
    /// let mut out = Vec::new();
    /// session.poll_transmit(&mut out);
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

    /// `send` when the message is transformed by an extension, is
    /// fragmented, is sent while a terminal step waits behind unpolled
    /// events, or is refused.
    fn send_queued_or_refused(&mut self, message: Message) -> Result<(), SendError<Message>> {
        let refuse = |kind, payload| Err(SendError { kind, payload });
        if matches!(self.state, State::Connecting(_)) {
            return self.admit(message.len(), Admitted::Message, message);
        }
        if !self.is_open() {
            return refuse(SendErrorKind::Closed, message);
        }
        let opcode = data_opcode(&message);
        if let Err(kind) = self.data_room(message.len()) {
            return refuse(kind, message);
        }
        if self.extension.is_none() {
            // Fragmented, or under a memory budget: large payloads are
            // still shared.
            self.write_uncompressed(message);
            return Ok(());
        }
        match self.encode_data(opcode, message.as_bytes()) {
            Ok(()) => Ok(()),
            Err(kind) => refuse(kind, message),
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
        let payload = payload.into();
        self.control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited Pong (a one-way heartbeat), or, with
    /// auto-pong off, the answer to a Ping. Taken after this side's Close
    /// too, until the peer's is reached in the order of events (RFC 6455
    /// §5.5.2: a Ping is answered unless the peer's Close came before it).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.control(OpCode::Pong, payload.into())
    }

    fn control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError<Bytes>> {
        let refuse = |kind, payload| Err(SendError { kind, payload });
        if payload.len() > 125 {
            return refuse(SendErrorKind::ControlTooLong, payload);
        }
        if matches!(self.state, State::Connecting(_)) {
            let wait = match opcode {
                OpCode::Ping => Admitted::Ping,
                _ => Admitted::Pong,
            };
            return self.admit(payload.len(), wait, payload);
        }
        let answering = opcode == OpCode::Pong
            && matches!(
                self.state,
                State::CloseSent | State::Ending { close_sent: true }
            );
        if !self.is_open() && !answering {
            return refuse(SendErrorKind::Closed, payload);
        }
        if let Err(kind) = self.send_room(payload.len() + MAX_HEADER_LEN) {
            return refuse(kind, payload);
        }
        self.write_control(opcode, payload);
        Ok(())
    }

    /// Admits a command issued before the handshake handed over: it is
    /// charged (with its frame header) against the send queue limit now,
    /// and sent without a second check when the session opens. Nothing is
    /// admitted after a Close.
    pub(super) fn admit<T>(
        &mut self,
        len: usize,
        wait: impl FnOnce(T) -> Admitted,
        payload: T,
    ) -> Result<(), SendError<T>> {
        let refuse = |kind, payload| Err(SendError { kind, payload });
        let queued = self.send.len().saturating_add(self.pending_bytes);
        let held = match self.config.memory_budget {
            Some(_) => self.charged().0,
            None => 0,
        };
        let State::Connecting(waiting) = &mut self.state else {
            return refuse(SendErrorKind::Closed, payload);
        };
        if matches!(waiting.back(), Some(Admitted::Close(..))) {
            return refuse(SendErrorKind::Closed, payload);
        }
        let cost = len.saturating_add(MAX_HEADER_LEN);
        if queued.saturating_add(cost) > self.config.max_send_queue {
            return refuse(SendErrorKind::QueueFull, payload);
        }
        if self
            .config
            .memory_budget
            .is_some_and(|budget| held.saturating_add(cost) > budget)
        {
            return refuse(SendErrorKind::OverBudget, payload);
        }
        self.pending_bytes += cost;
        let queued = self.send.len();
        self.send.flow_mut().set_outside(self.pending_bytes, queued);
        waiting.push_back(wait(payload));
        Ok(())
    }

    /// Writes a Ping or Pong, remembering pings to match pongs against.
    pub(super) fn write_control(&mut self, opcode: OpCode, payload: Bytes) {
        self.write_frame(true, 0, opcode, &payload);
        if opcode == OpCode::Ping {
            if self.pings.len() == MAX_OUTSTANDING_PINGS {
                self.pings.pop_front();
            }
            self.pings.push_back(payload);
        }
    }

    // ----- encoding -------------------------------------------------------

    fn encode_data(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendErrorKind> {
        if let Some(ext) = self.extension.as_mut() {
            let mut encoded = Vec::new();
            if let Some(rsv) = ext
                .encode(opcode, payload, &mut encoded)
                .map_err(SendErrorKind::Extension)?
            {
                self.counters.compressed_out(payload.len(), encoded.len());
                self.write_fragments(opcode, rsv, &encoded);
                return Ok(());
            }
        }
        self.write_fragments(opcode, 0, payload);
        Ok(())
    }

    pub(super) fn write_fragments(&mut self, opcode: OpCode, rsv: u8, payload: &[u8]) {
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
        self.counters.frame_out(fin, opcode);
        encode_frame(self.send.buf_mut(), fin, rsv, opcode, mask, payload);
    }

    /// A whole large frame whose payload is queued as it is: shared, not
    /// copied. A client masks it in place when it holds the only reference
    /// (an owned payload), and copies it masked otherwise.
    pub(super) fn write_frame_shared(&mut self, opcode: OpCode, payload: Bytes) {
        let header = |mask| FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        self.counters.frame_out(true, opcode);
        match self.role {
            Role::Server => {
                header(None).encode(self.send.buf_mut());
                self.send.push_shared(payload);
            }
            Role::Client => {
                let key = self.rng.next_u32().to_ne_bytes();
                header(Some(key)).encode(self.send.buf_mut());
                match payload.try_into_mut() {
                    Ok(mut owned) => {
                        apply_mask(&mut owned, key, 0);
                        self.send.push_shared(owned.freeze());
                    }
                    Err(shared) => {
                        let out = self.send.buf_mut();
                        out.reserve(shared.len());
                        extend_masked(out, &shared, key, 0);
                    }
                }
            }
        }
    }

    pub(super) fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
        // An owed pong goes first: it answers pings that came before.
        if let Some(pong) = self.owed_pong.take() {
            self.write_frame(true, 0, OpCode::Pong, &pong);
        }
        let payload = close_payload(code, reason);
        self.write_frame(true, 0, OpCode::Close, &payload);
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

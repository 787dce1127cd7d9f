//! Sends that skip the connection's own encoding of a message: a
//! [`PreparedMessage`], encoded once and shared between connections, and
//! a message sent without the extension's transform.

use super::send::Admitted;
use super::{Session, State};
use crate::buf::SHARE_MIN;
use crate::ws::error::{SendError, SendErrorKind};
use crate::ws::frame::{OpCode, MAX_HEADER_LEN};
use crate::ws::message::{Message, MessageKind};
use crate::ws::prepared::PreparedMessage;
use crate::ws::Role;

/// How this connection sends a prepared message.
enum Route {
    /// The plain frame, shared.
    Plain,
    /// The encoding the extension shares with its equals.
    Shared(crate::ws::EncodingKey),
    /// Encoded here, as `send` encodes.
    Own,
}

impl Session {
    /// Queues a message encoded once for many connections: the prepared
    /// frame itself, shared rather than copied, when this connection would
    /// send the same bytes, and the message encoded here otherwise (a
    /// client, an extension that keeps state between messages, a
    /// fragment size below the payload). See [`PreparedMessage`] for the
    /// rules.
    ///
    /// Refused as [`send`](Self::send) is (a full send queue, a closed
    /// session, an extension that cannot encode the message), with the
    /// prepared message handed back. Before the opening handshake
    /// completes the message waits as a `send` would, and is encoded here
    /// when the session opens.
    ///
    /// ```
    /// use sansproto::ws::{Config, Message, Role, Session};
    ///
    /// let random = sansproto::default_random;
    /// let prepared = Message::from("hello, everyone").prepare();
    /// let mut sessions: Vec<Session> = (0..100)
    ///     .map(|_| Session::new(Role::Server, Config::default(), None, None, random()))
    ///     .collect();
    /// for session in &mut sessions {
    ///     session.send_prepared(&prepared).unwrap();
    /// }
    /// let mut wire = Vec::new();
    /// sessions[42].poll_transmit(&mut wire);
    /// assert_eq!(&wire, prepared.frame());
    /// ```
    #[inline]
    pub fn send_prepared(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), SendError<PreparedMessage>> {
        // The common case, queued right here: an open server without an
        // extension, one frame, and room in the queue.
        let plain = prepared.plain();
        if plain.payload_len() < self.at_once_below
            && self.role == Role::Server
            && self.send.has_room(plain.bytes.len())
        {
            self.counters.frame_out(true, prepared.opcode());
            self.send.push_shared(plain.bytes.clone());
            return Ok(());
        }
        self.send_prepared_routed(prepared)
    }

    /// `send_prepared` through the extension's shared encoding, or
    /// encoded here, or refused.
    fn send_prepared_routed(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), SendError<PreparedMessage>> {
        let refuse = |kind| {
            Err(SendError {
                kind,
                payload: prepared.clone(),
            })
        };
        // Before the handshake, after a Close and on a client: as `send`.
        if !self.is_open() || self.role == Role::Client {
            return self.send_prepared_own(prepared);
        }
        let route = match self.extension.as_deref() {
            None => Route::Plain,
            Some(_) if !prepared.compresses() => Route::Plain,
            Some(ext) => match ext.shared_encoding() {
                Some(key) => Route::Shared(key),
                None => Route::Own,
            },
        };
        let frame = match route {
            Route::Plain => prepared.plain().clone(),
            Route::Own => return self.send_prepared_own(prepared),
            Route::Shared(key) => {
                let Some(ext) = self.extension.as_deref_mut() else {
                    return self.send_prepared_own(prepared);
                };
                match prepared.encoded_for(key, ext) {
                    Ok(frame) => frame,
                    Err(e) => return refuse(SendErrorKind::Extension(e)),
                }
            }
        };
        if let Err(kind) = self.send_room(frame.bytes.len()) {
            return refuse(kind);
        }
        let payload = frame.payload();
        if frame.rsv != 0 {
            self.counters.compressed_out(prepared.len(), payload.len());
        }
        if payload.len() <= self.config.fragment_size.unwrap_or(usize::MAX).max(1) {
            self.counters.frame_out(true, prepared.opcode());
            self.send.push_shared(frame.bytes);
        } else {
            self.write_fragments(prepared.opcode(), frame.rsv, payload);
        }
        Ok(())
    }

    /// A prepared message this connection encodes itself: as `send`, or as
    /// `send_uncompressed` for an uncompressed one.
    fn send_prepared_own(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), SendError<PreparedMessage>> {
        let message = prepared.message().clone();
        let result = match prepared.compresses() {
            true => self.send(message),
            false => self.send_uncompressed(message),
        };
        result.map_err(|e| SendError {
            kind: e.kind,
            payload: prepared.clone(),
        })
    }

    /// Queues a data message without the negotiated extension's transform:
    /// with permessage-deflate it goes out uncompressed, RSV1 clear, and
    /// the peer takes it as it is. Without an extension this is
    /// [`send`](Self::send).
    ///
    /// For data that does not compress (already compressed media, random
    /// bytes), or a message too small to gain, this saves both sides the
    /// work. With context takeover the message does not enter the
    /// compressor's window on either side (the peer inflates only
    /// compressed messages), so the compressed messages around it are
    /// unaffected; they simply cannot refer back to it.
    /// [`DeflateConfig::threshold`](crate::ws::DeflateConfig::threshold)
    /// applies the same rule by size.
    ///
    /// Refused as `send` is, with the message handed back.
    pub fn send_uncompressed(
        &mut self,
        message: impl Into<Message>,
    ) -> Result<(), SendError<Message>> {
        let message = message.into();
        if self.extension.is_none() && !matches!(self.state, State::Connecting(_)) {
            return self.send(message);
        }
        let refuse = |kind, payload| Err(SendError { kind, payload });
        if matches!(self.state, State::Connecting(_)) {
            return self.admit(message.len(), Admitted::Uncompressed, message);
        }
        if !self.is_open() {
            return refuse(SendErrorKind::Closed, message);
        }
        if let Err(kind) = self.send_room(message.len().saturating_add(MAX_HEADER_LEN)) {
            return refuse(kind, message);
        }
        self.write_uncompressed(message);
        Ok(())
    }

    /// Encodes a data message as it is, without the extension: a large
    /// payload in one frame is shared, not copied.
    pub(super) fn write_uncompressed(&mut self, message: Message) {
        let opcode = match message.kind() {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let len = message.len();
        if len >= SHARE_MIN && len <= self.config.fragment_size.unwrap_or(usize::MAX).max(1) {
            self.write_frame_shared(opcode, message.into_bytes());
        } else {
            self.write_fragments(opcode, 0, message.as_bytes());
        }
    }
}

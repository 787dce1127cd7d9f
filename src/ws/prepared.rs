//! Encode-once broadcast: a message framed once, and compressed once per
//! shareable extension encoding, then queued on many connections as
//! shared bytes.

use super::extension::{EncodingKey, Extension, ExtensionError};
use super::frame::{FrameHeader, OpCode};
use super::message::{Message, MessageKind};
use bytes::Bytes;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// A data message encoded once for sending to many connections, as a
/// server broadcasts.
///
/// [`PreparedMessage::new`] (or [`Message::prepare`]) frames the message
/// once, as a server sends it: unmasked, in one frame.
/// [`Session::send_prepared`](super::Session::send_prepared) (and
/// [`Connection::send_prepared`](super::Connection::send_prepared)) then
/// queue that frame itself, shared rather than copied, so sending to N
/// connections costs N reference-count increments, not N encodings.
/// Cloning is as cheap, and the value is `Send + Sync`: one prepared
/// message can be handed to connections on many threads.
///
/// Only a connection that would put the same bytes on the wire shares
/// them; every other one encodes the message itself, as
/// [`send`](super::Session::send) would:
///
/// - a server without an extension shares the frame;
/// - a server whose extension encodes each message from the message alone
///   ([`Extension::shared_encoding`]) shares the encoding made for its
///   settings, made once by the first such connection: with
///   permessage-deflate that is a server that negotiated
///   `server_no_context_takeover`, and connections with the same
///   compression level, window bits and threshold share one compressed
///   frame (a message the extension leaves uncompressed shares the plain
///   frame);
/// - a server whose extension keeps state between messages (deflate with
///   context takeover) compresses the message itself;
/// - a server whose [`Config::fragment_size`](super::Config::fragment_size)
///   is smaller than the frame's payload fragments it itself (from the
///   shared compressed form, when there is one);
/// - a client masks every frame, so it always encodes the message itself.
///
/// [`PreparedMessage::uncompressed`] asks for no extension transform at
/// all: every server connection shares the plain frame (RSV bits clear),
/// whatever it negotiated.
///
/// ```
/// use bytes::Buf;
/// use sansproto::ws::{Config, Event, Message, PreparedMessage, Role, Session};
///
/// let random = sansproto::default_random;
/// let mut servers: Vec<Session> = (0..3)
///     .map(|_| Session::new(Role::Server, Config::default(), None, None, random()))
///     .collect();
/// let prepared = PreparedMessage::new("tick");
/// for server in &mut servers {
///     server.send_prepared(&prepared).unwrap();
/// }
/// // Each output is the prepared frame itself, not a copy of it.
/// let mut out = servers[0].output();
/// assert_eq!(out.chunk().as_ptr(), prepared.frame().as_ptr());
/// assert_eq!(out.chunk(), b"\x81\x04tick");
/// out.advance(6);
///
/// let mut client = Session::new(Role::Client, Config::default(), None, None, random());
/// let mut wire = Vec::new();
/// servers[1].poll_transmit(&mut wire);
/// client.receive(&wire).unwrap();
/// assert_eq!(client.poll_event(), Some(Event::Message(Message::from("tick"))));
/// ```
#[derive(Clone)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    message: Message,
    /// False for [`PreparedMessage::uncompressed`]: no extension transform.
    compress: bool,
    /// The message framed as a server sends it without an extension.
    plain: Frame,
    /// The first encoding made, read without a lock: a broadcast's
    /// connections usually share one setting.
    first: OnceLock<(EncodingKey, Frame)>,
    /// Encodings made for other settings, one per key.
    encoded: Mutex<Vec<(EncodingKey, Frame)>>,
}

/// A whole server frame: header and payload in one buffer.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The header, then the payload.
    pub(crate) bytes: Bytes,
    /// Where the payload starts in `bytes`.
    header_len: usize,
    /// The RSV bits of the frame.
    pub(crate) rsv: u8,
}

impl Frame {
    /// An unmasked final frame of `opcode` carrying `payload`.
    fn new(opcode: OpCode, rsv: u8, payload: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(super::MAX_HEADER_LEN + payload.len());
        FrameHeader {
            fin: true,
            rsv,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        }
        .encode(&mut bytes);
        let header_len = bytes.len();
        bytes.extend_from_slice(payload);
        Self {
            bytes: bytes.into(),
            header_len,
            rsv,
        }
    }

    /// The frame's payload.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    /// The frame's payload length.
    #[inline]
    pub(crate) fn payload_len(&self) -> usize {
        self.bytes.len() - self.header_len
    }
}

impl PreparedMessage {
    /// Frames `message` once, as a server sends it; the negotiated
    /// extension's encodings are made when a connection first needs them.
    pub fn new(message: impl Into<Message>) -> Self {
        Self::build(message.into(), true)
    }

    /// Frames `message` once, to be sent without any extension transform:
    /// with permessage-deflate, uncompressed (RSV1 clear). Every server
    /// connection shares the frame, with or without context takeover: an
    /// uncompressed message does not enter the compressor's window on
    /// either side. See
    /// [`Session::send_uncompressed`](super::Session::send_uncompressed).
    pub fn uncompressed(message: impl Into<Message>) -> Self {
        Self::build(message.into(), false)
    }

    fn build(message: Message, compress: bool) -> Self {
        let plain = Frame::new(opcode(message.kind()), 0, message.as_bytes());
        Self {
            inner: Arc::new(Inner {
                message,
                compress,
                plain,
                first: OnceLock::new(),
                encoded: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.inner.message
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.inner.message.kind()
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.inner.message.len()
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.message.is_empty()
    }

    /// False when made by [`uncompressed`](Self::uncompressed).
    pub fn compresses(&self) -> bool {
        self.inner.compress
    }

    /// The message as one unmasked frame, as a server without an
    /// extension sends it (and shares it).
    pub fn frame(&self) -> &Bytes {
        &self.inner.plain.bytes
    }

    /// The plain frame.
    #[inline]
    pub(crate) fn plain(&self) -> &Frame {
        &self.inner.plain
    }

    /// The frame's opcode.
    pub(crate) fn opcode(&self) -> OpCode {
        opcode(self.kind())
    }

    /// The frame every extension with encoding `key` sends: made by `ext`
    /// (whose `shared_encoding` is `key`) the first time, then shared.
    pub(crate) fn encoded_for(
        &self,
        key: EncodingKey,
        ext: &mut dyn Extension,
    ) -> Result<Frame, ExtensionError> {
        if let Some(frame) = self.find(&key) {
            return Ok(frame);
        }
        // Encoded outside the lock: another thread encoding the same
        // message for another key need not wait.
        let mut out = Vec::new();
        let payload = self.inner.message.as_bytes();
        let frame = match ext.encode(self.opcode(), payload, &mut out)? {
            Some(rsv) => Frame::new(self.opcode(), rsv, &out),
            None => self.inner.plain.clone(),
        };
        // A thread that raced here first made the same bytes: keep one.
        let (first_key, first) = self.inner.first.get_or_init(|| (key, frame.clone()));
        if *first_key == key {
            return Ok(first.clone());
        }
        let mut encoded = self.lock();
        if let Some((_, made)) = encoded.iter().find(|(k, _)| *k == key) {
            return Ok(made.clone());
        }
        encoded.push((key, frame.clone()));
        Ok(frame)
    }

    fn find(&self, key: &EncodingKey) -> Option<Frame> {
        match self.inner.first.get() {
            Some((k, frame)) if k == key => return Some(frame.clone()),
            None => return None,
            Some(_) => {}
        }
        let encoded = self.lock();
        encoded
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, f)| f.clone())
    }

    /// The encodings made so far. A panic elsewhere cannot leave the list
    /// half-written (entries are pushed whole), so a poisoned lock is
    /// taken as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(EncodingKey, Frame)>> {
        self.inner
            .encoded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("kind", &self.kind())
            .field("len", &self.len())
            .field("compress", &self.inner.compress)
            .field(
                "encodings",
                &(usize::from(self.inner.first.get().is_some()) + self.lock().len()),
            )
            .finish()
    }
}

impl From<Message> for PreparedMessage {
    fn from(message: Message) -> Self {
        Self::new(message)
    }
}

impl Message {
    /// Frames the message once for sending to many connections; see
    /// [`PreparedMessage`].
    pub fn prepare(self) -> PreparedMessage {
        PreparedMessage::new(self)
    }
}

fn opcode(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_sync_and_cheap_to_clone() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<PreparedMessage>();
        let p = PreparedMessage::new(Message::Binary(vec![1u8; 300].into()));
        let q = p.clone();
        assert_eq!(q.frame().as_ptr(), p.frame().as_ptr());
        assert_eq!(&p.frame()[..4], &[0x82, 126, 1, 44]);
        assert_eq!(p.plain().payload(), &[1u8; 300][..]);
    }
}

//! The connection's sends: every frame is checked, measured and queued by
//! `queue_frame`, whatever form its body came in.

use super::{Connection, EncodeError, State};

/// Why a send was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The frame would take the send queue past its limit. Call
    /// `poll_transmit`, write the bytes out, and try again.
    #[error(
        "send queue full: {queued} bytes queued, {frame} more would pass the limit of {limit}"
    )]
    QueueFull {
        /// Bytes already queued.
        queued: usize,
        /// The encoded frame (or batch) length.
        frame: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Queuing the frame would take the connection past its
    /// [memory budget](super::super::Builder::memory_budget).
    #[error("over the memory budget: {held} bytes held, {frame} more would pass {budget}")]
    OverBudget {
        /// What the connection holds.
        held: usize,
        /// The encoded frame (or batch) length.
        frame: usize,
        /// The budget.
        budget: usize,
    },
    /// The frame cannot be encoded in this layout.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The connection is closed, failed or finished.
    #[error("connection is closed")]
    Closed,
}

/// A refused send: the [`SendErrorKind`] and the payload, handed back
/// untouched.
pub type SendError<T> = crate::SendError<T, SendErrorKind>;

impl Connection {
    /// Queues one frame with no header bytes (layouts with offset 0).
    pub fn send<T: AsRef<[u8]>>(&mut self, payload: T) -> Result<(), SendError<T>> {
        self.send_with_header(&[], payload)
    }

    /// Queues one frame: `header` (exactly the length field offset long),
    /// the length field, then `body`.
    pub fn send_with_header<T: AsRef<[u8]>>(
        &mut self,
        header: &[u8],
        body: T,
    ) -> Result<(), SendError<T>> {
        match self.queue_frame(header, std::slice::from_ref(&body)) {
            Ok(()) => Ok(()),
            Err(kind) => Err(SendError {
                kind,
                payload: body,
            }),
        }
    }

    /// Queues one frame (layouts with offset 0) whose payload is `parts`
    /// back to back, without joining them first: a request id, a route
    /// and a body, say. The wire bytes are those of
    /// [`send`](Self::send) with the parts joined: the length field counts
    /// them all, and the frame limit and the send queue limit are checked
    /// on the whole frame before anything is queued. On refusal `parts`
    /// comes back untouched in the [`SendError`]. It counts as one frame
    /// and one message in [`stats`](Self::stats). Each part is copied
    /// once, into the send queue.
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection, Event};
    ///
    /// let mut a = Connection::new(Config::default());
    /// let mut b = Connection::new(Config::default());
    /// let (id, route, body) = (7u32.to_be_bytes(), b"chat.send", br#"{"a":1}"#);
    /// a.send_parts([&id[..], &route[..], &body[..]]).unwrap();
    /// let mut wire = Vec::new();
    /// a.poll_transmit(&mut wire);
    /// assert_eq!(wire[..4], [0, 0, 0, 20]);
    /// b.receive(&wire)?;
    /// assert_eq!(
    ///     b.poll_event(),
    ///     Some(Event::Frame("\0\0\0\x07chat.send{\"a\":1}".into()))
    /// );
    /// # Ok::<(), sansproto::prefix::DecodeError>(())
    /// ```
    pub fn send_parts<P, B>(&mut self, parts: P) -> Result<(), SendError<P>>
    where
        P: AsRef<[B]>,
        B: AsRef<[u8]>,
    {
        self.send_parts_with_header(&[], parts)
    }

    /// Queues one frame: `header` (exactly the length field offset long),
    /// the length field, then `parts` back to back, as
    /// [`send_parts`](Self::send_parts) does for layouts without a header.
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection, EncodeError, SendErrorKind};
    ///
    /// // Pomelo: 1-byte package type, 3-byte big-endian length.
    /// let pomelo = Config::builder()
    ///     .length_field_offset(1)
    ///     .length_field_width(3)
    ///     .max_frame_length(16)
    ///     .build()?;
    /// let mut conn = Connection::new(pomelo);
    /// conn.send_parts_with_header(&[4], [&b"\x00\x01"[..], b"{}"])?;
    /// let mut wire = Vec::new();
    /// conn.poll_transmit(&mut wire);
    /// assert_eq!(wire, [4, 0, 0, 4, 0, 1, b'{', b'}']);
    ///
    /// // Over the frame limit: nothing is queued and the parts come back.
    /// let parts = vec![vec![0u8; 8], vec![1u8; 8]];
    /// let err = conn.send_parts_with_header(&[4], parts).unwrap_err();
    /// assert_eq!(
    ///     err.kind(),
    ///     &SendErrorKind::Encode(EncodeError::FrameTooLong { length: 20, max: 16 })
    /// );
    /// assert_eq!(err.into_payload(), [vec![0u8; 8], vec![1u8; 8]]);
    /// assert_eq!(conn.queued_bytes(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_parts_with_header<P, B>(
        &mut self,
        header: &[u8],
        parts: P,
    ) -> Result<(), SendError<P>>
    where
        P: AsRef<[B]>,
        B: AsRef<[u8]>,
    {
        match self.queue_frame(header, parts.as_ref()) {
            Ok(()) => Ok(()),
            Err(kind) => Err(SendError {
                kind,
                payload: parts,
            }),
        }
    }

    /// Queues every `(header, body)` frame back to back, or none of them:
    /// the batch is validated and checked against the queue limit as a
    /// whole (Pomelo's `sendBatch`). The frames stay the caller's, so on
    /// refusal only the reason is returned.
    pub fn send_batch<H, B>(&mut self, frames: &[(H, B)]) -> Result<(), SendErrorKind>
    where
        H: AsRef<[u8]>,
        B: AsRef<[u8]>,
    {
        self.check_open()?;
        let items = frames.iter().map(|(h, b)| (h, b));
        self.check_room(self.encoder.encoded_batch_len(items.clone())?)?;
        self.encoder.encode_batch_to(items, self.send.buf_mut())?;
        self.stats.tx.frames += frames.len() as u64;
        self.stats.tx.messages += frames.len() as u64;
        Ok(())
    }

    /// Queues one frame of `header`, the length field and `body`'s parts,
    /// or nothing: the one place a single frame is checked and queued.
    #[inline]
    fn queue_frame<B: AsRef<[u8]>>(
        &mut self,
        header: &[u8],
        body: &[B],
    ) -> Result<(), SendErrorKind> {
        self.check_open()?;
        let frame = self.encoder.frame(header, body)?;
        self.check_room(frame.len())?;
        let out = self.send.buf_mut();
        out.reserve(frame.len());
        frame.write_to(out);
        self.stats.tx.frames += 1;
        self.stats.tx.messages += 1;
        Ok(())
    }

    #[inline]
    fn check_open(&self) -> Result<(), SendErrorKind> {
        match self.state {
            // While the idle timeout waits, the frames before it can
            // still be answered.
            State::Open | State::Ending => Ok(()),
            _ => Err(SendErrorKind::Closed),
        }
    }

    /// Room for a frame of `len` bytes: under the queue limit and the
    /// memory budget.
    #[inline]
    pub(super) fn check_room(&self, len: usize) -> Result<(), SendErrorKind> {
        if !self.send.has_room(len) {
            return Err(SendErrorKind::QueueFull {
                queued: self.send.len(),
                frame: len,
                limit: self.send.limit(),
            });
        }
        self.budget_room(len)
    }
}

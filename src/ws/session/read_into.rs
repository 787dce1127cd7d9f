//! Reading straight into the session: space in its receive buffer for the
//! caller to read the transport into, and the commit of what was read.

use super::{Queued, Session};
use crate::ws::error::Error;
use bytes::{Bytes, BytesMut};

impl Session {
    /// Space in the session's receive buffer to read from the transport
    /// into, at least `min` bytes (more when the frame being received
    /// needs more, up to 64 KiB); then [`commit_received`](Self::commit_received)
    /// the count read. No copy is made: frames are unmasked, checked and
    /// handed out from where they were read. `None` while
    /// [`Config::max_pending_events`](crate::ws::Config::max_pending_events)
    /// events wait to be polled: poll them first.
    ///
    /// The buffer is freed whenever a read leaves nothing buffered and did
    /// not fill the space offered, so an idle session holds none; wait for
    /// the transport to be readable before asking for space.
    ///
    /// ```
    /// use sansproto::ws::{encode_frame, Config, Event, Message, OpCode, Role, Session};
    /// let mut server = Session::new(Role::Server, Config::default(), None, None, sansproto::default_random());
    /// let mut wire = Vec::new();
    /// encode_frame(&mut wire, true, 0, OpCode::Text, Some([1, 2, 3, 4]), b"hi");
    /// // As a socket read would: straight into the session's buffer.
    /// let space = server.receive_buffer(4096).unwrap();
    /// space[..wire.len()].copy_from_slice(&wire);
    /// server.commit_received(wire.len()).unwrap();
    /// assert_eq!(server.poll_event(), Some(Event::Message(Message::from("hi"))));
    /// ```
    pub fn receive_buffer(&mut self, min: usize) -> Option<&mut [u8]> {
        self.catch_up();
        if self.must_poll_first() {
            return None;
        }
        // Zeroed space is memory in use: no more than a large socket
        // read's worth is offered beyond what was asked for. A large frame
        // is laid out to be read whole in place where the allocation
        // allows.
        let missing = self.frame_missing(usize::MAX);
        Some(self.recv.room_for(min, missing))
    }

    /// The bytes the frame being received still needs, up to `cap`.
    fn frame_missing(&self, cap: usize) -> usize {
        self.frame
            .as_ref()
            .map_or(0, |f| f.remaining.saturating_sub(self.recv.len()))
            .min(cap)
    }

    /// Takes `n` bytes read into the space [`receive_buffer`](Self::receive_buffer)
    /// gave (at most its length), as [`receive`](Self::receive) takes bytes.
    /// A read of 0 bytes is no input; call
    /// [`receive_eof`](Self::receive_eof) at the end of the stream.
    pub fn commit_received(&mut self, n: usize) -> Result<(), Error> {
        let (n, short) = self.recv.commit(n);
        self.take_read(n, short)
    }

    /// Parses `n` bytes a read put at the end of the receive buffer;
    /// `short` when it did not fill the room it had.
    fn take_read(&mut self, n: usize, short: bool) -> Result<(), Error> {
        let reading = self.reads_input();
        if reading.is_ok() {
            // Bytes read after a failure are not taken: not counted.
            self.counters.stats.rx.bytes += n as u64;
        }
        if !matches!(reading, Ok(true)) {
            // Ignored (or after a failure), as `receive` ignores it now.
            let kept = self.recv.len().saturating_sub(n);
            self.recv.truncate(kept);
            return reading.map(drop);
        }
        if n == 0 {
            // Nothing was read after all (the transport would block).
            self.recv.release_if_empty();
            return Ok(());
        }
        self.note_activity();
        let parsed = self
            .within_budget()
            .and_then(|()| self.read_frames())
            .and_then(|()| self.parsed_within_budget());
        let result = match parsed {
            Ok(()) => Ok(()),
            Err(e) => self.terminal(Queued::Fail(e)),
        };
        if short {
            self.recv.release_if_empty();
        }
        result
    }

    /// The session's receive buffer itself, with room for at least `min`
    /// more bytes, for a read that appends to a `BytesMut` without zeroing
    /// it first (tokio's `read_buf` and `try_read_buf`); then
    /// [`commit_appended`](Self::commit_appended). Only append to it: the
    /// bytes already there are input not yet parsed. `None` while events
    /// wait to be polled, as for [`receive_buffer`](Self::receive_buffer).
    pub fn receive_buf_mut(&mut self, min: usize) -> Option<&mut BytesMut> {
        self.catch_up();
        if self.must_poll_first() {
            return None;
        }
        // Reserved, not written: a large frame is read in large steps.
        let min = min.max(self.frame_missing(1 << 20));
        Some(self.recv.lend(min))
    }

    /// Takes the bytes a read appended to the buffer
    /// [`receive_buf_mut`](Self::receive_buf_mut) lent, as
    /// [`commit_received`](Self::commit_received) takes its count.
    pub fn commit_appended(&mut self) -> Result<(), Error> {
        let (n, short) = self.recv.take_appended();
        self.take_read(n, short)
    }

    /// Takes the `n` bytes committed into the receive buffer out of it,
    /// for the handshake that reads before the session opens.
    /// (Nothing else is buffered then: the session takes no input before
    /// it opens.)
    pub(crate) fn take_committed(&mut self, n: usize) -> Bytes {
        self.recv.commit(n);
        self.recv.take_all()
    }

    /// The same for bytes appended to the lent buffer.
    pub(crate) fn take_appended(&mut self) -> Bytes {
        self.recv.take_appended();
        self.recv.take_all()
    }

    /// Frees the receive buffer when it holds nothing (after the handshake
    /// took what was read into it), so an idle connection keeps none.
    pub(crate) fn release_empty_buffer(&mut self) {
        self.recv.release_if_empty();
    }
}

//! Reading straight into the session: space in its receive buffer for the
//! caller to read the transport into, and the commit of what was read.

use super::{Queued, Session, State};
use crate::ws::error::Error;
use bytes::Bytes;

impl Session {
    /// Space in the session's receive buffer to read from the transport
    /// into, at least `min` bytes (more when the frame being received
    /// needs more, up to 1 MiB); then [`commit_received`](Self::commit_received)
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
        /// A frame being received asks for at most this much space at once.
        const READ_AHEAD: usize = 1 << 20;
        let reading = matches!(self.state, State::Open | State::CloseSent);
        if reading && self.events.len() >= self.max_events {
            return None;
        }
        let missing = self
            .frame
            .as_ref()
            .map_or(0, |f| f.remaining.saturating_sub(self.recv.len()));
        Some(self.recv.room(min.max(missing.min(READ_AHEAD))))
    }

    /// Takes `n` bytes read into the space [`receive_buffer`](Self::receive_buffer)
    /// gave (at most its length), as [`receive`](Self::receive) takes bytes.
    /// A read of 0 bytes is no input; call
    /// [`receive_eof`](Self::receive_eof) at the end of the stream.
    pub fn commit_received(&mut self, n: usize) -> Result<(), Error> {
        let (n, short) = self.recv.commit(n);
        match &self.state {
            State::Open | State::CloseSent => {}
            State::Failed(e) => return Err(e.clone()),
            // Ignored, as `receive` ignores input now.
            State::Connecting(_) | State::Ending { .. } | State::Closed => {
                let kept = self.recv.len() - n;
                self.recv.truncate(kept);
                return Ok(());
            }
        }
        if n == 0 {
            // Nothing was read after all (the transport would block).
            self.recv.release_if_empty();
            return Ok(());
        }
        self.note_activity();
        let result = match self.read_frames() {
            Ok(()) => Ok(()),
            Err(e) => self.terminal(Queued::Fail(e)),
        };
        if short {
            self.recv.release_if_empty();
        }
        result
    }

    /// Takes the `n` bytes committed into the receive buffer out of it,
    /// for the handshake that reads before the session opens.
    /// (Nothing else is buffered then: the session takes no input before
    /// it opens.)
    pub(crate) fn take_committed(&mut self, n: usize) -> Bytes {
        self.recv.commit(n);
        self.recv.take_all()
    }
}

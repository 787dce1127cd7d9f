//! The receive side's reading: the read-ahead that finds the frames of a
//! read and splits their bytes off the receive buffer, and the forms that
//! read straight into that buffer.

use super::{Connection, Event, State};
use crate::buf::RecvBuf;
use crate::prefix::decoder::{Lookahead, Out};
use crate::prefix::DecodeError;
use bytes::Bytes;

/// How many frame positions the read-ahead list keeps room for between reads.
const FOUND_KEPT: usize = 4096;

impl Connection {
    /// The frame `found[i]` as an event.
    #[inline]
    pub(super) fn found_event(&self, i: usize) -> Option<Event> {
        Some(match self.found.get(i)? {
            Out::Frame(range) => Event::Frame(self.ready.slice(range.clone())),
            Out::Discarded { length } => Event::FrameDiscarded { length: *length },
        })
    }

    /// Moves the frames not yet reported into `events`, before anything
    /// newer is queued there.
    pub(super) fn queue_found(&mut self) {
        while let Some(event) = self.found_event(self.next) {
            self.next += 1;
            self.events.push_back(event);
        }
        self.found.clear();
        self.next = 0;
        self.ready = Bytes::new();
    }

    /// All found was reported: releases the bytes, and does not let a
    /// read full of tiny frames pin a large list for good.
    #[inline]
    pub(super) fn reported_all(&mut self) {
        self.found.clear();
        self.found.shrink_to(FOUND_KEPT);
        self.next = 0;
        self.ready = Bytes::new();
    }

    /// Reads ahead through the buffer once, noting where the frames lie
    /// (up to the event bound), then splits that region off in one go, for
    /// `poll_event` to slice each frame out of it: one split of the
    /// receive buffer per read, not per frame.
    pub(super) fn decode_buffered(&mut self) -> Result<(), DecodeError> {
        let room = self.max_events.saturating_sub(self.events.len());
        let mut ahead = Lookahead::new(self.recv.as_slice());
        let mut result = Ok(());
        let mut discarded = 0;
        let before = self.found.len();
        while self.found.len() < room {
            match self.decoder.decode_from(&mut ahead) {
                Ok(Some(out)) => {
                    discarded += u64::from(matches!(out, Out::Discarded { .. }));
                    self.found.push(out);
                }
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() && self.found.len() >= room {
            self.intake.pause();
        }
        let frames = (self.found.len() - before) as u64;
        self.stats.rx.frames += frames;
        self.stats.rx.messages += frames - discarded;
        self.stats.frames_discarded += discarded;
        let consumed = ahead.consumed();
        if consumed > 0 {
            self.ready = self.recv.split_to(consumed);
        }
        result.map_err(|e| {
            // The stream is lost: release what is left of it.
            self.recv = RecvBuf::new();
            self.fail(e)
        })
    }

    /// Space of at least `min` bytes to read into straight from the
    /// transport, then [`commit_received`](Self::commit_received) the count
    /// read: the bytes are decoded where they landed, and whole frames are
    /// split out of that buffer without a copy. `None` while events wait to
    /// be polled (as [`receive`](Self::receive) takes nothing then) or
    /// once the connection has ended.
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection, Event};
    ///
    /// let mut conn = Connection::new(Config::default());
    /// let read = b"\x00\x00\x00\x02hi"; // what a socket read put there
    /// let room = conn.receive_buffer(4096).unwrap();
    /// room[..read.len()].copy_from_slice(read);
    /// conn.commit_received(read.len())?;
    /// assert_eq!(conn.poll_event(), Some(Event::Frame("hi".into())));
    /// # Ok::<(), sansproto::prefix::DecodeError>(())
    /// ```
    pub fn receive_buffer(&mut self, min: usize) -> Option<&mut [u8]> {
        if self.state != State::Open || self.must_poll_first() {
            return None;
        }
        Some(self.recv.room(min))
    }

    /// Takes `n` bytes read into the space
    /// [`receive_buffer`](Self::receive_buffer) gave (at most its length),
    /// as [`receive`](Self::receive) takes bytes. A read of 0 bytes is no
    /// input; call [`receive_eof`](Self::receive_eof) at the end of the
    /// stream.
    pub fn commit_received(&mut self, n: usize) -> Result<(), DecodeError> {
        let (n, short) = self.recv.commit(n);
        self.take_read(n, short)
    }

    /// The receive buffer itself, with room for at least `min` more bytes,
    /// for a read that appends to a `BytesMut` without zeroing it first
    /// (tokio's `read_buf`); then [`commit_appended`](Self::commit_appended).
    /// Only append to it: the bytes already there are input not yet
    /// decoded. `None` when [`receive_buffer`](Self::receive_buffer) would
    /// give none.
    pub fn receive_buf_mut(&mut self, min: usize) -> Option<&mut bytes::BytesMut> {
        if self.state != State::Open || self.must_poll_first() {
            return None;
        }
        Some(self.recv.lend(min))
    }

    /// Takes the bytes a read appended to the buffer
    /// [`receive_buf_mut`](Self::receive_buf_mut) lent, as
    /// [`commit_received`](Self::commit_received) takes its count.
    pub fn commit_appended(&mut self) -> Result<(), DecodeError> {
        let (n, short) = self.recv.take_appended();
        self.take_read(n, short)
    }

    /// Decodes `n` bytes a read put at the end of the receive buffer;
    /// `short` when it did not fill the room it had. Once the connection
    /// has ended they are dropped, as `receive` ignores input then.
    fn take_read(&mut self, n: usize, short: bool) -> Result<(), DecodeError> {
        let result = match &self.state {
            State::Open if n > 0 => self.take_input(n),
            State::Open => Ok(()),
            State::Ending | State::Closed | State::Failed(_) => {
                let kept = self.recv.len().saturating_sub(n);
                self.recv.truncate(kept);
                self.error().cloned().map_or(Ok(()), Err)
            }
        };
        if short {
            // An idle connection keeps no read buffer.
            self.recv.release_if_empty();
        }
        result
    }
}

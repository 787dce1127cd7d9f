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
    /// The frame `found[i]` as an event; `i` is `next`, or the one after
    /// the last reported.
    #[inline]
    pub(super) fn found_event(&mut self, i: usize) -> Option<Event> {
        Some(match self.found.get(i)? {
            Out::Frame(range) => {
                let range = range.clone();
                if range.end > self.ready_at + self.ready.len() {
                    self.next_batch(range.end);
                }
                // Batches hold their frames whole: the clamps never bite.
                let end = (range.end.saturating_sub(self.ready_at)).min(self.ready.len());
                let start = (range.start.saturating_sub(self.ready_at)).min(end);
                Event::Frame(self.ready.slice(start..end))
            }
            Out::Discarded { length } => Event::FrameDiscarded { length: *length },
        })
    }

    /// The frames of `ready` were all reported: the batch holding the
    /// next frame, which ends at `end` (past batches of empty frames).
    #[cold]
    fn next_batch(&mut self, end: usize) {
        while end > self.ready_at + self.ready.len() {
            let Some((at, batch)) = self.later.pop_front() else {
                return;
            };
            self.ready_at = at;
            self.ready = batch;
        }
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
        self.release_batches();
    }

    /// Drops this side's hold on the batches (the frames handed out keep
    /// theirs).
    #[inline]
    fn release_batches(&mut self) {
        self.ready = Bytes::new();
        self.ready_at = 0;
        if !self.later.is_empty() {
            self.later.clear();
        }
    }

    /// All found was reported: releases the bytes, and does not let a
    /// read full of tiny frames pin a large list for good.
    #[inline]
    pub(super) fn reported_all(&mut self) {
        self.found.clear();
        self.found.shrink_to(FOUND_KEPT);
        self.next = 0;
        self.release_batches();
    }

    /// Reads ahead through the buffer once, noting where the frames lie
    /// (up to the event bound), then splits their bytes off in batches
    /// (one for a read of small frames), for `poll_event` to slice each
    /// frame out of: a split of the receive buffer per batch, not per
    /// frame.
    pub(super) fn decode_buffered(&mut self) -> Result<(), DecodeError> {
        let room = self.max_events.saturating_sub(self.events.len());
        let mut ahead = Lookahead::new(self.recv.as_slice());
        let mut result = Ok(());
        let mut discarded = 0;
        // A large frame, or one skipped, among those found.
        let mut mixed = false;
        let before = self.found.len();
        while self.found.len() < room {
            match self.decoder.decode_from(&mut ahead) {
                Ok(Some(out)) => {
                    match &out {
                        Out::Frame(range) => mixed |= range.len() > crate::buf::ALONE_ABOVE,
                        Out::Discarded { .. } => {
                            discarded += 1;
                            mixed = true;
                        }
                    }
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
            self.split_off_found(before, consumed, mixed);
        }
        result.map_err(|e| {
            // The stream is lost: release what is left of it.
            self.recv = RecvBuf::new();
            self.fail(e)
        })
    }

    /// Splits the `consumed` bytes of the frames just found (from
    /// `found[from]` on) off the receive buffer, in batches as a WebSocket
    /// session splits the whole messages of a read: a batch starts where
    /// its first frame's bytes handed out do; after that frame only small
    /// ones join it (counting the bytes before each since the last), and
    /// none joins after a large one. Each batch is split with
    /// `split_to_keep`, so that a small one kept by the application does
    /// not pin a much larger allocation (it is copied out of it) while a
    /// large one stays zero-copy. Bytes outside the batches (headers
    /// before them, skipped frames) are dropped. Without a large or
    /// skipped frame (`mixed` false) the frames make one batch.
    fn split_off_found(&mut self, from: usize, consumed: usize, mixed: bool) {
        // `found` held no frame before: the first batch is `ready`.
        debug_assert!(from == 0 && self.ready.is_empty() && self.later.is_empty());
        let mut done = None;
        if !mixed {
            let first = self.found.get(from);
            if let (Some(Out::Frame(first)), Some(Out::Frame(last))) = (first, self.found.last()) {
                let (start, end) = (first.start, last.end);
                self.push_batch(&mut done, start, end);
            }
        } else {
            // (start, end, how large a frame may be to join)
            let mut batch: Option<(usize, usize, usize)> = None;
            for i in from..self.found.len() {
                let Some(Out::Frame(range)) = self.found.get(i) else {
                    continue;
                };
                let range = range.clone();
                match batch {
                    Some((start, end, limit)) if range.end.saturating_sub(end) <= limit => {
                        batch = Some((start, range.end, limit));
                    }
                    _ => {
                        if let Some((start, end, _)) = batch {
                            self.push_batch(&mut done, start, end);
                        }
                        let limit = crate::buf::joins_after(range.len());
                        batch = Some((range.start, range.end, limit));
                    }
                }
            }
            if let Some((start, end, _)) = batch {
                self.push_batch(&mut done, start, end);
            }
        }
        self.recv
            .advance(consumed.saturating_sub(done.unwrap_or(0)));
    }

    /// Splits off the batch of the read's bytes `start..end`, after
    /// dropping those before it that no batch holds: `done` bytes of the
    /// read are split off or dropped already (none before the first
    /// batch, which becomes `ready`), `end` after.
    fn push_batch(&mut self, done: &mut Option<usize>, start: usize, end: usize) {
        self.recv.advance(start.saturating_sub(done.unwrap_or(0)));
        let batch = self.recv.split_to_keep(end.saturating_sub(start));
        if done.is_none() {
            self.ready = batch;
            self.ready_at = start;
        } else {
            self.later.push_back((start, batch));
        }
        *done = Some(end);
    }

    /// Space of at least `min` bytes to read into straight from the
    /// transport, then [`commit_received`](Self::commit_received) the count
    /// read: the bytes are decoded where they landed, and whole frames are
    /// split out of that buffer without a copy (but for small ones that
    /// would pin a much larger buffer: those are copied out, so that what
    /// the application keeps holds about what it weighs). `None` while
    /// events wait to
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
        // A large frame is laid out to be read whole in place where the
        // allocation allows, as a WebSocket session lays out its frames.
        let missing = self
            .decoder
            .awaited()
            .map_or(0, |len| len.saturating_sub(self.recv.len()));
        Some(self.recv.room_for(min, missing))
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
                if self.error().is_none() {
                    // Read, so taken, and then ignored.
                    self.stats.rx.bytes += n as u64;
                }
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

//! A length-prefixed stream connection: the state, its transitions, the
//! receive side and events here; sends in `send.rs`, the idle and
//! heartbeat timers in `timers.rs`.

use super::decoder::{Lookahead, Out};
use super::{Config, DecodeError, Decoder, EncodeError, Encoder};
use crate::buf::{Intake, RecvBuf, SendQueue};
use crate::Driver;
use bytes::Bytes;
use std::collections::VecDeque;
use std::ops::Range;
use std::time::Instant;
use timers::{Due, Timers};

mod memory;
mod send;
mod stats;
mod timers;

pub use send::{SendError, SendErrorKind};
pub use stats::{ErrorStats, Stats};

/// What a [`Connection`] reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A whole frame, less the configured stripped bytes.
    Frame(Bytes),
    /// An over-long frame is being skipped (discard mode only); reported
    /// once per frame.
    FrameDiscarded {
        /// The whole frame's length in bytes.
        length: u64,
    },
    /// Nothing arrived from the peer within the idle timeout; the connection
    /// is finished.
    IdleTimeout,
    /// `poll_transmit` took the send queue from above the high mark to at
    /// most the low mark
    /// ([`Builder::send_marks`](super::Builder::send_marks)): sending may
    /// resume. Reported once per crossing, after the events already
    /// queued.
    Drained,
}

/// Where the connection is. All transitions are in this file's methods
/// `receive`, `receive_eof`, `handle_timeout` and `close` (and `fail`,
/// which they call).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Frames flow both ways.
    Open,
    /// Ended cleanly: local close, peer's end of stream, or idle timeout.
    Closed,
    /// The peer's stream could not be decoded.
    Failed(DecodeError),
}

/// A length-prefixed stream connection: a [`Decoder`] and an [`Encoder`]
/// over one [`Config`], a bounded send queue, and optional timers.
///
/// Feed received bytes to [`receive`](Self::receive), take [`Event`]s from
/// [`poll_event`](Self::poll_event), write what
/// [`poll_transmit`](Self::poll_transmit) appends, and call
/// [`handle_timeout(now)`](Self::handle_timeout) after every read and
/// whenever [`poll_timeout`](Self::poll_timeout)'s instant passes. The same
/// methods make it a [`Driver`], for loops generic over the machine.
///
/// **Time.** `receive` takes no clock reading, so it only marks that the
/// peer was heard from; the next `handle_timeout(now)` moves the idle
/// deadline to `now + idle_timeout` (so call it after every read, as the loop
/// in [`crate::driver`] does). Timers start at the first `handle_timeout`
/// call: when an idle timeout or heartbeat is configured, call
/// `handle_timeout(Instant::now())` once before the first read, otherwise
/// `poll_timeout` returns `None` and a silent peer is never timed out.
/// Timers go by the latest `now` passed: an older one (read before a slow
/// step) counts as that latest one, so no deadline moves earlier.
/// Both timers can be changed at any time, with
/// [`set_idle_timeout`](Self::set_idle_timeout),
/// [`set_heartbeat`](Self::set_heartbeat) and
/// [`stop_heartbeat`](Self::stop_heartbeat); a new setting starts at the
/// next `handle_timeout(now)`, from that `now`.
///
/// **Ending.** There is no close handshake: the connection is finished after
/// [`Connection::close`], the peer's end of stream, an idle timeout or a
/// decode error. Queued bytes stay available to `poll_transmit`; received
/// bytes after `close` are ignored. End of stream inside a frame is
/// [`DecodeError::Truncated`], never silent.
///
/// ```
/// use sansproto::prefix::{Config, Connection, Event};
///
/// let mut a = Connection::new(Config::default());
/// let mut b = Connection::new(Config::default());
/// a.send(&b"{\"a\":1}"[..]).unwrap();
/// let mut wire = Vec::new();
/// a.poll_transmit(&mut wire);
/// assert_eq!(wire, b"\x00\x00\x00\x07{\"a\":1}");
/// for chunk in wire.chunks(3) {
///     b.receive(chunk)?;
/// }
/// assert_eq!(b.poll_event(), Some(Event::Frame("{\"a\":1}".into())));
/// b.receive(&[0, 0])?; // half a header, then the peer hangs up
/// assert!(b.receive_eof().is_err());
/// assert!(b.is_finished());
/// # Ok::<(), sansproto::prefix::DecodeError>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    decoder: Decoder,
    encoder: Encoder,
    recv: RecvBuf,
    /// Where the frames of the last read lie in `ready` (reused); the
    /// ones from `next` on are still to be reported, after every entry of
    /// `events` (which only ever holds older events while any are left).
    found: Vec<Out<Range<usize>>>,
    next: usize,
    /// The bytes of the last read's whole frames, split off in one go.
    ready: Bytes,
    send: SendQueue,
    events: VecDeque<Event>,
    /// At most this many events wait to be polled (`found` included).
    max_events: usize,
    /// Whether decoding stopped at `max_events` with bytes left in
    /// `recv`; `poll_event` resumes once everything found was reported.
    intake: Intake,
    state: State,
    timers: Timers,
    stats: Stats,
    /// [`Builder::memory_budget`](super::Builder::memory_budget).
    budget: Option<usize>,
}

impl Connection {
    /// A connection using `config` for both directions.
    pub fn new(config: Config) -> Self {
        let mut send = SendQueue::new(config.max_queued_bytes);
        if let Some((high, low)) = config.send_marks {
            send.flow_mut().set_marks(Some(high), low);
        }
        Self {
            decoder: Decoder::new(&config),
            encoder: Encoder::new(&config),
            recv: RecvBuf::new(),
            found: Vec::new(),
            next: 0,
            ready: Bytes::new(),
            send,
            events: VecDeque::new(),
            max_events: config.max_pending_events.max(1),
            intake: Intake::Flowing,
            state: State::Open,
            timers: Timers::new(config.idle_timeout, config.heartbeat),
            stats: Stats::default(),
            budget: config.memory_budget,
        }
    }

    /// Ends the connection: no more sends, received bytes are ignored, and
    /// [`is_finished`](Self::is_finished) turns true. Bytes already queued can still be
    /// taken with `poll_transmit`.
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.state = State::Closed;
            // Part of a frame that will never be delivered.
            drop(self.recv.take_all());
        }
    }

    /// Bytes queued for sending.
    pub fn queued_bytes(&self) -> usize {
        self.send.len()
    }

    /// True when `poll_transmit` has bytes to hand over.
    pub fn wants_transmit(&self) -> bool {
        !self.send.is_empty()
    }

    /// Bytes received that do not yet form a whole frame.
    pub fn buffered_bytes(&self) -> usize {
        self.recv.len()
    }

    /// The error the connection failed with, if it did.
    pub fn error(&self) -> Option<&DecodeError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The frame `found[i]` as an event.
    #[inline]
    fn found_event(&self, i: usize) -> Option<Event> {
        Some(match self.found.get(i)? {
            Out::Frame(range) => Event::Frame(self.ready.slice(range.clone())),
            Out::Discarded { length } => Event::FrameDiscarded { length: *length },
        })
    }

    /// Moves the frames not yet reported into `events`, before anything
    /// newer is queued there.
    fn queue_found(&mut self) {
        while let Some(event) = self.found_event(self.next) {
            self.next += 1;
            self.events.push_back(event);
        }
        self.found.clear();
        self.next = 0;
        self.ready = Bytes::new();
    }

    /// Reads ahead through the buffer once, noting where the frames lie
    /// (up to the event bound), then splits that region off in one go, for
    /// `poll_event` to slice each frame out of it: one split of the
    /// receive buffer per read, not per frame.
    fn decode_buffered(&mut self) -> Result<(), DecodeError> {
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

    /// Everything found was reported and bytes taken wait: decodes them
    /// (the next batch), then takes the transport's end if it came
    /// meanwhile. A failure is sticky: `error` and `receive` report it.
    #[cold]
    #[inline(never)]
    fn resume(&mut self) {
        if self.state != State::Open {
            return;
        }
        let eof = self.intake.resume();
        let _ = self.decode_buffered();
        if eof && !self.intake.defer_eof() {
            self.queue_found();
            let _ = self.receive_eof();
        }
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.state = State::Failed(e.clone());
        e
    }
}

/// How many frame positions the read-ahead list keeps room for between reads.
const FOUND_KEPT: usize = 4096;

impl Connection {
    /// Feeds bytes read from the transport and returns how many were
    /// taken: all of `data`, or none (`Ok(0)`) once
    /// [`Builder::max_pending_events`](super::Builder::max_pending_events)
    /// events wait to be polled, until
    /// [`poll_event`](Self::poll_event) has drained them (then offer the
    /// same bytes again). Whole frames become [`Event`]s. A decode error is
    /// returned now and by every later call; after [`close`](Self::close)
    /// or the end of the stream, bytes are ignored.
    pub fn receive(&mut self, data: &[u8]) -> Result<usize, DecodeError> {
        match &self.state {
            State::Open => {}
            State::Closed => return Ok(data.len()),
            State::Failed(e) => return Err(e.clone()),
        }
        if data.is_empty() {
            return Ok(0);
        }
        if self.must_poll_first() {
            return Ok(0);
        }
        self.recv.extend(data);
        self.take_input(data.len())?;
        Ok(data.len())
    }

    /// True while input is refused until events are polled: their bound
    /// is reached, or input taken earlier waits undecoded (more would only
    /// pile up behind it).
    fn must_poll_first(&self) -> bool {
        let pending = self.events.len() + self.found.len().saturating_sub(self.next);
        pending >= self.max_events || self.intake != Intake::Flowing
    }

    /// Decodes the `n` bytes just appended to the receive buffer.
    fn take_input(&mut self, n: usize) -> Result<(), DecodeError> {
        self.timers.heard_from_peer();
        self.stats.rx.bytes += n as u64;
        self.queue_found();
        self.decode_buffered()?;
        if let Err(e) = self.within_budget() {
            // Frames already found are still reported; the rest is let go.
            self.recv = RecvBuf::new();
            return Err(self.fail(e));
        }
        Ok(())
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
            State::Closed | State::Failed(_) => {
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

    /// What is queued to send, as a [`Buf`](bytes::Buf) of chunks for a
    /// vectored write; [`advance`](bytes::Buf::advance) past what was
    /// written. The same bytes [`poll_transmit`](Self::poll_transmit)
    /// would copy out.
    pub fn output(&mut self) -> crate::Output<'_> {
        self.send.output()
    }

    /// The transport's read side ended: fine between frames,
    /// [`DecodeError::Truncated`] inside one. When events taken from
    /// earlier input wait to be polled, the end is taken after them.
    pub fn receive_eof(&mut self) -> Result<(), DecodeError> {
        match &self.state {
            // Input taken before the end waits for the application to
            // poll; the end follows it.
            State::Open if self.intake.defer_eof() => return Ok(()),
            State::Open => {}
            State::Closed => return Ok(()),
            State::Failed(e) => return Err(e.clone()),
        }
        match self.decoder.check_eof(&mut self.recv) {
            Ok(()) => {
                self.state = State::Closed;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Takes the next event, if any.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let event = self.found_event(self.next);
        self.next += 1;
        if self.next >= self.found.len() {
            // All reported: release the bytes, and do not let a read full
            // of tiny frames pin a large list for good.
            self.found.clear();
            self.found.shrink_to(FOUND_KEPT);
            self.next = 0;
            self.ready = Bytes::new();
            if self.intake != Intake::Flowing {
                // The next frames are found now, so that whenever input
                // waits, something is left to report.
                self.resume();
            }
        }
        if event.is_none() {
            return self.drained_event();
        }
        event
    }

    /// Runs the timers due at `now` (or at the latest instant passed
    /// before, when `now` is older). The first call starts them; input
    /// received since the previous call moves the idle deadline to
    /// `now + idle_timeout`, and a timer set since then
    /// ([`set_idle_timeout`](Self::set_idle_timeout),
    /// [`set_heartbeat`](Self::set_heartbeat)) starts from `now`. When the
    /// idle deadline has passed the connection ends with
    /// [`Event::IdleTimeout`]; when the heartbeat is due its frame is
    /// queued (skipped if the send queue or the memory budget has no room
    /// for it) and the next
    /// one is set `interval` from `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Open {
            return;
        }
        match self.timers.run(now) {
            Due::Nothing => {}
            Due::Idle => {
                self.state = State::Closed;
                self.queue_found();
                self.events.push_back(Event::IdleTimeout);
                self.stats.errors.idle_timeout += 1;
            }
            Due::Heartbeat(frame) => {
                let frame = frame.clone();
                // A heartbeat behind a full queue would prove nothing, and
                // one past the memory budget would break it; skip it.
                if self.check_room(frame.len()).is_ok() {
                    self.send.buf_mut().extend_from_slice(&frame);
                    self.stats.tx.frames += 1;
                    self.stats.heartbeats += 1;
                } else {
                    self.stats.heartbeats_skipped += 1;
                }
            }
        }
    }

    /// Appends every queued outgoing byte to `out` and returns how many
    /// were appended.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.send.drain_into(out)
    }

    /// True once the connection has ended (closed, the peer's end of
    /// stream, an idle timeout or a decode error): write out what
    /// `poll_transmit` gives, then close the transport.
    pub fn is_finished(&self) -> bool {
        self.state != State::Open
    }
}

impl Driver for Connection {
    type Event = Event;
    type Error = DecodeError;

    fn receive(&mut self, data: &[u8]) -> Result<usize, DecodeError> {
        Connection::receive(self, data)
    }
    fn receive_eof(&mut self) -> Result<(), DecodeError> {
        Connection::receive_eof(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        Connection::poll_transmit(self, out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now)
    }
    fn is_finished(&self) -> bool {
        Connection::is_finished(self)
    }
}

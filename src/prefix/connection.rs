//! A length-prefixed stream connection: the state, its transitions, the
//! receive side and events here; the read-ahead and reads into the receive
//! buffer in `recv.rs`, sends in `send.rs`, the idle and heartbeat timers
//! in `timers.rs`.

use super::decoder::Out;
use super::{Config, DecodeError, Decoder, EncodeError, Encoder};
use crate::buf::{Intake, RecvBuf, SendQueue};
use bytes::Bytes;
use std::collections::VecDeque;
use std::ops::Range;
use std::time::Instant;
use timers::{Due, Timers};

mod memory;
mod recv;
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
    /// Nothing arrived from the peer within the idle timeout. Reported
    /// after every frame already taken from the peer; once it is the next
    /// event to poll the connection is finished (see
    /// [`Connection::handle_timeout`]).
    IdleTimeout,
    /// `poll_transmit` took the send queue from above the high mark to at
    /// most the low mark
    /// ([`Builder::send_marks`](super::Builder::send_marks)): sending may
    /// resume. Reported once per crossing, after the events already
    /// queued; not once the connection has ended.
    Drained,
}

/// Where the connection is. All transitions are in this file's methods
/// `receive`, `receive_eof`, `handle_timeout`, `poll_event` and `close`
/// (and `fail`, `resume` and `idle_reached`, which they call).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Frames flow both ways.
    Open,
    /// The idle timeout passed while frames taken from the peer were still
    /// to be handed out; a terminal step waiting behind unpolled events,
    /// as a WebSocket session's does. `Event::IdleTimeout` is queued
    /// behind them (once the last input taken is decoded) and ends the
    /// connection when `poll_event` reaches it. Sends are taken, input is
    /// not, the end of the stream changes nothing, the timers are stopped.
    Ending,
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
/// methods make it a [`Driver`](crate::Driver), for loops generic over the machine.
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
/// decode error. Queued bytes stay available to `poll_transmit`. Nothing
/// taken from the peer is lost: the end of the stream and the idle timeout
/// come after the frames taken before them, and after `close` those frames
/// are still handed out; bytes received after `close` are ignored. End of
/// stream inside a frame is [`DecodeError::Truncated`], never silent.
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
    /// Where the frames of the last read lie in it (reused); the ones
    /// from `next` on are still to be reported, after every entry of
    /// `events` (which only ever holds older events while any are left).
    found: Vec<Out<Range<usize>>>,
    next: usize,
    /// The bytes of the last read's whole frames, split off in batches
    /// (see `recv.rs`): the batch that the frame at `next` lies in, which
    /// starts `ready_at` bytes into the read, then the batches after it
    /// with where each starts.
    ready: Bytes,
    ready_at: usize,
    later: VecDeque<(usize, Bytes)>,
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
            ready_at: 0,
            later: VecDeque::new(),
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

    /// Ends the connection: no more sends, bytes received from now on are
    /// ignored, and [`is_finished`](Self::is_finished) turns true. Bytes
    /// already queued can still be taken with `poll_transmit`, and frames
    /// already taken from the peer with `poll_event` (those still
    /// undecoded at the
    /// [event bound](super::Builder::max_pending_events) included); only
    /// the unfinished frame after them is dropped.
    pub fn close(&mut self) {
        if matches!(self.state, State::Open | State::Ending) {
            self.state = State::Closed;
            if self.intake == Intake::Flowing {
                // Part of a frame that will never be delivered.
                drop(self.recv.take_all());
            }
            // Else whole frames wait undecoded: `resume` decodes them as
            // they are polled, and drops the rest after the last.
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

    /// Everything found was reported and bytes taken wait: decodes them
    /// (the next batch). Once the last of them is decoded, what waited
    /// behind them follows: the transport's end if it came meanwhile, the
    /// idle timeout if it passed; after `close`, the unfinished frame
    /// left is dropped. A failure is sticky: `error` and `receive` report
    /// it.
    #[cold]
    #[inline(never)]
    fn resume(&mut self) {
        if matches!(self.state, State::Failed(_)) {
            return;
        }
        let eof = self.intake.resume();
        let _ = self.decode_buffered();
        if self.intake != Intake::Flowing {
            // The next batch is due: the end stays behind it.
            if eof {
                self.intake.defer_eof();
            }
            return;
        }
        match self.state {
            State::Open if eof => {
                self.queue_found();
                let _ = self.end_of_stream();
            }
            State::Ending => {
                self.queue_found();
                // The peer's end came before the idle deadline passed.
                if eof {
                    let _ = self.end_of_stream();
                }
                if self.state == State::Ending {
                    self.stats.errors.idle_timeout += 1;
                    self.events.push_back(Event::IdleTimeout);
                }
            }
            State::Closed => drop(self.recv.take_all()),
            _ => {}
        }
    }

    /// `poll_event` reached `Event::IdleTimeout`: the connection ends,
    /// and the unfinished frame left (if any) goes.
    #[cold]
    fn idle_reached(&mut self) {
        if self.state == State::Ending {
            self.state = State::Closed;
            drop(self.recv.take_all());
        }
    }

    /// The stream is lost (after `close`, input taken before it is only
    /// dropped: the connection stays closed).
    fn fail(&mut self, e: DecodeError) -> DecodeError {
        if self.state != State::Closed {
            self.state = State::Failed(e.clone());
        }
        e
    }
}

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
            // Taken once the idle timeout is polled (and then ignored).
            State::Ending => return Ok(0),
            State::Closed => {
                // Taken (and ignored): counted, as a WebSocket session
                // counts what it ignores once closed.
                self.stats.rx.bytes += data.len() as u64;
                return Ok(data.len());
            }
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

    /// What is queued to send, as a [`Buf`](bytes::Buf) of chunks for a
    /// vectored write; [`advance`](bytes::Buf::advance) past what was
    /// written. The same bytes [`poll_transmit`](Self::poll_transmit)
    /// would copy out.
    pub fn output(&mut self) -> crate::Output<'_> {
        self.send.output()
    }

    /// The transport's read side ended: fine between frames,
    /// [`DecodeError::Truncated`] inside one. When events taken from
    /// earlier input wait to be polled, the end is taken after them. Once
    /// the idle timeout has passed it changes nothing.
    pub fn receive_eof(&mut self) -> Result<(), DecodeError> {
        match &self.state {
            // Input taken before the end waits for the application to
            // poll; the end follows it.
            State::Open if self.intake.defer_eof() => Ok(()),
            State::Open => self.end_of_stream(),
            // The idle timeout came first; it ends the connection.
            State::Ending | State::Closed => Ok(()),
            State::Failed(e) => Err(e.clone()),
        }
    }

    /// The end of the stream, with all input taken before it decoded.
    fn end_of_stream(&mut self) -> Result<(), DecodeError> {
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
            if event == Event::IdleTimeout {
                self.idle_reached();
            }
            return Some(event);
        }
        let event = self.found_event(self.next);
        self.next += 1;
        if self.next >= self.found.len() {
            self.reported_all();
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
    ///
    /// The idle timeout is reported after every frame already taken from
    /// the peer, those still undecoded at the
    /// [event bound](super::Builder::max_pending_events) included, and
    /// ends the connection when [`poll_event`](Self::poll_event) reaches
    /// it (at once, when no event waits before it): until then the
    /// application can still answer those frames
    /// (sends are taken), input is not taken (`receive` returns `Ok(0)`),
    /// the end of the stream changes nothing and no timer runs
    /// (`poll_timeout` is `None`).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Open {
            return;
        }
        match self.timers.run(now) {
            Due::Nothing => {}
            Due::Idle => {
                self.state = State::Ending;
                if self.intake == Intake::Flowing {
                    self.queue_found();
                    self.stats.errors.idle_timeout += 1;
                    self.events.push_back(Event::IdleTimeout);
                    if self.events.len() == 1 {
                        self.idle_reached();
                    }
                }
                // Else whole frames wait undecoded: `resume` queues (and
                // counts) the timeout behind the last of them, unless one
                // of them fails the stream first.
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
        matches!(self.state, State::Closed | State::Failed(_))
    }
}

crate::driver::by_inherent_methods!(Connection, Event, DecodeError);

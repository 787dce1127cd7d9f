//! The open session: what follows the opening handshake.
//!
//! A [`Session`] carries data messages both ways (framing, masking,
//! fragmentation, incremental UTF-8 validation), answers pings, runs the
//! closing handshake and the keepalive, pong and close timers. The opening
//! handshake is another machine's job; it hands over here.
//!
//! Files: this one holds the struct, the [`State`] enum and **every state
//! transition** (`close`, `receive_eof`, `terminal`, the queued steps that
//! `poll_event` carries out, `peer_close`, `fail`, all through
//! `set_state`); `recv.rs` the receive path (frames, messages, control
//! frames; `incoming.rs` the state of the frame and message arriving),
//! `read_into.rs` reading straight into the receive buffer,
//! `send.rs` the send commands and encoding, `prepared.rs` the sends that
//! skip the connection's own encoding (prepared and uncompressed
//! messages), `timers.rs` the timer table, `poll_timeout` and
//! `handle_timeout` (which fails the session only through `fail`), and
//! `driver.rs` the `Driver` impl.

mod driver;
mod incoming;
mod memory;
pub(crate) use memory::event_heap;
mod prepared;
mod read_into;
mod recv;
mod send;
mod stats;
#[cfg(test)]
mod tests;
mod timers;
mod whole;

use super::close::CloseCode;
use super::error::{Error, SendError, SendErrorKind, TimeoutKind};
use super::extension::Extension;
use super::frame::OpCode;
use super::message::{Closed, Event, Opened};
use super::utf8::Utf8Validator;
use super::{Config, Role};
use crate::buf::{Intake, RecvBuf, SendQueue};
use crate::Output;
use crate::Random;
use bytes::Bytes;
use incoming::{InFrame, InMessage};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;
use timers::Timers;
use whole::WholeMessages;

use send::Admitted;

/// Where the session is. Every assignment happens in this file, through
/// [`Session::set_state`], which re-arms the timers for the new state.
#[derive(Debug)]
enum State {
    /// The opening handshake runs beside the session (in a `Connection`):
    /// commands wait here, in order, charged against the send queue limit
    /// (`pending_bytes`), and are sent when the handshake hands over.
    Connecting(VecDeque<Admitted>),
    /// Messages flow both ways.
    Open,
    /// This side sent Close and waits for the peer's.
    CloseSent,
    /// A terminal step caused by received bytes (a failure, or the peer's
    /// Close to answer) waits in the event queue behind events not yet
    /// polled, so the application can still answer them (echo a message)
    /// before the Close frame goes out. Input is ignored; commands behave
    /// as in `Open` (`close_sent: false`) or `CloseSent` (`true`), the
    /// state the session was in; the pong and close timers run. The step
    /// is carried out when `poll_event` reaches it, unless a timer failed
    /// the session first.
    Ending {
        /// This side had sent its Close frame already.
        close_sent: bool,
    },
    /// Finished: both Close frames were exchanged, or the transport ended.
    Closed,
    /// Failed; the first error, reported now and by every later call.
    Failed(Error),
}

/// An entry of the event queue. Terminal steps caused by received bytes
/// (failing the session, answering the peer's Close) wait behind the
/// events before them, so the application can still answer those events
/// (echo a message, say) before the Close frame goes out.
#[derive(Debug)]
enum Queued {
    Event(Event),
    /// Whole messages received together, reported one by one.
    Messages(WholeMessages),
    Fail(Error),
    PeerClose(Option<CloseCode>, String),
}

/// What an opening handshake hands to the session it opens.
#[derive(Debug, Default)]
pub(crate) struct Handover {
    /// Events of the handshake not yet polled; reported before
    /// [`Event::Open`].
    pub(crate) events: Vec<Event>,
    /// The latest instant the handshake's `handle_timeout` saw: the
    /// session's timers start from it at once.
    pub(crate) now: Option<Instant>,
}

/// Outstanding pings remembered to match pongs against.
const MAX_OUTSTANDING_PINGS: usize = 16;

/// An open WebSocket session (RFC 6455), server or client, as a sans-IO
/// machine: what follows the opening handshake.
///
/// Feed it received bytes with [`receive`](Self::receive), take
/// [`Event`]s with [`poll_event`](Self::poll_event) and bytes to write with
/// [`poll_transmit`](Self::poll_transmit). Commands such as
/// [`send`](Self::send), [`ping`](Self::ping) and [`close`](Self::close)
/// only queue. Timers start at the first
/// [`handle_timeout`](Self::handle_timeout) call.
///
/// ```
/// use sansproto::ws::{Config, Event, Message, Role, Session};
///
/// let random = sansproto::default_random;
/// let mut client = Session::new(Role::Client, Config::default(), None, None, random());
/// let mut server = Session::new(Role::Server, Config::default(), None, None, random());
/// client.send("hello").unwrap();
///
/// let mut wire = Vec::new();
/// client.poll_transmit(&mut wire);
/// server.receive(&wire).unwrap();
/// assert_eq!(server.poll_event(), Some(Event::Message(Message::from("hello"))));
/// ```
// Laid out in declaration order, the fields a send reads first: a
// broadcast to thousands of sessions then touches the first few cache
// lines of each, not one line per field.
#[repr(C)]
pub struct Session {
    state: State,
    extension: Option<Box<dyn Extension>>,
    /// The bound a data payload must stay below to be encoded at once:
    /// past the fragment size (plus one) for an open session without an
    /// extension or a memory budget, and 0, so that nothing is, otherwise.
    /// Derived from the state, the extension and the config whenever the
    /// state changes, so a send reads it beside the queue.
    at_once_below: usize,
    send: SendQueue,
    role: Role,
    intake: Intake,
    utf8: Utf8Validator,
    counters: stats::Counters,
    config: Config,
    recv: RecvBuf,
    events: VecDeque<Queued>,
    frame: Option<InFrame>,
    message: Option<InMessage>,
    protocol: Option<String>,
    rng: Random,
    pings: VecDeque<Bytes>,
    /// The newest ping's payload, when its pong found the send queue full:
    /// written by the next `poll_transmit` (or before a Close frame).
    owed_pong: Option<Bytes>,
    /// What the commands waiting in `State::Connecting` are charged.
    pending_bytes: usize,
    ping_counter: u64,
    timers: Timers,
    /// `Config::max_pending_events`, at least 1.
    max_events: usize,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("buffered_in", &self.recv.len())
            .field("buffered_out", &self.send.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session whose handshake happened elsewhere (an HTTP/2 extended
    /// CONNECT stream, a proxy that already upgraded, an HTTP server's own
    /// upgrade), with the negotiated subprotocol and extension.
    ///
    /// No [`Event::Open`] is reported, and frames flow at once. The masking
    /// rules are unchanged: a [`Role::Client`] masks every frame it sends
    /// and a [`Role::Server`] refuses unmasked ones.
    pub fn new(
        role: Role,
        config: Config,
        protocol: Option<String>,
        extension: Option<Box<dyn Extension>>,
        random: Random,
    ) -> Self {
        let mut send = SendQueue::new(config.max_send_queue);
        send.flow_mut()
            .set_marks(config.send_high_mark, config.send_low_mark);
        let max_events = config.max_pending_events.max(1);
        let mut session = Self {
            at_once_below: 0,
            role,
            config,
            state: State::Open,
            recv: RecvBuf::new(),
            send,
            events: VecDeque::new(),
            frame: None,
            message: None,
            utf8: Utf8Validator::new(),
            extension,
            protocol,
            rng: random,
            pings: VecDeque::new(),
            owed_pong: None,
            pending_bytes: 0,
            ping_counter: 0,
            timers: Timers::default(),
            max_events,
            intake: Intake::Flowing,
            counters: stats::Counters::default(),
        };
        session.derive_at_once();
        session
    }

    /// A session whose opening handshake runs beside it (in a
    /// `Connection`): commands wait until [`open`](Self::open).
    pub(crate) fn connecting(role: Role, config: Config, random: Random) -> Self {
        let mut s = Self::new(role, config, None, None, random);
        s.state = State::Connecting(VecDeque::new());
        s.derive_at_once();
        s
    }

    /// Queues bytes the handshake wrote (a request, a 101, a refusal),
    /// ahead of anything the session encodes, without the limit check:
    /// the handshake bounds them.
    pub(crate) fn queue_handshake_output(&mut self, bytes: &[u8]) {
        self.send.buf_mut().extend_from_slice(bytes);
    }

    /// Reports an event of the handshake (an upgrade to decide, a plain
    /// HTTP request, a refusal).
    pub(crate) fn report(&mut self, event: Event) {
        self.emit(event);
    }

    /// Server or client.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// True until a Close frame is sent (or the session ends): data
    /// messages may be sent.
    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            State::Open | State::Ending { close_sent: false }
        )
    }

    /// Bytes queued for sending and not yet taken by `poll_transmit` (a
    /// pong owed to a ping that found the queue full is written by the next
    /// `poll_transmit`, and counted from then).
    #[inline]
    pub fn buffered_amount(&self) -> usize {
        self.send.len() + self.pending_bytes
    }

    /// Received bytes held and not yet handed out as events: the part of
    /// a frame (or of a batch of frames) still incomplete, and input that
    /// waits while the event queue is full. Bounded by the frame limit plus
    /// a read.
    #[inline]
    pub fn buffered_input(&self) -> usize {
        self.recv.len()
    }

    /// The sticky error, once the session has failed.
    pub fn error(&self) -> Option<&Error> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Takes the next event.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(Queued::Messages(batch)) = self.events.front_mut() {
                let message = batch.next();
                if message.is_none() || batch.is_empty() {
                    self.events.pop_front();
                }
                match message {
                    Some(message) => return Some(Event::Message(message)),
                    None => continue,
                }
            }
            let Some(next) = self.events.pop_front() else {
                if self.intake != Intake::Flowing {
                    self.resume_input();
                    if !self.events.is_empty() {
                        continue;
                    }
                }
                if self.queue_drained() {
                    continue;
                }
                return None;
            };
            match next {
                Queued::Event(e) => return Some(e),
                Queued::Messages(_) => {}
                // A timer (or the caller) may have failed the session
                // meanwhile; then the queued step has nothing left to do.
                Queued::Fail(err) => {
                    if matches!(self.state, State::Ending { .. }) {
                        let _ = self.fail(err);
                    }
                }
                Queued::PeerClose(code, reason) => {
                    if matches!(self.state, State::Ending { .. }) {
                        self.peer_close(code, reason);
                    }
                }
            }
        }
    }

    /// Appends every queued outgoing byte to `out`; returns the count.
    #[inline]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        if self.owed_pong.is_some() {
            self.write_owed_pong();
        }
        self.send.drain_into(out)
    }

    /// The queued output as a [`bytes::Buf`] of chunks, for a vectored
    /// write: large payloads are shared with the messages they came from,
    /// not copied. Write what it holds and `advance` past it; what is not
    /// advanced past stays queued. Equal to what
    /// [`poll_transmit`](Self::poll_transmit) would copy out.
    #[inline]
    pub fn output(&mut self) -> Output<'_> {
        if self.owed_pong.is_some() {
            self.write_owed_pong();
        }
        self.send.output()
    }

    /// Queues the pong owed to the newest ping, past the limit by this one
    /// control frame. Owed after this side's Close too, and while the
    /// peer's waits behind unpolled events: the ping came before it.
    #[cold]
    fn write_owed_pong(&mut self) {
        if let Some(pong) = self.owed_pong.take() {
            if matches!(
                self.state,
                State::Open | State::CloseSent | State::Ending { .. }
            ) {
                self.write_frame(true, 0, OpCode::Pong, &pong);
            }
        }
    }

    /// True once there is nothing more to exchange: write out what
    /// `poll_transmit` gives, then close the transport.
    #[inline]
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Closed | State::Failed(_))
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(Queued::Event(event));
    }

    // ----- transitions: every assignment to `state` is below ---------------

    /// The opening handshake handed over: the handshake's unpolled events
    /// and [`Event::Open`] are reported, the timers start from the
    /// handshake's latest `now`, and the commands that waited are sent, in
    /// order, without a second limit check. Only the negotiated extension
    /// can refuse one (a message it cannot encode): the session then fails
    /// with `Error::Send` (a 1011 Close, not a silently missing message).
    pub(crate) fn open(
        &mut self,
        opened: Opened,
        extension: Option<Box<dyn Extension>>,
        handover: Handover,
    ) -> Result<(), Error> {
        let State::Connecting(waiting) = &mut self.state else {
            return Ok(());
        };
        let waiting = std::mem::take(waiting);
        self.pending_bytes = 0;
        let queued = self.send.len();
        self.send.flow_mut().set_outside(0, queued);
        self.protocol = opened.protocol.clone();
        self.extension = extension;
        for event in handover.events {
            self.emit(event);
        }
        self.emit(Event::Open(Box::new(opened)));
        if let Some(now) = handover.now {
            self.timers.clock.advance(now);
        }
        self.set_state(State::Open);
        // The handshake's last bytes arrived now: inbound traffic, as
        // frames are, so keepalive counts from here, not from the last
        // timer call before them.
        self.note_activity();
        self.send_admitted(waiting)
    }

    /// The opening handshake failed or was answered without an upgrade:
    /// the session never opens, and the commands that waited are dropped.
    pub(crate) fn abandon(&mut self) {
        if matches!(self.state, State::Connecting(_)) {
            self.pending_bytes = 0;
            self.send.flow_mut().let_go();
            self.set_state(State::Closed);
        }
    }

    /// Moves to `state` and sets the deadlines it needs.
    fn set_state(&mut self, state: State) {
        if matches!(self.state, State::Open) && !matches!(state, State::Open) {
            self.leave_open();
        }
        self.state = state;
        self.derive_at_once();
        self.arm_timers();
    }

    /// Sets [`at_once_below`](Self::at_once_below) from the state, the
    /// extension and the config.
    fn derive_at_once(&mut self) {
        let plain = matches!(self.state, State::Open)
            && self.extension.is_none()
            && self.config.memory_budget.is_none();
        self.at_once_below = match (plain, self.config.fragment_size) {
            (false, _) => 0,
            (true, None) => usize::MAX,
            (true, Some(size)) => size.max(1).saturating_add(1),
        };
    }

    /// Starts the closing handshake: queues a Close frame with `code` and
    /// `reason` (cut to fit 125 bytes). Data received before the peer's
    /// Close arrives is still delivered; sends are refused from now on.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError<()>> {
        let refuse = |kind| Err(SendError { kind, payload: () });
        if !code.is_sendable() {
            return refuse(SendErrorKind::InvalidCloseCode(code.0));
        }
        let next = match &mut self.state {
            State::Connecting(_) => {
                return self.admit(0, |()| Admitted::Close(code, reason.to_owned()), ());
            }
            State::Open => State::CloseSent,
            State::Ending { close_sent: false } => State::Ending { close_sent: true },
            _ => return refuse(SendErrorKind::Closed),
        };
        self.write_close(Some(code), reason);
        self.set_state(next);
        Ok(())
    }

    /// The transport's read side ended.
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        // Input left unparsed behind an inflated message is parsed first,
        // as more input would be: the end then counts as it would without
        // the extension.
        self.catch_up();
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            // A terminal step waiting behind unpolled events ends the
            // session when reached; the end of input changes nothing.
            State::Connecting(_) | State::Ending { .. } | State::Closed => Ok(()),
            // Input taken before the end waits for the application to
            // poll; the end follows it.
            State::Open | State::CloseSent if self.intake.defer_eof() => Ok(()),
            State::Open | State::CloseSent => {
                self.emit(Event::Closed(Closed {
                    code: CloseCode::ABNORMAL,
                    reason: String::new(),
                    clean: false,
                    by_peer: false,
                }));
                self.set_state(State::Closed);
                Ok(())
            }
        }
    }

    /// Runs a terminal step caused by received bytes now, or, when events
    /// are waiting to be polled, queues it behind them and moves to
    /// [`State::Ending`].
    fn terminal(&mut self, step: Queued) -> Result<(), Error> {
        if !self.events.is_empty() {
            self.events.push_back(step);
            let close_sent = !self.is_open();
            self.set_state(State::Ending { close_sent });
            return Ok(());
        }
        match step {
            Queued::Fail(err) => Err(self.fail(err)),
            Queued::PeerClose(code, reason) => {
                self.peer_close(code, reason);
                Ok(())
            }
            step @ (Queued::Event(_) | Queued::Messages(_)) => {
                self.events.push_back(step);
                Ok(())
            }
        }
    }

    /// A deadline passed while a terminal step waits behind unpolled
    /// events: the step is carried out now, and its `Closed` event
    /// follows the waiting ones.
    fn end_now(&mut self) {
        match self.events.pop_back() {
            Some(Queued::Fail(err)) => {
                let _ = self.fail(err);
            }
            Some(Queued::PeerClose(code, reason)) => self.peer_close(code, reason),
            other => {
                // Not reached: the step is the last entry while ending.
                self.events.extend(other);
                let _ = self.fail(Error::Timeout(TimeoutKind::Close));
            }
        }
    }

    /// The peer's Close frame, reached in the order of events: answer it
    /// (if this side has not sent one) and finish. A pong still owed to a
    /// ping before it goes out first.
    fn peer_close(&mut self, code: Option<CloseCode>, reason: String) {
        let by_peer = self.is_open();
        if by_peer {
            self.write_close(code, &reason);
        } else if self.owed_pong.is_some() {
            self.write_owed_pong();
        }
        self.frame = None;
        self.message = None;
        self.emit(Event::Closed(Closed {
            code: code.unwrap_or(CloseCode::NO_STATUS),
            reason,
            clean: true,
            by_peer,
        }));
        self.set_state(State::Closed);
    }

    /// Fails the session: queues what the peer should hear, reports the
    /// end, and records the sticky error.
    fn fail(&mut self, err: Error) -> Error {
        let (open, was_open) = match &self.state {
            // The first failure is the one reported, now and later.
            State::Failed(first) => return first.clone(),
            State::Open | State::Ending { close_sent: false } => (true, true),
            State::CloseSent | State::Ending { close_sent: true } => (false, true),
            State::Connecting(_) | State::Closed => (false, false),
        };
        if let (true, Some(code)) = (open, err.close_code()) {
            self.write_close(Some(code), "");
        }
        if was_open {
            self.emit(Event::Closed(Closed {
                code: err.close_code().unwrap_or(CloseCode::ABNORMAL),
                reason: err.to_string(),
                clean: false,
                by_peer: false,
            }));
        }
        self.frame = None;
        self.message = None;
        self.set_state(State::Failed(err.clone()));
        err
    }
}

//! Datagram framing over a peer table.
//!
//! An [`Endpoint`] sits behind one datagram socket (UDP, usually) that the
//! caller owns. The caller hands in each received datagram with its source
//! address and the current time; the endpoint answers with [`Event`]s (peers
//! opened and closed, messages, what it dropped and why) and with datagrams to
//! send, one per [`Endpoint::poll_transmit`] call, each with its destination.
//!
//! - **Peer table.** Peers are keyed by address (any `A: Clone + Eq + Hash +
//!   Debug`, typically [`std::net::SocketAddr`]). The first valid datagram from
//!   an address opens a peer ([`Event::PeerOpened`]); a peer that sends nothing
//!   valid for [`Config::idle_timeout`] is closed ([`Event::PeerClosed`]), as
//!   is one the caller [closes](Endpoint::close). Once [`Config::max_peers`]
//!   are open, datagrams from new addresses are dropped with
//!   [`Event::PeerRefused`]; open peers are not disturbed. Sending does not
//!   open a peer; [`Endpoint::open`] does.
//! - **MTU.** No datagram larger than [`Config::mtu`] is sent or accepted,
//!   headers included. Without segmentation a message is one datagram, sent
//!   and delivered as the same [`Bytes`] (no copy), and a larger one is
//!   refused by [`Endpoint::send`] with the message handed back.
//! - **Segmentation** (opt-in through [`Config::segmentation`]; both sides must
//!   agree). Each datagram carries a 9-byte [`Header`] (version, message id,
//!   fragment index, fragment count); messages up to
//!   [`Segmentation::max_message_size`] are split to fit the MTU and rebuilt in
//!   any arrival order, duplicates ignored. See [`Segmentation`] for the limits
//!   on what peers can make the endpoint hold, and the header layout below.
//! - **Sessions** (opt-in through [`Config::sessions`]; both sides must
//!   agree). Every datagram starts with a 5-byte session header: a kind
//!   (message, close notice, keepalive) and the sender's session id. A peer
//!   closed by the caller, by idle expiry, or refused by a full table is
//!   told so by a close notice ([`NoticeReason`]), and the receiver of a
//!   notice closes its side ([`CloseReason::ClosedByPeer`]); an optional
//!   keepalive keeps quiet sessions open; datagrams still carrying the id
//!   of a closed session are dropped ([`PeerError::StaleSession`]) instead
//!   of opening a new one. With sessions on, [`Endpoint::send`] addresses
//!   only open peers ([`Endpoint::open`] opens one). See [`Sessions`] and
//!   the header layout below.
//! - **Malformed datagrams** are dropped and reported
//!   ([`Event::DatagramDropped`], or [`Event::MessageDropped`] when they spoil a
//!   partial message); nothing a peer sends can make a call fail or affect
//!   another peer.
//! - **Time** comes in as `now` on [`Endpoint::receive`],
//!   [`Endpoint::handle_timeout`] and [`Endpoint::open`];
//!   [`Endpoint::poll_timeout`] says when the next timer is due. Calling
//!   `handle_timeout` early or twice is harmless. Timers go by the latest
//!   `now` seen: one older than an instant passed before (read before a slow
//!   step, say) counts as that instant, so it never moves a deadline earlier.
//!
//! # Segment header
//!
//! ```text
//!  0         1                   5         7         9
//! +---------+-------------------+---------+---------+------------------+
//! | version | message id        | index   | count   | fragment payload |
//! | 0x01    | u32 big-endian    | u16 BE  | u16 BE  | rest of datagram |
//! +---------+-------------------+---------+---------+------------------+
//! ```
//!
//! Every fragment but the last carries exactly `mtu − 9` payload bytes. A
//! receiver keys partial messages by (peer, message id), checks
//! `index < count ≤ max_fragments` before anything else, and drops a partial
//! message whose fragments disagree on the count, overlap, or outgrow
//! `max_message_size`. Message ids start at a random value and wrap; they are
//! only compared for equality.
//!
//! # Session header
//!
//! With [`Config::sessions`] set, every datagram starts with a session
//! header; without it, nothing below is on the wire and the format is the
//! one above (or bare payloads).
//!
//! ```text
//!  0         1                   5
//! +---------+-------------------+------------------------------------+
//! | kind    | session id        | rest, by kind                      |
//! | u8      | u32 big-endian    |                                    |
//! +---------+-------------------+------------------------------------+
//!
//! kind 0x10  message    rest: the segment header and fragment payload
//!                       (segmentation on) or the message (off)
//! kind 0x11  close      rest: exactly 5 bytes, 10 in all:
//!                       +---------+-------------------+
//!                       | reason  | receiver's id     |
//!                       | u8      | u32 big-endian    |
//!                       +---------+-------------------+
//!                       reason 1 kicked, 2 expired, 3 refused
//! kind 0x12  keepalive  rest: nothing, 5 bytes in all
//! ```
//!
//! A message datagram with segmentation is thus `session header (5) |
//! segment header (9) | fragment payload`, and every fragment but the last
//! carries `mtu − 14` bytes; [`Config::max_message_size`] and the MTU
//! checks count both headers.
//!
//! Each side of a session draws its own session id (random, never 0, from
//! the endpoint's [`RandomSource`](crate::RandomSource)) when the session
//! opens on its side: on the first datagram from a new address, or on
//! [`Endpoint::open`]. The id in a message or keepalive is the sender's
//! own; a receiver learns the peer's id from its first datagram and from
//! then on:
//!
//! - a datagram with the peer's id is the session's;
//! - one with an id of a session it closed (remembered for
//!   [`Sessions::remember_for`], at most [`Sessions::max_remembered`]) is
//!   dropped, and answered with a close notice when the peer may not know
//!   the session ended;
//! - a message with any other id is dropped
//!   ([`PeerError::UnconfirmedSession`]) and its id kept as a candidate; a
//!   second message with that id ends the old session
//!   ([`CloseReason::Replaced`]) and opens a new one. One datagram, which
//!   anyone can forge, does not end a session (see [`Sessions`]).
//!
//! A close notice's session id is the sender's id in the closed session (0
//! if it had none, as when refusing), and its last four bytes the
//! receiver's (0 if the sender never learned it). A receiver takes a
//! notice that names its own id or its peer's, and drops any other. The
//! ids tell sessions apart; they are not authentication: whoever sees the
//! traffic can forge datagrams, as without sessions. Kind values other
//! than these three, control datagrams of any other length, unknown
//! reasons and an id of 0 in a message or keepalive are dropped
//! ([`Event::DatagramDropped`]); the kind values differ from the segment
//! header's version byte, so a peer that does not speak sessions has its
//! datagrams dropped rather than misread.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use sansproto::datagram::{Config, Endpoint, Event};
//! use std::net::SocketAddr;
//! use std::time::Instant;
//!
//! let client: SocketAddr = "192.0.2.1:4000".parse().unwrap();
//! let server: SocketAddr = "192.0.2.2:7001".parse().unwrap();
//! let mut a = Endpoint::new(Config::segmented()).unwrap();
//! let mut b = Endpoint::new(Config::segmented()).unwrap();
//! let now = Instant::now();
//!
//! // A 5000-byte message does not fit one 1472-byte datagram: it is split.
//! let message = Bytes::from(vec![42u8; 5000]);
//! a.send(server, message.clone()).unwrap();
//! let mut datagram = Vec::new();
//! let mut sent = 0;
//! while let Some(to) = a.poll_transmit(&mut datagram) {
//!     assert_eq!(to, server);
//!     assert!(datagram.len() <= 1472);
//!     // ... socket.send_to(&datagram, to) ...
//!     b.receive(client, Bytes::copy_from_slice(&datagram), now);
//!     datagram.clear();
//!     sent += 1;
//! }
//! assert_eq!(sent, 4);
//! assert_eq!(b.poll_event(), Some(Event::PeerOpened { peer: client }));
//! assert_eq!(b.poll_event(), Some(Event::Message { peer: client, payload: message }));
//! assert_eq!(b.poll_event(), None);
//! ```

mod closed;
mod config;
mod error;
mod event;
mod memory;
mod peer;
mod reassembly;
mod receive;
mod segment;
mod session;
mod session_config;
mod session_wire;
mod stats;

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;

pub use config::{
    Config, ConfigError, Segmentation, Sessions, MTU_ETHERNET_IPV4, MTU_ETHERNET_IPV6,
    MTU_MAX_IPV4, MTU_MAX_IPV6,
};
pub use error::{Backlogged, DropReason, OpenError, PeerError, SendError, SendErrorKind};
pub use event::{CloseReason, Event};
pub use segment::{Header, HEADER_LEN, VERSION};
pub use session::SessionIds;
pub use session_wire::{
    NoticeReason, CLOSE_NOTICE_LEN, KIND_CLOSE, KIND_DATA, KIND_KEEPALIVE, SESSION_HEADER_LEN,
};
pub use stats::{EndpointStats, ErrorStats, PeerStats, SessionStats};

use crate::buf::Flow;
use peer::{Peer, Timers};
use reassembly::Reassembly;
use session::SessionState;
use session_wire::Head;

/// One datagram waiting for [`Endpoint::poll_transmit`]: its headers (or the
/// whole of a control datagram) and its payload.
#[derive(Debug)]
struct Outgoing<A> {
    to: A,
    head: Head,
    payload: Bytes,
}

impl<A> Outgoing<A> {
    fn len(&self) -> usize {
        self.payload.len() + self.head.as_slice().len()
    }
}

/// A datagram endpoint: a peer table, the outgoing queue and, when configured,
/// segmentation and reassembly, and sessions. See the [module docs](self)
/// for an example.
///
/// Calls may come in any order: inputs ([`receive`](Self::receive),
/// [`handle_timeout`](Self::handle_timeout)), commands
/// ([`send`](Self::send), [`open`](Self::open), [`close`](Self::close)) and
/// the polls ([`poll_event`](Self::poll_event),
/// [`poll_transmit`](Self::poll_transmit),
/// [`poll_timeout`](Self::poll_timeout)). A loop that feeds whatever the
/// socket yields, then drains events and datagrams, then sleeps until the
/// socket is readable or `poll_timeout` passes, is all the driving it needs.
///
/// With sessions on, one datagram, whose source address anyone can forge,
/// neither ends an open session nor makes the endpoint send more than two
/// datagrams back on its own; but before the first reply to a session
/// opened with [`open`](Self::open), a forged datagram is taken as the
/// peer's. See [`Sessions`](Sessions#forged-source-addresses) for the rule,
/// its bounds and that window.
#[derive(Debug)]
pub struct Endpoint<A> {
    config: Config,
    peers: HashMap<A, Peer>,
    timers: Timers<A>,
    reassembly: Reassembly<A>,
    events: VecDeque<Event<A>>,
    outgoing: VecDeque<Outgoing<A>>,
    queued_bytes: usize,
    next_message_id: u32,
    next_generation: u64,
    /// Bytes taken by `poll_transmit`, and the backpressure marks.
    flow: Flow,
    stats: EndpointStats,
    sessions: SessionState<A>,
}

impl<A: Clone + Eq + Hash + Debug> Endpoint<A> {
    /// An endpoint whose first message id (and session ids) come from the
    /// operating system's randomness (so a restarted sender does not reuse
    /// recent ids).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_random(config, crate::default_random())
    }

    /// An endpoint whose first message id and session ids are drawn from
    /// `random` (for example [`crate::seeded_random`] in tests).
    pub fn with_random(
        config: Config,
        mut random: impl crate::RandomSource,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut flow = Flow::new();
        flow.set_marks(config.send_high_mark, config.send_low_mark);
        let next_message_id = random.next_u32();
        Ok(Self {
            config,
            peers: HashMap::new(),
            timers: Timers::new(),
            reassembly: Reassembly::default(),
            events: VecDeque::new(),
            outgoing: VecDeque::new(),
            queued_bytes: 0,
            next_message_id,
            next_generation: 0,
            flow,
            stats: EndpointStats::default(),
            sessions: SessionState::new(&mut random),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds one datagram received from `from` at `now`.
    ///
    /// A datagram that is malformed, over a limit, or from an address the
    /// full peer table cannot take is dropped and reported as an event.
    /// Only a valid datagram opens a peer or refreshes its idle timer (a
    /// fragment that no message within the limits can hold, or that
    /// contradicts its partial message, is not one). While
    /// [`Config::max_pending_events`] events wait to be polled, the datagram
    /// is handed back untouched instead ([`Backlogged`]), so that what
    /// peers send cannot grow the event queue past that bound.
    pub fn receive(&mut self, from: A, datagram: Bytes, now: Instant) -> Result<(), Backlogged<A>> {
        if self.events.len() >= self.config.max_pending_events {
            return Err(Backlogged { from, datagram });
        }
        let first = self.events.len();
        self.stats.rx.bytes += datagram.len() as u64;
        self.stats.rx.frames += 1;
        self.take(from, datagram, now);
        self.tally(first);
        Ok(())
    }

    /// Queues `message` for `to`: one datagram, or with segmentation as many
    /// fragments as it takes. Nothing is queued on error, and the message is
    /// handed back inside it ([`SendError::into_payload`](crate::SendError::into_payload)).
    /// With sessions on, `to` must be open ([`SendErrorKind::NoSession`]
    /// otherwise; see [`open`](Self::open)).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use sansproto::datagram::{Config, Endpoint, SendErrorKind};
    ///
    /// let mut endpoint = Endpoint::<u32>::new(Config::default()).unwrap();
    /// let big = Bytes::from(vec![0u8; 1473]);
    /// let err = endpoint.send(1, big.clone()).unwrap_err();
    /// assert_eq!(err.kind(), &SendErrorKind::TooLarge { max: 1472 });
    /// assert_eq!(err.into_payload(), big);
    /// ```
    pub fn send(&mut self, to: A, message: Bytes) -> Result<(), SendError> {
        let max = self.config.max_message_size();
        if message.len() > max {
            self.stats.errors.send_too_large += 1;
            return Err(SendError::new(SendErrorKind::TooLarge { max }, message));
        }
        let session = match self.config.sessions {
            None => None,
            Some(_) => match self.peers.get(&to).and_then(|p| p.session) {
                Some(ids) => Some(ids.local),
                None => {
                    self.stats.errors.send_no_session += 1;
                    return Err(SendError::new(SendErrorKind::NoSession, message));
                }
            },
        };
        let overhead = self.config.overhead();
        let fragment_len = self.config.mtu.saturating_sub(overhead);
        let segmented = self.config.segmentation.is_some();
        let count = if segmented {
            config::fragments_for(message.len(), fragment_len)
        } else {
            1
        };
        let wire_len = message.len().saturating_add(count.saturating_mul(overhead));
        // `count` fits a u16 with a validated configuration (it is at most
        // `max_fragments`); refuse rather than truncate if it ever did not.
        let Ok(count) = u16::try_from(count) else {
            self.stats.errors.send_too_large += 1;
            return Err(SendError::new(SendErrorKind::TooLarge { max }, message));
        };
        let fits = self.outgoing.len().saturating_add(usize::from(count))
            <= self.config.max_queued_datagrams
            && self.queued_bytes.saturating_add(wire_len) <= self.config.max_queued_bytes;
        if !fits {
            self.stats.errors.send_queue_full += 1;
            return Err(SendError::new(SendErrorKind::QueueFull, message));
        }
        self.queued_bytes = self.queued_bytes.saturating_add(wire_len);
        self.stats.tx.messages += 1;
        self.sent_to(&to);
        if !segmented {
            self.outgoing.push_back(Outgoing {
                to,
                head: Head::data(session, None),
                payload: message,
            });
            return Ok(());
        }
        let message_id = self.next_message_id;
        self.next_message_id = message_id.wrapping_add(1);
        for (index, payload) in (0..count).zip(segment::split(&message, fragment_len)) {
            let header = Header {
                message_id,
                index,
                count,
            };
            self.outgoing.push_back(Outgoing {
                to: to.clone(),
                head: Head::data(session, Some(header.encode())),
                payload,
            });
        }
        Ok(())
    }

    /// Removes `peer` from the table, freeing its partial messages, and
    /// reports [`Event::PeerClosed`] with [`CloseReason::Closed`]. Returns
    /// false if there was no such peer. Datagrams already queued for it are
    /// still sent. With sessions on, a close notice
    /// ([`NoticeReason::Kicked`]) follows them, if
    /// [`Sessions::close_notices`] is set.
    pub fn close(&mut self, peer: &A) -> bool {
        // A peer in the table was opened at some `now`, so the clock is set.
        let Some(now) = self.sessions.clock.latest() else {
            return false;
        };
        let closed = self.remove_peer(peer, CloseReason::Closed, now);
        if closed {
            self.stats.peers_closed += 1;
        }
        closed
    }

    /// Takes the next event, if any.
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        self.events.pop_front()
    }

    /// Appends the next datagram to send to `out` and returns its destination,
    /// or returns `None` with `out` untouched when nothing is queued.
    ///
    /// Exactly one datagram is appended per call, so pass an empty `out` (or
    /// clear it after each send): whatever `out` held before is not part of it.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<A> {
        let datagram = self.outgoing.pop_front()?;
        let before = self.queued_bytes;
        self.queued_bytes = before.saturating_sub(datagram.len());
        self.flow.took(before, self.queued_bytes);
        self.stats.tx.frames += 1;
        if let Some(peer) = self.peers.get_mut(&datagram.to) {
            peer.stats.tx.bytes += datagram.len() as u64;
            peer.stats.tx.frames += 1;
        }
        if self.flow.take_drained(self.queued_bytes) {
            self.events.push_back(Event::Drained);
        }
        out.reserve(datagram.len());
        out.extend_from_slice(datagram.head.as_slice());
        out.extend_from_slice(&datagram.payload);
        Some(datagram.to)
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do (idle expiry, a reassembly deadline, a keepalive). It
    /// may be slightly early, never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs every timer due at `now`: drops partial messages past their
    /// reassembly timeout, closes peers idle for `idle_timeout`, and queues
    /// the keepalives due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let first = self.events.len();
        let now = self.sessions.saw(now);
        self.sessions.closed.prune(now);
        self.handle_timers(now);
        self.tally(first);
    }

    fn handle_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            let Some(peer) = self.peers.get_mut(&timer.peer) else {
                continue;
            };
            if !peer.take_timer(timer.generation, timer.at) {
                continue;
            }
            self.reassembly
                .expire(&timer.peer, peer, now, &mut self.events);
            if peer.expires_at <= now {
                self.remove_peer(&timer.peer, CloseReason::IdleTimeout, now);
                continue;
            }
            self.keepalive(&timer.peer, now);
            if let Some(peer) = self.peers.get_mut(&timer.peer) {
                self.timers.schedule(&timer.peer, peer);
            }
        }
    }

    /// Puts a new peer in the table (the caller checked there is room),
    /// starts its timers and reports it.
    fn insert_peer(&mut self, addr: A, now: Instant, remote: Option<u32>) {
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let expires_at = crate::timer::deadline_after(now, self.config.idle_timeout);
        let mut peer = Peer::new(generation, expires_at);
        peer.session = self.new_session(remote);
        self.timers.compact(&self.peers);
        peer.keepalive_at = self
            .config
            .sessions
            .as_ref()
            .and_then(|s| s.keepalive_interval)
            .map(|interval| crate::timer::deadline_after(now, interval));
        self.timers.schedule(&addr, &mut peer);
        self.peers.insert(addr.clone(), peer);
        self.events.push_back(Event::PeerOpened { peer: addr });
    }

    /// Takes `addr`'s peer out of the table, frees what it held, reports
    /// why, and (sessions on) remembers the session and tells the peer.
    fn remove_peer(&mut self, addr: &A, reason: CloseReason, now: Instant) -> bool {
        let Some(mut state) = self.peers.remove(addr) else {
            return false;
        };
        self.reassembly.release_peer(&mut state);
        self.events.push_back(Event::PeerClosed {
            peer: addr.clone(),
            reason,
        });
        let validated = state.trust.validated();
        self.session_closed(addr, state.session, validated, reason, now);
        true
    }
}

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
//!   open a peer.
//! - **MTU.** No datagram larger than [`Config::mtu`] is sent or accepted.
//!   Without segmentation a message is one datagram, sent and delivered as the
//!   same [`Bytes`] (no copy), and a larger one is refused by
//!   [`Endpoint::send`] with the message handed back.
//! - **Segmentation** (opt-in through [`Config::segmentation`]; both sides must
//!   agree). Each datagram carries a 9-byte [`Header`] (version, message id,
//!   fragment index, fragment count); messages up to
//!   [`Segmentation::max_message_size`] are split to fit the MTU and rebuilt in
//!   any arrival order, duplicates ignored. See [`Segmentation`] for the limits
//!   on what peers can make the endpoint hold, and the header layout below.
//! - **Malformed datagrams** are dropped and reported
//!   ([`Event::DatagramDropped`], or [`Event::MessageDropped`] when they spoil a
//!   partial message); nothing a peer sends can make a call fail or affect
//!   another peer.
//! - **Time** comes in as `now` on [`Endpoint::receive`] and
//!   [`Endpoint::handle_timeout`]; [`Endpoint::poll_timeout`] says when the next
//!   timer is due. Calling `handle_timeout` early or twice is harmless.
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

mod config;
mod error;
mod peer;
mod reassembly;
mod segment;
mod stats;

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;

pub use config::{
    Config, ConfigError, Segmentation, MTU_ETHERNET_IPV4, MTU_ETHERNET_IPV6, MTU_MAX_IPV4,
    MTU_MAX_IPV6,
};
pub use error::{Backlogged, DropReason, PeerError, SendError, SendErrorKind};
pub use segment::{Header, HEADER_LEN, VERSION};
pub use stats::{EndpointStats, ErrorStats, PeerStats};

use crate::buf::Flow;
use peer::{Peer, Timers};
use reassembly::Reassembly;

/// What an [`Endpoint`] reports, from [`Endpoint::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<A> {
    /// The first valid datagram from a new address opened a peer.
    PeerOpened {
        /// The peer's address.
        peer: A,
    },
    /// The peer table is full; a datagram from this new address was dropped.
    PeerRefused {
        /// The refused address.
        peer: A,
    },
    /// A peer left the table; whatever it had partly sent was freed.
    PeerClosed {
        /// The peer's address.
        peer: A,
        /// Why it was closed.
        reason: CloseReason,
    },
    /// A whole message. Without segmentation, and for a message that fitted
    /// one fragment, `payload` is the received datagram's own [`Bytes`] (no
    /// copy); a reassembled message is one new buffer.
    Message {
        /// The sender.
        peer: A,
        /// The message.
        payload: Bytes,
    },
    /// A datagram was malformed or broke a limit and was dropped whole;
    /// nothing else changed.
    DatagramDropped {
        /// The sender.
        peer: A,
        /// What was wrong with it.
        error: PeerError,
    },
    /// A partial message was discarded and its memory freed.
    MessageDropped {
        /// The sender.
        peer: A,
        /// The message id from its segment headers.
        message_id: u32,
        /// Why it was discarded.
        reason: DropReason,
    },
    /// `poll_transmit` took the outgoing queue from above
    /// [`Config::send_high_mark`] to at most [`Config::send_low_mark`]
    /// bytes: sending may resume. Reported once per crossing, after the
    /// events already queued.
    Drained,
}

/// Why a peer was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Nothing valid arrived from the peer for [`Config::idle_timeout`].
    IdleTimeout,
    /// The caller called [`Endpoint::close`].
    Closed,
}

/// One datagram waiting for [`Endpoint::poll_transmit`].
#[derive(Debug)]
struct Outgoing<A> {
    to: A,
    header: Option<[u8; HEADER_LEN]>,
    payload: Bytes,
}

impl<A> Outgoing<A> {
    fn len(&self) -> usize {
        self.payload.len() + if self.header.is_some() { HEADER_LEN } else { 0 }
    }
}

/// A datagram endpoint: a peer table, the outgoing queue and, when configured,
/// segmentation and reassembly. See the [module docs](self) for an example.
///
/// Calls may come in any order: inputs ([`receive`](Self::receive),
/// [`handle_timeout`](Self::handle_timeout)), commands
/// ([`send`](Self::send), [`close`](Self::close)) and the polls
/// ([`poll_event`](Self::poll_event), [`poll_transmit`](Self::poll_transmit),
/// [`poll_timeout`](Self::poll_timeout)). A loop that feeds whatever the
/// socket yields, then drains events and datagrams, then sleeps until the
/// socket is readable or `poll_timeout` passes, is all the driving it needs.
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
}

impl<A: Clone + Eq + Hash + Debug> Endpoint<A> {
    /// An endpoint whose first message id comes from the operating system's
    /// randomness (so a restarted sender does not reuse recent ids).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_random(config, crate::default_random())
    }

    /// An endpoint whose first message id is drawn from `random`
    /// (for example [`crate::seeded_random`] in tests).
    pub fn with_random(
        config: Config,
        mut random: impl crate::RandomSource,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut flow = Flow::new();
        flow.set_marks(config.send_high_mark, config.send_low_mark);
        Ok(Self {
            config,
            peers: HashMap::new(),
            timers: Timers::new(),
            reassembly: Reassembly::default(),
            events: VecDeque::new(),
            outgoing: VecDeque::new(),
            queued_bytes: 0,
            next_message_id: random.next_u32(),
            next_generation: 0,
            flow,
            stats: EndpointStats::default(),
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
    /// Only a valid datagram opens a peer or refreshes its idle timer. While
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

    fn take(&mut self, from: A, datagram: Bytes, now: Instant) {
        if datagram.len() > self.config.mtu {
            let error = PeerError::DatagramTooLarge {
                len: datagram.len(),
                max: self.config.mtu,
            };
            self.events
                .push_back(Event::DatagramDropped { peer: from, error });
            return;
        }
        let len = datagram.len();
        let Some(max_fragments) = self.config.segmentation.as_ref().map(|s| s.max_fragments) else {
            if self.touch_peer(&from, len, now) {
                self.events.push_back(Event::Message {
                    peer: from,
                    payload: datagram,
                });
            }
            return;
        };
        let header = match check_header(&datagram, max_fragments) {
            Ok(header) => header,
            Err(error) => {
                self.events
                    .push_back(Event::DatagramDropped { peer: from, error });
                return;
            }
        };
        if !self.touch_peer(&from, len, now) {
            return;
        }
        let Some(seg) = &self.config.segmentation else {
            return;
        };
        // `check_header` saw at least HEADER_LEN bytes; `min` keeps this total.
        let payload = datagram.slice(HEADER_LEN.min(datagram.len())..);
        self.reassembly.receive(
            seg,
            &from,
            &mut self.peers,
            header,
            payload,
            now,
            &mut self.events,
        );
        if let Some(peer) = self.peers.get_mut(&from) {
            self.timers.schedule(&from, peer);
        }
    }

    /// Queues `message` for `to`: one datagram, or with segmentation as many
    /// fragments as it takes. Nothing is queued on error, and the message is
    /// handed back inside it ([`SendError::into_payload`](crate::SendError::into_payload)).
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
        let fragment_len = self.config.mtu.saturating_sub(HEADER_LEN);
        let segmented = self.config.segmentation.is_some();
        let (count, wire_len) = if segmented {
            let count = config::fragments_for(message.len(), fragment_len);
            let headers = count.saturating_mul(HEADER_LEN);
            (count, message.len().saturating_add(headers))
        } else {
            (1, message.len())
        };
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
        if !segmented {
            self.outgoing.push_back(Outgoing {
                to,
                header: None,
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
                header: Some(header.encode()),
                payload,
            });
        }
        Ok(())
    }

    /// Removes `peer` from the table, freeing its partial messages, and
    /// reports [`Event::PeerClosed`] with [`CloseReason::Closed`]. Returns
    /// false if there was no such peer. Datagrams already queued for it are
    /// still sent.
    pub fn close(&mut self, peer: &A) -> bool {
        let Some(mut state) = self.peers.remove(peer) else {
            return false;
        };
        self.reassembly.release_peer(&mut state);
        self.events.push_back(Event::PeerClosed {
            peer: peer.clone(),
            reason: CloseReason::Closed,
        });
        self.stats.peers_closed += 1;
        true
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
        if let Some(header) = &datagram.header {
            out.extend_from_slice(header);
        }
        out.extend_from_slice(&datagram.payload);
        Some(datagram.to)
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do (idle expiry or a reassembly deadline). It may be
    /// slightly early, never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs every timer due at `now`: drops partial messages past their
    /// reassembly timeout and closes peers idle for `idle_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let first = self.events.len();
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
                if let Some(mut state) = self.peers.remove(&timer.peer) {
                    self.reassembly.release_peer(&mut state);
                }
                self.events.push_back(Event::PeerClosed {
                    peer: timer.peer,
                    reason: CloseReason::IdleTimeout,
                });
            } else {
                self.timers.schedule(&timer.peer, peer);
            }
        }
    }

    /// Peers in the table.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// True if `peer` is in the table.
    pub fn contains_peer(&self, peer: &A) -> bool {
        self.peers.contains_key(peer)
    }

    /// The addresses in the table, in no particular order.
    pub fn peers(&self) -> impl Iterator<Item = &A> + '_ {
        self.peers.keys()
    }

    /// Fragment payload bytes held in partial messages, across all peers.
    /// Returns to 0 once every partial message has completed, timed out or
    /// been dropped.
    pub fn buffered_bytes(&self) -> usize {
        self.reassembly.buffered
    }

    /// Partial messages held, across all peers.
    pub fn partial_count(&self) -> usize {
        self.reassembly.partials
    }

    /// Datagrams waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn queued_datagrams(&self) -> usize {
        self.outgoing.len()
    }

    /// Bytes (headers included) waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Refreshes the idle timer of `addr`'s peer, opening one if there is
    /// room. Returns false (after reporting it) if the table is full.
    fn touch_peer(&mut self, addr: &A, len: usize, now: Instant) -> bool {
        let expires_at = crate::timer::deadline_after(now, self.config.idle_timeout);
        if let Some(peer) = self.peers.get_mut(addr) {
            peer.expires_at = peer.expires_at.max(expires_at);
            peer.stats.rx.bytes += len as u64;
            peer.stats.rx.frames += 1;
            return true;
        }
        if self.peers.len() >= self.config.max_peers {
            self.events
                .push_back(Event::PeerRefused { peer: addr.clone() });
            return false;
        }
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let mut peer = Peer::new(generation, expires_at);
        peer.stats.rx.bytes = len as u64;
        peer.stats.rx.frames = 1;
        self.timers.schedule(addr, &mut peer);
        self.peers.insert(addr.clone(), peer);
        self.events
            .push_back(Event::PeerOpened { peer: addr.clone() });
        true
    }
}

/// Parses a segment header and checks it against the configured fragment
/// limit, before any state is looked up.
fn check_header(datagram: &[u8], max_fragments: u16) -> Result<Header, PeerError> {
    let header = Header::parse(datagram)?;
    if header.count > max_fragments {
        return Err(PeerError::TooManyFragments {
            count: header.count,
            max: max_fragments,
        });
    }
    if header.count > 1 && datagram.len() <= HEADER_LEN {
        return Err(PeerError::EmptyFragment {
            index: header.index,
            count: header.count,
        });
    }
    Ok(header)
}

//! What an endpoint counts, in all and per peer, and what it holds.

use std::fmt::Debug;
use std::hash::Hash;

use super::{DropReason, Endpoint, Event, PeerError};
use crate::Traffic;

/// Counters of an [`Endpoint`], from [`Endpoint::stats`].
///
/// - `rx.bytes` and `rx.frames`: datagrams taken by `receive` (not handed
///   back as [`Backlogged`](super::Backlogged)), dropped ones included;
///   `rx.messages`: messages delivered as [`Event::Message`].
/// - `tx.bytes` and `tx.frames`: datagrams handed out by `poll_transmit`,
///   segment headers included; `tx.messages`: messages queued by `send`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Received.
    pub rx: Traffic,
    /// Sent.
    pub tx: Traffic,
    /// Peers opened ([`Event::PeerOpened`]).
    pub peers_opened: u64,
    /// Peers closed, for any reason ([`Event::PeerClosed`]).
    pub peers_closed: u64,
    /// What was dropped or refused, by kind.
    pub errors: ErrorStats,
    /// Control datagrams (sessions on).
    pub sessions: SessionStats,
}

/// What an endpoint with sessions sent and received besides messages.
/// Control datagrams also count in `rx.frames` and `tx.frames`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Keepalives queued.
    pub keepalives_sent: u64,
    /// Keepalives taken (each refreshed its session's idle timer).
    pub keepalives_received: u64,
    /// Keepalives due but not queued: the outgoing queue was full, or the
    /// one keepalive of a session not validated was over
    /// [`Sessions::notice_limit`](super::Sessions::notice_limit).
    pub keepalives_skipped: u64,
    /// Close notices queued.
    pub notices_sent: u64,
    /// Well-formed close notices received, whether or not they closed a
    /// session.
    pub notices_received: u64,
    /// Close notices not sent: over
    /// [`Sessions::notice_limit`](super::Sessions::notice_limit) (refusals,
    /// answers to closed sessions' datagrams, notices to sessions not
    /// validated), or the outgoing queue was full.
    pub notices_suppressed: u64,
}

/// Counters of one peer, from [`Endpoint::peer_stats`]: the same as
/// [`EndpointStats`], counted while the peer is in the table. Datagrams
/// that were dropped before their sender was looked up (too large, a bad
/// segment or session header: [`ErrorStats::too_large`],
/// [`bad_header`](ErrorStats::bad_header) and
/// [`bad_session_header`](ErrorStats::bad_session_header)) count only in
/// the endpoint's totals.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// Received: valid datagrams, and the messages they completed.
    pub rx: Traffic,
    /// Sent: datagrams taken by `poll_transmit` (`messages` stays 0:
    /// sending does not open a peer, so messages are counted only in the
    /// endpoint's totals).
    pub tx: Traffic,
    /// Datagrams dropped ([`Event::DatagramDropped`]) after the peer was
    /// looked up: fragments that fit no message or its partial one, and
    /// (sessions on) datagrams of another session. Such a fragment opens
    /// no peer: from a sender not in the table it counts only in the
    /// endpoint's totals.
    pub datagrams_dropped: u64,
    /// Partial messages dropped ([`Event::MessageDropped`]).
    pub messages_dropped: u64,
}

/// What an endpoint dropped or refused, by kind. None of these ends
/// anything but the datagram or message concerned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorStats {
    /// Datagrams over the MTU ([`PeerError::DatagramTooLarge`]).
    pub too_large: u64,
    /// Datagrams with a segment header that cannot be taken (short, an
    /// unknown version, a count or index out of range, an empty fragment).
    pub bad_header: u64,
    /// Fragments that contradict the partial message they belong to (a
    /// count mismatch, an overlap, over the message size), whether the
    /// datagram alone or the whole partial message was dropped.
    pub bad_fragment: u64,
    /// Datagrams from new addresses while the peer table was full
    /// ([`Event::PeerRefused`]).
    pub peers_refused: u64,
    /// Partial messages not completed in time ([`DropReason::TimedOut`]).
    pub reassembly_timeouts: u64,
    /// Partial messages dropped to make room ([`DropReason::Evicted`],
    /// [`DropReason::GlobalLimit`], [`DropReason::Displaced`]).
    pub evictions: u64,
    /// Messages `send` refused: too large for the configuration.
    pub send_too_large: u64,
    /// Messages `send` refused: the outgoing queue was full.
    pub send_queue_full: u64,
    /// Messages `send` refused: no open session with the destination.
    pub send_no_session: u64,
    /// Datagrams handed out by `poll_transmit` that the socket then
    /// refused to send (an unreachable destination, an address no datagram
    /// can go to), as the caller reported them with
    /// [`Endpoint::transmit_failed`] (the tokio adapter does). Each is
    /// dropped, as the network might have dropped it; it still counts in
    /// `tx`.
    pub transmit_failed: u64,
    /// Datagrams with a session header that cannot be taken (short, an
    /// unknown kind, a control datagram of the wrong length, an unknown
    /// close reason, a zero session id).
    pub bad_session_header: u64,
    /// Datagrams of a closed session ([`PeerError::StaleSession`]), and
    /// keepalives and notices that match no session
    /// ([`PeerError::UnknownSession`]).
    pub stale_session: u64,
    /// Messages carrying a new session id from the address of an open
    /// session, held back until a second one confirms it
    /// ([`PeerError::UnconfirmedSession`]).
    pub unconfirmed_session: u64,
}

impl ErrorStats {
    fn count_peer_error(&mut self, error: &PeerError) {
        let counter = match error {
            PeerError::DatagramTooLarge { .. } => &mut self.too_large,
            PeerError::Truncated { .. }
            | PeerError::UnknownVersion(_)
            | PeerError::ZeroFragmentCount
            | PeerError::TooManyFragments { .. }
            | PeerError::IndexOutOfRange { .. }
            | PeerError::EmptyFragment { .. } => &mut self.bad_header,
            PeerError::MessageTooLarge { .. }
            | PeerError::CountMismatch { .. }
            | PeerError::Overlap { .. }
            | PeerError::FragmentTooLarge { .. } => &mut self.bad_fragment,
            PeerError::SessionTruncated { .. }
            | PeerError::UnknownKind(_)
            | PeerError::ControlLength { .. }
            | PeerError::UnknownCloseReason(_)
            | PeerError::ZeroSessionId => &mut self.bad_session_header,
            PeerError::StaleSession { .. } | PeerError::UnknownSession { .. } => {
                &mut self.stale_session
            }
            PeerError::UnconfirmedSession { .. } => &mut self.unconfirmed_session,
        };
        *counter += 1;
    }

    fn count_drop(&mut self, reason: &DropReason) {
        match reason {
            DropReason::TimedOut => self.reassembly_timeouts += 1,
            DropReason::Invalid(e) => self.count_peer_error(e),
            DropReason::Evicted | DropReason::GlobalLimit | DropReason::Displaced => {
                self.evictions += 1;
            }
        }
    }
}

/// True for the errors found before a datagram's sender is looked up
/// (the datagram's length, its session or segment header alone), which
/// count only in the endpoint's totals.
fn before_lookup(error: &PeerError) -> bool {
    match error {
        PeerError::DatagramTooLarge { .. }
        | PeerError::Truncated { .. }
        | PeerError::UnknownVersion(_)
        | PeerError::ZeroFragmentCount
        | PeerError::TooManyFragments { .. }
        | PeerError::IndexOutOfRange { .. }
        | PeerError::EmptyFragment { .. }
        | PeerError::SessionTruncated { .. }
        | PeerError::UnknownKind(_)
        | PeerError::ControlLength { .. }
        | PeerError::UnknownCloseReason(_)
        | PeerError::ZeroSessionId => true,
        PeerError::MessageTooLarge { .. }
        | PeerError::CountMismatch { .. }
        | PeerError::Overlap { .. }
        | PeerError::FragmentTooLarge { .. }
        | PeerError::StaleSession { .. }
        | PeerError::UnknownSession { .. }
        | PeerError::UnconfirmedSession { .. } => false,
    }
}

impl<A: Clone + Eq + Hash + Debug> Endpoint<A> {
    /// The ids of the session with `peer` (sessions on, the peer open):
    /// the one this endpoint sends, and the peer's once it was heard from.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use sansproto::datagram::{Config, Endpoint, Sessions};
    /// use std::time::Instant;
    ///
    /// let mut config = Config::default();
    /// config.sessions = Some(Sessions::default());
    /// let mut a = Endpoint::new(config).unwrap();
    /// let peer = "192.0.2.1:4000";
    /// a.open(peer, Instant::now()).unwrap();
    /// a.send(peer, Bytes::from_static(b"hi")).unwrap();
    /// let mut datagram = Vec::new();
    /// a.poll_transmit(&mut datagram);
    /// let ids = a.session_ids(&peer).unwrap();
    /// assert_eq!(datagram[1..5], ids.local.to_be_bytes()); // after the kind byte
    /// assert_eq!(ids.remote, None); // nothing heard yet
    /// ```
    pub fn session_ids(&self, peer: &A) -> Option<super::SessionIds> {
        self.peers.get(peer)?.session
    }

    /// The endpoint's totals, returned by value (see [`EndpointStats`]).
    /// Counting is always on and costs a few additions per datagram,
    /// never per byte.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use sansproto::datagram::{Config, Endpoint};
    /// use std::time::Instant;
    ///
    /// let mut a = Endpoint::<u32>::new(Config::default()).unwrap();
    /// let mut b = Endpoint::<u32>::new(Config::default()).unwrap();
    /// a.send(2, Bytes::from_static(b"hello")).unwrap();
    /// let mut datagram = Vec::new();
    /// while let Some(_to) = a.poll_transmit(&mut datagram) {
    ///     b.receive(1, Bytes::from(std::mem::take(&mut datagram)), Instant::now()).unwrap();
    /// }
    /// assert_eq!((a.stats().tx.bytes, a.stats().tx.messages), (5, 1));
    /// assert_eq!((b.stats().rx.frames, b.stats().rx.messages), (1, 1));
    /// assert_eq!(b.peer_stats(&1).map(|s| s.rx.bytes), Some(5));
    /// ```
    pub fn stats(&self) -> EndpointStats {
        let mut stats = self.stats.clone();
        stats.tx.bytes = self.flow.taken();
        stats
    }

    /// Counts a datagram from [`poll_transmit`](Self::poll_transmit) that
    /// the socket refused to send, in
    /// [`ErrorStats::transmit_failed`]. A refused datagram is the caller's
    /// to drop, as a lost one: the endpoint does not send it again, and
    /// one datagram's destination (a source address forged to port 0, say,
    /// that a refusal notice answers) is no reason to stop the others.
    pub fn transmit_failed(&mut self) {
        self.stats.errors.transmit_failed += 1;
    }

    /// The counters of `peer` while it is in the table (see
    /// [`PeerStats`]); `None` for an address that is not.
    pub fn peer_stats(&self, peer: &A) -> Option<PeerStats> {
        self.peers.get(peer).map(|p| p.stats.clone())
    }

    /// True from the moment more than
    /// [`Config::send_high_mark`](super::Config::send_high_mark) bytes
    /// are queued ([`queued_bytes`](Self::queued_bytes)) until
    /// `poll_transmit` leaves at most
    /// [`Config::send_low_mark`](super::Config::send_low_mark), which
    /// [`Event::Drained`] reports. Always false without a high mark.
    pub fn is_backpressured(&self) -> bool {
        self.flow.is_above(self.queued_bytes)
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

    /// Counts the events queued from index `first` on.
    pub(super) fn tally(&mut self, first: usize) {
        let Self {
            events,
            peers,
            stats,
            ..
        } = self;
        for event in events.range(first..) {
            match event {
                Event::PeerOpened { .. } => stats.peers_opened += 1,
                Event::PeerClosed { .. } => stats.peers_closed += 1,
                Event::PeerRefused { .. } => stats.errors.peers_refused += 1,
                Event::Message { peer, .. } => {
                    stats.rx.messages += 1;
                    if let Some(p) = peers.get_mut(peer) {
                        p.stats.rx.messages += 1;
                    }
                }
                Event::DatagramDropped { peer, error } => {
                    stats.errors.count_peer_error(error);
                    if before_lookup(error) {
                        continue;
                    }
                    if let Some(p) = peers.get_mut(peer) {
                        p.stats.datagrams_dropped += 1;
                    }
                }
                Event::MessageDropped { peer, reason, .. } => {
                    stats.errors.count_drop(reason);
                    if let Some(p) = peers.get_mut(peer) {
                        p.stats.messages_dropped += 1;
                    }
                }
                Event::Drained => {}
            }
        }
    }
}

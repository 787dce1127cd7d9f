//! Sessions (opt-in through [`Config::sessions`](super::Config::sessions)):
//! close notices, keepalives, and the decisions an endpoint makes about a
//! datagram's session id. The header's bytes are in
//! [`session_wire`](super::session_wire).
//!
//! Each side of a session draws its own non-zero id when the session opens
//! on its side and puts it in every datagram it sends. A receiver learns the
//! peer's id from its first datagram and then takes only datagrams carrying
//! it: one with an id remembered from a closed session is dropped (and the
//! peer told, within the notice limit); a message with any other id is held
//! as the session's candidate, and only a second message with that id ends
//! the old session and opens a new one ([`Trust`]). Keepalives and close
//! notices to a session whose address is not validated go out within the
//! notice limit, and at most one keepalive per session.

use std::fmt;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::closed::{ClosedSessions, NoticeLimit};
use super::error::{OpenError, PeerError};
use super::session_wire::{Head, Notice, Parsed};
use super::{CloseReason, Endpoint, Event, Outgoing};
use crate::timer::Clock;

/// The two ids of one session, as one side holds them
/// ([`Endpoint::session_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionIds {
    /// This endpoint's id, in every datagram it sends to the peer.
    pub local: u32,
    /// The peer's id, once a datagram from it arrived.
    pub remote: Option<u32>,
}

/// What an endpoint has seen of one session's peer (sessions on): whether
/// its address is validated, and a new session id seen once from it.
///
/// The wire carries no echo of the receiver's id outside close notices, so
/// nothing proves that a datagram came from the address it names. A
/// session counts as validated when the caller opened it
/// ([`Endpoint::open`]: the caller chose the address) or when two
/// datagrams of it arrived: evidence, not proof, that the peer is there.
/// The candidate is one id per session, replaced by any other new id, and
/// forgotten an idle timeout after it was seen, as a peer heard from once
/// would be.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Trust {
    /// The caller opened the session.
    opened: bool,
    /// Datagrams of the session taken, counted up to two.
    heard: u8,
    /// The one keepalive a session not yet validated may get came due.
    probed: bool,
    /// A new session id from the same address, seen once, and when it is
    /// forgotten.
    candidate: Option<(u32, Instant)>,
}

impl Trust {
    /// True once the caller opened the session or two of its datagrams
    /// arrived.
    pub(crate) fn validated(&self) -> bool {
        self.opened || self.heard >= 2
    }

    /// Counts a datagram of the session.
    fn heard(&mut self) {
        self.heard = self.heard.saturating_add(1).min(2);
    }

    /// True if `id` is the candidate and was seen within `forget_after`
    /// of `now`; otherwise makes it the candidate, seen at `now`.
    fn seen_again(&mut self, id: u32, now: Instant, forget_after: Duration) -> bool {
        if self
            .candidate
            .is_some_and(|(c, until)| c == id && until > now)
        {
            return true;
        }
        self.candidate = Some((id, crate::timer::deadline_after(now, forget_after)));
        false
    }

    /// True the first time it is asked of a session not validated: the
    /// one keepalive it may get.
    fn probe(&mut self) -> bool {
        !std::mem::replace(&mut self.probed, true)
    }
}

/// An endpoint's session bookkeeping beyond its peer table.
pub(crate) struct SessionState<A> {
    pub(crate) closed: ClosedSessions<A>,
    limit: NoticeLimit,
    rng: StdRng,
    /// The latest `now` the endpoint was given: what its timers go by (an
    /// older `now` counts as this one), and the time of the commands that
    /// take none (sends, closes).
    pub(crate) clock: Clock,
}

impl<A> fmt::Debug for SessionState<A>
where
    ClosedSessions<A>: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionState")
            .field("closed", &self.closed)
            .field("limit", &self.limit)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<A> SessionState<A> {
    /// Session ids drawn from a generator seeded by `random`.
    pub(crate) fn new(random: &mut impl crate::RandomSource) -> Self {
        let mut seed = [0u8; 32];
        random.fill_bytes(&mut seed);
        Self {
            closed: ClosedSessions::default(),
            limit: NoticeLimit::default(),
            rng: StdRng::from_seed(seed),
            clock: Clock::default(),
        }
    }

    /// Moves the clock to `now` (never back) and returns the latest `now`
    /// seen, the one timers go by.
    pub(crate) fn saw(&mut self, now: Instant) -> Instant {
        self.clock.advance(now)
    }

    /// A fresh non-zero session id.
    fn new_id(&mut self) -> u32 {
        self.rng.next_u32().max(1)
    }
}

impl<A: Clone + Eq + Hash + Debug> Endpoint<A> {
    /// Opens a peer for `peer` at `now` without waiting for it to send:
    /// reports [`Event::PeerOpened`] and starts its idle timer (and, with
    /// sessions on, draws its session id, so that
    /// [`send`](Self::send) may address it; the caller chose the address,
    /// so it counts as validated and gets keepalives at once, see
    /// [`Sessions`](super::Sessions#forged-source-addresses)). The first
    /// message or keepalive from `peer` sets the peer's session id, and
    /// nothing tells it from a forged one: the same section says what a
    /// datagram forged before the peer's first reply can do. Does nothing
    /// for a peer already open.
    ///
    /// ```
    /// use sansproto::datagram::{Config, Endpoint, Event, OpenError, Sessions};
    /// use std::time::Instant;
    ///
    /// let mut config = Config::default();
    /// config.sessions = Some(Sessions::default());
    /// config.max_peers = 1;
    /// let mut endpoint = Endpoint::<u32>::new(config).unwrap();
    /// let now = Instant::now();
    /// assert_eq!(endpoint.open(7, now), Ok(()));
    /// assert_eq!(endpoint.poll_event(), Some(Event::PeerOpened { peer: 7 }));
    /// assert_eq!(endpoint.open(8, now), Err(OpenError::TableFull { max: 1 }));
    /// ```
    pub fn open(&mut self, peer: A, now: Instant) -> Result<(), OpenError> {
        let now = self.sessions.saw(now);
        if self.peers.contains_key(&peer) {
            return Ok(());
        }
        if self.peers.len() >= self.config.max_peers {
            return Err(OpenError::TableFull {
                max: self.config.max_peers,
            });
        }
        self.insert_peer(peer.clone(), now, None);
        if let Some(opened) = self.peers.get_mut(&peer) {
            opened.trust.opened = true;
        }
        self.stats.peers_opened += 1;
        Ok(())
    }

    /// Closed sessions remembered (sessions on), so that their late
    /// datagrams are dropped; at most
    /// [`Sessions::max_remembered`](super::Sessions::max_remembered).
    pub fn remembered_sessions(&self) -> usize {
        self.sessions.closed.len()
    }

    /// The ids a new peer entry holds: a fresh local one with sessions on.
    pub(super) fn new_session(&mut self, remote: Option<u32>) -> Option<SessionIds> {
        self.config.sessions.as_ref()?;
        Some(SessionIds {
            local: self.sessions.new_id(),
            remote,
        })
    }

    /// Decides whether a message datagram carrying session `id` from
    /// `from` is taken: it may open a session, adopt the peer's id, or,
    /// the second time a new id comes from the address of an open session,
    /// end the old session and open a new one. Returns true when the peer
    /// is in the table with this session and its idle timer was refreshed.
    pub(super) fn admit(&mut self, from: &A, id: u32, len: usize, now: Instant) -> bool {
        self.sessions.closed.prune(now);
        let key = (from.clone(), id);
        let current = self
            .peers
            .get(from)
            .map(|p| p.session.and_then(|s| s.remote));
        if current != Some(Some(id)) {
            if let Some(stale) = self.sessions.closed.get(&key, now) {
                self.drop_stale(from, id, stale.local_id, stale.answer, now);
                return false;
            }
            match current {
                Some(None) => {}
                Some(Some(_)) => {
                    if !self.seen_again(from, id, now) {
                        return false;
                    }
                    self.remove_peer(from, CloseReason::Replaced, now);
                    self.insert_peer(from.clone(), now, Some(id));
                    // The new session's first datagram, held back as the
                    // candidate, counts.
                    if let Some(peer) = self.peers.get_mut(from) {
                        peer.trust.heard();
                    }
                }
                None if self.peers.len() >= self.config.max_peers => {
                    self.events
                        .push_back(Event::PeerRefused { peer: from.clone() });
                    let notice = Notice {
                        sender: 0,
                        reason: super::NoticeReason::Refused,
                        receiver: id,
                    };
                    self.send_notice(from, notice, now, false);
                    return false;
                }
                None => self.insert_peer(from.clone(), now, Some(id)),
            }
        }
        self.refresh(from, id, len, now)
    }

    /// A message carrying `id`, new to `from`'s open session: true if it is
    /// the session's candidate seen again, so the session is replaced;
    /// otherwise `id` becomes the candidate and the datagram is dropped.
    fn seen_again(&mut self, from: &A, id: u32, now: Instant) -> bool {
        let idle = self.config.idle_timeout;
        let Some(peer) = self.peers.get_mut(from) else {
            return false;
        };
        if peer.trust.seen_again(id, now, idle) {
            return true;
        }
        let error = PeerError::UnconfirmedSession { session_id: id };
        self.events.push_back(Event::DatagramDropped {
            peer: from.clone(),
            error,
        });
        false
    }

    /// Handles a keepalive or a close notice.
    pub(super) fn on_control(&mut self, from: A, control: Parsed, len: usize, now: Instant) {
        self.sessions.closed.prune(now);
        match control {
            Parsed::Data { .. } => {}
            Parsed::Keepalive { id } => {
                let remote = self
                    .peers
                    .get(&from)
                    .map(|p| p.session.and_then(|s| s.remote));
                let stale = self.sessions.closed.get(&(from.clone(), id), now);
                match (remote, stale) {
                    (Some(Some(r)), _) if r == id => {}
                    (Some(None), None) => {}
                    (_, Some(stale)) => {
                        return self.drop_stale(&from, id, stale.local_id, stale.answer, now);
                    }
                    _ => {
                        let error = PeerError::UnknownSession { session_id: id };
                        self.events
                            .push_back(Event::DatagramDropped { peer: from, error });
                        return;
                    }
                }
                if self.refresh(&from, id, len, now) {
                    self.stats.sessions.keepalives_received += 1;
                }
            }
            Parsed::Close(notice) => {
                self.stats.sessions.notices_received += 1;
                let ids = self.peers.get(&from).and_then(|p| p.session);
                let matches = ids.is_some_and(|ids| {
                    (notice.receiver != 0 && notice.receiver == ids.local)
                        || (notice.sender != 0 && Some(notice.sender) == ids.remote)
                });
                if matches {
                    self.remove_peer(&from, CloseReason::ClosedByPeer(notice.reason), now);
                    return;
                }
                let key = (from.clone(), notice.sender);
                if notice.sender != 0 && self.sessions.closed.get(&key, now).is_some() {
                    return; // both sides closed that session already
                }
                let error = PeerError::UnknownSession {
                    session_id: notice.sender,
                };
                self.events
                    .push_back(Event::DatagramDropped { peer: from, error });
            }
        }
    }

    /// Remembers a session that just closed and, when the peer may not
    /// know, tells it (within the notice limit if the session was not
    /// `validated`). A replaced session is not remembered: its id is one
    /// more new id for the address, so that a peer whose session was
    /// replaced by forged datagrams can take the address back.
    pub(super) fn session_closed(
        &mut self,
        addr: &A,
        ids: Option<SessionIds>,
        validated: bool,
        reason: CloseReason,
        now: Instant,
    ) {
        let (Some(ids), Some(config)) = (ids, self.config.sessions.as_ref()) else {
            return;
        };
        let notice = match reason {
            CloseReason::Closed => Some(super::NoticeReason::Kicked),
            CloseReason::IdleTimeout => Some(super::NoticeReason::Expired),
            _ => None,
        };
        let remembered = ids.remote.filter(|_| reason != CloseReason::Replaced);
        if let Some(remote) = remembered {
            let key = (addr.clone(), remote);
            self.sessions
                .closed
                .remember(config, key, ids.local, notice, now);
        }
        let Some(reason) = notice else {
            return;
        };
        let notice = Notice {
            sender: ids.local,
            reason,
            receiver: ids.remote.unwrap_or(0),
        };
        self.send_notice(addr, notice, now, validated);
    }

    /// Queues a keepalive to `addr` if nothing was sent to it for the
    /// keepalive interval, and sets when the next one is due. A session
    /// not validated gets one keepalive at most, within the notice limit.
    pub(super) fn keepalive(&mut self, addr: &A, now: Instant) {
        let Some(config) = self.config.sessions.as_ref() else {
            return;
        };
        let Some(peer) = self.peers.get_mut(addr) else {
            return;
        };
        let (Some(interval), Some(ids)) = (config.keepalive_interval, peer.session) else {
            return;
        };
        if peer.keepalive_at.is_none_or(|at| at > now) {
            return;
        }
        peer.keepalive_at = Some(crate::timer::deadline_after(now, interval));
        let validated = peer.trust.validated();
        if !validated && !peer.trust.probe() {
            return;
        }
        let allowed = validated || self.sessions.limit.allow(config, now);
        if allowed && self.queue_control(addr.clone(), Head::keepalive(ids.local)) {
            self.stats.sessions.keepalives_sent += 1;
        } else {
            self.stats.sessions.keepalives_skipped += 1;
        }
    }

    /// Notes that a datagram was queued for `addr`'s session: its next
    /// keepalive is due an interval from now.
    pub(super) fn sent_to(&mut self, addr: &A) {
        let interval = self
            .config
            .sessions
            .as_ref()
            .and_then(|s| s.keepalive_interval);
        let (Some(interval), Some(now)) = (interval, self.sessions.clock.latest()) else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(addr) {
            let at = crate::timer::deadline_after(now, interval);
            peer.keepalive_at = Some(peer.keepalive_at.map_or(at, |old| old.max(at)));
        }
    }

    /// Refreshes the idle timer of `from`'s peer for a datagram of its
    /// session `id`, learning the id if it was not known.
    fn refresh(&mut self, from: &A, id: u32, len: usize, now: Instant) -> bool {
        let expires_at = crate::timer::deadline_after(now, self.config.idle_timeout);
        let Some(peer) = self.peers.get_mut(from) else {
            return false;
        };
        if let Some(ids) = peer.session.as_mut() {
            ids.remote = Some(id);
        }
        peer.trust.heard();
        peer.expires_at = peer.expires_at.max(expires_at);
        peer.stats.rx.bytes += len as u64;
        peer.stats.rx.frames += 1;
        true
    }

    /// Drops a datagram of a closed session and, if the peer may still
    /// think the session open, answers with a close notice.
    fn drop_stale(
        &mut self,
        from: &A,
        id: u32,
        local_id: u32,
        answer: Option<super::NoticeReason>,
        now: Instant,
    ) {
        let error = PeerError::StaleSession { session_id: id };
        self.events.push_back(Event::DatagramDropped {
            peer: from.clone(),
            error,
        });
        if let Some(reason) = answer {
            let notice = Notice {
                sender: local_id,
                reason,
                receiver: id,
            };
            self.send_notice(from, notice, now, false);
        }
    }

    /// Queues a close notice to `to` if notices are on: within the notice
    /// limit unless `to` is a `validated` session's address (a refusal, an
    /// answer to a closed session's datagram, or a notice to a session not
    /// validated all count against it).
    fn send_notice(&mut self, to: &A, notice: Notice, now: Instant, validated: bool) {
        let Some(config) = self.config.sessions.as_ref() else {
            return;
        };
        if !config.close_notices {
            return;
        }
        let allowed = validated || self.sessions.limit.allow(config, now);
        if allowed && self.queue_control(to.clone(), Head::close(notice)) {
            self.stats.sessions.notices_sent += 1;
        } else {
            self.stats.sessions.notices_suppressed += 1;
        }
    }

    /// Queues a control datagram if the outgoing queue has room.
    fn queue_control(&mut self, to: A, head: Head) -> bool {
        let len = head.as_slice().len();
        let fits = self.outgoing.len() < self.config.max_queued_datagrams
            && self.queued_bytes.saturating_add(len) <= self.config.max_queued_bytes;
        if fits {
            self.queued_bytes += len;
            self.outgoing.push_back(Outgoing {
                to,
                head,
                payload: Bytes::new(),
            });
        }
        fits
    }
}

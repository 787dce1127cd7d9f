//! Placing fragments into partial messages under the per-peer and
//! endpoint-wide limits, and the accounting of what is held.
//!
//! Every payload byte is charged before it is kept. A fragment that would take
//! its peer over `max_partials_per_peer` or `max_buffered_per_peer`, or the
//! endpoint over `max_partials` or `max_buffered`, first makes room by evicting
//! that peer's own oldest partial messages; if even that cannot make room the
//! fragment is refused and whatever its message already held is freed. The
//! partial-message slots are shared fairly: a peer may open another partial
//! message only while at least as many slots stay free as it already holds,
//! so a group of peers cannot take every slot while a peer holding fewer
//! waits. When more peers hold a slot each than there are slots (spoofed
//! sources, say), a peer holding none still gets one: the oldest partial
//! message of all is displaced. That is the only way one peer's traffic
//! drops another's data.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;

use super::config::Segmentation;
use super::error::{DropReason, PeerError};
use super::peer::Peer;
use super::segment::{Fit, Header, Partial};
use super::Event;

/// What a well-formed fragment would do, decided before its peer is
/// opened or refreshed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// It is taken: stored, delivered, or ignored as a copy of one held or
    /// delivered (it may still be refused for room).
    Valid,
    /// It fits no message on its own (over `max_message_size`, say): it is
    /// dropped and nothing else changes.
    Invalid(PeerError),
    /// It contradicts its peer's partial message of the same id, which is
    /// dropped with it.
    Spoils,
}

/// Checks a fragment of `len` payload bytes from `peer` (`None` when not
/// in the table, or when the fragment is not of the peer's session) the
/// way [`Reassembly::receive`] will take it, without changing anything.
pub(crate) fn check(
    seg: &Segmentation,
    peer: Option<&Peer>,
    header: Header,
    len: usize,
    now: Instant,
) -> Check {
    let id = header.message_id;
    if header.count == 1 || peer.is_some_and(|p| p.was_delivered(id)) {
        return Check::Valid;
    }
    let held = peer.and_then(|p| p.partials.iter().find(|p| p.message_id == id));
    match held {
        Some(partial) => match partial.fit(header, len, seg.max_message_size) {
            Ok(_) => Check::Valid,
            Err(_) => Check::Spoils,
        },
        None => match Partial::new(header, now).fit(header, len, seg.max_message_size) {
            Ok(_) => Check::Valid,
            Err(error) => Check::Invalid(error),
        },
    }
}

/// Endpoint-wide reassembly accounting.
#[derive(Debug)]
pub(crate) struct Reassembly<A> {
    /// Fragment payload bytes held across all peers.
    pub(crate) buffered: usize,
    /// Partial messages held across all peers.
    pub(crate) partials: usize,
    /// Partial messages in the order they were opened: the peer's address
    /// and generation, and the partial's `opened` number. Entries of
    /// partial messages since gone are skipped when met, and dropped in
    /// bulk once they outnumber the live ones.
    order: VecDeque<(A, u64, u64)>,
    next_opened: u64,
}

impl<A> Default for Reassembly<A> {
    fn default() -> Self {
        Self {
            buffered: 0,
            partials: 0,
            order: VecDeque::new(),
            next_opened: 0,
        }
    }
}

impl<A: Clone + Eq + Hash> Reassembly<A> {
    /// The heap the order of partial messages holds.
    pub(crate) fn heap(&self) -> usize {
        crate::memory::slots::<(A, u64, u64)>(self.order.capacity())
    }

    /// Handles one well-formed fragment (header already checked against the
    /// configuration) from the peer at `addr`, in the table.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn receive(
        &mut self,
        seg: &Segmentation,
        addr: &A,
        peers: &mut HashMap<A, Peer>,
        header: Header,
        payload: Bytes,
        now: Instant,
        events: &mut VecDeque<Event<A>>,
    ) {
        let id = header.message_id;
        self.forget_gone(peers);
        if self.partials >= seg.max_partials
            && peers
                .get(addr)
                .is_some_and(|p| p.partials.is_empty() && !p.was_delivered(id))
            && header.count > 1
            && Partial::new(header, now)
                .fit(header, payload.len(), seg.max_message_size)
                .is_ok()
        {
            // Every slot is held and this peer holds none: the oldest
            // partial message of all makes room.
            self.displace_oldest(peers, events);
        }
        let Some(peer) = peers.get_mut(addr) else {
            return;
        };
        if peer.was_delivered(id) {
            return; // a late copy of a message already delivered
        }
        if header.count == 1 {
            peer.record_delivered(id, seg.duplicate_window);
            events.push_back(Event::Message {
                peer: addr.clone(),
                payload,
            });
            return;
        }
        let len = payload.len();
        let existing = peer.partials.iter().position(|p| p.message_id == id);
        let (mut slot, fit) = match existing.and_then(|i| Some((i, peer.partials.get(i)?))) {
            Some((i, partial)) => match partial.fit(header, len, seg.max_message_size) {
                Ok(Fit::Duplicate) => return,
                Ok(fit) => (i, fit),
                Err(error) => {
                    self.drop_partial(addr, peer, i, DropReason::Invalid(error), events);
                    return;
                }
            },
            None => {
                let deadline = crate::timer::deadline_after(now, seg.reassembly_timeout);
                let partial = Partial::new(header, deadline);
                let fit = match partial.fit(header, len, seg.max_message_size) {
                    Ok(Fit::Duplicate) => return,
                    Ok(fit) => fit,
                    Err(error) => {
                        events.push_back(Event::DatagramDropped {
                            peer: addr.clone(),
                            error,
                        });
                        return;
                    }
                };
                // Room for one more partial message, made only from this
                // peer's own oldest ones. Fair share of the endpoint-wide
                // slots: once this one opens, at least as many slots must
                // stay free as the peer holds, so a peer holding fewer can
                // always open one; a peer at its share replaces its own
                // oldest instead of taking more. (Evicting one of its own
                // frees a slot and lowers its holding: each eviction counts
                // twice.)
                let held = peer.partials.len();
                let per_peer = held
                    .saturating_add(1)
                    .saturating_sub(seg.max_partials_per_peer);
                let over = self
                    .partials
                    .saturating_add(1)
                    .saturating_add(held)
                    .saturating_sub(seg.max_partials);
                let evictions = per_peer.max(over.div_ceil(2));
                if evictions > peer.partials.len() {
                    events.push_back(Event::MessageDropped {
                        peer: addr.clone(),
                        message_id: id,
                        reason: DropReason::GlobalLimit,
                    });
                    return;
                }
                for _ in 0..evictions {
                    self.drop_partial(addr, peer, 0, DropReason::Evicted, events);
                }
                let mut partial = partial;
                partial.opened = self.next_opened;
                self.next_opened = self.next_opened.wrapping_add(1);
                self.order
                    .push_back((addr.clone(), peer.generation, partial.opened));
                peer.partials.push(partial);
                self.partials = self.partials.saturating_add(1);
                (peer.partials.len().saturating_sub(1), fit)
            }
        };

        // Charge the payload before keeping it, making room only from this
        // peer's own other partial messages, oldest first, and only if that
        // can be enough.
        let held_here = peer.partials.get(slot).map_or(0, |p| p.bytes);
        let others = peer.buffered.saturating_sub(held_here);
        if over(self.buffered.saturating_sub(others), len, seg.max_buffered) {
            self.drop_partial(addr, peer, slot, DropReason::GlobalLimit, events);
            return;
        }
        let must_evict = |this: &Self, peer: &Peer| {
            over(peer.buffered, len, seg.max_buffered_per_peer)
                || over(this.buffered, len, seg.max_buffered)
        };
        while must_evict(self, peer) && peer.partials.len() > 1 {
            let victim = usize::from(slot == 0);
            self.drop_partial(addr, peer, victim, DropReason::Evicted, events);
            if victim < slot {
                slot -= 1;
            }
        }
        if must_evict(self, peer) {
            // Unreachable with a validated configuration (the per-peer limit is
            // at least one whole message); refuse rather than exceed it.
            let error = PeerError::MessageTooLarge {
                at_least: peer.buffered.saturating_add(len),
                max: seg.max_buffered_per_peer,
            };
            self.drop_partial(addr, peer, slot, DropReason::Invalid(error), events);
            return;
        }
        let Some(partial) = peer.partials.get_mut(slot) else {
            return;
        };
        partial.insert(fit, header.index, payload);
        peer.buffered = peer.buffered.saturating_add(len);
        self.buffered = self.buffered.saturating_add(len);
        if partial.is_complete() {
            let partial = peer.partials.remove(slot);
            self.release(peer, &partial);
            peer.record_delivered(id, seg.duplicate_window);
            events.push_back(Event::Message {
                peer: addr.clone(),
                payload: partial.assemble(),
            });
        }
    }

    /// Drops the oldest partial message still held, of whichever peer.
    fn displace_oldest(&mut self, peers: &mut HashMap<A, Peer>, events: &mut VecDeque<Event<A>>) {
        while let Some((addr, generation, opened)) = self.order.pop_front() {
            let Some(peer) = peers.get_mut(&addr).filter(|p| p.generation == generation) else {
                continue;
            };
            if let Some(i) = peer.partials.iter().position(|p| p.opened == opened) {
                self.drop_partial(&addr, peer, i, DropReason::Displaced, events);
                return;
            }
        }
    }

    /// Drops the order's entries of partial messages since gone, once they
    /// outnumber the live ones (amortised: each entry is looked at a
    /// bounded number of times).
    fn forget_gone(&mut self, peers: &HashMap<A, Peer>) {
        if self.order.len() <= self.partials.saturating_mul(2).saturating_add(64) {
            return;
        }
        self.order.retain(|(addr, generation, opened)| {
            peers.get(addr).is_some_and(|p| {
                p.generation == *generation && p.partials.iter().any(|x| x.opened == *opened)
            })
        });
    }

    /// Drops every partial message of `peer` whose deadline has passed.
    pub(crate) fn expire(
        &mut self,
        addr: &A,
        peer: &mut Peer,
        now: Instant,
        events: &mut VecDeque<Event<A>>,
    ) {
        while let Some(i) = peer.partials.iter().position(|p| p.deadline <= now) {
            self.drop_partial(addr, peer, i, DropReason::TimedOut, events);
        }
    }

    /// Frees everything `peer` holds (it is leaving the table).
    pub(crate) fn release_peer(&mut self, peer: &mut Peer) {
        for partial in std::mem::take(&mut peer.partials) {
            self.release(peer, &partial);
        }
    }

    fn drop_partial(
        &mut self,
        addr: &A,
        peer: &mut Peer,
        index: usize,
        reason: DropReason,
        events: &mut VecDeque<Event<A>>,
    ) {
        if index >= peer.partials.len() {
            return;
        }
        let partial = peer.partials.remove(index);
        self.release(peer, &partial);
        events.push_back(Event::MessageDropped {
            peer: addr.clone(),
            message_id: partial.message_id,
            reason,
        });
    }

    fn release(&mut self, peer: &mut Peer, partial: &Partial) {
        peer.buffered = peer.buffered.saturating_sub(partial.bytes);
        self.buffered = self.buffered.saturating_sub(partial.bytes);
        self.partials = self.partials.saturating_sub(1);
    }
}

/// True when holding `add` more bytes on top of `held` would exceed `limit`.
fn over(held: usize, add: usize, limit: usize) -> bool {
    held.checked_add(add).is_none_or(|total| total > limit)
}

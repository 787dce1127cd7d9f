//! What an endpoint with sessions remembers about sessions it closed, and
//! the limit on what it sends to addresses that have no session or one
//! not validated.
//!
//! Both are bounded whatever peers send: the memory holds at most
//! [`Sessions::max_remembered`] entries, each for at most
//! [`Sessions::remember_for`]; the limiter lets at most
//! [`Sessions::notice_limit`] unsolicited datagrams out per
//! [`Sessions::notice_window`].

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use super::config::Sessions;
use super::session_wire::NoticeReason;

/// One closed session, keyed by (address, the peer's session id).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClosedSession {
    /// The id this endpoint used in the closed session.
    pub(crate) local_id: u32,
    /// What to tell the peer if it keeps sending in the closed session:
    /// `None` when the peer is known to have moved on (it closed the session
    /// itself, or opened a new one).
    pub(crate) answer: Option<NoticeReason>,
    /// When the entry is forgotten.
    until: Instant,
    /// Distinguishes this entry from an earlier one under the same key.
    seq: u64,
}

/// Recently closed sessions, oldest first.
#[derive(Debug)]
pub(crate) struct ClosedSessions<A> {
    map: HashMap<(A, u32), ClosedSession>,
    /// Every entry in the order remembered, with its expiry and `seq`; an
    /// entry overwritten in `map` stays here until it reaches the front.
    order: VecDeque<((A, u32), Instant, u64)>,
    next_seq: u64,
}

impl<A> Default for ClosedSessions<A> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }
}

impl<A: Clone + Eq + Hash> ClosedSessions<A> {
    /// The heap the remembered sessions hold.
    pub(crate) fn heap(&self) -> usize {
        crate::memory::map_slots::<(A, u32), ClosedSession>(self.map.capacity())
            + crate::memory::slots::<((A, u32), Instant, u64)>(self.order.capacity())
    }

    /// Remembers that the session in which `addr` used `remote_id` (and this
    /// endpoint `local_id`) closed at `now`, forgetting the oldest entry
    /// when `max_remembered` are held.
    pub(crate) fn remember(
        &mut self,
        config: &Sessions,
        key: (A, u32),
        local_id: u32,
        answer: Option<NoticeReason>,
        now: Instant,
    ) {
        if config.max_remembered == 0 {
            return;
        }
        while self.order.len() >= config.max_remembered {
            self.pop_front();
        }
        let until = crate::timer::deadline_after(now, config.remember_for);
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.order.push_back((key.clone(), until, seq));
        self.map.insert(
            key,
            ClosedSession {
                local_id,
                answer,
                until,
                seq,
            },
        );
    }

    /// The closed session in which `addr` used `remote_id`, if remembered
    /// and not yet expired at `now`.
    pub(crate) fn get(&self, key: &(A, u32), now: Instant) -> Option<ClosedSession> {
        self.map.get(key).filter(|c| c.until > now).copied()
    }

    /// Forgets the entries expired at `now` (amortised: each entry is
    /// removed once).
    pub(crate) fn prune(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(_, until, _)| *until <= now)
        {
            self.pop_front();
        }
    }

    /// Closed sessions remembered.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn pop_front(&mut self) {
        let Some((key, _, seq)) = self.order.pop_front() else {
            return;
        };
        if self.map.get(&key).is_some_and(|c| c.seq == seq) {
            self.map.remove(&key);
        }
    }
}

/// A fixed-window limit on unsolicited datagrams: refusals, answers to
/// datagrams from closed sessions, and the keepalive and close notices of
/// sessions not validated.
#[derive(Debug, Default)]
pub(crate) struct NoticeLimit {
    window_start: Option<Instant>,
    sent: usize,
}

impl NoticeLimit {
    /// True (and counted) if one more unsolicited datagram may go out at
    /// `now`.
    pub(crate) fn allow(&mut self, config: &Sessions, now: Instant) -> bool {
        let expired = self
            .window_start
            .is_none_or(|start| crate::timer::deadline_after(start, config.notice_window) <= now);
        if expired {
            self.window_start = Some(now);
            self.sent = 0;
        }
        if self.sent < config.notice_limit {
            self.sent += 1;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sessions(max: usize) -> Sessions {
        Sessions {
            max_remembered: max,
            remember_for: Duration::from_secs(10),
            notice_limit: 2,
            notice_window: Duration::from_secs(1),
            ..Sessions::default()
        }
    }

    #[test]
    fn memory_is_bounded_by_count_and_time() {
        let t0 = Instant::now();
        let config = sessions(2);
        let mut closed = ClosedSessions::default();
        closed.remember(&config, ("a", 1), 10, Some(NoticeReason::Kicked), t0);
        closed.remember(&config, ("a", 2), 11, None, t0);
        closed.remember(&config, ("b", 3), 12, None, t0);
        assert_eq!(closed.len(), 2);
        assert!(closed.get(&("a", 1), t0).is_none(), "oldest forgotten");
        assert_eq!(closed.get(&("a", 2), t0).map(|c| c.local_id), Some(11));
        let later = t0 + Duration::from_secs(10);
        assert!(closed.get(&("b", 3), later).is_none(), "expired");
        closed.prune(later);
        assert_eq!((closed.len(), closed.order.len()), (0, 0));
        // Overwriting a key keeps one entry; the stale order entry is skipped.
        closed.remember(&config, ("a", 1), 1, None, later);
        closed.remember(&config, ("a", 1), 2, None, later);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed.get(&("a", 1), later).map(|c| c.local_id), Some(2));
        let mut off = ClosedSessions::default();
        off.remember(&sessions(0), ("a", 1), 1, None, t0);
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn notice_limit_per_window() {
        let t0 = Instant::now();
        let config = sessions(1);
        let mut limit = NoticeLimit::default();
        assert!(limit.allow(&config, t0));
        assert!(limit.allow(&config, t0));
        assert!(!limit.allow(&config, t0 + Duration::from_millis(999)));
        assert!(limit.allow(&config, t0 + Duration::from_secs(1)));
    }
}

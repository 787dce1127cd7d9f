//! The deadline of a handshake (the opening handshake, a CONNECT exchange).

use crate::timer::{Clock, TimerKind, TimerTable};
use std::time::{Duration, Instant};

/// A handshake's one timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The whole exchange, from the first `handle_timeout` call.
    Handshake,
}

impl TimerKind for Timer {
    type Slots = [Option<Instant>; 1];

    fn index(self) -> usize {
        match self {
            Self::Handshake => 0,
        }
    }
}

/// A deadline that starts at the first `handle_timeout` call.
#[derive(Debug, Default, Clone)]
pub(crate) struct HandshakeTimer {
    /// The latest `now` seen; none until the first call.
    clock: Clock,
    table: TimerTable<Timer>,
}

impl HandshakeTimer {
    /// Records `now` (an earlier one than before counts as that one),
    /// starting the deadline (`timeout` from now) on the first call; true
    /// when the deadline has passed. A timeout too large to add to `now`
    /// never passes.
    pub(crate) fn tick(&mut self, now: Instant, timeout: Option<Duration>) -> bool {
        if self.clock.latest().is_none() {
            self.table.set_after(Timer::Handshake, now, timeout);
        }
        let now = self.clock.advance(now);
        self.table.expired(Timer::Handshake, now)
    }

    /// The deadline, once started.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.table.next()
    }

    /// The latest `now` seen, if any.
    pub(crate) fn now(&self) -> Option<Instant> {
        self.clock.latest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_first_call_and_never_overflows() {
        let t0 = Instant::now();
        let mut t = HandshakeTimer::default();
        assert_eq!(t.deadline(), None);
        assert!(!t.tick(t0, Some(Duration::from_secs(5))));
        assert_eq!(t.deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(!t.tick(t0 + Duration::from_secs(4), Some(Duration::from_secs(5))));
        assert!(t.tick(t0 + Duration::from_secs(5), Some(Duration::from_secs(5))));
        // An older instant counts as the latest seen: still passed.
        assert!(t.tick(t0 + Duration::from_secs(1), Some(Duration::from_secs(5))));
        assert_eq!(t.now(), Some(t0 + Duration::from_secs(5)));
        let mut t = HandshakeTimer::default();
        assert!(!t.tick(t0, Some(Duration::MAX)));
        assert_eq!(t.deadline(), None);
        assert_eq!(t.now(), Some(t0));
    }
}

//! The deadline of a handshake (the opening handshake, a CONNECT exchange).

use std::time::{Duration, Instant};

/// A deadline that starts at the first `handle_timeout` call.
#[derive(Debug, Default, Clone)]
pub(crate) struct HandshakeTimer {
    /// The latest `now` seen; `None` until the first call.
    now: Option<Instant>,
    deadline: Option<Instant>,
}

impl HandshakeTimer {
    /// Records `now`, starting the deadline (`timeout` from now) on the
    /// first call; true when the deadline has passed. A timeout too large
    /// to add to `now` never passes.
    pub(crate) fn tick(&mut self, now: Instant, timeout: Option<Duration>) -> bool {
        if self.now.is_none() {
            self.deadline = timeout.and_then(|d| now.checked_add(d));
        }
        self.now = Some(now);
        self.deadline.is_some_and(|at| now >= at)
    }

    /// The deadline, once started.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The latest `now` seen, if any.
    pub(crate) fn now(&self) -> Option<Instant> {
        self.now
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
        let mut t = HandshakeTimer::default();
        assert!(!t.tick(t0, Some(Duration::MAX)));
        assert_eq!(t.deadline(), None);
        assert_eq!(t.now(), Some(t0));
    }
}

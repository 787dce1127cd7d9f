//! What leaves a send queue: the byte count taken out, and the
//! backpressure marks.

/// Bytes taken out of a send queue, and the high and low marks on what it
/// holds.
///
/// The queue only grows between two takes, so its length just before a
/// take is the most it held since the previous one: checking the high
/// mark there sees every crossing without a check on each append.
#[derive(Debug, Default, Clone)]
pub(crate) struct Flow {
    /// Above this many queued bytes the queue is backpressured; `None`:
    /// no marks.
    high: Option<usize>,
    /// Taking the queue from above `high` to at most this many bytes
    /// drains it.
    low: usize,
    /// The queue went above `high` and has not drained to `low` since.
    above: bool,
    /// It drained, and that was not reported yet.
    drained: bool,
    /// Bytes taken out, in all.
    taken: u64,
    /// Bytes counted with the queue's though not in it yet (a WebSocket
    /// session's commands waiting for the handshake): the marks see them.
    outside: usize,
}

impl Flow {
    /// No marks.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Sets the marks: `high` of `None` turns them off.
    pub(crate) fn set_marks(&mut self, high: Option<usize>, low: usize) {
        self.high = high;
        self.low = low;
    }

    /// Sets the bytes counted with the queue's though not in it, the
    /// queue holding `queued`: more than the high mark in all is a
    /// crossing now, not at the next take, since the bytes outside may be
    /// fewer once in the queue (compressed).
    pub(crate) fn set_outside(&mut self, n: usize, queued: usize) {
        self.outside = n;
        if self.high.is_some_and(|high| queued + n > high) {
            self.above = true;
            self.drained = false;
        }
    }

    /// The bytes outside the queue were dropped with everything queued:
    /// nothing is left to drain.
    pub(crate) fn let_go(&mut self) {
        self.outside = 0;
        self.above = false;
        self.drained = false;
    }

    /// The queue went from `before` to `after` bytes by a take.
    #[inline]
    pub(crate) fn took(&mut self, before: usize, after: usize) {
        self.taken += before.saturating_sub(after) as u64;
        let Some(high) = self.high else { return };
        let (before, after) = (before + self.outside, after + self.outside);
        if before > high {
            self.above = true;
            self.drained = false;
        }
        if self.above && after <= self.low {
            self.above = false;
            self.drained = true;
        }
    }

    /// Bytes taken out, in all.
    #[inline]
    pub(crate) fn taken(&self) -> u64 {
        self.taken
    }

    /// True from the moment the queue (of `queued` bytes now) holds more
    /// than the high mark until a take leaves at most the low mark.
    #[inline]
    pub(crate) fn is_above(&self, queued: usize) -> bool {
        self.above || self.high.is_some_and(|high| queued > high)
    }

    /// True once per drain: the queue (of `queued` bytes now) went from
    /// above the high mark to at most the low mark, and has not gone above
    /// the high mark again since.
    #[inline]
    pub(crate) fn take_drained(&mut self, queued: usize) -> bool {
        if self.drained && !self.is_above(queued) {
            self.drained = false;
            return true;
        }
        false
    }
}

/// Checks send marks: `low < high <= limit`.
pub(crate) fn check_marks(high: usize, low: usize, limit: usize) -> bool {
    low < high && high <= limit
}

#[cfg(test)]
mod tests {
    use super::Flow;

    #[test]
    fn one_drain_per_crossing() {
        let mut f = Flow::new();
        f.set_marks(Some(100), 10);
        assert!(!f.is_above(100));
        assert!(f.is_above(101));
        f.took(150, 120);
        assert!(f.is_above(120) && f.is_above(50));
        f.took(50, 11);
        assert!(!f.take_drained(11));
        f.took(11, 10);
        assert!(!f.is_above(10));
        assert!(f.take_drained(10));
        assert!(!f.take_drained(10));
        f.took(10, 0);
        assert!(!f.take_drained(0));
        assert_eq!(f.taken(), 30 + 39 + 1 + 10);
    }

    #[test]
    fn bytes_outside_the_queue_count_for_the_marks() {
        let mut f = Flow::new();
        f.set_marks(Some(100), 10);
        f.set_outside(60, 0);
        // 50 queued and 60 outside: above the high mark, and a take of
        // the 50 leaves 60, above the low mark.
        f.took(50, 0);
        assert!(f.is_above(0));
        assert!(!f.take_drained(0));
        // The 60 join the queue and are taken.
        f.set_outside(0, 60);
        f.took(60, 0);
        assert!(!f.is_above(0));
        assert!(f.take_drained(0));
        assert_eq!(f.taken(), 110);
    }

    #[test]
    fn no_marks_never_backpressured() {
        let mut f = Flow::new();
        f.took(usize::MAX, 0);
        assert!(!f.is_above(usize::MAX));
        assert!(!f.take_drained(0));
    }
}

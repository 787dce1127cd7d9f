//! Deadlines from durations the caller configures, and the table of a
//! machine's timers.
//!
//! Each machine names its timers with a small enum implementing
//! [`TimerKind`] and keeps their deadlines in a [`TimerTable`]: one slot
//! per timer, the earliest of them for `poll_timeout`, and whether one has
//! passed for `handle_timeout`. A [`Clock`] keeps the latest `now` they
//! go by.

use std::fmt;
use std::time::{Duration, Instant};

/// About a century: the horizon a deadline too far to represent is
/// brought back to.
const HORIZON: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `now + after`, saturating: when the sum is past what `Instant` can
/// hold (a `Duration::MAX` timeout, say), the deadline is as far ahead as
/// the clock allows, up to about a century, so a huge timeout means
/// "never" in practice, not a panic and not an expiry at once.
pub(crate) fn deadline_after(now: Instant, after: Duration) -> Instant {
    if let Some(at) = now.checked_add(after) {
        return at;
    }
    let mut step = HORIZON;
    while !step.is_zero() {
        if let Some(at) = now.checked_add(step) {
            return at;
        }
        step /= 2;
    }
    now
}

/// The latest `now` a machine was handed. A caller may pass an instant it
/// read before a slow step, older than one it passed already; timers go by
/// the latest instant seen, so time never runs backwards for them and an
/// older `now` never moves a deadline earlier.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    latest: Option<Instant>,
}

impl Clock {
    /// Takes `now` and returns the latest instant seen: `now`, or a later
    /// one passed before.
    pub(crate) fn advance(&mut self, now: Instant) -> Instant {
        let latest = self.latest.map_or(now, |seen| seen.max(now));
        self.latest = Some(latest);
        latest
    }

    /// The latest instant seen, once there was one.
    pub(crate) fn latest(&self) -> Option<Instant> {
        self.latest
    }
}

/// The timers of one machine, as a fieldless enum.
pub(crate) trait TimerKind: Copy {
    /// One deadline slot per timer: `[Option<Instant>; N]` for N timers.
    type Slots: Copy + Default + fmt::Debug + AsRef<[Option<Instant>]> + AsMut<[Option<Instant>]>;

    /// This timer's slot, below N.
    fn index(self) -> usize;
}

/// The deadline of each of a machine's timers, if armed. Fixed size, no
/// allocation: one `Option<Instant>` per timer.
pub(crate) struct TimerTable<T: TimerKind> {
    deadlines: T::Slots,
}

impl<T: TimerKind> Default for TimerTable<T> {
    fn default() -> Self {
        Self {
            deadlines: T::Slots::default(),
        }
    }
}

impl<T: TimerKind> Clone for TimerTable<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: TimerKind> Copy for TimerTable<T> {}

impl<T: TimerKind> fmt::Debug for TimerTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimerTable").field(&self.deadlines).finish()
    }
}

impl<T: TimerKind> TimerTable<T> {
    /// The deadline of `timer`, if armed.
    pub(crate) fn get(&self, timer: T) -> Option<Instant> {
        self.deadlines
            .as_ref()
            .get(timer.index())
            .copied()
            .flatten()
    }

    /// Arms `timer` at `now + after`, or stops it when there is no
    /// duration. A deadline past what `Instant` can hold is never
    /// reached, so the timer is stopped then too: `next` does not report
    /// it. (Where a deadline must be held whatever the duration, as the
    /// datagram endpoint's per-peer ones, [`deadline_after`] saturates.)
    pub(crate) fn set_after(&mut self, timer: T, now: Instant, after: Option<Duration>) {
        self.put(timer, after.and_then(|d| now.checked_add(d)));
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: T) {
        self.put(timer, None);
    }

    /// True when `timer` is armed and its deadline is `now` or earlier.
    pub(crate) fn expired(&self, timer: T, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    /// The earliest deadline of all.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.as_ref().iter().flatten().min().copied()
    }

    fn put(&mut self, timer: T, at: Option<Instant>) {
        if let Some(slot) = self.deadlines.as_mut().get_mut(timer.index()) {
            *slot = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Timer {
        A,
        B,
        C,
    }

    impl TimerKind for Timer {
        type Slots = [Option<Instant>; 3];

        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn the_clock_keeps_the_latest_now() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut clock = Clock::default();
        assert_eq!(clock.latest(), None);
        assert_eq!(clock.advance(t0 + 5 * s), t0 + 5 * s);
        assert_eq!(clock.advance(t0 + 3 * s), t0 + 5 * s, "an older now");
        assert_eq!(clock.advance(t0 + 7 * s), t0 + 7 * s);
        assert_eq!(clock.latest(), Some(t0 + 7 * s));
    }

    #[test]
    fn huge_durations_saturate_far_ahead() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let far = deadline_after(now, Duration::MAX);
        assert!(
            far > now + Duration::from_secs(365 * 24 * 60 * 60),
            "{:?}",
            far - now
        );
    }

    #[test]
    fn next_is_the_earliest_armed_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = TimerTable::<Timer>::default();
        assert_eq!(t.next(), None);
        t.set_after(Timer::B, t0, Some(3 * s));
        assert_eq!(t.next(), Some(t0 + 3 * s));
        t.set_after(Timer::C, t0, Some(s));
        t.set_after(Timer::A, t0, Some(2 * s));
        assert_eq!(t.get(Timer::A), Some(t0 + 2 * s));
        assert_eq!(t.next(), Some(t0 + s));
        t.stop(Timer::C);
        assert_eq!(t.get(Timer::C), None);
        assert_eq!(t.next(), Some(t0 + 2 * s));
        // Setting again moves the deadline, earlier or later.
        t.set_after(Timer::A, t0 + 4 * s, Some(s));
        assert_eq!(t.get(Timer::A), Some(t0 + 5 * s));
        assert_eq!(t.next(), Some(t0 + 3 * s));
        t.stop(Timer::A);
        t.stop(Timer::B);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn a_timer_expires_at_its_deadline_and_not_before() {
        let t0 = Instant::now();
        let at = t0 + Duration::from_secs(1);
        let mut t = TimerTable::<Timer>::default();
        assert!(!t.expired(Timer::A, at), "a stopped timer never expires");
        t.set_after(Timer::A, t0, Some(Duration::from_secs(1)));
        assert!(!t.expired(Timer::A, at - Duration::from_nanos(1)));
        assert!(t.expired(Timer::A, at));
        assert!(t.expired(Timer::A, at + Duration::from_secs(1)));
        assert!(!t.expired(Timer::B, at), "only the timer that was set");
        t.stop(Timer::A);
        assert!(!t.expired(Timer::A, at));
    }

    #[test]
    fn no_duration_or_one_too_long_to_hold_stops_the_timer() {
        let t0 = Instant::now();
        let mut t = TimerTable::<Timer>::default();
        t.set_after(Timer::A, t0, Some(Duration::ZERO));
        assert_eq!(t.get(Timer::A), Some(t0));
        t.set_after(Timer::A, t0, None);
        assert_eq!(t.get(Timer::A), None);
        t.set_after(Timer::B, t0, Some(Duration::ZERO));
        t.set_after(Timer::B, t0, Some(Duration::MAX));
        assert_eq!(t.get(Timer::B), None);
        assert_eq!(t.next(), None);
        assert!(!t.expired(Timer::B, t0 + Duration::from_secs(1 << 40)));
    }

    #[test]
    fn a_slot_past_the_table_is_ignored() {
        #[derive(Clone, Copy)]
        struct Stray;
        impl TimerKind for Stray {
            type Slots = [Option<Instant>; 1];
            fn index(self) -> usize {
                7
            }
        }
        let now = Instant::now();
        let mut t = TimerTable::<Stray>::default();
        t.set_after(Stray, now, Some(Duration::ZERO));
        assert_eq!(t.get(Stray), None);
        assert_eq!(t.next(), None);
        assert!(!t.expired(Stray, now));
    }
}

//! Deadlines from durations the caller configures.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! The correlation machine: ids wrap and skip those in flight, replies in
//! any order (duplicates and unknown ids included), deadlines to the
//! nanosecond, the in-flight bound; and a property test of random
//! interleavings in which every request ends exactly once.

use proptest::prelude::*;
use sansproto::correlate::{Config, ConfigError, Correlator, Outcome, RefusedKind};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

fn small(ids: std::ops::RangeInclusive<u64>, max: usize) -> Correlator<u32> {
    Correlator::new(
        Config::builder()
            .ids(ids)
            .max_in_flight(max)
            .timeout(100 * MS)
            .build()
            .unwrap(),
    )
}

#[test]
fn ids_wrap_and_skip_those_still_in_flight() {
    let now = Instant::now();
    let mut c = small(1..=3, 3);
    assert_eq!(c.start(10, now).unwrap(), 1);
    assert_eq!(c.start(20, now).unwrap(), 2);
    assert_eq!(c.reply(1), Some(10));
    assert_eq!(c.start(30, now).unwrap(), 3);
    // 1 is free again, 2 is not: after 3 comes 1, then 2 is skipped.
    assert_eq!(c.start(40, now).unwrap(), 1);
    assert_eq!(c.reply(3), Some(30));
    assert_eq!(c.reply(2), Some(20));
    assert_eq!(c.start(50, now).unwrap(), 2);
    assert_eq!(c.start(60, now).unwrap(), 3);
    // Tarantool's 32-bit ids wrap to 0.
    let mut t = small(u64::from(u32::MAX) - 1..=u64::from(u32::MAX), 2);
    let ids: Vec<u64> = (0..2).map(|i| t.start(i, now).unwrap()).collect();
    assert_eq!(ids, [u64::from(u32::MAX) - 1, u64::from(u32::MAX)]);
    let mut wrap = Correlator::<u8>::new(
        Config::builder()
            .ids(0..=u64::from(u32::MAX))
            .build()
            .unwrap(),
    );
    for _ in 0..3 {
        let id = wrap.start(0, now).unwrap();
        wrap.reply(id);
    }
    assert_eq!(wrap.start(0, now).unwrap(), 3);
}

#[test]
fn over_the_bound_the_token_comes_back() {
    let now = Instant::now();
    let mut c = small(1..=10, 2);
    c.start(1, now).unwrap();
    c.start(2, now).unwrap();
    let refused = c.start(3, now).unwrap_err();
    assert_eq!(refused.kind(), &RefusedKind::InFlightFull);
    assert_eq!(refused.into_payload(), 3);
    assert_eq!(c.in_flight(), 2);
}

#[test]
fn a_request_times_out_at_its_deadline_and_not_before() {
    let now = Instant::now();
    let mut c = small(1..=10, 4);
    let a = c.start(1, now).unwrap();
    let b = c.start_with_timeout(2, now, 10 * MS).unwrap();
    assert_eq!(c.poll_timeout(), Some(now + 10 * MS));
    c.handle_timeout(now + 10 * MS - Duration::from_nanos(1));
    assert_eq!(c.poll_outcome(), None);
    c.handle_timeout(now + 10 * MS);
    assert_eq!(
        c.poll_outcome(),
        Some(Outcome::TimedOut { id: b, token: 2 })
    );
    assert_eq!(c.poll_timeout(), Some(now + 100 * MS));
    // A late reply is unknown; the timed-out id is free once polled.
    assert_eq!(c.reply(b), None);
    assert_eq!(c.reply(a), Some(1));
    assert_eq!(c.poll_timeout(), None);
    // Timed out but not yet polled: its id is not handed out again.
    let mut d = small(1..=2, 2);
    d.start(1, now).unwrap();
    d.handle_timeout(now + 100 * MS);
    assert_eq!(d.in_flight(), 1);
    assert_eq!(d.start(2, now).unwrap(), 2);
    assert_eq!(d.start(3, now).unwrap_err().into_payload(), 3);
    assert_eq!(
        d.poll_outcome(),
        Some(Outcome::TimedOut { id: 1, token: 1 })
    );
    assert_eq!(d.start(3, now).unwrap(), 1);
}

#[test]
fn a_builder_refuses_what_cannot_work() {
    #[allow(clippy::reversed_empty_ranges)]
    let empty = 5..=4;
    assert_eq!(
        Config::builder().ids(empty).build(),
        Err(ConfigError::NoIds)
    );
    assert_eq!(
        Config::builder().max_in_flight(0).build(),
        Err(ConfigError::ZeroInFlight)
    );
    assert_eq!(
        Config::builder().ids(1..=4).max_in_flight(5).build(),
        Err(ConfigError::MoreInFlightThanIds {
            max_in_flight: 5,
            ids: 4
        })
    );
    assert_eq!(
        Config::builder().timeout(Duration::ZERO).build(),
        Err(ConfigError::ZeroTimeout)
    );
    assert_eq!(
        Config::builder().ids(1..=10).start_at(0).build(),
        Err(ConfigError::StartOutsideIds(0))
    );
    assert!(Config::builder().ids(0..=u64::MAX).build().is_ok());
}

#[test]
fn ids_start_where_asked_and_wrap_to_the_range_start_skipping_those_in_flight() {
    let config = Config::builder()
        .ids(0..=u64::from(u32::MAX))
        .start_at(u64::from(u32::MAX) - 2)
        .max_in_flight(8)
        .build()
        .unwrap();
    let mut c = Correlator::new(config);
    let now = Instant::now();
    let first: Vec<u64> = (0..5).map(|i| c.start(i, now).unwrap()).collect();
    let max = u64::from(u32::MAX);
    assert_eq!(first, [max - 2, max - 1, max, 0, 1]);
    assert_eq!(c.reply(max - 1), Some(1));
    // Around again: the ids still in flight are skipped.
    let config = Config::builder()
        .ids(0..=3)
        .start_at(2)
        .max_in_flight(4)
        .build()
        .unwrap();
    let mut c = Correlator::new(config);
    assert_eq!(c.start('a', now).unwrap(), 2);
    assert_eq!(c.start('b', now).unwrap(), 3);
    assert_eq!(c.start('c', now).unwrap(), 0);
    assert_eq!(c.reply(3), Some('b'));
    assert_eq!(c.start('d', now).unwrap(), 1);
    assert_eq!(c.start('e', now).unwrap(), 3);
}

#[derive(Debug, Clone)]
enum Op {
    Start {
        timeout_ms: u64,
    },
    /// A reply to the n-th request started (which may have ended already).
    Reply(usize),
    /// A reply with an id no request had.
    Unknown(u64),
    Step {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..50).prop_map(|timeout_ms| Op::Start { timeout_ms }),
        any::<usize>().prop_map(Op::Reply),
        (1000u64..2000).prop_map(Op::Unknown),
        (0u64..30).prop_map(|ms| Op::Step { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_ends_exactly_once(ops in proptest::collection::vec(op(), 0..200)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut c = Correlator::new(
            Config::builder().ids(1..=8).max_in_flight(6).timeout(40 * MS).build().unwrap(),
        );
        // Per request started: its id, deadline, and how it ended.
        let mut started: Vec<(u64, Instant)> = Vec::new();
        let mut ended: HashMap<usize, &str> = HashMap::new();
        let mut live: HashMap<u64, usize> = HashMap::new();
        let collect = |c: &mut Correlator<usize>, now: Instant, ended: &mut HashMap<usize, &str>, live: &mut HashMap<u64, usize>, started: &[(u64, Instant)]| -> Result<(), TestCaseError> {
            while let Some(Outcome::TimedOut { id, token }) = c.poll_outcome() {
                prop_assert_eq!(started[token].0, id);
                prop_assert!(started[token].1 <= now, "timed out before its deadline");
                prop_assert!(ended.insert(token, "timeout").is_none(), "ended twice");
                live.remove(&id);
            }
            Ok(())
        };
        for op in ops {
            match op {
                Op::Start { timeout_ms } => {
                    let token = started.len();
                    match c.start_with_timeout(token, now, Duration::from_millis(timeout_ms)) {
                        Ok(id) => {
                            prop_assert!(!live.contains_key(&id), "id {} given twice", id);
                            live.insert(id, token);
                            started.push((id, now + Duration::from_millis(timeout_ms)));
                        }
                        Err(refused) => {
                            prop_assert_eq!(c.in_flight(), 6);
                            prop_assert_eq!(refused.into_payload(), token);
                        }
                    }
                }
                Op::Reply(n) if !started.is_empty() => {
                    // Every live request's deadline is after `now` (timeouts
                    // are collected at each step), so it must be matched.
                    let id = started[n % started.len()].0;
                    match live.remove(&id) {
                        Some(holder) => {
                            prop_assert_eq!(c.reply(id), Some(holder));
                            prop_assert!(ended.insert(holder, "reply").is_none(), "ended twice");
                        }
                        None => prop_assert_eq!(c.reply(id), None),
                    }
                }
                Op::Reply(_) => {}
                Op::Unknown(id) => prop_assert_eq!(c.reply(id), None),
                Op::Step { ms } => {
                    now += Duration::from_millis(ms);
                    c.handle_timeout(now);
                    collect(&mut c, now, &mut ended, &mut live, &started)?;
                }
            }
            prop_assert!(c.in_flight() <= 6);
        }
        // Past every deadline, everything has ended, once.
        now += Duration::from_secs(1);
        c.handle_timeout(now);
        collect(&mut c, now, &mut ended, &mut live, &started)?;
        prop_assert_eq!(ended.len(), started.len());
        prop_assert_eq!(c.in_flight(), 0);
        prop_assert_eq!(c.poll_timeout(), None);
    }
}

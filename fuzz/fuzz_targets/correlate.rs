//! The correlation machine under any interleaving of requests, replies
//! (right, repeated, unknown ids) and clock steps: it must never panic,
//! never give one id to two live requests, never end a request before its
//! deadline, and end every request exactly once.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sansproto::correlate::{Config, Correlator, Outcome};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
enum Op {
    Start { timeout_ms: u16 },
    Reply(u64),
    ReplyStarted(u16),
    Step { ms: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    first_id: u64,
    span: u8,
    max_in_flight: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let last = input.first_id.saturating_add(u64::from(input.span));
    let Ok(config) = Config::builder()
        .ids(input.first_id..=last)
        .max_in_flight(usize::from(input.max_in_flight))
        .build()
    else {
        return;
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut c = Correlator::new(config);
    let mut started: Vec<(u64, Instant)> = Vec::new();
    let mut live: HashMap<u64, usize> = HashMap::new();
    let mut ended = vec![];
    let collect = |c: &mut Correlator<usize>,
                   now: Instant,
                   live: &mut HashMap<u64, usize>,
                   ended: &mut Vec<usize>,
                   started: &[(u64, Instant)]| {
        while let Some(Outcome::TimedOut { id, token }) = c.poll_outcome() {
            assert_eq!(started[token].0, id);
            assert!(started[token].1 <= now, "ended before its deadline");
            assert_eq!(live.remove(&id), Some(token));
            ended.push(token);
        }
    };
    for op in input.ops {
        match op {
            Op::Start { timeout_ms } => {
                let timeout = Duration::from_millis(u64::from(timeout_ms).max(1));
                let token = started.len();
                if let Ok(id) = c.start_with_timeout(token, now, timeout) {
                    assert!((input.first_id..=last).contains(&id));
                    assert!(live.insert(id, token).is_none(), "id {id} given twice");
                    started.push((id, now + timeout));
                }
            }
            Op::Reply(id) => {
                let expected = live.remove(&id);
                assert_eq!(c.reply(id), expected);
                ended.extend(expected);
            }
            Op::ReplyStarted(n) if !started.is_empty() => {
                let id = started[usize::from(n) % started.len()].0;
                let expected = live.remove(&id);
                assert_eq!(c.reply(id), expected);
                ended.extend(expected);
            }
            Op::ReplyStarted(_) => {}
            Op::Step { ms } => {
                now += Duration::from_millis(u64::from(ms));
                c.handle_timeout(now);
                collect(&mut c, now, &mut live, &mut ended, &started);
            }
        }
        assert_eq!(c.in_flight(), live.len());
    }
    c.handle_timeout(now + Duration::from_secs(70_000));
    collect(
        &mut c,
        now + Duration::from_secs(70_000),
        &mut live,
        &mut ended,
        &started,
    );
    assert!(live.is_empty());
    assert_eq!(c.in_flight(), 0);
    // Every request ended, once.
    ended.sort_unstable();
    assert_eq!(ended, (0..started.len()).collect::<Vec<_>>());
});

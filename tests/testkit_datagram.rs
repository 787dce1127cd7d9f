//! The testkit's datagram network: what it does to datagrams, that a seed
//! fixes a run, and that segmented endpoints across a lossy, reordering,
//! duplicating network deliver every message whole or report it dropped.
#![cfg(feature = "testkit")]

use bytes::Bytes;
use proptest::prelude::*;
use sansproto::datagram::{Config, Endpoint, Event, Header, Segmentation};
use sansproto::testkit::{Conditions, Fate, Network};
use std::collections::HashMap;
use std::time::Duration;

/// The receiver's address; senders are 1 and 2.
const B: u8 = 0;
const MTU: usize = 64;

fn config() -> Config {
    let mut seg = Segmentation::default();
    seg.max_message_size = 1024;
    let mut config = Config::segmented();
    config.mtu = MTU;
    config.segmentation = Some(seg);
    config
}

fn endpoint(seed: u64) -> Endpoint<u8> {
    Endpoint::with_random(config(), sansproto::seeded_random(seed)).unwrap()
}

/// Message `index` of `sender`, `len` bytes (at least 2): tagged with both,
/// then a pattern, so that no two messages are alike.
fn message(sender: u8, index: usize, len: usize) -> Bytes {
    let mut m = vec![sender, index as u8];
    m.extend((2..len).map(|i| (i * 31 + index * 7 + usize::from(sender)) as u8));
    Bytes::from(m)
}

fn lossy() -> Conditions {
    Conditions {
        loss: 0.1,
        reorder: 0.1,
        duplicate: 0.05,
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(5),
        mtu: MTU,
    }
}

/// What the receiver did with one sender's message.
#[derive(Debug, Default)]
struct Outcome {
    delivered: usize,
    dropped: usize,
}

/// Sends `lens[s]` messages from each sender to `B` across a lossy
/// network, runs it until every timer has fired, and checks each message:
///
/// - a message the receiver reports is byte-identical to one that was
///   sent (nothing corrupted), and no message is reported twice;
/// - a message not delivered is either named (by its sender and message
///   id) in a `MessageDropped` event, or every one of its fragments was
///   lost on the network, so the receiver never saw it start;
/// - a message delivered is never also reported dropped.
///
/// Message ids come from the datagrams' segment headers in the network's
/// trace: a sender's k-th message id is its k-th message.
fn check(seed: u64, lens: [&[usize]; 2]) -> Result<[usize; 3], TestCaseError> {
    let mut net = Network::new(lossy(), seed);
    net.add(B, endpoint(seed));
    net.add(1, endpoint(seed ^ 1));
    net.add(2, endpoint(seed ^ 2));
    let mut sent: HashMap<(u8, usize), Bytes> = HashMap::new();
    for (s, lens) in [(1u8, lens[0]), (2, lens[1])] {
        for (i, &len) in lens.iter().enumerate() {
            let m = message(s, i, len);
            net.node_mut(&s).send(B, m.clone()).unwrap();
            sent.insert((s, i), m);
        }
        // The second sender starts a little later.
        net.run_for(Duration::from_millis(3));
    }
    net.run_until_idle();

    // Message id -> (sender, index), and the fragments that reached B.
    let mut ids: HashMap<(u8, u32), usize> = HashMap::new();
    let mut reached: HashMap<(u8, u32), usize> = HashMap::new();
    for t in net.trace() {
        prop_assert_eq!(t.to, B);
        let header = Header::parse(&t.datagram).unwrap();
        let key = (t.from, header.message_id);
        let next = ids.keys().filter(|(s, _)| *s == t.from).count();
        ids.entry(key).or_insert(next);
        if matches!(t.fate, Fate::Delivered { .. }) {
            *reached.entry(key).or_default() += 1;
        }
    }

    let mut outcomes: HashMap<(u8, usize), Outcome> = HashMap::new();
    for event in net.take_events(&B) {
        match event {
            Event::Message { peer, payload } => {
                let index = usize::from(payload[1]);
                prop_assert_eq!(
                    sent.get(&(peer, index)),
                    Some(&payload),
                    "a corrupted message from {}",
                    peer
                );
                outcomes.entry((peer, index)).or_default().delivered += 1;
            }
            Event::MessageDropped {
                peer, message_id, ..
            } => {
                let index = ids.get(&(peer, message_id));
                prop_assert!(index.is_some(), "a drop of an unknown message");
                outcomes.entry((peer, *index.unwrap())).or_default().dropped += 1;
            }
            _ => {}
        }
    }
    // Messages delivered, reported dropped, never started.
    let mut tally = [0; 3];
    for (&(s, i), m) in &sent {
        let id = ids
            .iter()
            .find(|(k, v)| k.0 == s && **v == i)
            .map(|(k, _)| k.1);
        let id = id.expect("every message left its sender");
        let outcome = outcomes.remove(&(s, i)).unwrap_or_default();
        let started = reached.get(&(s, id)).is_some_and(|&n| n > 0);
        tally[match (outcome.delivered, started) {
            (1, _) => 0,
            (_, true) => 1,
            _ => 2,
        }] += 1;
        match outcome.delivered {
            0 => prop_assert!(
                outcome.dropped > 0 || !started,
                "message {} of {} ({} bytes) vanished",
                i,
                s,
                m.len()
            ),
            1 => prop_assert_eq!(outcome.dropped, 0, "delivered and dropped"),
            n => prop_assert!(false, "message {} of {} delivered {} times", i, s, n),
        }
    }
    Ok(tally)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_message_arrives_whole_or_is_reported_dropped(
        seed in any::<u64>(),
        first in prop::collection::vec(2usize..300, 1..5),
        second in prop::collection::vec(2usize..300, 0..3),
    ) {
        check(seed, [&first, &second])?;
    }
}

/// The property above is not vacuous: over a few hundred seeds, messages
/// are delivered, reported dropped, and lost before they started.
#[test]
fn the_lossy_network_gives_every_outcome() {
    let mut total = [0; 3];
    for seed in 0..300 {
        let tally = check(seed, [&[250, 120, 2, 300], &[60, 200]]).unwrap();
        for (t, n) in total.iter_mut().zip(tally) {
            *t += n;
        }
    }
    assert!(total.iter().all(|&n| n > 0), "{total:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut net = Network::new(lossy(), seed);
        net.add(B, endpoint(1));
        net.add(1, endpoint(2));
        for i in 0..8 {
            net.node_mut(&1).send(B, message(1, i, 200)).unwrap();
        }
        net.run_until_idle();
        let events = format!("{:?}", net.take_events(&B));
        (net.trace().to_vec(), events, net.stats(), net.elapsed())
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5).0, run(6).0);
}

#[test]
fn a_perfect_network_delivers_in_order_after_the_latency() {
    let mut net = Network::new(Conditions::default(), 0);
    net.add(B, endpoint(1));
    net.add(1, endpoint(2));
    let m = message(1, 0, 500);
    net.node_mut(&1).send(B, m.clone()).unwrap();
    net.settle();
    assert_eq!(net.in_flight(), 10);
    assert!(net.advance());
    assert_eq!(net.elapsed(), Duration::from_millis(1));
    assert_eq!(net.in_flight(), 0);
    let messages: Vec<Bytes> = net
        .take_events(&B)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(messages, [m]);
    let stats = net.stats();
    assert_eq!((stats.sent, stats.delivered, stats.lost), (10, 10, 0));
}

#[test]
fn the_network_drops_what_is_over_its_mtu_and_what_has_no_route() {
    let mut net = Network::new(
        Conditions {
            mtu: 40,
            ..Conditions::default()
        },
        0,
    );
    net.add(B, endpoint(1));
    net.add(1, endpoint(2));
    // One fragment of 9 + 20 bytes fits; 9 + 55 bytes does not.
    net.node_mut(&1).send(B, message(1, 0, 20)).unwrap();
    net.node_mut(&1).send(B, message(1, 1, 55)).unwrap();
    net.node_mut(&1).send(7, message(1, 2, 20)).unwrap();
    net.run_for(Duration::from_millis(5));
    let fates: Vec<Fate> = net.trace().iter().map(|t| t.fate).collect();
    assert_eq!(
        fates,
        [
            Fate::Delivered {
                copies: 1,
                reordered: false
            },
            Fate::TooLarge,
            Fate::Unroutable
        ]
    );
    let stats = net.stats();
    assert_eq!(
        (stats.too_large, stats.unroutable, stats.delivered),
        (1, 1, 1)
    );
}

#[test]
fn total_loss_loses_everything_and_duplication_sends_twice() {
    for (loss, duplicate, copies) in [(1.0, 0.0, 0), (0.0, 1.0, 2)] {
        let mut net = Network::new(
            Conditions {
                loss,
                duplicate,
                ..Conditions::default()
            },
            3,
        );
        net.add(B, endpoint(1));
        net.add(1, endpoint(2));
        for i in 0..5 {
            net.node_mut(&1).send(B, message(1, i, 30)).unwrap();
        }
        net.run_until_idle();
        assert_eq!(net.stats().delivered, 5 * copies);
        let messages = net
            .take_events(&B)
            .into_iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count();
        // The duplicate window keeps second copies out.
        assert_eq!(messages, if copies == 0 { 0 } else { 5 });
    }
}

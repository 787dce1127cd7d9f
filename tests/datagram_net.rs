//! Endpoints over the testkit's simulated lossy, reordering, duplicating
//! network.
#![cfg(feature = "testkit")]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use sansproto::datagram::{CloseReason, Config, DropReason, Endpoint, Event, Header};
use sansproto::testkit::{Conditions, Network};

use common::datagram::{check_tagged, tagged_message};

const SENDER: u8 = 1;
const RECEIVER: u8 = 2;

type Net = Network<Endpoint<u8>>;

fn config() -> Config {
    let mut config = Config::segmented();
    config.idle_timeout = Duration::from_secs(20);
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_message_size = 200_000;
    seg.max_fragments = 137; // 200_000 / 1463, rounded up
    seg.max_partials_per_peer = 64;
    seg.max_buffered_per_peer = 16 << 20;
    seg.max_buffered = 64 << 20;
    config
}

/// Delays from 1 to 40 ms: they overlap, so datagrams reorder.
fn lossy() -> Conditions {
    Conditions {
        loss: 0.03,
        duplicate: 0.05,
        latency: Duration::from_millis(1),
        jitter: Duration::from_millis(39),
        ..Conditions::default()
    }
}

/// A sender and a receiver, their randomness drawn from `seed`.
fn network(conditions: Conditions, seed: u64) -> Net {
    let endpoint = |seed| Endpoint::with_random(config(), sansproto::seeded_random(seed)).unwrap();
    let mut net = Network::new(conditions, seed);
    net.add(SENDER, endpoint(seed.wrapping_mul(2)));
    net.add(RECEIVER, endpoint(seed.wrapping_mul(2) + 1));
    net
}

/// The messages the receiver took, in order, with their senders.
fn messages(net: &mut Net) -> Vec<(u8, Bytes)> {
    net.take_events(&RECEIVER)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { peer, payload } => Some((peer, payload)),
            _ => None,
        })
        .collect()
}

/// Sends `count` tagged messages of random sizes, 100 ms apart, and returns
/// each one's length and segment message id.
fn send_messages(net: &mut Net, seed: u64, count: u32) -> (Vec<usize>, HashMap<u32, u32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut lens = Vec::new();
    let mut seq_of_id = HashMap::new();
    for seq in 0..count {
        let len = match rng.random_range(0..4) {
            0 => rng.random_range(4..=1463), // one fragment
            1 => rng.random_range(1464..=6000),
            _ => rng.random_range(6000..=200_000),
        };
        net.node_mut(&SENDER)
            .send(RECEIVER, tagged_message(seq, len))
            .unwrap();
        // Its datagrams onto the network now, to read the id off the last.
        net.settle();
        let header = Header::parse(&net.trace().last().unwrap().datagram).unwrap();
        seq_of_id.insert(header.message_id, seq);
        lens.push(len);
        net.run_for(Duration::from_millis(100));
    }
    (lens, seq_of_id)
}

/// The messages every fragment of which reached the receiver (duplicates
/// counted once), by sequence number.
fn arrived_whole(net: &Net, seq_of_id: &HashMap<u32, u32>) -> HashSet<u32> {
    let mut indices: HashMap<u32, (u16, HashSet<u16>)> = HashMap::new();
    for a in net.arrivals().iter().filter(|a| a.to == RECEIVER) {
        let h = Header::parse(&a.datagram).unwrap();
        indices
            .entry(h.message_id)
            .or_insert((h.count, HashSet::new()))
            .1
            .insert(h.index);
    }
    indices
        .into_iter()
        .filter(|(_, (count, seen))| seen.len() == usize::from(*count))
        .map(|(id, _)| seq_of_id[&id])
        .collect()
}

#[test]
fn whole_messages_are_delivered_exactly_once_and_intact() {
    for seed in 0..3 {
        let mut net = network(lossy(), seed);
        let (lens, seq_of_id) = send_messages(&mut net, seed, 60);
        net.run_until_idle();

        let mut delivered = HashSet::new();
        for (from, payload) in messages(&mut net) {
            assert_eq!(from, SENDER);
            let seq = check_tagged(&payload).expect("message corrupted");
            assert_eq!(payload.len(), lens[seq as usize]);
            assert!(
                delivered.insert(seq),
                "seed {seed}: message {seq} delivered twice"
            );
        }
        let whole = arrived_whole(&net, &seq_of_id);
        assert_eq!(delivered, whole, "seed {seed}");
        // The run exercised both outcomes.
        assert!(
            whole.len() >= 10 && whole.len() < 60,
            "seed {seed}: {}",
            whole.len()
        );
        let stats = net.stats();
        assert!(stats.delivered > stats.sent, "duplicates happened");

        let rx = net.node(&RECEIVER);
        assert_eq!((rx.buffered_bytes(), rx.partial_count()), (0, 0));
    }
}

#[test]
fn partial_messages_time_out_and_free_their_memory() {
    let conditions = Conditions {
        loss: 0.2,
        ..lossy()
    };
    let mut net = network(conditions, 7);
    let (_, seq_of_id) = send_messages(&mut net, 7, 20);
    assert!(net.node(&RECEIVER).buffered_bytes() > 0);
    assert!(net.node(&RECEIVER).partial_count() > 0);

    // Each timed-out partial message went exactly 5 s after its first
    // fragment arrived.
    net.run_until_idle();
    let mut first_arrival = HashMap::new();
    for a in net.arrivals().iter().filter(|a| a.to == RECEIVER) {
        let h = Header::parse(&a.datagram).unwrap();
        first_arrival.entry(h.message_id).or_insert(a.at);
    }
    let timed_out: Vec<_> = net
        .events(&RECEIVER)
        .iter()
        .filter_map(|(at, e)| match e {
            Event::MessageDropped {
                message_id,
                reason: DropReason::TimedOut,
                ..
            } => Some((*at, *message_id)),
            _ => None,
        })
        .collect();
    let whole = arrived_whole(&net, &seq_of_id);
    assert_eq!(timed_out.len() + whole.len(), first_arrival.len());
    for (at, id) in &timed_out {
        assert!(!whole.contains(&seq_of_id[id]));
        assert_eq!(*at - first_arrival[id], Duration::from_secs(5));
    }
    let rx = net.node(&RECEIVER);
    assert_eq!((rx.buffered_bytes(), rx.partial_count()), (0, 0));
}

#[test]
fn peers_expire_at_the_idle_timeout_after_their_last_datagram() {
    for seed in 0..3 {
        let mut net = network(lossy(), seed);
        send_messages(&mut net, seed, 5);
        net.run_until_idle();

        let last = net
            .arrivals()
            .iter()
            .filter(|a| a.to == RECEIVER)
            .map(|a| a.at)
            .max()
            .unwrap();
        let lifecycle: Vec<_> = net
            .events(&RECEIVER)
            .iter()
            .filter(|(_, e)| matches!(e, Event::PeerOpened { .. } | Event::PeerClosed { .. }))
            .cloned()
            .collect();
        assert_eq!(lifecycle.len(), 2, "seed {seed}");
        assert_eq!(lifecycle[0].1, Event::PeerOpened { peer: SENDER });
        assert_eq!(
            lifecycle[1],
            (
                last + Duration::from_secs(20),
                Event::PeerClosed {
                    peer: SENDER,
                    reason: CloseReason::IdleTimeout
                }
            )
        );
        // Sending never opened a peer on the sender's side.
        assert_eq!(net.node(&SENDER).peer_count(), 0);
    }
}

#[test]
fn echo_over_a_lossy_network_keeps_both_tables_alive() {
    // The receiver serves, the sender is its client.
    let (server, client) = (RECEIVER, SENDER);
    let mut net = network(lossy(), 11);
    for seq in 0..30 {
        net.node_mut(&client)
            .send(server, tagged_message(seq, 3000))
            .unwrap();
        net.run_for(Duration::from_millis(200));
        // The server echoes whatever it has received (its datagrams go
        // out as the network settles, at this instant).
        let pending: Vec<_> = net
            .take_events(&server)
            .into_iter()
            .filter_map(|e| match e {
                Event::Message { peer, payload } => Some((peer, payload)),
                _ => None,
            })
            .collect();
        for (peer, payload) in pending {
            net.node_mut(&server).send(peer, payload).unwrap();
        }
        net.settle();
    }
    net.run_for(Duration::from_secs(1));
    let echoed: Vec<_> = net
        .take_events(&client)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert!(echoed.len() >= 20, "{} of 30 echoed", echoed.len());
    assert!(echoed.iter().all(|p| check_tagged(p).is_some()));
    assert!(net.node(&client).contains_peer(&server));
    assert!(net.node(&server).contains_peer(&client));
}

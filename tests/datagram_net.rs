//! Endpoints over a simulated lossy, reordering, duplicating network.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use sansproto::datagram::{CloseReason, Config, DropReason, Event, Header};

use common::datagram::{check_tagged, tagged_message, Conditions, Net};

const SENDER: usize = 0;
const RECEIVER: usize = 1;

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

fn lossy() -> Conditions {
    Conditions {
        loss: 0.03,
        duplicate: 0.05,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(40),
    }
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
        net.send(SENDER, RECEIVER, tagged_message(seq, len))
            .unwrap();
        let header = Header::parse(&net.sent.last().unwrap().bytes).unwrap();
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
    for d in net.delivered.iter().filter(|d| d.to == net.addr(RECEIVER)) {
        let h = Header::parse(&d.bytes).unwrap();
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
        let mut net = Net::new(seed, lossy());
        net.add_node(config());
        net.add_node(config());
        let (lens, seq_of_id) = send_messages(&mut net, seed, 60);
        net.run_to_quiet();

        let mut delivered = HashSet::new();
        for (_, from, payload) in net.messages(RECEIVER) {
            assert_eq!(from, net.addr(SENDER));
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
        assert!(net.delivered.len() > net.sent.len(), "duplicates happened");

        let rx = &net.nodes[RECEIVER].endpoint;
        assert_eq!((rx.buffered_bytes(), rx.partial_count()), (0, 0));
    }
}

#[test]
fn partial_messages_time_out_and_free_their_memory() {
    let mut net = Net::new(
        7,
        Conditions {
            loss: 0.2,
            ..lossy()
        },
    );
    net.add_node(config());
    net.add_node(config());
    let (_, seq_of_id) = send_messages(&mut net, 7, 20);
    assert!(net.nodes[RECEIVER].endpoint.buffered_bytes() > 0);
    assert!(net.nodes[RECEIVER].endpoint.partial_count() > 0);

    // Each timed-out partial message went exactly 5 s after its first
    // fragment arrived.
    net.run_to_quiet();
    let mut first_arrival = HashMap::new();
    for d in net.delivered.iter().filter(|d| d.to == net.addr(RECEIVER)) {
        let h = Header::parse(&d.bytes).unwrap();
        first_arrival.entry(h.message_id).or_insert(d.at);
    }
    let timed_out: Vec<_> = net.nodes[RECEIVER]
        .events
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
    let rx = &net.nodes[RECEIVER].endpoint;
    assert_eq!((rx.buffered_bytes(), rx.partial_count()), (0, 0));
}

#[test]
fn peers_expire_at_the_idle_timeout_after_their_last_datagram() {
    for seed in 0..3 {
        let mut net = Net::new(seed, lossy());
        net.add_node(config());
        net.add_node(config());
        send_messages(&mut net, seed, 5);
        net.run_to_quiet();

        let last = net
            .delivered
            .iter()
            .filter(|d| d.to == net.addr(RECEIVER))
            .map(|d| d.at)
            .max()
            .unwrap();
        let lifecycle: Vec<_> = net.nodes[RECEIVER]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::PeerOpened { .. } | Event::PeerClosed { .. }))
            .cloned()
            .collect();
        let sender = net.addr(SENDER);
        assert_eq!(lifecycle.len(), 2, "seed {seed}");
        assert_eq!(lifecycle[0].1, Event::PeerOpened { peer: sender });
        assert_eq!(
            lifecycle[1],
            (
                last + Duration::from_secs(20),
                Event::PeerClosed {
                    peer: sender,
                    reason: CloseReason::IdleTimeout
                }
            )
        );
        // Sending never opened a peer on the sender's side.
        assert_eq!(net.nodes[SENDER].endpoint.peer_count(), 0);
    }
}

#[test]
fn echo_over_a_lossy_network_keeps_both_tables_alive() {
    let mut net = Net::new(11, lossy());
    let server = net.add_node(config());
    let client = net.add_node(config());
    for seq in 0..30 {
        net.send(client, server, tagged_message(seq, 3000)).unwrap();
        net.run_for(Duration::from_millis(200));
        // The server echoes whatever it has received.
        let pending: Vec<_> = net.nodes[server]
            .events
            .drain(..)
            .filter_map(|(_, e)| match e {
                Event::Message { peer, payload } => Some((peer, payload)),
                _ => None,
            })
            .collect();
        for (peer, payload) in pending {
            net.nodes[server].endpoint.send(peer, payload).unwrap();
        }
        net.transmit(server);
    }
    net.run_for(Duration::from_secs(1));
    let echoed = net.messages(client);
    assert!(echoed.len() >= 20, "{} of 30 echoed", echoed.len());
    assert!(echoed.iter().all(|(_, _, p)| check_tagged(p).is_some()));
    assert!(net.nodes[client].endpoint.contains_peer(&net.addr(server)));
    assert!(net.nodes[server].endpoint.contains_peer(&net.addr(client)));
}

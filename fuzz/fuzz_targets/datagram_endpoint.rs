//! Arbitrary datagrams from a small address space, arbitrary time steps, and
//! the endpoint's own fragments fed back in any order, into a segmenting
//! endpoint with small limits. Checks that no input panics and that every
//! limit holds after every step.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sansproto::datagram::{Config, Endpoint, Event, Header};

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes from a peer.
    Receive { peer: u8, data: Vec<u8> },
    /// A header with fuzzer-chosen fields and a payload of `len` bytes.
    Fragment {
        peer: u8,
        message_id: u8,
        index: u16,
        count: u16,
        len: u8,
    },
    /// A message of `len` bytes queued for a peer.
    Send { peer: u8, len: u16 },
    /// Feeds every queued datagram back in, as if from its destination,
    /// reversed when `reverse`, each `copies` times.
    Loopback { reverse: bool, copies: u8 },
    /// Moves the clock and runs the timers.
    Advance { millis: u16 },
    /// Closes a peer.
    Close { peer: u8 },
}

fn config() -> Config {
    let mut config = Config::segmented();
    config.mtu = 64;
    config.max_peers = 8;
    config.idle_timeout = Duration::from_secs(3);
    config.max_queued_datagrams = 64;
    config.max_queued_bytes = 4096;
    config.max_pending_events = 16;
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_message_size = 400;
    seg.max_fragments = 8;
    seg.max_partials_per_peer = 2;
    seg.max_partials = 6;
    seg.max_buffered_per_peer = 400;
    seg.max_buffered = 1200;
    seg.reassembly_timeout = Duration::from_secs(1);
    seg.duplicate_window = 4;
    config
}

fn check(endpoint: &mut Endpoint<u8>, config: &Config) {
    let seg = config.segmentation.as_ref().unwrap();
    assert!(endpoint.buffered_bytes() <= seg.max_buffered);
    assert!(endpoint.partial_count() <= seg.max_partials);
    assert!(endpoint.peer_count() <= config.max_peers);
    assert!(endpoint.queued_bytes() <= config.max_queued_bytes);
    assert!(endpoint.queued_datagrams() <= config.max_queued_datagrams);
    let mut events = 0;
    while let Some(event) = endpoint.poll_event() {
        events += 1;
        // One datagram past the bound adds a few events at most.
        assert!(events <= config.max_pending_events + 8, "{events} events queued");
        if let Event::Message { payload, .. } = event {
            assert!(payload.len() <= seg.max_message_size);
        }
    }
}

/// Feeds a datagram; when the event queue is full, polls it (checking the
/// limits) and feeds the datagram again, which must then be taken.
fn feed(endpoint: &mut Endpoint<u8>, config: &Config, from: u8, d: Bytes, now: Instant) {
    if let Err(back) = endpoint.receive(from, d, now) {
        assert_eq!(back.from, from);
        check(endpoint, config);
        endpoint
            .receive(back.from, back.datagram, now)
            .expect("taken once the events were polled");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let config = config();
    let mut endpoint = Endpoint::with_random(config.clone(), sansproto::seeded_random(0)).unwrap();
    let start = Instant::now();
    let mut now = start;
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Receive { peer, data } => feed(&mut endpoint, &config, peer % 16, Bytes::from(data), now),
            Op::Fragment {
                peer,
                message_id,
                index,
                count,
                len,
            } => {
                let header = Header {
                    message_id: u32::from(message_id % 8),
                    index,
                    count,
                };
                let mut d = header.encode().to_vec();
                d.resize(d.len() + usize::from(len), len);
                feed(&mut endpoint, &config, peer % 16, Bytes::from(d), now);
            }
            Op::Send { peer, len } => {
                let message = Bytes::from(vec![peer; usize::from(len) % 512]);
                let _ = endpoint.send(peer % 16, message);
            }
            Op::Loopback { reverse, copies } => {
                let mut datagrams = Vec::new();
                while let Some(to) = endpoint.poll_transmit(&mut out) {
                    assert!(out.len() <= config.mtu);
                    datagrams.push((to, Bytes::from(std::mem::take(&mut out))));
                }
                if reverse {
                    datagrams.reverse();
                }
                for (from, d) in datagrams {
                    for _ in 0..(copies % 3).max(1) {
                        feed(&mut endpoint, &config, from, d.clone(), now);
                    }
                }
            }
            Op::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis));
                endpoint.handle_timeout(now);
                if let Some(at) = endpoint.poll_timeout() {
                    endpoint.handle_timeout(at);
                    now = now.max(at);
                }
            }
            Op::Close { peer } => {
                endpoint.close(&(peer % 16));
            }
        }
        check(&mut endpoint, &config);
    }
    // Long after the last input every peer has expired and everything is free.
    endpoint.handle_timeout(now + Duration::from_secs(60));
    check(&mut endpoint, &config);
    assert_eq!(endpoint.buffered_bytes(), 0);
    assert_eq!(endpoint.partial_count(), 0);
    assert_eq!(endpoint.peer_count(), 0);
});

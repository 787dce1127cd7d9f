//! Segmenting then reassembling is the identity, whatever order the fragments
//! arrive in and however often each one is repeated.

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use sansproto::datagram::{Config, Endpoint, Event, HEADER_LEN};

fn config(mtu: usize) -> Config {
    let mut config = Config::segmented();
    config.mtu = mtu;
    let seg = config.segmentation.as_mut().unwrap();
    seg.max_message_size = 20_000;
    seg.max_fragments = u16::try_from(20_000usize.div_ceil(mtu - HEADER_LEN)).unwrap();
    config.max_queued_datagrams = 1 << 16;
    config.max_queued_bytes = 1 << 22;
    config
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn segment_then_reassemble_is_identity(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20_000), 1..4),
        mtu in (HEADER_LEN + 1)..2000,
        order in any::<u64>(),
        repeats in prop::collection::vec(1usize..4, 64),
    ) {
        let mut sender = Endpoint::with_random(config(mtu), sansproto::seeded_random(order)).unwrap();
        let mut receiver = Endpoint::new(config(mtu)).unwrap();
        for m in &messages {
            sender.send(2u8, Bytes::from(m.clone())).unwrap();
        }
        let mut wire = Vec::new();
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(to) = sender.poll_transmit(&mut out) {
            prop_assert_eq!(to, 2);
            prop_assert!(out.len() <= mtu);
            let datagram = Bytes::from(std::mem::take(&mut out));
            for _ in 0..repeats[i % repeats.len()] {
                wire.push(datagram.clone());
            }
            i += 1;
        }
        // A seeded Fisher–Yates shuffle interleaves the messages' fragments.
        let mut state = order | 1;
        for k in (1..wire.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            wire.swap(k, (state % (k as u64 + 1)) as usize);
        }
        let now = Instant::now();
        for d in wire {
            receiver.receive(1u8, d, now).unwrap();
        }
        let mut delivered: Vec<Vec<u8>> = std::iter::from_fn(|| receiver.poll_event())
            .filter_map(|e| match e {
                Event::Message { peer: 1, payload } => Some(payload.to_vec()),
                Event::PeerOpened { peer: 1 } => None,
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        let mut expected = messages.clone();
        delivered.sort();
        expected.sort();
        prop_assert_eq!(delivered, expected);
        prop_assert_eq!(receiver.buffered_bytes(), 0);
        prop_assert_eq!(receiver.partial_count(), 0);
    }
}

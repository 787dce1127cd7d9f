//! Reassembly of 64 KiB messages from 1472-byte datagrams, against the
//! unsegmented pass-through of the same bytes and a plain memcpy of them.

use std::time::Instant;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sansproto::datagram::{Config, Endpoint, Event, MTU_ETHERNET_IPV4};

const MESSAGE: usize = 64 * 1024;
/// Distinct pre-segmented messages cycled through: more than the receiver's
/// duplicate window, so a message id comes round again only once it is
/// forgotten, and few enough that the datagrams stay in cache as they would
/// right after a socket read.
const ROTATION: usize = 8;
const DUPLICATE_WINDOW: usize = 4;

fn message() -> Bytes {
    (0..MESSAGE).map(|i| (i * 7) as u8).collect()
}

/// Delivered messages and their total length, draining the event queue.
fn drain(endpoint: &mut Endpoint<u8>) -> (usize, usize) {
    let (mut count, mut bytes) = (0, 0);
    while let Some(event) = endpoint.poll_event() {
        if let Event::Message { payload, .. } = event {
            count += 1;
            bytes += payload.len();
            black_box(payload);
        }
    }
    (count, bytes)
}

fn datagram(c: &mut Criterion) {
    let now = Instant::now();
    let message = message();

    let config = Config::segmented();
    assert_eq!(config.mtu, MTU_ETHERNET_IPV4);
    let mut sender = Endpoint::with_random(config.clone(), sansproto::seeded_random(1)).unwrap();
    let mut out = Vec::new();
    let batches: Vec<Vec<Bytes>> = (0..ROTATION)
        .map(|_| {
            sender.send(1, message.clone()).unwrap();
            std::iter::from_fn(|| {
                sender.poll_transmit(&mut out)?;
                Some(Bytes::from(std::mem::take(&mut out)))
            })
            .collect()
        })
        .collect();
    assert!(batches
        .iter()
        .all(|b| b.len() == 45 && b.iter().all(|d| d.len() <= 1472)));

    let mut group = c.benchmark_group("datagram");
    group.throughput(Throughput::Bytes(MESSAGE as u64));

    let mut receiver_config = config;
    if let Some(seg) = receiver_config.segmentation.as_mut() {
        seg.duplicate_window = DUPLICATE_WINDOW;
    }
    let mut receiver = Endpoint::new(receiver_config).unwrap();
    let mut turn = 0;
    group.bench_function("reassemble_64KiB_from_1472B", |b| {
        b.iter(|| {
            for d in &batches[turn % ROTATION] {
                receiver.receive(2, d.clone(), now).unwrap();
            }
            turn += 1;
            assert_eq!(drain(&mut receiver), (1, MESSAGE));
        })
    });
    assert_eq!(receiver.buffered_bytes(), 0);

    let plain: Vec<Bytes> = message
        .chunks(MTU_ETHERNET_IPV4)
        .map(Bytes::copy_from_slice)
        .collect();
    let mut receiver = Endpoint::new(Config::default()).unwrap();
    group.bench_function("passthrough_64KiB_as_1472B", |b| {
        b.iter(|| {
            for d in &plain {
                receiver.receive(2, d.clone(), now).unwrap();
            }
            assert_eq!(drain(&mut receiver), (plain.len(), MESSAGE));
        })
    });

    let mut copy = vec![0u8; MESSAGE];
    group.bench_function("memcpy_64KiB", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&message));
            black_box(&mut copy);
        })
    });
    group.finish();
}

criterion_group!(benches, datagram);
criterion_main!(benches);

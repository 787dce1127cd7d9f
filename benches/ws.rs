//! WebSocket throughput: a server parsing masked client frames, frame
//! encoding on both sides, a memcpy of the same bytes for reference, and a
//! broadcast to many connections, prepared once or sent to each.
//!
//! Every input is built once, outside the timed loop. Every iteration
//! counts what it decoded or encoded and asserts the count, so no work can
//! be skipped.
//!
//! `cargo bench -p sansproto-benches --bench ws`

use bytes::{Buf, Bytes};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sansproto::ws::{
    encode_frame, Config, Connection, DeflateConfig, Event, ExtensionFactory, ExtensionOffer,
    Message, OpCode, PerMessageDeflate, PreparedMessage, Role,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a socket loop hands over per read.
const READ_CHUNK: usize = 64 << 10;
const MIB: usize = 1 << 20;

/// A client's masking keys: different per frame, as a real client's are.
fn mask_key(i: usize) -> [u8; 4] {
    (i as u32).wrapping_mul(0x9e37_79b9).to_be_bytes()
}

/// `count` masked client frames of `opcode`, each carrying `payload`.
fn client_frames(opcode: OpCode, payload: &[u8], count: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(count * (payload.len() + 14));
    for i in 0..count {
        encode_frame(&mut wire, true, 0, opcode, Some(mask_key(i)), payload);
    }
    wire
}

/// Exactly `len` bytes of UTF-8 that mix 1-, 2-, 3- and 4-byte characters.
fn multibyte_text(len: usize) -> String {
    let mut s = String::with_capacity(len);
    for c in "aé€𝄞 κόσμε ✓ 😀".chars().cycle() {
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(c);
    }
    while s.len() < len {
        s.push('.');
    }
    s
}

fn server() -> Connection {
    Connection::after_handshake(
        Role::Server,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(1),
    )
}

/// Feeds `wire` to a fresh server connection in socket-sized reads, polling
/// every event after each read. Returns (messages, payload bytes).
fn receive_all(wire: &[u8]) -> (usize, usize) {
    let mut conn = server();
    let (mut messages, mut bytes) = (0, 0);
    for chunk in wire.chunks(READ_CHUNK) {
        conn.receive(chunk).expect("valid frames");
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => {
                    messages += 1;
                    bytes += m.len();
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    (messages, bytes)
}

fn server_receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_server_receive");

    let small = client_frames(OpCode::Binary, &[0x5a; 16], 10_000);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("binary_16B_x10000", |b| {
        b.iter(|| {
            let (messages, bytes) = receive_all(black_box(&small));
            assert_eq!((messages, bytes), (10_000, 10_000 * 16));
        })
    });

    let text = multibyte_text(4 << 10);
    let texts = client_frames(OpCode::Text, text.as_bytes(), 1_000);
    group.throughput(Throughput::Bytes(1_000 * 4096));
    group.bench_function("text_4KiB_x1000_multibyte", |b| {
        b.iter(|| {
            let (messages, bytes) = receive_all(black_box(&texts));
            assert_eq!((messages, bytes), (1_000, 1_000 * 4096));
        })
    });

    // The floor for the case above: std validating the same text, each
    // frame's worth hot in cache as it is right after unmasking.
    group.bench_function("std_from_utf8_4KiB_x1000", |b| {
        b.iter(|| {
            let valid = (0..1_000)
                .filter(|_| std::str::from_utf8(black_box(text.as_bytes())).is_ok())
                .count();
            assert_eq!(valid, 1_000);
        })
    });

    let payload: Vec<u8> = (0..MIB).map(|i| (i * 7) as u8).collect();
    let large = client_frames(OpCode::Binary, &payload, 16);
    group.sample_size(20);
    group.throughput(Throughput::Bytes(16 * MIB as u64));
    group.bench_function("binary_1MiB_x16", |b| {
        b.iter(|| {
            let (messages, bytes) = receive_all(black_box(&large));
            assert_eq!((messages, bytes), (16, 16 * MIB));
        })
    });

    // The floor for the case above: copying the same payload bytes once.
    let src = payload.repeat(16);
    let mut dst = vec![0u8; src.len()];
    group.bench_function("memcpy_16MiB", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            assert_eq!(black_box(&dst)[16 * MIB - 1], src[16 * MIB - 1]);
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_encode");

    let small = Bytes::from_static(&[0xa5; 16]);
    let mut out = Vec::with_capacity(10_000 * 18);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("server_binary_16B_x10000", |b| {
        b.iter(|| {
            let mut conn = server();
            out.clear();
            for _ in 0..10_000 {
                conn.send(Message::Binary(small.clone()))
                    .expect("room to send");
                conn.poll_transmit(&mut out);
            }
            // 2-byte header, unmasked payload.
            assert_eq!(black_box(&out).len(), 10_000 * 18);
        })
    });

    // One long-lived client, as on a real connection: its send queue and
    // `out` trade buffers, so the steady state allocates nothing.
    let payload = Bytes::from((0..MIB).map(|i| (i * 13) as u8).collect::<Vec<u8>>());
    let mut client = Connection::after_handshake(
        Role::Client,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(2),
    );
    let mut out = Vec::new();
    group.throughput(Throughput::Bytes(MIB as u64));
    group.bench_function("client_masked_binary_1MiB", |b| {
        b.iter(|| {
            out.clear();
            client
                .send(Message::Binary(payload.clone()))
                .expect("room to send");
            let n = client.poll_transmit(&mut out);
            // 10-byte header with a 64-bit length, 4-byte masking key.
            assert_eq!((n, black_box(&out).len()), (MIB + 14, MIB + 14));
        })
    });

    let mut dst = vec![0u8; MIB];
    group.bench_function("memcpy_1MiB", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&payload));
            assert_eq!(black_box(&dst)[MIB - 1], payload[MIB - 1]);
        })
    });
    group.finish();
}

/// Connections a broadcast reaches.
const FAN_OUT: usize = 10_000;

/// `FAN_OUT` open server connections, with permessage-deflate negotiated
/// (`server_no_context_takeover`) when `deflate`.
fn fan_out(deflate: bool) -> Vec<Connection> {
    let factory = PerMessageDeflate::new(DeflateConfig::default());
    let offer = ExtensionOffer::parse_list("permessage-deflate; server_no_context_takeover")
        .expect("valid offer")
        .remove(0);
    (0..FAN_OUT)
        .map(|i| {
            let ext = deflate.then(|| factory.accept_offer(&[&offer]).expect("accepted").1);
            Connection::after_handshake(
                Role::Server,
                Config::default(),
                None,
                ext,
                sansproto::seeded_random(i as u64),
            )
        })
        .collect()
}

/// A 1 KiB JSON-like text update, compressible as such updates are.
fn update_1kib() -> String {
    let mut s = String::from("[");
    let mut x = 0x2545_f491_u64;
    while s.len() < 1100 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(&format!(
            "{{\"id\":{},\"px\":{}.{:02},\"qty\":{}}},",
            x >> 54,
            (x >> 20) % 1000,
            (x >> 10) % 100,
            x % 500
        ));
    }
    s.truncate(1023);
    s.push(']');
    assert_eq!(s.len(), 1024);
    s
}

/// Writes out (and checks) what every connection queued: the bytes each
/// holds, summed.
fn drain(conns: &mut [Connection]) -> usize {
    conns
        .iter_mut()
        .map(|c| {
            let mut out = c.output();
            let n = out.remaining();
            out.advance(n);
            n
        })
        .sum()
}

/// One 1 KiB text message to 10,000 server connections: prepared once and
/// shared, or sent to each (which frames, and with deflate compresses, it
/// per connection). Only the sends are timed; the queued bytes are written
/// out (and counted) between iterations.
fn prepared(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_broadcast_prepared");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(FAN_OUT as u64));
    let message = Message::from(update_1kib());
    for deflate in [false, true] {
        let name = if deflate { "deflate" } else { "plain" };
        let mut conns = fan_out(deflate);
        // Both ways queue the same bytes: the server frame, compressed
        // from an empty window with deflate.
        conns[0].send(message.clone()).expect("room to send");
        let frame_len = drain(&mut conns[..1]);
        assert!(if deflate {
            frame_len < 900
        } else {
            frame_len == 1028
        });
        let want = FAN_OUT * frame_len;

        group.bench_function(format!("{name}_1KiB_x10000/prepared"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let prepared = PreparedMessage::new(message.clone());
                    for conn in conns.iter_mut() {
                        conn.send_prepared(black_box(&prepared))
                            .expect("room to send");
                    }
                    spent += start.elapsed();
                    assert_eq!(drain(&mut conns), want);
                }
                spent
            })
        });
        group.bench_function(format!("{name}_1KiB_x10000/send_each"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    for conn in conns.iter_mut() {
                        conn.send(black_box(message.clone())).expect("room to send");
                    }
                    spent += start.elapsed();
                    assert_eq!(drain(&mut conns), want);
                }
                spent
            })
        });
    }
    floor(&mut group);
    group.finish();
}

/// A connection's size without the queue a [`Bare`] has.
const STATE: usize = std::mem::size_of::<Connection>() - std::mem::size_of::<VecDeque<Bytes>>();

/// A stand-in for a connection: its size, a frame counter and a queue of
/// shared chunks, and no protocol at all.
struct Bare {
    _state: [u8; STATE],
    frames: u64,
    chunks: VecDeque<Bytes>,
}

/// The floor of both ways for the same fan-out, with no protocol at all:
/// per connection, a frame count and a shared chunk pushed into a struct
/// of a connection's size (`floor_share`), against the frame copied into
/// a buffer of its own (`floor_copy`). Their ratio is the most sharing can
/// save on this machine; `floor_refcount` is the reference count's part of
/// `floor_share`.
fn floor(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let frame = Bytes::from(vec![0x81u8; 1028]);
    let mut bare: Vec<Bare> = (0..FAN_OUT)
        .map(|_| Bare {
            _state: [0; STATE],
            frames: 0,
            chunks: VecDeque::new(),
        })
        .collect();
    group.bench_function("floor_1KiB_x10000/share", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for conn in bare.iter_mut() {
                    conn.frames += 1;
                    conn.chunks.push_back(black_box(&frame).clone());
                }
                spent += start.elapsed();
                let queued: usize = bare
                    .iter_mut()
                    .map(|c| c.chunks.drain(..).map(|f| f.len()).sum::<usize>())
                    .sum();
                assert_eq!(queued, FAN_OUT * frame.len());
            }
            spent
        })
    });
    // What any sharing by reference count pays per connection at the
    // least: one atomic increment of the same count, with no connection
    // touched at all.
    let mut clones: Vec<Bytes> = Vec::with_capacity(FAN_OUT);
    group.bench_function("floor_1KiB_x10000/refcount", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..FAN_OUT {
                    clones.push(black_box(&frame).clone());
                }
                spent += start.elapsed();
                assert_eq!(clones.len(), FAN_OUT);
                clones.clear();
            }
            spent
        })
    });
    let mut buffers: Vec<Vec<u8>> = vec![Vec::new(); FAN_OUT];
    group.bench_function("floor_1KiB_x10000/copy", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for buffer in buffers.iter_mut() {
                    buffer.extend_from_slice(black_box(&frame));
                }
                spent += start.elapsed();
                // Emptied with their allocations kept, as a connection's
                // send queue keeps its own.
                let queued: usize = buffers
                    .iter_mut()
                    .map(|b| {
                        let n = b.len();
                        b.clear();
                        n
                    })
                    .sum();
                assert_eq!(queued, FAN_OUT * frame.len());
            }
            spent
        })
    });
}

criterion_group!(benches, server_receive, encode, prepared);
criterion_main!(benches);

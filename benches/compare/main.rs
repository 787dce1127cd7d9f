//! sansproto beside its peers and the physical limits, in one run.
//!
//! Every case runs on the same pre-built input for every contestant:
//!
//! - WebSocket server receive of masked client frames (16-byte binary,
//!   1 MiB binary, 4 KiB multi-byte text) against tungstenite (blocking,
//!   over an in-memory `Read + Write` stream) and fastwebsockets (async,
//!   over an in-memory `AsyncRead + AsyncWrite` stream on a current-thread
//!   tokio runtime). The streams hand out at most 64 KiB per read, as a
//!   socket does.
//! - WebSocket encoding: unmasked 16-byte server frames and masked 1 MiB
//!   client frames; every contestant writes into the same kind of sink,
//!   which takes at most 64 KiB per write and copies it, as a socket does.
//! - Length-prefixed decoding against tokio-util's `LengthDelimitedCodec`.
//! - References: memcpy of the same bytes, one read of the same bytes,
//!   simdutf8 validation of the same text.
//!
//! Every iteration counts what it received or wrote and asserts the totals,
//! so no path can skip work. `scripts/bench-report.sh` turns the medians
//! into ratios.
//!
//! `cargo bench -p sansproto-benches --bench compare`

use bytes::{Buf, Bytes};
use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use sansproto::ws::{Message, OpCode, Role};
use std::time::Duration;

mod contestants;
mod input;
mod transport;

use sansproto_benches::prefix_runs;

use contestants::{
    fastwebsockets_encode_small, fastwebsockets_receive, ours, ours_encode_small, ours_receive,
    ours_receive_append, ours_receive_into, tungstenite_config, tungstenite_encode_small,
    tungstenite_receive, SMALL_FRAMES,
};
use input::{multibyte_text, RecvCase, Tally};
use transport::{runtime, MemStream, Sink, Written};

const MIB: usize = 1 << 20;

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

// ----- receive -------------------------------------------------------------------

fn bench_receive(c: &mut Criterion, name: &str, case: &RecvCase, throughput: Throughput) {
    let rt = runtime();
    let runs: [(&str, &dyn Fn() -> Tally); 5] = [
        ("sansproto", &|| ours_receive(case)),
        ("sansproto_into", &|| ours_receive_into(case)),
        ("sansproto_append", &|| ours_receive_append(case)),
        ("tungstenite", &|| tungstenite_receive(case)),
        ("fastwebsockets", &|| fastwebsockets_receive(&rt, case)),
    ];
    for (who, run) in runs {
        assert_eq!(run(), case.expected, "{who} on {name}");
    }
    let mut group = c.benchmark_group(name);
    configure(&mut group);
    group.throughput(throughput);
    for (who, run) in runs {
        group.bench_function(who, |b| {
            b.iter(|| {
                let t = run();
                assert_eq!(t, case.expected);
                t
            })
        });
    }
    // Reference: copying the same wire bytes once.
    let mut dst = vec![0u8; case.wire.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&case.wire));
            assert_eq!(black_box(&dst).last(), case.wire.last());
        })
    });
    // Reference: reading the same wire bytes once (XOR-folding them),
    // the least any parser must do; memory bandwidth when they are cold.
    let want = xor_fold(&case.wire);
    group.bench_function("read_once", |b| {
        b.iter(|| assert_eq!(xor_fold(black_box(&case.wire)), want))
    });
    // Reference: unmasking the same bytes in place, the floor for a
    // receive that neither copies nor allocates.
    let mut masked = case.wire.clone();
    group.bench_function("xor_in_place", |b| {
        b.iter(|| {
            sansproto::ws::apply_mask(black_box(&mut masked), [1, 2, 3, 4], 0);
            black_box(&masked);
        })
    });
    if case.opcode == OpCode::Text {
        text_reference(&mut group, case);
    }
    group.finish();
}

/// All of `bytes` XORed together a word at a time (vectorized).
fn xor_fold(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let fold = (&mut words).fold(0u64, |acc, w| {
        acc ^ u64::from_ne_bytes(w.try_into().expect("8 bytes"))
    });
    words
        .remainder()
        .iter()
        .fold(fold, |acc, &b| acc ^ u64::from(b))
}

/// Reference for text: simdutf8 validating the same text, message by
/// message, from a buffer as large as the wire (so it comes from memory as
/// the received bytes do).
fn text_reference(group: &mut BenchmarkGroup<'_, WallTime>, case: &RecvCase) {
    let per = case.expected.bytes / case.expected.messages;
    let text: Vec<u8> = (0..case.expected.messages)
        .flat_map(|i| multibyte_text(per, i % 11).into_bytes())
        .collect();
    group.bench_function("simdutf8", |b| {
        b.iter(|| {
            let valid = black_box(&text)
                .chunks(per)
                .filter(|m| simdutf8::basic::from_utf8(m).is_ok())
                .count();
            assert_eq!(valid, case.expected.messages);
        })
    });
}

fn receive(c: &mut Criterion) {
    let small: Vec<Vec<u8>> = (0..1_000_000u32)
        .map(|i| (0..16).map(|j| (i as u8).wrapping_add(j)).collect())
        .collect();
    let case = RecvCase::new(OpCode::Binary, &small);
    drop(small);
    bench_receive(
        c,
        "recv_binary_16B_x1M",
        &case,
        Throughput::Elements(1_000_000),
    );
    drop(case);

    let large: Vec<Vec<u8>> = (0..100usize)
        .map(|i| (0..MIB).map(|j| (i + j * 7) as u8).collect())
        .collect();
    let case = RecvCase::new(OpCode::Binary, &large);
    drop(large);
    bench_receive(
        c,
        "recv_binary_1MiB_x100",
        &case,
        Throughput::Bytes(100 * MIB as u64),
    );
    drop(case);

    let texts: Vec<Vec<u8>> = (0..10_000)
        .map(|i| multibyte_text(4 << 10, i % 11).into_bytes())
        .collect();
    let case = RecvCase::new(OpCode::Text, &texts);
    drop(texts);
    bench_receive(
        c,
        "recv_text_4KiB_x10k",
        &case,
        Throughput::Bytes(10_000 * 4096),
    );
}

// ----- encode --------------------------------------------------------------------

/// One encode loop: returns (bytes written, last byte written).
type EncodeRun<'a> = dyn Fn() -> (usize, u8) + 'a;

fn encode_small(c: &mut Criterion) {
    // A static payload: cloning it (the owned path) costs no
    // reference-count traffic.
    let payload = Bytes::from_static(Vec::leak((0..16u8).collect()));
    let expected = (SMALL_FRAMES * 18, 15u8);
    let rt = runtime();
    let runs: [(&str, &EncodeRun); 4] = [
        ("sansproto", &|| ours_encode_small(&payload, true)),
        ("sansproto_owned", &|| ours_encode_small(&payload, false)),
        ("tungstenite", &|| tungstenite_encode_small(&payload)),
        ("fastwebsockets", &|| {
            fastwebsockets_encode_small(&rt, &payload)
        }),
    ];
    for (who, run) in runs {
        assert_eq!(run(), expected, "{who}");
    }
    let mut group = c.benchmark_group("encode_server_16B_x1M");
    configure(&mut group);
    group.throughput(Throughput::Elements(SMALL_FRAMES as u64));
    for (who, run) in runs {
        group.bench_function(who, |b| {
            b.iter(|| {
                let got = run();
                assert_eq!(got, expected);
                got
            })
        });
    }
    // Reference: copying the same output bytes once.
    let src: Vec<u8> = (0..SMALL_FRAMES)
        .flat_map(|_| [0x82, 16].into_iter().chain(0..16u8))
        .collect();
    let mut dst = vec![0u8; src.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            assert_eq!(black_box(&dst).last(), Some(&15));
        })
    });
    group.finish();
}

/// Checks one masked 1 MiB client frame as the sink saw it: the header,
/// the length, and the unmasked tail of the payload.
fn check_masked(w: &Written, payload: &[u8]) {
    assert_eq!(
        w.total,
        payload.len() + 14,
        "one frame with a 64-bit length"
    );
    assert_eq!(&w.head[..2], &[0x82, 0xff]);
    assert_eq!(&w.head[2..10], &(payload.len() as u64).to_be_bytes());
    let key = [w.head[10], w.head[11], w.head[12], w.head[13]];
    let tail_start = payload.len() + 14 - w.tail.len() - 14;
    for (i, (&got, &want)) in w.tail.iter().zip(&payload[tail_start..]).enumerate() {
        assert_eq!(got ^ key[(tail_start + i) % 4], want);
    }
}

/// Writes everything `conn` has queued into `sink`, chunk by chunk.
fn write_output(conn: &mut sansproto::ws::Connection, sink: &mut Sink) {
    let mut out = conn.output();
    while out.has_remaining() {
        let n = out.chunk().len();
        sink.write_all(out.chunk());
        out.advance(n);
    }
}

fn encode_masked(c: &mut Criterion) {
    let payload = Bytes::from((0..MIB).map(|i| (i * 13) as u8).collect::<Vec<u8>>());
    let rt = runtime();

    // Long-lived clients, as on a real connection: steady-state buffers.
    // A shared payload is masked as it is copied into the queue once, then
    // written from there (`output()`, as a `writev` would).
    let mut conn = ours(Role::Client);
    let mut ours_once = || {
        let mut sink = Sink::new();
        conn.send(Message::Binary(payload.clone()))
            .expect("room to send");
        write_output(&mut conn, &mut sink);
        Written::from(sink)
    };
    let mut tung = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(&[]),
        tungstenite::protocol::Role::Client,
        Some(tungstenite_config()),
    );
    let mut tungstenite_once = || {
        tung.get_mut().sink = Sink::new();
        tung.send(tungstenite::Message::Binary(payload.clone()))
            .expect("sent");
        Written::from(std::mem::replace(&mut tung.get_mut().sink, Sink::new()))
    };
    let mut fws = fastwebsockets::WebSocket::after_handshake(
        MemStream::new(&[]),
        fastwebsockets::Role::Client,
    );
    // Owned payloads, built fresh for each frame (the copy counts for
    // both): masked in place, then written without a further copy.
    let mut owned_conn = ours(Role::Client);
    let mut owned_once = || {
        let mut sink = Sink::new();
        let owned = Bytes::from(payload.to_vec());
        owned_conn
            .send(Message::Binary(owned))
            .expect("room to send");
        write_output(&mut owned_conn, &mut sink);
        Written::from(sink)
    };
    check_masked(&owned_once(), &payload);
    let mut fws_owned = fastwebsockets::WebSocket::after_handshake(
        MemStream::new(&[]),
        fastwebsockets::Role::Client,
    );
    let mut fastwebsockets_owned_once = || {
        use fastwebsockets::{Frame, Payload};
        rt.block_on(async {
            fws_owned
                .write_frame(Frame::binary(Payload::Owned(payload.to_vec())))
                .await
                .expect("written");
        });
        let stream = std::mem::replace(
            &mut fws_owned,
            fastwebsockets::WebSocket::after_handshake(
                MemStream::new(&[]),
                fastwebsockets::Role::Client,
            ),
        )
        .into_inner();
        Written::from(stream.sink)
    };
    check_masked(&fastwebsockets_owned_once(), &payload);
    let mut group = c.benchmark_group("encode_client_masked_owned_1MiB");
    configure(&mut group);
    group.throughput(Throughput::Bytes(MIB as u64));
    group.bench_function("sansproto", |b| {
        b.iter(|| assert_eq!(owned_once().total, MIB + 14))
    });
    group.bench_function("fastwebsockets", |b| {
        b.iter(|| assert_eq!(fastwebsockets_owned_once().total, MIB + 14))
    });
    group.finish();

    let mut fastwebsockets_once = || {
        use fastwebsockets::{Frame, Payload};
        rt.block_on(async {
            fws.write_frame(Frame::binary(Payload::Borrowed(&payload)))
                .await
                .expect("written");
        });
        // The sink is inside; swap it out through a fresh stream.
        let stream = std::mem::replace(
            &mut fws,
            fastwebsockets::WebSocket::after_handshake(
                MemStream::new(&[]),
                fastwebsockets::Role::Client,
            ),
        )
        .into_inner();
        Written::from(stream.sink)
    };
    check_masked(&ours_once(), &payload);
    check_masked(&tungstenite_once(), &payload);
    check_masked(&fastwebsockets_once(), &payload);

    let mut group = c.benchmark_group("encode_client_masked_1MiB");
    configure(&mut group);
    group.throughput(Throughput::Bytes(MIB as u64));
    group.bench_function("sansproto", |b| {
        b.iter(|| {
            let w = ours_once();
            assert_eq!(w.total, MIB + 14);
        })
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            let w = tungstenite_once();
            assert_eq!(w.total, MIB + 14);
        })
    });
    group.bench_function("fastwebsockets", |b| {
        b.iter(|| {
            let w = fastwebsockets_once();
            assert_eq!(w.total, MIB + 14);
        })
    });
    let mut dst = vec![0u8; MIB];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&payload));
            assert_eq!(black_box(&dst)[MIB - 1], payload[MIB - 1]);
        })
    });
    group.finish();
}

// ----- length-prefixed framing ------------------------------------------------------

fn prefix(c: &mut Criterion) {
    for (name, payload, total) in prefix_runs::SIZES {
        let input = prefix_runs::input(payload, total);
        let expected = (input.frames, input.payload_bytes);
        let mut group = c.benchmark_group(format!("prefix_{name}"));
        configure(&mut group);
        group.throughput(Throughput::Bytes(input.wire.len() as u64));
        for (who, run) in prefix_runs::RUNS {
            assert_eq!(run(&input), expected, "{who}");
            group.bench_function(who, |b| {
                b.iter(|| {
                    let got = run(&input);
                    assert_eq!(got, expected);
                    got
                })
            });
        }
        let mut dst = vec![0u8; input.wire.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&input.wire));
                assert_eq!(black_box(&dst).last(), input.wire.last());
            })
        });
        group.finish();
    }
}

criterion_group!(benches, receive, encode_small, encode_masked, prefix);
criterion_main!(benches);

//! Decoding length-prefixed frames (4-byte big-endian length, header
//! stripped): sansproto's `Decoder` and `Connection` against tokio-util's
//! `LengthDelimitedCodec`, on the same pre-built input fed in 64 KiB chunks
//! as a socket read loop would. Every bench counts the frames and bytes it
//! decoded and asserts them.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use sansproto_benches::prefix_runs::{input, RUNS, SIZES};

fn decode(c: &mut Criterion) {
    for (name, payload, total) in SIZES {
        let input = input(payload, total);
        let mut group = c.benchmark_group(format!("decode_{name}"));
        group.throughput(Throughput::Bytes(input.wire.len() as u64));
        for (who, run) in RUNS {
            assert_eq!(run(&input), (input.frames, input.payload_bytes), "{who}");
            group.bench_with_input(BenchmarkId::new(who, input.frames), &input, |b, input| {
                b.iter(|| {
                    let got = run(input);
                    assert_eq!(got, (input.frames, input.payload_bytes));
                    got
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);

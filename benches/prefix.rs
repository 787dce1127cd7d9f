//! Decoding length-prefixed frames (4-byte big-endian length, header
//! stripped): sansproto's `Decoder` and `Connection` against tokio-util's
//! `LengthDelimitedCodec`, on the same pre-built input fed in 64 KiB chunks
//! as a socket read loop would. Every bench counts the frames and bytes it
//! decoded and asserts them.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sansproto::prefix::{Config, Connection, Decoded, Decoder, Encoder, Event};
use sansproto::Driver;
use tokio_util::codec::{Decoder as _, LengthDelimitedCodec};

const CHUNK: usize = 64 * 1024;

/// A decode loop: returns (frames, payload bytes) decoded.
type Run = fn(&Input) -> (usize, usize);

struct Input {
    wire: Vec<u8>,
    frames: usize,
    payload_bytes: usize,
}

fn input(payload: usize, total: usize) -> Input {
    let encoder = Encoder::new(&Config::default());
    let body: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    let frames = (total / (payload + 4)).max(1);
    let mut wire = Vec::with_capacity(frames * (payload + 4));
    for _ in 0..frames {
        encoder.encode(&[], &body, &mut wire).unwrap();
    }
    Input {
        wire,
        frames,
        payload_bytes: frames * payload,
    }
}

fn ours_decoder(input: &Input) -> (usize, usize) {
    let mut decoder = Decoder::new(&Config::default());
    let mut buf = BytesMut::new();
    let (mut frames, mut bytes) = (0, 0);
    for chunk in input.wire.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(decoded) = decoder.decode(&mut buf).unwrap() {
            if let Decoded::Frame(frame) = decoded {
                frames += 1;
                bytes += black_box(frame).len();
            }
        }
    }
    (frames, bytes)
}

fn ours_connection(input: &Input) -> (usize, usize) {
    let mut conn = Connection::new(Config::default());
    let (mut frames, mut bytes) = (0, 0);
    for chunk in input.wire.chunks(CHUNK) {
        conn.receive(chunk).unwrap();
        while let Some(event) = conn.poll_event() {
            if let Event::Frame(frame) = event {
                frames += 1;
                bytes += black_box(frame).len();
            }
        }
    }
    (frames, bytes)
}

fn tokio_util(input: &Input) -> (usize, usize) {
    let mut codec = LengthDelimitedCodec::new();
    let mut buf = BytesMut::new();
    let (mut frames, mut bytes) = (0, 0);
    for chunk in input.wire.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            frames += 1;
            bytes += black_box(frame).len();
        }
    }
    (frames, bytes)
}

fn decode(c: &mut Criterion) {
    for (name, payload, total) in [("16B", 16, 1 << 20), ("64KiB", 64 * 1024, 4 << 20)] {
        let input = input(payload, total);
        let mut group = c.benchmark_group(format!("decode_{name}"));
        group.throughput(Throughput::Bytes(input.wire.len() as u64));
        let runs: [(&str, Run); 3] = [
            ("sansproto_decoder", ours_decoder),
            ("sansproto_connection", ours_connection),
            ("tokio_util", tokio_util),
        ];
        for (who, run) in runs {
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

//! Length-prefixed decode loops shared by the `prefix` and `compare` benches:
//! 4-byte big-endian length, header stripped, input fed in 64 KiB chunks as
//! a socket read loop would. Each loop returns (frames, payload bytes).

use bytes::BytesMut;
use criterion::black_box;
use sansproto::prefix::{Config, Connection, Decoded, Decoder, Encoder, Event};
use tokio_util::codec::{Decoder as _, LengthDelimitedCodec};

/// What a socket read hands over.
pub const CHUNK: usize = 64 * 1024;

/// A decode loop: returns (frames, payload bytes) decoded.
pub type Run = fn(&Input) -> (usize, usize);

/// Pre-built wire bytes and the totals a decoder must find in them.
pub struct Input {
    pub wire: Vec<u8>,
    pub frames: usize,
    pub payload_bytes: usize,
}

/// About `total` bytes of frames carrying `payload` bytes each.
pub fn input(payload: usize, total: usize) -> Input {
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

/// sansproto's `Decoder` over a caller-owned `BytesMut`.
pub fn ours_decoder(input: &Input) -> (usize, usize) {
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

/// sansproto's `Connection`: receive, then poll every event.
pub fn ours_connection(input: &Input) -> (usize, usize) {
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

/// tokio-util's `LengthDelimitedCodec` with its defaults (the same layout).
pub fn tokio_util(input: &Input) -> (usize, usize) {
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

/// The frame sizes benched: (name, payload bytes, total wire bytes).
pub const SIZES: [(&str, usize, usize); 2] = [("16B", 16, 1 << 20), ("64KiB", 64 * 1024, 4 << 20)];

/// Every decode loop, by name.
pub const RUNS: [(&str, Run); 3] = [
    ("sansproto_decoder", ours_decoder),
    ("sansproto_connection", ours_connection),
    ("tokio_util", tokio_util),
];

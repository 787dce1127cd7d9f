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
//! `cargo bench --bench compare`

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use sansproto::ws::{encode_frame, Config, Connection, Event, Message, OpCode, Role};
use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[path = "support/prefix_runs.rs"]
mod prefix_runs;

/// The most a socket read returns, and the most a socket write takes.
const IO_CHUNK: usize = 64 << 10;
const MIB: usize = 1 << 20;

// ----- input -------------------------------------------------------------

/// A client's masking keys: different per frame, as a real client's are.
fn mask_key(i: usize) -> [u8; 4] {
    (i as u32).wrapping_mul(0x9e37_79b9).to_be_bytes()
}

/// Masked client frames, one per payload.
fn client_frames<'a>(opcode: OpCode, payloads: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut wire = Vec::new();
    for (i, payload) in payloads.enumerate() {
        encode_frame(&mut wire, true, 0, opcode, Some(mask_key(i)), payload);
    }
    wire
}

/// Exactly `len` bytes of UTF-8 mixing 1-, 2-, 3- and 4-byte characters,
/// starting `skip` characters into the pattern (so messages differ).
fn multibyte_text(len: usize, skip: usize) -> String {
    let mut s = String::with_capacity(len);
    for c in "aé€𝄞 κόσμε ✓ 😀".chars().cycle().skip(skip) {
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

/// Received data messages, summarised so that a skipped unmasking or a
/// lost message shows: count, payload bytes, and the sum of every
/// message's last byte.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    messages: usize,
    bytes: usize,
    last_bytes: u64,
}

impl Tally {
    #[inline]
    fn add(&mut self, payload: &[u8]) {
        self.messages += 1;
        self.bytes += payload.len();
        self.last_bytes += u64::from(payload.last().copied().unwrap_or(0));
    }
}

/// A receive case: the wire bytes and what a correct parser finds in them.
struct RecvCase {
    opcode: OpCode,
    wire: Vec<u8>,
    expected: Tally,
}

impl RecvCase {
    fn new(opcode: OpCode, payloads: &[Vec<u8>]) -> Self {
        let mut expected = Tally::default();
        for p in payloads {
            expected.add(p);
        }
        Self {
            opcode,
            wire: client_frames(opcode, payloads.iter().map(Vec::as_slice)),
            expected,
        }
    }
}

// ----- in-memory transport ---------------------------------------------------

/// What a socket's send side does with written bytes: takes at most 64 KiB
/// per call and copies them out (into a buffer that stays hot, as the
/// kernel's would). Remembers the first bytes and the last write so the
/// output can be checked.
struct Sink {
    staging: Vec<u8>,
    staged: usize,
    head: Vec<u8>,
    total: usize,
}

impl Sink {
    fn new() -> Self {
        Self {
            staging: vec![0; IO_CHUNK],
            staged: 0,
            head: Vec::with_capacity(14),
            total: 0,
        }
    }

    /// One `write` call: returns how many bytes were taken.
    #[inline]
    fn write(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(IO_CHUNK);
        if self.head.len() < 14 {
            let want = (14 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..want]);
        }
        self.staging[..n].copy_from_slice(&buf[..n]);
        self.staged = n;
        self.total += n;
        n
    }

    fn write_all(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            let n = self.write(buf);
            buf = &buf[n..];
        }
    }

    fn last_write(&self) -> &[u8] {
        &self.staging[..self.staged]
    }
}

/// A connected socket in memory: reads hand out the input at most 64 KiB
/// at a time, writes go to a [`Sink`].
struct MemStream<'a> {
    input: &'a [u8],
    sink: Sink,
}

impl<'a> MemStream<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            sink: Sink::new(),
        }
    }

    #[inline]
    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(IO_CHUNK).min(self.input.len());
        let (now, rest) = self.input.split_at(n);
        buf[..n].copy_from_slice(now);
        self.input = rest;
        n
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        let mut n = 0;
        for b in bufs {
            if n == IO_CHUNK {
                break;
            }
            let take = b.len().min(IO_CHUNK - n);
            n += self.sink.write(&b[..take]);
        }
        n
    }
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_into(buf))
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.sink.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(MemStream::write_vectored(self, bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MemStream<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = buf.remaining().min(IO_CHUNK).min(this.input.len());
        let (now, rest) = this.input.split_at(n);
        buf.put_slice(now);
        this.input = rest;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().sink.write(buf)))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().write_vectored(bufs)))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

// ----- the contestants: receive ----------------------------------------------

fn ours(role: Role) -> Connection {
    // Limits as the peers' defaults: 16 MiB frames, 64 MiB messages.
    Connection::after_handshake(
        role,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(1),
    )
}

fn ours_receive(case: &RecvCase) -> Tally {
    let mut conn = ours(Role::Server);
    let mut t = Tally::default();
    for chunk in case.wire.chunks(IO_CHUNK) {
        conn.receive(chunk).expect("valid frames");
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => t.add(m.as_bytes()),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    t
}

fn tungstenite_config() -> tungstenite::protocol::WebSocketConfig {
    // The defaults: 128 KiB read buffer, 16 MiB frames, 64 MiB messages.
    tungstenite::protocol::WebSocketConfig::default()
}

fn tungstenite_receive(case: &RecvCase) -> Tally {
    use tungstenite::Message as M;
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(&case.wire),
        tungstenite::protocol::Role::Server,
        Some(tungstenite_config()),
    );
    let mut t = Tally::default();
    while t.messages < case.expected.messages {
        match ws.read().expect("valid frames") {
            M::Binary(b) => t.add(&b),
            M::Text(s) => t.add(s.as_bytes()),
            other => panic!("unexpected message {other:?}"),
        }
    }
    t
}

fn fastwebsockets_receive(rt: &tokio::runtime::Runtime, case: &RecvCase) -> Tally {
    use fastwebsockets::OpCode as Op;
    rt.block_on(async {
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(&case.wire),
            fastwebsockets::Role::Server,
        );
        // Its defaults otherwise: auto-pong, auto-close, masks applied, and
        // text frames validated as UTF-8.
        ws.set_max_message_size(64 << 20);
        let mut t = Tally::default();
        while t.messages < case.expected.messages {
            let frame = ws.read_frame().await.expect("valid frames");
            match frame.opcode {
                Op::Binary | Op::Text => t.add(&frame.payload),
                other => panic!("unexpected opcode {other:?}"),
            }
        }
        t
    })
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn bench_receive(c: &mut Criterion, name: &str, case: &RecvCase, throughput: Throughput) {
    let rt = runtime();
    let runs: [(&str, &dyn Fn() -> Tally); 3] = [
        ("sansproto", &|| ours_receive(case)),
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

// ----- the contestants: encode -------------------------------------------------

/// Bytes written, and the last write, for checking.
struct Written {
    total: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl From<Sink> for Written {
    fn from(s: Sink) -> Self {
        Self {
            total: s.total,
            tail: s.last_write().to_vec(),
            head: s.head,
        }
    }
}

const SMALL_FRAMES: usize = 1_000_000;

/// One encode loop: returns (bytes written, last byte written).
type EncodeRun<'a> = dyn Fn() -> (usize, u8) + 'a;

/// sansproto sending a borrowed payload (`send_binary_slice`), as
/// fastwebsockets' `Payload::Borrowed`, or an owned `Bytes` (`send`).
fn ours_encode_small(payload: &Bytes, borrowed: bool) -> (usize, u8) {
    let mut conn = ours(Role::Server);
    let mut sink = Sink::new();
    let mut out = Vec::new();
    for _ in 0..SMALL_FRAMES {
        if borrowed {
            conn.send_binary_slice(payload)
        } else {
            conn.send(Message::Binary(payload.clone()))
        }
        .expect("room to send");
        if conn.buffered_amount() >= IO_CHUNK {
            conn.poll_transmit(&mut out);
            sink.write_all(&out);
            out.clear();
        }
    }
    conn.poll_transmit(&mut out);
    sink.write_all(&out);
    (sink.total, sink.last_write().last().copied().unwrap_or(0))
}

fn tungstenite_encode_small(payload: &Bytes) -> (usize, u8) {
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(&[]),
        tungstenite::protocol::Role::Server,
        Some(tungstenite_config()),
    );
    for _ in 0..SMALL_FRAMES {
        ws.write(tungstenite::Message::Binary(payload.clone()))
            .expect("room to send");
    }
    ws.flush().expect("flushed");
    let sink = &ws.get_ref().sink;
    (sink.total, sink.last_write().last().copied().unwrap_or(0))
}

fn fastwebsockets_encode_small(rt: &tokio::runtime::Runtime, payload: &Bytes) -> (usize, u8) {
    use fastwebsockets::{Frame, Payload};
    rt.block_on(async {
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(&[]),
            fastwebsockets::Role::Server,
        );
        for _ in 0..SMALL_FRAMES {
            ws.write_frame(Frame::binary(Payload::Borrowed(payload)))
                .await
                .expect("written");
        }
        ws.flush().await.expect("flushed");
        let sink = ws.into_inner().sink;
        (sink.total, sink.last_write().last().copied().unwrap_or(0))
    })
}

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

fn encode_masked(c: &mut Criterion) {
    let payload = Bytes::from((0..MIB).map(|i| (i * 13) as u8).collect::<Vec<u8>>());
    let rt = runtime();

    // Long-lived clients, as on a real connection: steady-state buffers.
    let mut conn = ours(Role::Client);
    let mut out = Vec::new();
    let mut ours_once = || {
        let mut sink = Sink::new();
        conn.send(Message::Binary(payload.clone()))
            .expect("room to send");
        conn.poll_transmit(&mut out);
        sink.write_all(&out);
        out.clear();
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

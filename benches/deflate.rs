//! permessage-deflate cost: 4 KiB JSON-like text messages sent and received
//! compressed (with and without context takeover) beside the uncompressed
//! path, and beside the floor: the same messages compressed and
//! decompressed through flate2 (zlib-rs) directly, one stream, reused
//! buffers, sync flush (`raw_zlib`); on receive also with each text
//! message checked as UTF-8, as every receiver must (`raw_zlib_utf8`).

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use sansproto::ws::{
    Config, Connection, DeflateConfig, Event, ExtensionFactory, ExtensionOffer, Message,
    PerMessageDeflate, Role,
};

const MESSAGES: usize = 1000;

fn json_message(i: usize) -> String {
    let mut s = String::with_capacity(4096);
    let mut n = 0;
    while s.len() < 4096 - 120 {
        s.push_str(&format!(
            "{{\"id\":{},\"user\":\"user-{}\",\"score\":{}.{},\"tags\":[\"alpha\",\"beta\"],\"ok\":true}},",
            i * 100 + n,
            (i * 7 + n) % 997,
            (n * 13) % 1000,
            n % 10
        ));
        n += 1;
    }
    while s.len() < 4096 {
        s.push(' ');
    }
    s
}

fn connection(role: Role, offer: Option<&str>) -> Connection {
    let ext = offer.map(|o| {
        let factory = PerMessageDeflate::new(DeflateConfig::default().with_threshold(0));
        let offer = ExtensionOffer::parse_list(o).unwrap().remove(0);
        match role {
            Role::Server => factory.accept_offer(&[&offer]).unwrap().1,
            Role::Client => factory.accept_response(&offer).unwrap(),
        }
    });
    Connection::after_handshake(
        role,
        Config::default(),
        None,
        ext,
        sansproto::seeded_random(5),
    )
}

const MODES: [(&str, Option<&str>); 3] = [
    ("uncompressed", None),
    ("deflate", Some("permessage-deflate")),
    (
        "deflate_no_context_takeover",
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ),
];

/// The floor for sending: every message through one compressor with a
/// sync flush into a reused buffer, the empty block's tail stripped as
/// RFC 7692 does. Returns the compressed bytes in total.
fn raw_compress(messages: &[Message], out: &mut Vec<u8>) -> usize {
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut total = 0;
    for m in messages {
        out.clear();
        out.reserve(m.len() + 64);
        c.compress_vec(m.as_bytes(), out, FlushCompress::Sync)
            .unwrap();
        total += out.len() - 4;
    }
    total
}

/// The floor for receiving: every compressed message (tail put back)
/// through one decompressor into a reused buffer.
fn raw_decompress(compressed: &[Vec<u8>], out: &mut Vec<u8>, text: bool) -> usize {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut total = 0;
    for m in compressed {
        out.clear();
        d.decompress_vec(m, out, FlushDecompress::Sync).unwrap();
        // A text message is valid UTF-8 or the connection fails: every
        // receiver checks it (RFC 6455 §8.1).
        if text {
            assert!(simdutf8::basic::from_utf8(out).is_ok());
        }
        total += out.len();
    }
    total
}

fn bench(c: &mut Criterion) {
    let messages: Vec<Message> = (0..MESSAGES)
        .map(|i| Message::from(json_message(i)))
        .collect();
    let total: usize = messages.iter().map(Message::len).sum();

    let mut g = c.benchmark_group("deflate_4k_json_send");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(20);
    for (name, offer) in MODES {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (
                        connection(Role::Server, offer),
                        messages.clone(),
                        Vec::with_capacity(total + 16 * MESSAGES),
                    )
                },
                |(mut server, msgs, mut out)| {
                    for m in msgs {
                        server.send(m).unwrap();
                    }
                    server.poll_transmit(&mut out);
                    assert!(!out.is_empty());
                    out.len()
                },
                BatchSize::LargeInput,
            )
        });
    }
    let mut raw_out = Vec::new();
    g.bench_function("raw_zlib", |b| {
        b.iter(|| black_box(raw_compress(&messages, &mut raw_out)))
    });
    g.finish();

    let mut g = c.benchmark_group("deflate_4k_json_receive");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(20);
    for (name, offer) in MODES {
        let mut server = connection(Role::Server, offer);
        for m in &messages {
            server.send(m.clone()).unwrap();
        }
        let mut wire = Vec::new();
        server.poll_transmit(&mut wire);
        println!(
            "{name}: {} message bytes in {} wire bytes",
            total,
            wire.len()
        );
        g.bench_function(name, |b| {
            b.iter_batched(
                || connection(Role::Client, offer),
                |mut client| {
                    let mut got = 0usize;
                    for chunk in wire.chunks(64 * 1024) {
                        client.receive(chunk).unwrap();
                        while let Some(e) = client.poll_event() {
                            if let Event::Message(m) = e {
                                got += m.len();
                            }
                        }
                    }
                    assert_eq!(got, total);
                    got
                },
                BatchSize::SmallInput,
            )
        });
    }
    // The floor: the same messages, compressed once, with their tails.
    let mut compressor = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let compressed: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| {
            let mut v = Vec::with_capacity(m.len() + 64);
            compressor
                .compress_vec(m.as_bytes(), &mut v, FlushCompress::Sync)
                .unwrap();
            v
        })
        .collect();
    let mut raw_out = Vec::with_capacity(8192);
    assert_eq!(raw_decompress(&compressed, &mut raw_out, true), total);
    g.bench_function("raw_zlib", |b| {
        b.iter(|| black_box(raw_decompress(&compressed, &mut raw_out, false)))
    });
    // The same, each message then checked as UTF-8 as text must be.
    g.bench_function("raw_zlib_utf8", |b| {
        b.iter(|| black_box(raw_decompress(&compressed, &mut raw_out, true)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

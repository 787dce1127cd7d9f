//! Property tests: for random layouts and payloads, encode then decode under
//! random chunking is the identity; discard mode drops exactly the frames
//! over the limit.

mod common;

use bytes::Bytes;
use common::prefix::{decode_chunks, receive_chunks};
use proptest::prelude::*;
use sansproto::prefix::varint::VarintFormat;
use sansproto::prefix::{ByteOrder, Config, Decoded, EncodeError, Encoder, Event};

#[derive(Debug, Clone)]
enum Field {
    Fixed(usize, ByteOrder),
    Varint(VarintFormat, usize, bool),
}

#[derive(Debug, Clone)]
struct Layout {
    offset: usize,
    field: Field,
    adjustment: i64,
    includes_header: bool,
    strip: Option<usize>,
    payload_limit: bool,
}

impl Layout {
    fn builder(&self) -> sansproto::prefix::Builder {
        let mut b = Config::builder()
            .length_field_offset(self.offset)
            .length_adjustment(self.adjustment)
            .length_includes_header(self.includes_header);
        b = match self.field {
            Field::Fixed(width, order) => b.length_field_width(width).byte_order(order),
            Field::Varint(format, max, strict) => b
                .varint(format)
                .varint_max_bytes(max)
                .reject_non_minimal(strict),
        };
        match self.strip {
            Some(n) => b.strip(n),
            None => b.strip_header(),
        }
    }

    fn config(&self) -> Config {
        let b = self.builder();
        let b = if self.payload_limit {
            b.max_payload_length(1 << 20)
        } else {
            b.max_frame_length(1 << 20)
        };
        b.build().expect("valid layout")
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    let order = prop_oneof![Just(ByteOrder::BigEndian), Just(ByteOrder::LittleEndian)];
    let format = prop_oneof![Just(VarintFormat::Leb128), Just(VarintFormat::Ber)];
    let field = prop_oneof![
        (prop::sample::select(vec![1usize, 2, 3, 4, 8]), order)
            .prop_map(|(w, o)| Field::Fixed(w, o)),
        (format, 1usize..=10, any::<bool>()).prop_map(|(f, m, s)| Field::Varint(f, m, s)),
    ];
    (
        0usize..4,
        field,
        -6i64..6,
        any::<bool>(),
        prop::option::of(0usize..2),
        any::<bool>(),
    )
        .prop_map(
            |(offset, field, adjustment, includes_header, strip, payload_limit)| Layout {
                offset,
                field,
                adjustment,
                includes_header,
                // Never more than the shortest header, so every frame has it.
                strip: strip.map(|s| s + offset),
                payload_limit,
            },
        )
}

fn payloads() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 4),
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..8,
    )
}

fn chunked<'a>(wire: &'a [u8], sizes: &'a [usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
        i += 1;
    }
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity(
        layout in layout(),
        frames in payloads(),
        sizes in prop::collection::vec(1usize..80, 1..12),
    ) {
        let config = layout.config();
        let encoder = Encoder::new(&config);
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (header, body) in &frames {
            let header = &header[..layout.offset];
            let start = wire.len();
            match encoder.encode(header, body, &mut wire) {
                Ok(n) => {
                    prop_assert_eq!(n, wire.len() - start);
                    let frame = &wire[start..];
                    let header_len = frame.len() - body.len();
                    let strip = layout.strip.unwrap_or(header_len);
                    expected.push(Decoded::Frame(Bytes::copy_from_slice(&frame[strip..])));
                }
                // Only values the field cannot carry are refused.
                Err(EncodeError::LengthNegative { .. } | EncodeError::LengthDoesNotFit { .. }) => {
                    prop_assert_eq!(wire.len(), start);
                }
                Err(e) => prop_assert!(false, "unexpected refusal {e:?}"),
            }
        }
        let chunks = chunked(&wire, &sizes);
        let (got, mut decoder, mut buf) = decode_chunks(&config, chunks.iter().copied());
        prop_assert_eq!(&got, &expected);
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoder.decode_eof(&mut buf), Ok(None));
        let (events, _) = receive_chunks(&config, chunks.iter().copied());
        let frames: Vec<Event> = got.into_iter().map(|d| match d {
            Decoded::Frame(b) => Event::Frame(b),
            Decoded::Discarded { length } => Event::FrameDiscarded { length },
        }).collect();
        prop_assert_eq!(events, frames);
    }

    #[test]
    fn discard_mode_drops_exactly_the_long_frames(
        layout in layout(),
        frames in payloads(),
        max in 0usize..200,
        sizes in prop::collection::vec(1usize..80, 1..12),
    ) {
        let wide = layout.config();
        let b = layout.builder().discard_too_long_frames(true);
        let narrow = if layout.payload_limit { b.max_payload_length(max) } else { b.max_frame_length(max) }.build();
        // Whole-frame limits below the header are refused by the builder.
        let Ok(narrow) = narrow else { return Ok(()) };
        let encoder = Encoder::new(&wide);
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (header, body) in &frames {
            let start = wire.len();
            if encoder.encode(&header[..layout.offset], body, &mut wire).is_err() {
                continue;
            }
            let frame = &wire[start..];
            let header_len = frame.len() - body.len();
            let measured = if layout.payload_limit { body.len() } else { frame.len() };
            if measured > max {
                expected.push(Decoded::Discarded { length: frame.len() as u64 });
            } else {
                let strip = layout.strip.unwrap_or(header_len);
                expected.push(Decoded::Frame(Bytes::copy_from_slice(&frame[strip..])));
            }
        }
        let (got, _, buf) = decode_chunks(&narrow, chunked(&wire, &sizes));
        prop_assert_eq!(got, expected);
        prop_assert!(buf.is_empty());
    }
}

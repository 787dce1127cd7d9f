//! Limits on what the peer controls: claimed lengths never turn into
//! allocations, over-long frames fail or are discarded exactly, bad lengths
//! are typed errors.

mod common;

use bytes::BytesMut;
use common::prefix::{decode_chunks, drain, receive_chunks};
use sansproto::prefix::varint::{VarintError, VarintFormat};
use sansproto::prefix::{Config, Connection, DecodeError, Decoded, Decoder, Encoder, Event};

/// A capacity that has clearly not been sized from a claimed length.
const SMALL: usize = 64 * 1024;

#[test]
fn four_gib_claim_fails_without_allocating() {
    let config = Config::default(); // 8 MiB whole-frame limit
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0xff, 0xff, 0xff]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&[0xff, b'x', b'y']);
    let err = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        DecodeError::FrameTooLong {
            length: 4 + 0xffff_ffff,
            max: 8 * 1024 * 1024
        }
    );
    assert!(buf.capacity() < SMALL, "capacity {}", buf.capacity());
    // Sticky.
    buf.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(decoder.decode(&mut buf), Err(err.clone()));

    let mut conn = Connection::new(config);
    assert_eq!(
        conn.receive(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
        Err(err.clone())
    );
    assert_eq!(conn.buffered_bytes(), 0);
    assert!(conn.is_finished());
    assert_eq!(conn.receive(&[0, 0, 0, 0]), Err(err.clone()));
    assert_eq!(conn.receive_eof(), Err(err));
    assert_eq!(conn.poll_event(), None);
}

#[test]
fn accepted_huge_claim_grows_only_with_arriving_bytes() {
    // With no practical limit, a claimed 4 GiB (and, width 8, 2^63 bytes)
    // frame is accepted, and the buffer holds only what arrived.
    for (width, header) in [
        (4, vec![0xff, 0xff, 0xff, 0xff]),
        (8, vec![0x80, 0, 0, 0, 0, 0, 0, 0]),
    ] {
        let config = Config::builder()
            .length_field_width(width)
            .max_frame_length(usize::MAX)
            .build()
            .unwrap();
        let mut decoder = Decoder::new(&config);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&header);
        for _ in 0..16 {
            buf.extend_from_slice(&[7; 1024]);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
        }
        assert_eq!(buf.len(), width + 16 * 1024);
        assert!(
            buf.capacity() < SMALL,
            "width {width}: capacity {}",
            buf.capacity()
        );

        let mut conn = Connection::new(config);
        conn.receive(&header).unwrap();
        for _ in 0..16 {
            conn.receive(&[7; 1024]).unwrap();
        }
        assert_eq!(conn.buffered_bytes(), width + 16 * 1024);
        assert_eq!(conn.poll_event(), None);
        // The peer hangs up: the loss is reported, with the claimed length.
        match conn.receive_eof() {
            Err(DecodeError::Truncated {
                buffered,
                frame_length: Some(n),
            }) => {
                assert_eq!(buffered, width + 16 * 1024);
                assert!(n as u64 >= 0xffff_ffff);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn width_eight_two_to_the_63_over_limit() {
    let config = Config::builder()
        .length_field_width(8)
        .max_payload_length(1 << 20)
        .build()
        .unwrap();
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::from(&[0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2][..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::FrameTooLong {
            length: 1 << 63,
            max: 1 << 20
        })
    );
    assert!(buf.capacity() < SMALL);
}

#[test]
fn lengths_that_overflow_are_errors() {
    // u64::MAX plus an 8-byte header does not fit in 64 bits.
    let config = Config::builder()
        .length_field_width(8)
        .max_frame_length(usize::MAX)
        .discard_too_long_frames(true)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&[0xff; 8][..]);
    let mut decoder = Decoder::new(&config);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::LengthOverflow {
            length_field: u64::MAX
        })
    );
    // A big positive adjustment, likewise.
    let config = Config::builder()
        .length_field_width(8)
        .length_adjustment(i64::MAX)
        .max_payload_length(usize::MAX)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
    assert!(matches!(
        Decoder::new(&config).decode(&mut buf),
        Err(DecodeError::LengthOverflow { .. })
    ));
}

#[test]
fn negative_and_too_small_lengths() {
    // Adjustment -10 on a value of 3: negative body.
    let config = Config::builder().length_adjustment(-10).build().unwrap();
    let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
    assert_eq!(
        Decoder::new(&config).decode(&mut buf),
        Err(DecodeError::LengthTooSmall {
            length_field: 3,
            header_length: 4
        })
    );
    // A length that counts the header must be at least the header.
    let config = Config::builder()
        .length_field_offset(2)
        .length_field_width(2)
        .length_includes_header(true)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&[9, 9, 0, 3, 1, 2][..]);
    assert_eq!(
        Decoder::new(&config).decode(&mut buf),
        Err(DecodeError::LengthTooSmall {
            length_field: 3,
            header_length: 4
        })
    );
    let mut buf = BytesMut::from(&[9, 9, 0, 4][..]);
    assert_eq!(
        drain(&mut Decoder::new(&config), &mut buf),
        [Decoded::Frame(BytesMut::new().freeze())]
    );
    // Stripping more than the frame holds.
    let config = Config::builder().strip(6).build().unwrap();
    let mut buf = BytesMut::from(&[0, 0, 0, 1, 1][..]);
    assert_eq!(
        Decoder::new(&config).decode(&mut buf),
        Err(DecodeError::FrameShorterThanStrip {
            frame_length: 5,
            strip: 6
        })
    );
}

#[test]
fn bad_varint_length_fields() {
    let strict = Config::builder()
        .varint(VarintFormat::Leb128)
        .reject_non_minimal(true)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&[0x81, 0x00, 0][..]);
    assert_eq!(
        Decoder::new(&strict).decode(&mut buf),
        Err(DecodeError::Varint(VarintError::NonMinimal))
    );
    let lenient = Config::builder()
        .varint(VarintFormat::Leb128)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&[0x81, 0x00, 7][..]);
    assert_eq!(
        drain(&mut Decoder::new(&lenient), &mut buf),
        [Decoded::Frame(vec![7].into())]
    );
    let mut buf = BytesMut::from(&[0xff; 10][..]);
    assert_eq!(
        Decoder::new(&lenient).decode(&mut buf),
        Err(DecodeError::Varint(VarintError::Overflow))
    );
    let bounded = Config::builder()
        .varint(VarintFormat::Ber)
        .varint_max_bytes(3)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&[0x81, 0x81, 0x81][..]);
    assert_eq!(
        Decoder::new(&bounded).decode(&mut buf),
        Err(DecodeError::Varint(VarintError::TooLong { max_bytes: 3 }))
    );
}

#[test]
fn payload_and_frame_limits_count_different_bytes() {
    // 2-byte offset, 4-byte field, 10-byte body: frame 16, payload 10.
    let wire = {
        let c = Config::builder().length_field_offset(2).build().unwrap();
        let mut out = Vec::new();
        Encoder::new(&c).encode(b"hh", &[1; 10], &mut out).unwrap();
        out
    };
    for (limit, ok) in [(true, 16), (false, 10)] {
        let accept = |max| {
            let b = Config::builder().length_field_offset(2);
            let b = if limit {
                b.max_frame_length(max)
            } else {
                b.max_payload_length(max)
            };
            b.build().unwrap()
        };
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(drain(&mut Decoder::new(&accept(ok)), &mut buf).len(), 1);
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(
            Decoder::new(&accept(ok - 1)).decode(&mut buf),
            Err(DecodeError::FrameTooLong {
                length: ok as u64,
                max: ok - 1
            })
        );
    }
}

/// Frames A (3 bytes), B (over the limit), C (4 bytes), under `max` = 16.
fn discard_stream(b_len: usize) -> (Config, Vec<u8>, u64) {
    let config = Config::builder()
        .max_frame_length(16)
        .discard_too_long_frames(true)
        .build()
        .unwrap();
    let mut wire = Vec::new();
    wire.extend_from_slice(&[0, 0, 0, 3, b'a', b'a', b'a']);
    wire.extend_from_slice(&(b_len as u32).to_be_bytes());
    wire.extend(std::iter::repeat_n(b'B', b_len));
    wire.extend_from_slice(&[0, 0, 0, 4, b'c', b'c', b'c', b'c']);
    (config, wire, 4 + b_len as u64)
}

#[test]
fn discard_drops_exactly_the_oversized_frame() {
    let (config, wire, b_frame) = discard_stream(100);
    let expected = vec![
        Decoded::Frame("aaa".into()),
        Decoded::Discarded { length: b_frame },
        Decoded::Frame("cccc".into()),
    ];
    let (got, _, buf) = decode_chunks(&config, [&wire[..]]);
    assert_eq!(got, expected, "whole");
    assert!(buf.is_empty());
    for size in 1..=wire.len() {
        let (got, _, buf) = decode_chunks(&config, wire.chunks(size));
        assert_eq!(got, expected, "chunks of {size}");
        assert!(buf.is_empty());
    }
    for at in 0..=wire.len() {
        let (a, b) = wire.split_at(at);
        let (got, _, _) = decode_chunks(&config, [a, b]);
        assert_eq!(got, expected, "split at {at}");
    }
    let (events, conn) = receive_chunks(&config, wire.chunks(7));
    assert_eq!(
        events,
        [
            Event::Frame("aaa".into()),
            Event::FrameDiscarded { length: b_frame },
            Event::Frame("cccc".into())
        ]
    );
    assert!(!conn.is_finished());
}

#[test]
fn discarding_a_megabyte_in_small_chunks_keeps_memory_small() {
    let (config, wire, b_frame) = discard_stream(1 << 20);
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut max_cap = 0;
    for chunk in wire.chunks(1000) {
        buf.extend_from_slice(chunk);
        got.extend(drain(&mut decoder, &mut buf));
        max_cap = max_cap.max(buf.capacity());
    }
    assert_eq!(
        got,
        [
            Decoded::Frame("aaa".into()),
            Decoded::Discarded { length: b_frame },
            Decoded::Frame("cccc".into())
        ]
    );
    assert!(max_cap < SMALL, "capacity reached {max_cap}");
    // End of stream in the middle of a discarded frame loses nothing that
    // was not already reported.
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::from(&wire[..5000]);
    assert_eq!(drain(&mut decoder, &mut buf).len(), 2);
    assert!(decoder.is_discarding());
    assert_eq!(decoder.decode_eof(&mut buf), Ok(None));
}

/// Once the stream failed, every later call returns the error and empties
/// the buffer it is given, as the docs say (and as the delimiter decoder
/// does): bytes appended after the failure are never left to pile up.
/// Each failing stream, with a valid frame behind it, is fed whole, byte
/// by byte and split at every point.
#[test]
fn a_failed_decoder_empties_the_buffer_on_every_later_call() {
    let config = Config::builder().max_frame_length(16).build().unwrap();
    let valid = [0, 0, 0, 2, b'o', b'k'];
    let failing: [(&[u8], DecodeError); 2] = [
        (
            &[0, 0, 0, 13, b'x'],
            DecodeError::FrameTooLong {
                length: 17,
                max: 16,
            },
        ),
        (
            &[0xff, 0xff, 0xff, 0xff],
            DecodeError::FrameTooLong {
                length: 4 + 0xffff_ffff,
                max: 16,
            },
        ),
    ];
    for (bad, error) in failing {
        let wire = [&valid[..], bad, &valid[..]].concat();
        let mut splits: Vec<Vec<&[u8]>> = vec![vec![&wire[..]], wire.chunks(1).collect()];
        splits.extend((0..=wire.len()).map(|at| {
            let (a, b) = wire.split_at(at);
            vec![a, b]
        }));
        for pieces in splits {
            let mut decoder = Decoder::new(&config);
            let mut buf = BytesMut::new();
            let (mut frames, mut failed) = (Vec::new(), None);
            for piece in &pieces {
                buf.extend_from_slice(piece);
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(d)) => frames.push(d),
                        Ok(None) => break,
                        Err(e) => {
                            assert!(buf.is_empty(), "{pieces:?}: {} bytes left", buf.len());
                            failed.get_or_insert(e);
                            break;
                        }
                    }
                }
            }
            assert_eq!(frames, [Decoded::Frame("ok".into())], "{pieces:?}");
            assert_eq!(failed.as_ref(), Some(&error), "{pieces:?}");
            // Later calls: the same error, and whatever was appended goes.
            buf.extend_from_slice(&valid);
            assert_eq!(decoder.decode(&mut buf), Err(error.clone()));
            assert!(buf.is_empty(), "decode after the failure left bytes");
            buf.extend_from_slice(&valid[..3]);
            assert_eq!(decoder.decode_eof(&mut buf), Err(error.clone()));
            assert!(buf.is_empty(), "decode_eof after the failure left bytes");
        }
    }
    // A stream that failed at its end (truncated) empties later input too.
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::from(&[0u8, 0, 0, 5, b'a'][..]);
    let truncated = decoder.decode_eof(&mut buf).unwrap_err();
    assert!(matches!(
        truncated,
        DecodeError::Truncated { buffered: 5, .. }
    ));
    buf.extend_from_slice(&valid);
    assert_eq!(decoder.decode(&mut buf), Err(truncated));
    assert!(buf.is_empty());
}

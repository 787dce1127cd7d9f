//! Delimiter framing: vectors fed whole, byte by byte, split at every
//! point and followed by part of a next frame; limits in both modes; and a
//! stream that switches from JSON lines to length-prefixed frames in the
//! middle of a read (Sockhop's handshake, `WIRE-FORMATS.md` §4).

use bytes::BytesMut;
use sansproto::delimited::{Config, ConfigError, Decoder};
use sansproto::prefix::{self, ByteOrder, DecodeError, Decoded};

fn frame(s: &[u8]) -> Decoded {
    Decoded::Frame(bytes::Bytes::copy_from_slice(s))
}

/// Feeds `pieces` one after another, decoding after each; returns the decoded
/// frames and what is left buffered.
fn feed(config: &Config, pieces: &[&[u8]]) -> (Vec<Decoded>, BytesMut) {
    let mut decoder = Decoder::new(config);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(d) = decoder.decode(&mut buf).expect("valid stream") {
            out.push(d);
        }
    }
    (out, buf)
}

/// Every way of cutting `wire`: whole, byte by byte, and in two at every
/// point; each must give `expected` and leave `rest` buffered.
fn check(config: &Config, wire: &[u8], expected: &[Decoded], rest: &[u8]) {
    let (out, left) = feed(config, &[wire]);
    assert_eq!((out.as_slice(), &left[..]), (expected, rest), "whole");
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let (out, left) = feed(config, &bytes);
    assert_eq!(
        (out.as_slice(), &left[..]),
        (expected, rest),
        "byte by byte"
    );
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let (out, left) = feed(config, &[a, b]);
        assert_eq!(
            (out.as_slice(), &left[..]),
            (expected, rest),
            "cut at {cut}"
        );
    }
}

#[test]
fn lines_end_in_lf_or_crlf_and_a_partial_line_waits() {
    let wire = b"{\"type\":\"hello\"}\r\n\n{\"id\":2}\n{\"par";
    check(
        &Config::lines(),
        wire,
        &[
            frame(b"{\"type\":\"hello\"}"),
            frame(b""),
            frame(b"{\"id\":2}"),
        ],
        b"{\"par",
    );
}

#[test]
fn a_multi_byte_delimiter_is_found_across_every_cut() {
    let config = Config::builder()
        .delimiter(&b"\r\n\r\n"[..])
        .build()
        .unwrap();
    let wire = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\r\n\r\n\r\n\r";
    check(
        &config,
        wire,
        &[frame(b"GET / HTTP/1.1\r\nHost: a"), frame(b"body")],
        b"\r\n\r",
    );
    let keep = Config::builder()
        .delimiter(&b"\r\n\r\n"[..])
        .strip_delimiter(false)
        .build()
        .unwrap();
    check(&keep, b"a\r\n\r\nb", &[frame(b"a\r\n\r\n")], b"b");
}

#[test]
fn a_frame_over_the_limit_fails_the_stream_at_once_and_for_good() {
    let config = Config::builder().max_frame_length(8).build().unwrap();
    // Exactly at the limit passes.
    check(&config, b"12345678\nx", &[frame(b"12345678")], b"x");
    // One byte over fails as soon as the ninth byte is buffered without a
    // delimiter: nothing more is held.
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::from(&b"123456789"[..]);
    let e = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(e, DecodeError::FrameTooLong { length: 9, max: 8 });
    assert!(buf.is_empty());
    buf.extend_from_slice(b"ok\n");
    assert_eq!(decoder.decode(&mut buf), Err(e.clone()));
    assert_eq!(decoder.error(), Some(&e));
    // Over the limit with its delimiter already there: the same.
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::from(&b"1234567890\n"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::FrameTooLong { length: 9, max: 8 })
    );
}

/// Feeds `pieces`, decoding after each, until the stream fails; returns
/// the frames before the failure and the error (`None`: it did not fail).
fn feed_to_failure(config: &Config, pieces: &[&[u8]]) -> (Vec<Decoded>, Option<DecodeError>) {
    let mut decoder = Decoder::new(config);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// With `trim_cr` the limit is the frame handed out: a `\r\n` line of
/// exactly the limit passes (as Netty's `LineBasedFrameDecoder` takes it),
/// one byte more does not, in either mode; a `\r` that is not trimmed
/// counts.
#[test]
fn with_trim_cr_a_crlf_line_of_exactly_the_limit_passes() {
    let lines = |discard| {
        Config::builder()
            .trim_cr(true)
            .max_frame_length(4)
            .discard_too_long_frames(discard)
            .build()
            .unwrap()
    };
    for discard in [false, true] {
        let config = lines(discard);
        check(&config, b"abcd\r\nxy", &[frame(b"abcd")], b"xy");
        check(
            &config,
            b"abcd\nab\r\n",
            &[frame(b"abcd"), frame(b"ab")],
            b"",
        );
        // A `\r` in the data before the trimmed one is data.
        check(&config, b"abc\r\r\n\r", &[frame(b"abc\r")], b"\r");
    }
    // One byte over: refused whether or not the line ends in `\r\n`.
    for wire in [&b"abcde\r\nok\n"[..], b"abcde\nok\n", b"abcd\rx\nok\n"] {
        let mut splits: Vec<Vec<&[u8]>> = vec![vec![wire], wire.chunks(1).collect()];
        splits.extend((0..=wire.len()).map(|at| vec![&wire[..at], &wire[at..]]));
        for pieces in &splits {
            let (out, e) = feed_to_failure(&lines(false), pieces);
            let too_long = DecodeError::FrameTooLong { length: 5, max: 4 };
            assert_eq!((out, e), (vec![], Some(too_long)), "{pieces:?}");
            let (out, e) = feed_to_failure(&lines(true), pieces);
            let length = wire.iter().position(|&b| b == b'\n').unwrap() as u64;
            let skipped = vec![Decoded::Discarded { length }, frame(b"ok")];
            assert_eq!((out, e), (skipped, None), "{pieces:?}");
        }
    }
    // Not trimmed (delimiter kept, or `trim_cr` off): the `\r` counts.
    for config in [
        Config::builder().max_frame_length(4).build().unwrap(),
        Config::builder()
            .max_frame_length(4)
            .trim_cr(true)
            .strip_delimiter(false)
            .build()
            .unwrap(),
    ] {
        let (out, e) = feed_to_failure(&config, &[b"abcd\r\n"]);
        assert_eq!(out, []);
        assert_eq!(e, Some(DecodeError::FrameTooLong { length: 5, max: 4 }));
    }
}

#[test]
fn discard_mode_skips_a_long_frame_as_it_arrives_and_reports_it_once() {
    let config = Config::builder()
        .max_frame_length(4)
        .delimiter(&b"\r\n"[..])
        .discard_too_long_frames(true)
        .build()
        .unwrap();
    let long = b"0123456789abcdef";
    let wire = [&b"ok\r\n"[..], long, b"\r\nnext\r\nta"].concat();
    check(
        &config,
        &wire,
        &[
            frame(b"ok"),
            Decoded::Discarded {
                length: long.len() as u64,
            },
            frame(b"next"),
        ],
        b"ta",
    );
    // While discarding, at most the delimiter's length less one is held;
    // the last `\r` turns out to start the delimiter.
    let mut decoder = Decoder::new(&config);
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        buf.extend_from_slice(b"xxxxxxxx\r");
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.len() <= 1, "{} bytes held", buf.len());
        assert!(decoder.is_discarding());
    }
    buf.extend_from_slice(b"\nyes\r\n");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(Decoded::Discarded {
            length: 9 * 1000 - 1
        }))
    );
    assert_eq!(decoder.decode(&mut buf), Ok(Some(frame(b"yes"))));
}

#[test]
fn the_end_of_the_stream_inside_a_frame_is_reported() {
    let mut decoder = Decoder::new(&Config::lines());
    let mut buf = BytesMut::from(&b"done\nhalf"[..]);
    assert_eq!(decoder.decode_eof(&mut buf), Ok(Some(frame(b"done"))));
    assert_eq!(
        decoder.decode_eof(&mut buf),
        Err(DecodeError::Truncated {
            buffered: 4,
            frame_length: None
        })
    );
    // Inside a frame being skipped: the whole of it is reported lost.
    let skipping = Config::builder()
        .max_frame_length(2)
        .discard_too_long_frames(true)
        .build()
        .unwrap();
    let mut decoder = Decoder::new(&skipping);
    let mut buf = BytesMut::from(&b"longer"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(
        decoder.decode_eof(&mut buf),
        Err(DecodeError::Truncated {
            buffered: 6,
            frame_length: None
        })
    );
    let mut clean = Decoder::new(&Config::lines());
    let mut buf = BytesMut::from(&b"done\n"[..]);
    assert_eq!(clean.decode_eof(&mut buf), Ok(Some(frame(b"done"))));
    assert_eq!(clean.decode_eof(&mut buf), Ok(None));
}

#[test]
fn a_builder_refuses_an_empty_delimiter_and_a_zero_limit() {
    assert_eq!(
        Config::builder().delimiter(&b""[..]).build(),
        Err(ConfigError::EmptyDelimiter)
    );
    assert_eq!(
        Config::builder().max_frame_length(0).build(),
        Err(ConfigError::ZeroMaxFrameLength)
    );
}

/// Sockhop's binary framing: u32 LE length, adjusted by the message id
/// byte after it; the length field stripped.
fn sockhop_binary() -> prefix::Config {
    prefix::Config::builder()
        .byte_order(ByteOrder::LittleEndian)
        .length_adjustment(1)
        .max_payload_length(16 << 20)
        .build()
        .unwrap()
}

#[test]
fn a_stream_switches_from_json_lines_to_length_frames_mid_read() {
    // Sockhop: JSON lines until the handshake, then binary frames; the
    // switch can fall anywhere in a read.
    let hello = b"{\"type\":\"Handshake\",\"data\":{\"binary\":true}}\n";
    let binary = [
        0x0f, 0x00, 0x00, 0x00, 0x0a, 0x06, b'S', b't', b'r', b'i', b'n', b'g', 0x04, 0x00, 0x00,
        0x00, b'"', b'h', b'i', b'"',
    ];
    let wire = [&hello[..], &binary, &binary[..7]].concat();
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let mut lines = Some(Decoder::new(&Config::lines()));
        let mut frames = prefix::Decoder::new(&sockhop_binary());
        let mut buf = BytesMut::new();
        let (mut json, mut bin) = (Vec::new(), Vec::new());
        for piece in [a, b] {
            buf.extend_from_slice(piece);
            while let Some(decoder) = lines.as_mut() {
                match decoder.decode(&mut buf).unwrap() {
                    Some(Decoded::Frame(line)) => {
                        // The handshake line switches the framing.
                        if line.starts_with(b"{\"type\":\"Handshake\"") {
                            lines = None;
                        }
                        json.push(line);
                    }
                    other => {
                        assert_eq!(other, None);
                        break;
                    }
                }
            }
            if lines.is_none() {
                while let Some(d) = frames.decode(&mut buf).unwrap() {
                    bin.push(d);
                }
            }
        }
        assert_eq!(json, [&hello[..hello.len() - 1]], "cut at {cut}");
        assert_eq!(bin, [frame(&binary[4..])], "cut at {cut}");
        assert_eq!(&buf[..], &binary[..7], "cut at {cut}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any lines cut at any points decode to the same frames as whole.
    #[test]
    fn random_splits_give_the_same_frames(
        lines in proptest::collection::vec("[a-z\r]{0,12}", 0..12),
        tail in "[a-z]{0,5}",
        cuts in proptest::collection::vec(0usize..200, 0..8),
    ) {
        let wire: Vec<u8> = lines.iter().flat_map(|l| [l.as_bytes(), b"\n"].concat()).chain(tail.bytes()).collect();
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for p in points {
            pieces.push(&wire[start..p]);
            start = p;
        }
        pieces.push(&wire[start..]);
        let expected: Vec<Decoded> = lines
            .iter()
            .map(|l| frame(l.strip_suffix('\r').unwrap_or(l).as_bytes()))
            .collect();
        let (out, left) = feed(&Config::lines(), &pieces);
        proptest::prop_assert_eq!(out, expected);
        proptest::prop_assert_eq!(&left[..], tail.as_bytes());
    }
}

/// One decode result, as the model in `model_frames` gives them.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Frame(Vec<u8>),
    Discarded(u64),
    Failed,
}

/// What a delimited stream decodes to, straight from the definitions: a
/// frame is the bytes before the first delimiter, less a `\r` before it
/// when stripping with `trim_cr`; it may be at most `max` bytes once so
/// trimmed; a longer one fails the stream or is skipped whole.
fn model_frames(config: &Config, strip: bool, trim: bool, discard: bool, wire: &[u8]) -> Vec<Got> {
    let (delimiter, max) = (config.delimiter(), config.max_frame_length());
    let trims = usize::from(strip && trim);
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        let Some(at) = rest.windows(delimiter.len()).position(|w| w == delimiter) else {
            if rest.len() >= max + trims + delimiter.len() && !discard {
                out.push(Got::Failed);
            }
            return out;
        };
        let cr = usize::from(trims == 1 && at > 0 && rest[at - 1] == b'\r');
        if at - cr > max {
            if !discard {
                out.push(Got::Failed);
                return out;
            }
            out.push(Got::Discarded(at as u64));
        } else if strip {
            out.push(Got::Frame(rest[..at - cr].to_vec()));
        } else {
            out.push(Got::Frame(rest[..at + delimiter.len()].to_vec()));
        }
        rest = &rest[at + delimiter.len()..];
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

    /// Every setting, any bytes from a small alphabet (so delimiters and
    /// `\r`s are frequent), fed whole and in random pieces: the decoder
    /// agrees with the model.
    #[test]
    fn every_setting_agrees_with_the_model(
        delimiter in proptest::collection::vec(proptest::prop_oneof![0u8..3, proptest::strategy::Just(b'\r')], 1..4),
        max in 1usize..12,
        strip: bool,
        trim: bool,
        discard: bool,
        wire in proptest::collection::vec(proptest::prop_oneof![0u8..3, proptest::strategy::Just(b'\r')], 0..200),
        sizes in proptest::collection::vec(1usize..9, 1..6),
    ) {
        let config = Config::builder()
            .delimiter(delimiter)
            .max_frame_length(max)
            .strip_delimiter(strip)
            .trim_cr(trim)
            .discard_too_long_frames(discard)
            .build()
            .unwrap();
        let expected = model_frames(&config, strip, trim, discard, &wire);
        let mut pieces = Vec::new();
        let mut rest = &wire[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, more) = rest.split_at((*size).min(rest.len()));
            pieces.push(piece);
            rest = more;
        }
        for feed in [vec![&wire[..]], pieces] {
            let (out, e) = feed_to_failure(&config, &feed);
            let mut got: Vec<Got> = out
                .into_iter()
                .map(|d| match d {
                    Decoded::Frame(f) => Got::Frame(f.to_vec()),
                    Decoded::Discarded { length } => Got::Discarded(length),
                })
                .collect();
            got.extend(e.map(|_| Got::Failed));
            proptest::prop_assert_eq!(&got, &expected);
        }
    }
}

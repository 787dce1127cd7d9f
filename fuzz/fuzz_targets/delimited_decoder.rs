//! The delimiter decoder over random settings and random input splits: it
//! must never panic, never hand out a frame over the limit or holding the
//! delimiter where it is stripped, never hold more than the limit allows,
//! and give the same frames (and the same error) however the input is cut.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sansproto::delimited::{Config, Decoder};
use sansproto::prefix::{DecodeError, Decoded};

#[derive(Arbitrary, Debug)]
struct Input {
    delimiter: Vec<u8>,
    max: u8,
    strip: bool,
    trim_cr: bool,
    discard: bool,
    chunks: Vec<Vec<u8>>,
    eof: bool,
}

/// Every frame and the final error, feeding `chunks` one after another.
/// `trims`: a `\r` before the delimiter is removed from frames, so it is
/// not counted against the limit.
fn run(
    config: &Config,
    trims: bool,
    chunks: &[&[u8]],
    eof: bool,
) -> (Vec<Decoded>, Option<DecodeError>) {
    let mut decoder = Decoder::new(config);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let bound = config.max_frame_length() + usize::from(trims) + config.delimiter().len();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        // Only what can still end in a frame under the limit is held.
        assert!(buf.len() < bound, "{} bytes held", buf.len());
    }
    if eof {
        loop {
            match decoder.decode_eof(&mut buf) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|input: Input| {
    let delimiter = &input.delimiter[..input.delimiter.len().min(4)];
    let Ok(config) = Config::builder()
        .delimiter(delimiter.to_vec())
        .max_frame_length(usize::from(input.max))
        .strip_delimiter(input.strip)
        .trim_cr(input.trim_cr)
        .discard_too_long_frames(input.discard)
        .build()
    else {
        return;
    };
    let trims = input.strip && input.trim_cr;
    let chunks: Vec<&[u8]> = input.chunks.iter().map(Vec::as_slice).collect();
    let (frames, error) = run(&config, trims, &chunks, input.eof);
    for f in &frames {
        if let Decoded::Frame(f) = f {
            let body = if input.strip {
                f.len()
            } else {
                f.len() - delimiter.len()
            };
            assert!(body <= config.max_frame_length(), "frame of {body} bytes");
            if !input.strip {
                assert!(f.ends_with(delimiter));
            }
        }
    }
    // The same input whole, and byte by byte.
    let whole: Vec<u8> = input.chunks.concat();
    assert_eq!(
        run(&config, trims, &[&whole], input.eof),
        (frames.clone(), error.clone())
    );
    let bytes: Vec<&[u8]> = whole.chunks(1).collect();
    assert_eq!(run(&config, trims, &bytes, input.eof), (frames, error));
});

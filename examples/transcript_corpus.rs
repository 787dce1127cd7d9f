//! Turns a recorded transcript into a fuzz corpus entry: the bytes one side
//! received, laid out as the `ws_server_connection` fuzz target reads its
//! input, so that the fuzzer starts from a real session.
//!
//! ```text
//! cargo run --example transcript_corpus --features testkit -- \
//!     IN.transcript OUT_DIR [--side a|b] [--raw]
//! ```
//!
//! `--side` picks whose reads are taken (default `b`, the server of a pair
//! made as `Pair::new(client, server, ..)`). The entry is written to
//! `OUT_DIR/<sha1 of its bytes>`, as libFuzzer names corpus files, and its
//! path printed.
//!
//! # The `ws_server_connection` layout
//!
//! That target derives `arbitrary::Arbitrary` (1.x) for its input and is
//! fed through `arbitrary_take_rest`, so the entry is, byte for byte:
//!
//! | field | bytes | value |
//! |---|---|---|
//! | `stream_frames: bool` | `00` | whole messages |
//! | `auto_pong: bool` | `01` | pongs answered, as by default |
//! | `fragment_size: u16` | `00 00` | no fragmentation |
//! | `send_queue: u16` | `ff ff` | the largest send queue |
//! | `keepalive: Option<(u16, u16)>` | `00` | none |
//! | `close_timeout: Option<u16>` | `00` | none |
//! | `read_into: Option<bool>` | `00` | bytes fed through `receive` |
//! | `ops: Vec<Op>` | see below | |
//!
//! Each operation is `01` (one more element), the variant as a
//! little-endian `u32` that `(tag * 11) >> 32` maps to its index, then its
//! fields; `00` ends the list. The entry holds, in the recorded order:
//! `Op::Receive(Vec<u8>)` (index 0, tag `00000000`) for each read, its bytes
//! each preceded by `01` and the vector ended by `00`;
//! `Op::Advance(u32)` (index 8) with the milliseconds between two reads
//! when the clock moved; and `Op::Eof` (index 9) for the end of stream.
//!
//! The target's server is already open, so when the side's bytes start
//! with an HTTP request (`GET `), the request head (up to its blank line)
//! is left out. The target negotiates no extension: a permessage-deflate
//! session's compressed frames end in a protocol error there, which is
//! still a useful start for the fuzzer.
//!
//! With `--raw`, the entry is the received bytes alone (the same head left
//! out), for targets that read plain bytes.

use sansproto::testkit::{Action, Side, Transcript};
use sha1::{Digest, Sha1};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The variants of the target's `Op`, in order.
const OPS: u64 = 11;
const RECEIVE: u64 = 0;
const ADVANCE: u64 = 8;
const EOF: u64 = 9;
/// The target takes an advance modulo this many milliseconds.
const MAX_ADVANCE_MS: u64 = 599_999;

/// What the side received, in order.
enum Input {
    Bytes(Vec<u8>),
    Time(Duration),
    Eof,
}

fn main() -> ExitCode {
    match run() {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("transcript_corpus: {e}");
            eprintln!("usage: transcript_corpus IN.transcript OUT_DIR [--side a|b] [--raw]");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    let (mut paths, mut side, mut raw) = (Vec::new(), Side::B, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--side" => {
                side = match args.next().as_deref() {
                    Some("a") => Side::A,
                    Some("b") => Side::B,
                    other => return Err(format!("--side takes a or b, not {other:?}")),
                }
            }
            "--raw" => raw = true,
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    let [input, out_dir] = <[PathBuf; 2]>::try_from(paths)
        .map_err(|p| format!("two paths wanted, {} given", p.len()))?;
    let text = std::fs::read_to_string(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    let transcript = Transcript::parse(&text).map_err(|e| format!("{}: {e}", input.display()))?;

    let inputs = received(&transcript, side);
    let entry = if raw {
        inputs
            .iter()
            .filter_map(|i| match i {
                Input::Bytes(b) => Some(b.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    } else {
        ws_server_connection(&inputs)
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let name: String = Sha1::digest(&entry)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = out_dir.join(name);
    std::fs::write(&path, &entry).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// `side`'s reads, the time between them and its end of stream, with an
/// HTTP request head at the start left out.
fn received(transcript: &Transcript, side: Side) -> Vec<Input> {
    let all = transcript.received(side);
    let mut skip = if all.starts_with(b"GET ") {
        all.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(all.len(), |p| p + 4)
    } else {
        0
    };
    let mut inputs = Vec::new();
    let mut last = None;
    for entry in transcript.entries().iter().filter(|e| e.side == side) {
        match &entry.action {
            Action::Read(bytes) => {
                let cut = skip.min(bytes.len());
                skip -= cut;
                if cut == bytes.len() {
                    continue;
                }
                if let Some(last) = last {
                    inputs.push(Input::Time(entry.at.saturating_sub(last)));
                }
                last = Some(entry.at);
                inputs.push(Input::Bytes(bytes[cut..].to_vec()));
            }
            Action::Eof => inputs.push(Input::Eof),
            _ => {}
        }
    }
    inputs
}

/// The tag `arbitrary`'s derive maps to variant `index` of `OPS`.
fn tag(index: u64) -> [u8; 4] {
    let tag = (index << 32).div_ceil(OPS);
    u32::try_from(tag).unwrap_or(u32::MAX).to_le_bytes()
}

fn ws_server_connection(inputs: &[Input]) -> Vec<u8> {
    // stream_frames, auto_pong, fragment_size, send_queue, keepalive,
    // close_timeout, read_into.
    let mut out = vec![0, 1, 0, 0, 0xff, 0xff, 0, 0, 0];
    for input in inputs {
        match input {
            Input::Bytes(bytes) => {
                out.push(1);
                out.extend_from_slice(&tag(RECEIVE));
                for &b in bytes {
                    out.extend_from_slice(&[1, b]);
                }
                out.push(0);
            }
            Input::Time(d) => {
                let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                while ms > 0 {
                    let step = ms.min(MAX_ADVANCE_MS);
                    out.push(1);
                    out.extend_from_slice(&tag(ADVANCE));
                    out.extend_from_slice(&(step as u32).to_le_bytes());
                    ms -= step;
                }
            }
            Input::Eof => {
                out.push(1);
                out.extend_from_slice(&tag(EOF));
            }
        }
    }
    out.push(0);
    out
}

//! The `transcript_corpus` example, run as a process on the checked-in
//! transcript: the entry it writes reads back, through the documented
//! `ws_server_connection` layout, as the server's frames with the recorded
//! pause between them.
#![cfg(feature = "testkit")]

use sansproto::testkit::{Side, Transcript};
use sha1::{Digest, Sha1};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TRANSCRIPT: &str = "tests/data/ws_session.transcript";

fn run_example(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--features", "testkit", "--example"])
        .arg("transcript_corpus")
        .arg("--")
        .args(args)
        .output()
        .expect("cargo runs");
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    output
}

/// Runs the example and returns the entry it wrote (checking its name).
fn entry(args: &[&str], out: &Path) -> Vec<u8> {
    let mut all = vec![TRANSCRIPT, out.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = run_example(&all);
    assert!(output.status.success());
    let path = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    let bytes = std::fs::read(&path).unwrap();
    let name: String = Sha1::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        path,
        out.join(name),
        "named by its SHA-1, as libFuzzer does"
    );
    bytes
}

/// The operations of the layout that the example writes.
#[derive(Debug, PartialEq)]
enum Op {
    Receive(Vec<u8>),
    Advance(u32),
    Eof,
}

/// Reads the entry back by the documented layout (arbitrary 1.x): nine
/// bytes of settings, then `01`, a variant tag and its fields per
/// operation, then `00`.
fn decode(entry: &[u8]) -> Vec<Op> {
    assert_eq!(entry[..9], [0, 1, 0, 0, 0xff, 0xff, 0, 0, 0]);
    let mut rest = &entry[9..];
    let mut ops = Vec::new();
    while let [1, t0, t1, t2, t3, tail @ ..] = rest {
        let tag = u32::from_le_bytes([*t0, *t1, *t2, *t3]);
        rest = tail;
        match (u64::from(tag) * 11) >> 32 {
            0 => {
                let mut bytes = Vec::new();
                while let [1, b, tail @ ..] = rest {
                    bytes.push(*b);
                    rest = tail;
                }
                assert_eq!(rest[0], 0, "a byte vector ends with 00");
                rest = &rest[1..];
                ops.push(Op::Receive(bytes));
            }
            8 => {
                let ms = u32::from_le_bytes(rest[..4].try_into().unwrap());
                rest = &rest[4..];
                ops.push(Op::Advance(ms));
            }
            9 => ops.push(Op::Eof),
            other => panic!("variant {other} is not written"),
        }
    }
    assert_eq!(rest, [0], "the list ends with 00");
    ops
}

#[test]
fn a_transcript_becomes_a_ws_server_connection_entry() {
    let dir = std::env::temp_dir().join(format!("sansproto-corpus-{}", std::process::id()));
    let transcript = Transcript::parse(&std::fs::read_to_string(TRANSCRIPT).unwrap()).unwrap();

    // The server's side: its reads after the request head, and the
    // recorded 1.5 s between the first message and the next.
    let ops = decode(&entry(&["--side", "b"], &dir));
    let received = transcript.received(Side::B);
    let head = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let frames: Vec<u8> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Receive(b) => Some(b.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    assert_eq!(frames, received[head..]);
    assert!(ops.contains(&Op::Advance(1500)), "{ops:?}");
    assert!(!ops.contains(&Op::Eof));
    // `b` is the default side.
    assert_eq!(decode(&entry(&[], &dir)), ops);

    // Raw: the client's reads, which start with the response head (kept).
    let raw = entry(&["--raw", "--side", "a"], &dir);
    assert_eq!(raw, transcript.received(Side::A));
    assert!(raw.starts_with(b"HTTP/1.1 101"));

    // Wrong arguments fail with the usage.
    let output = run_example(&[TRANSCRIPT]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: transcript_corpus"));
    std::fs::remove_dir_all(&dir).unwrap();
}

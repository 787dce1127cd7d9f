//! Transcripts: recorded through a pair or a `Recorder`, written and read
//! in the text format, and replayed against fresh machines.
#![cfg(feature = "testkit")]

use sansproto::testkit::{
    Action, Chunking, Pair, Recorder, ReplayError, Side, Transcript, TranscriptErrorKind,
};
use sansproto::{prefix, ws};
use std::time::Duration;

const SEED: u64 = 11;

fn client(seed: u64) -> ws::Connection {
    let config = ws::Config::default().with_deflate(ws::DeflateConfig::default());
    ws::Connection::client_with_random(
        config,
        ws::ClientRequest::new("example.com", "/chat"),
        sansproto::seeded_random(seed),
    )
    .unwrap()
}

fn server() -> ws::Connection {
    let config = ws::Config::default()
        .with_deflate(ws::DeflateConfig::default())
        .with_keepalive(Duration::from_secs(20), Duration::from_secs(5));
    ws::Connection::server(config)
}

/// The messages of the session, by the index a `send N` label names.
fn messages() -> Vec<ws::Message> {
    let text = "the quick brown fox jumps over the lazy dog; ".repeat(40);
    let binary: Vec<u8> = (0..3000u32).map(|i| (i % 7) as u8).collect();
    vec![
        ws::Message::from(text.as_str()),
        ws::Message::from(binary),
        ws::Message::from("short"),
        ws::Message::from(text.to_uppercase()),
    ]
}

/// Runs a recorded command on a replayed connection.
fn run_call(conn: &mut ws::Connection, label: &str) {
    match label.split_once(' ') {
        Some(("send", n)) => conn
            .send(messages()[n.parse::<usize>().unwrap()].clone())
            .unwrap(),
        Some(("close", _)) => conn.close(ws::CloseCode::NORMAL, "done").unwrap(),
        _ => panic!("unknown command {label}"),
    }
}

/// A deflate session between a seeded client and a server with keepalive:
/// handshake, messages both ways, a keepalive ping on the virtual clock,
/// and a close handshake, all recorded.
fn deflate_session(chunking: Chunking) -> Transcript {
    let mut pair = Pair::new(client(SEED), server(), chunking);
    pair.record();
    pair.run_until_idle();
    assert!(pair.a.is_open() && pair.b.is_open());
    for (i, side) in [Side::A, Side::B, Side::A, Side::B].into_iter().enumerate() {
        pair.call(side, &format!("send {i}"), |c| {
            c.send(messages()[i].clone()).unwrap()
        });
        pair.run_until_idle();
    }
    pair.advance(Duration::from_secs(21));
    pair.call(Side::A, "close normal", |c| {
        c.close(ws::CloseCode::NORMAL, "done").unwrap()
    });
    pair.run_until_idle();
    assert!(pair.a.is_finished() && pair.b.is_finished());
    let events = pair.take_events(Side::B);
    assert!(events.contains(&ws::Event::Message(messages()[0].clone())));
    assert!(matches!(
        pair.take_events(Side::A).as_slice(),
        [
            ws::Event::Open(_),
            ws::Event::Message(_),
            ws::Event::Message(_),
            ws::Event::Ping(_),
            ws::Event::Closed(_)
        ]
    ));
    pair.take_transcript().unwrap()
}

#[test]
fn a_recorded_deflate_session_replays_byte_identically() {
    for chunking in [Chunking::Whole, Chunking::Mixed { seed: 3, max: 300 }] {
        let transcript = deflate_session(chunking);
        // Deflate was negotiated and used: the client's first message frame
        // (after its request head) has RSV1 set and is far shorter than
        // the text.
        let wire = transcript.written(Side::A);
        let head = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(String::from_utf8_lossy(&wire[..head]).contains("permessage-deflate"));
        assert_eq!(wire[head] & 0x40, 0x40, "RSV1");
        assert!(wire.len() - head < messages()[0].len() / 4);

        // Written as text and read back, it is the same transcript.
        let text = transcript.to_string();
        assert!(text.starts_with("# sansproto transcript v1\n+0.000000000 tick a\n"));
        assert!(
            text.contains("\n+21.000000000 tick b\n") || text.contains("\n+20.000000000 tick b\n")
        );
        let parsed = Transcript::parse(&text).unwrap();
        assert_eq!(parsed, transcript);

        // Each side, fed what it read at the times it read it (and the
        // same seed), writes the same bytes and reports the same events.
        let a = parsed.assert_replays_with(Side::A, client(SEED), run_call);
        let b = parsed.assert_replays_with(Side::B, server(), run_call);
        assert!(a.is_finished() && b.is_finished());
    }
}

#[test]
fn a_replay_that_parts_from_the_transcript_says_where() {
    let transcript = deflate_session(Chunking::Whole);
    // Another seed: another handshake key in the client's first write.
    match transcript.replay_with(Side::A, client(SEED + 1), run_call) {
        Err(ReplayError::Output {
            line,
            expected,
            got,
        }) => {
            assert_eq!(
                line,
                first_line(&transcript, Side::A, |a| matches!(a, Action::Wrote(_)))
            );
            assert_eq!(expected.len(), got.len());
            assert_ne!(expected, got);
        }
        other => panic!("{other:?}"),
    }
    // Without a hook, the first command stops the replay.
    match transcript.replay(Side::B, server()) {
        Err(ReplayError::Call { label, .. }) => assert_eq!(label, "send 1"),
        other => panic!("{other:?}"),
    }
    // One flipped bit in what the server read: the message it reports
    // differs, or the connection fails, where the transcript says it did not.
    let mut text = transcript.to_string();
    let at = text.find(" b<a ").unwrap();
    let at = at + text[at..].find('\n').unwrap() + 1;
    let line_start = at + text[at..].find(" b<a ").unwrap();
    let end = line_start + text[line_start..].find('\n').unwrap();
    let digit = end - 1;
    let flipped = if &text[digit..end] == "0" { "1" } else { "0" };
    text.replace_range(digit..end, flipped);
    let tampered = Transcript::parse(&text).unwrap();
    let err = tampered
        .replay_with(Side::B, server(), run_call)
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(err, ReplayError::Event { .. } | ReplayError::Error { .. }),
        "{err}"
    );
}

fn first_line(t: &Transcript, side: Side, pick: impl Fn(&Action) -> bool) -> usize {
    let i = t
        .entries()
        .iter()
        .position(|e| e.side == side && pick(&e.action))
        .unwrap();
    t.line_of(i)
}

#[test]
fn every_action_survives_the_text_format() {
    let mut t = Transcript::new();
    let at = Duration::new(3, 120_000);
    t.push(Duration::ZERO, Side::A, Action::Tick);
    t.push(at, Side::A, Action::Wrote(vec![0, 1, 0xfe, 0xff]));
    t.push(at, Side::B, Action::Read(vec![0xab]));
    t.push(at, Side::B, Action::Eof);
    t.push(
        at,
        Side::B,
        Action::Event("Frame(b\"a\\nb\")\nsecond line\r".into()),
    );
    t.push(
        at,
        Side::B,
        Action::Error("truncated: 3 bytes \\ buffered".into()),
    );
    t.push(at, Side::A, Action::Call("send 1".into()));
    let text = t.to_string();
    assert_eq!(
        text,
        "# sansproto transcript v1\n\
         +0.000000000 tick a\n\
         +3.000120000 a>b 4 0001feff\n\
         +3.000120000 b<a 1 ab\n\
         +3.000120000 b<a eof\n\
         +3.000120000 b event Frame(b\"a\\\\nb\")\\nsecond line\\r\n\
         +3.000120000 b error truncated: 3 bytes \\\\ buffered\n\
         +3.000120000 a call send 1\n"
    );
    assert_eq!(Transcript::parse(&text).unwrap(), t);
    assert_eq!(t.line_of(3), 5);
    // Comments, blank lines, short fractions and uppercase hex are read.
    let loose = "# sansproto transcript v1\r\n# a comment\n\n+1 tick b\n+0.5 a>b 2 ABcd\n";
    let parsed: Transcript = loose.parse().unwrap();
    assert_eq!(parsed.entries()[1].at, Duration::from_millis(500));
    assert_eq!(parsed.written(Side::A), [0xab, 0xcd]);
    assert_eq!(parsed.line_of(1), 5);
    // Equal entries make equal transcripts, wherever their lines were.
    let mut built = Transcript::new();
    built.push(Duration::from_secs(1), Side::B, Action::Tick);
    built.push(
        Duration::from_millis(500),
        Side::A,
        Action::Wrote(vec![0xab, 0xcd]),
    );
    assert_eq!(parsed, built);
    assert_ne!(built.line_of(1), parsed.line_of(1));
}

#[test]
fn a_malformed_transcript_is_refused_with_its_line() {
    let cases: [(&str, usize, TranscriptErrorKind); 8] = [
        ("", 1, TranscriptErrorKind::Header),
        (
            "# sansproto transcript v2\n",
            1,
            TranscriptErrorKind::Header,
        ),
        (
            "# sansproto transcript v1\n\n0.1 tick a\n",
            3,
            TranscriptErrorKind::Time("0.1".into()),
        ),
        (
            "# sansproto transcript v1\n+0.1234567891 tick a\n",
            2,
            TranscriptErrorKind::Time("+0.1234567891".into()),
        ),
        (
            "# sansproto transcript v1\n+0 tick c\n",
            2,
            TranscriptErrorKind::Action("tick c".into()),
        ),
        (
            "# sansproto transcript v1\n+0 a>a 1 00\n",
            2,
            TranscriptErrorKind::Action("a>a 1 00".into()),
        ),
        (
            "# sansproto transcript v1\n+0 a>b 2 0g0\n",
            2,
            TranscriptErrorKind::Hex,
        ),
        (
            "# sansproto transcript v1\n+0 tick a\n+0 b<a 3 0102\n",
            3,
            TranscriptErrorKind::Length {
                declared: 3,
                found: 2,
            },
        ),
    ];
    for (text, line, kind) in cases {
        let err = Transcript::parse(text).unwrap_err();
        assert_eq!((err.line, &err.kind), (line, &kind), "{text:?}");
        assert!(err
            .to_string()
            .starts_with(&format!("transcript line {line}: ")));
    }
    let err = Transcript::parse("# sansproto transcript v1\n+0 b<a x 00\n").unwrap_err();
    assert_eq!(err.kind, TranscriptErrorKind::Count("x".into()));
}

/// A `Recorder` records a machine under code that knows only `Driver`:
/// here the crate's blocking loop over a real TCP connection.
#[test]
fn a_recorder_records_under_the_blocking_loop_and_replays() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"\x00\x00\x00\x05hello\x00\x00\x00\x02hi")
            .unwrap();
        let mut echoed = [0u8; 15];
        s.read_exact(&mut echoed).unwrap();
        echoed
    });
    let (mut stream, _) = listener.accept().unwrap();
    let conn = prefix::Connection::new(prefix::Config::default());
    let mut rec = Recorder::new(conn, Side::B);
    let mut frames = 0;
    sansproto::blocking::drive(&mut stream, &mut rec, |rec, event| {
        if let prefix::Event::Frame(frame) = event {
            let label = format!("echo {}", String::from_utf8_lossy(&frame));
            rec.call(&label, |c| c.send(frame).unwrap());
            frames += 1;
            if frames == 2 {
                rec.call("close", |c| c.close());
            }
        }
    })
    .unwrap();
    assert_eq!(
        &peer.join().unwrap(),
        b"\x00\x00\x00\x05hello\x00\x00\x00\x02hi"
    );

    let (_, transcript) = rec.into_parts();
    assert_eq!(
        transcript.received(Side::B),
        b"\x00\x00\x00\x05hello\x00\x00\x00\x02hi"
    );
    assert_eq!(
        transcript.events(Side::B),
        ["Frame(b\"hello\")", "Frame(b\"hi\")"]
    );
    let text = transcript.to_string();
    let replayed = Transcript::parse(&text).unwrap().assert_replays_with(
        Side::B,
        prefix::Connection::new(prefix::Config::default()),
        |c, label| match label.strip_prefix("echo ") {
            Some(frame) => c.send(frame.as_bytes().to_vec()).unwrap(),
            None => c.close(),
        },
    );
    assert!(replayed.is_finished());
}

/// The checked-in transcript: a small WebSocket session (no extension) made
/// by [`small_session`].
const CHECKED_IN: &str = "tests/data/ws_session.transcript";

/// A seeded client says hello, the server answers, the client pings and
/// closes; reads are cut at random up to 64 bytes.
fn small_session() -> Transcript {
    let client = ws::Connection::client_with_random(
        ws::Config::default(),
        ws::ClientRequest::new("example.com", "/"),
        sansproto::seeded_random(5),
    )
    .unwrap();
    let mut pair = Pair::new(
        client,
        ws::Connection::server(ws::Config::default()),
        Chunking::Random { seed: 5, max: 64 },
    );
    pair.record();
    pair.run_until_idle();
    pair.call_a("send hello", |c| c.send("hello").unwrap());
    pair.run_until_idle();
    pair.advance(Duration::from_millis(1500));
    pair.call_b("send hi", |c| c.send("hi").unwrap());
    pair.call_a("ping", |c| c.ping("p").unwrap());
    pair.run_until_idle();
    pair.call_a("close", |c| c.close(ws::CloseCode::NORMAL, "bye").unwrap());
    pair.run_until_idle();
    assert!(pair.a.is_finished() && pair.b.is_finished());
    pair.take_transcript().unwrap()
}

fn run_small_call(c: &mut ws::Connection, label: &str) {
    match label {
        "send hello" => c.send("hello").unwrap(),
        "send hi" => c.send("hi").unwrap(),
        "ping" => c.ping("p").unwrap(),
        "close" => c.close(ws::CloseCode::NORMAL, "bye").unwrap(),
        _ => panic!("unknown command {label}"),
    }
}

/// The file is what the code records today (`SANSPROTO_BLESS=1` rewrites
/// it), and it replays on both sides.
#[test]
fn the_checked_in_transcript_is_recorded_and_replays() {
    let recorded = small_session().to_string();
    if std::env::var_os("SANSPROTO_BLESS").is_some() {
        std::fs::write(CHECKED_IN, &recorded).unwrap();
    }
    let text = std::fs::read_to_string(CHECKED_IN).unwrap();
    assert_eq!(
        text, recorded,
        "rerun with SANSPROTO_BLESS=1 if the change is meant"
    );
    let transcript = Transcript::parse(&text).unwrap();
    let client = ws::Connection::client_with_random(
        ws::Config::default(),
        ws::ClientRequest::new("example.com", "/"),
        sansproto::seeded_random(5),
    )
    .unwrap();
    let a = transcript.assert_replays_with(Side::A, client, run_small_call);
    let b = transcript.assert_replays_with(
        Side::B,
        ws::Connection::server(ws::Config::default()),
        run_small_call,
    );
    assert!(a.is_finished() && b.is_finished());
}

/// A failure is part of the transcript: the replay must fail the same way,
/// at the same read, and end of stream after it returns the same error.
#[test]
fn errors_and_end_of_stream_replay_too() {
    let small = || {
        prefix::Connection::new(
            prefix::Config::builder()
                .max_frame_length(16)
                .build()
                .unwrap(),
        )
    };
    let wide = || prefix::Connection::new(prefix::Config::default());
    let mut pair = Pair::new(wide(), small(), Chunking::Random { seed: 2, max: 5 });
    pair.record();
    pair.call_a("send ok", |c| c.send(&b"ok"[..]).unwrap());
    pair.call_a("send long", |c| c.send(vec![7u8; 40]).unwrap());
    pair.run_until_idle();
    pair.eof_to(Side::B);
    assert_eq!(pair.take_events_b(), [prefix::Event::Frame("ok".into())]);
    let errors = pair.take_errors_b();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0], errors[1]);

    let transcript = Transcript::parse(&pair.transcript().unwrap().to_string()).unwrap();
    let error = errors[0].to_string();
    let recorded: Vec<&Action> = transcript
        .entries()
        .iter()
        .filter(|e| e.side == Side::B && matches!(e.action, Action::Error(_) | Action::Eof))
        .map(|e| &e.action)
        .collect();
    assert_eq!(
        recorded,
        [
            &Action::Error(error.clone()),
            &Action::Eof,
            &Action::Error(error)
        ]
    );
    assert!(transcript.replay(Side::B, small()).unwrap().is_finished());
    // A machine that does not fail there parts from the transcript.
    match transcript.replay(Side::B, wide()) {
        Err(ReplayError::Error {
            expected,
            got: None,
            ..
        }) => assert!(expected.is_some()),
        other => panic!("{other:?}"),
    }
}

//! Peer protocol violations: each must queue a Close frame with the right
//! code (RFC 6455 §7.4.1) and leave a sticky error, however the offending
//! bytes are cut into reads.

mod common;

use bytes::Bytes;
use common::ws::{close_payload, decode_frames, frame};
use sansproto::ws::ProtocolViolation as V;
use sansproto::ws::{
    CloseCode, Closed, Config, Connection, Error, Event, Message, Role, SendErrorKind,
};

const KEY: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

fn conn(role: Role, config: &Config) -> Connection {
    Connection::after_handshake(
        role,
        config.clone(),
        None,
        None,
        sansproto::seeded_random(1),
    )
}

/// The mask a frame to `role` must (or must not) carry.
fn mask_for(role: Role) -> Option<[u8; 4]> {
    match role {
        Role::Server => KEY,
        Role::Client => None,
    }
}

/// [`expect_failure`] for a broken framing rule: `v`, close code 1002.
fn expect_violation(role: Role, input: &[u8], fail_at: usize, v: V) {
    let is_v = |e: &Error| *e == Error::Protocol(v);
    expect_failure(role, &Config::default(), input, fail_at, is_v, 1002);
}

/// Checks a failed connection: one Close frame with `code` queued, a
/// single `Closed` event, and the same error from every later call.
fn check_failed(c: &mut Connection, role: Role, first: &Error, code: u16, what: &str) {
    assert_eq!(c.error(), Some(first), "{what}");
    assert_eq!(
        first.close_code(),
        Some(CloseCode(code)),
        "{what}: {first:?}"
    );
    let mut events = Vec::new();
    while let Some(e) = c.poll_event() {
        events.push(e);
    }
    match events.as_slice() {
        [Event::Closed(Closed {
            code: got,
            clean: false,
            by_peer: false,
            ..
        })] => assert_eq!(*got, CloseCode(code), "{what}"),
        other => panic!("{what}: events {other:?}"),
    }
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let frames = decode_frames(&out);
    assert_eq!(frames.len(), 1, "{what}: wrote {out:02x?}");
    let close = &frames[0];
    assert_eq!(
        (close.fin, close.rsv, close.opcode),
        (true, 0, 0x8),
        "{what}"
    );
    assert_eq!(close.mask.is_some(), role == Role::Client, "{what}");
    assert_eq!(close.payload[..2], code.to_be_bytes(), "{what}");
    assert!(std::str::from_utf8(&close.payload[2..]).is_ok(), "{what}");
    if role == Role::Server {
        assert_eq!(
            out[..4],
            [0x88, 0x02, (code >> 8) as u8, code as u8],
            "{what}"
        );
    }

    // Sticky: every later call reports the same error and does nothing.
    for input in [&b"\x81\x00"[..], b"\x88\x00", b"x"] {
        assert_eq!(c.receive(input).as_ref(), Err(first), "{what}");
    }
    assert_eq!(c.receive_eof().as_ref(), Err(first), "{what}");
    assert_eq!(c.poll_event(), None, "{what}");
    assert_eq!(c.poll_transmit(&mut out), 0, "{what}: a second Close");
    assert!(c.is_finished(), "{what}");
    assert!(!c.is_open(), "{what}");
    let refused = c.send_text("late").unwrap_err();
    assert_eq!(refused.kind(), &SendErrorKind::Closed, "{what}");
    assert_eq!(refused.payload(), &Message::from("late"));
}

/// Feeds `input` whole, in two pieces at every split and byte by byte. The
/// connection must fail with an error accepted by `check`, no later than
/// the input's last byte and not before byte `fail_at` (1-based) arrives.
fn expect_failure(
    role: Role,
    config: &Config,
    input: &[u8],
    fail_at: usize,
    check: impl Fn(&Error) -> bool,
    code: u16,
) {
    let mut cuts = vec![vec![input.len()], vec![1; input.len()]];
    for i in 1..input.len() {
        cuts.push(vec![i, input.len() - i]);
    }
    for pieces in cuts {
        let what = format!("{input:02x?} as {pieces:?}");
        let mut c = conn(role, config);
        let mut fed = 0;
        let mut first = None;
        for n in pieces {
            let result = c.receive(&input[fed..fed + n]);
            fed += n;
            match (result, &first) {
                (Ok(taken), None) => assert_eq!(taken, n, "{what}: all taken"),
                (Err(e), None) => {
                    assert!(fed >= fail_at, "{what}: failed early, at {fed}: {e:?}");
                    assert!(check(&e), "{what}: wrong error {e:?}");
                    first = Some(e);
                }
                (result, Some(f)) => assert_eq!(result.as_ref(), Err(f), "{what}"),
            }
        }
        let first = first.unwrap_or_else(|| panic!("{what}: never failed"));
        check_failed(&mut c, role, &first, code, &what);
    }
}

#[test]
fn reserved_opcodes_fail_with_1002() {
    for op in [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        for role in [Role::Client, Role::Server] {
            let input = frame(true, op, mask_for(role), b"abc");
            expect_violation(role, &input, 1, V::ReservedOpcode(op));
        }
    }
}

#[test]
fn rsv_bits_without_an_extension_fail_with_1002() {
    for rsv in [0x40, 0x20, 0x10, 0x70] {
        for role in [Role::Client, Role::Server] {
            let mut input = frame(true, 0x1, mask_for(role), b"Hello");
            input[0] |= rsv;
            expect_violation(role, &input, 1, V::UnnegotiatedRsv);
            let mut ping = frame(true, 0x9, mask_for(role), b"p");
            ping[0] |= rsv;
            expect_violation(role, &ping, 1, V::UnnegotiatedRsv);
        }
    }
}

#[test]
fn unmasked_frame_to_a_server_fails_with_1002() {
    for op in [0x1, 0x2, 0x9, 0xa, 0x8] {
        let input = frame(true, op, None, b"");
        expect_violation(Role::Server, &input, 2, V::UnmaskedClientFrame);
    }
    expect_violation(
        Role::Server,
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        2,
        V::UnmaskedClientFrame,
    );
}

#[test]
fn masked_frame_to_a_client_fails_with_1002() {
    expect_violation(
        Role::Client,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
        2,
        V::MaskedServerFrame,
    );
}

#[test]
fn fragmented_control_frames_fail_with_1002() {
    for op in [0x8, 0x9, 0xa] {
        for role in [Role::Client, Role::Server] {
            let input = frame(false, op, mask_for(role), b"ab");
            expect_violation(role, &input, 1, V::FragmentedControlFrame);
        }
    }
}

#[test]
fn control_frame_over_125_bytes_fails_with_1002_at_its_header() {
    for op in [0x8, 0x9, 0xa] {
        for role in [Role::Client, Role::Server] {
            let payload = [b'a'; 126];
            let input = frame(true, op, mask_for(role), &payload);
            let header = if role == Role::Server { 8 } else { 4 };
            // Fails once the header is in, before any of the payload.
            let mut c = conn(role, &Config::default());
            c.receive(&input[..header - 1]).unwrap();
            let e = c.receive(&input[header - 1..header]).unwrap_err();
            assert_eq!(e, Error::Protocol(V::ControlFrameTooLong));
            check_failed(&mut c, role, &e, 1002, "control 126");
            expect_violation(role, &input, 2, V::ControlFrameTooLong);
        }
        // 125 is allowed.
        let mut c = conn(Role::Client, &Config::default());
        c.receive(&frame(true, 0x9, None, &[b'b'; 125])).unwrap();
        assert_eq!(c.poll_event(), Some(Event::Ping(vec![b'b'; 125].into())));
    }
}

#[test]
fn continuation_without_a_message_fails_with_1002() {
    for fin in [true, false] {
        for role in [Role::Client, Role::Server] {
            let input = frame(fin, 0x0, mask_for(role), b"lo");
            expect_violation(role, &input, 2, V::ContinuationWithoutMessage);
        }
    }
}

#[test]
fn new_message_inside_a_fragmented_message_fails_with_1002() {
    for role in [Role::Client, Role::Server] {
        let m = mask_for(role);
        for second in [0x1, 0x2] {
            let mut input = frame(false, 0x1, m, b"Hel");
            let start = input.len();
            input.extend(frame(true, second, m, b"lo"));
            expect_violation(role, &input, start + 2, V::MessageInsideFragmentedMessage);
        }
    }
}

#[test]
fn control_frames_may_come_between_fragments() {
    let mut c = conn(Role::Client, &Config::default());
    let mut input = frame(false, 0x1, None, b"Hel");
    input.extend(frame(true, 0x9, None, b"p"));
    input.extend(frame(false, 0x0, None, b"l"));
    input.extend(frame(true, 0xa, None, b"q"));
    input.extend(frame(true, 0x0, None, b"o"));
    c.receive(&input).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::Ping(Bytes::from_static(b"p")),
            Event::Pong {
                payload: Bytes::from_static(b"q"),
                matched: false
            },
            Event::Message(Message::from("Hello")),
        ]
    );
}

#[test]
fn invalid_utf8_in_text_fails_with_1007() {
    let bad: [&[u8]; 6] = [
        b"\xc3\x28",
        b"\xff",
        b"ab\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"ok\xe2\x82", // ends inside a character
    ];
    for payload in bad {
        for role in [Role::Client, Role::Server] {
            let input = frame(true, 0x1, mask_for(role), payload);
            expect_failure(
                role,
                &Config::default(),
                &input,
                2,
                |e| *e == Error::InvalidUtf8,
                1007,
            );
        }
    }
}

#[test]
fn invalid_utf8_fails_fast_before_the_frame_is_complete() {
    // 20 payload bytes; the fourth is 0xff, which no UTF-8 text contains.
    let mut payload = *b"abc_and more text...";
    payload[3] = 0xff;
    for role in [Role::Client, Role::Server] {
        let input = frame(true, 0x1, mask_for(role), &payload);
        let header = input.len() - payload.len();
        let bad_byte = header + 4;
        // The first half alone, with the invalid byte in it, must fail.
        let mut c = conn(role, &Config::default());
        let e = c.receive(&input[..header + 10]).unwrap_err();
        assert_eq!(e, Error::InvalidUtf8);
        check_failed(&mut c, role, &e, 1007, "first half");
        // Byte by byte, it fails on the invalid byte itself.
        expect_failure(
            role,
            &Config::default(),
            &input,
            bad_byte,
            |e| *e == Error::InvalidUtf8,
            1007,
        );
        let mut c = conn(role, &Config::default());
        for (i, b) in input.iter().enumerate() {
            let r = c.receive(std::slice::from_ref(b));
            assert_eq!(r.is_err(), i + 1 >= bad_byte, "{role:?} byte {}", i + 1);
        }
    }
}

#[test]
fn a_character_that_can_never_complete_fails_before_its_last_byte() {
    // U+D800 (a surrogate) starts ed a0: invalid after its second byte.
    // f4 90 would be above U+10FFFF: invalid after its second byte.
    for prefix in [&b"\xed\xa0"[..], b"\xf4\x90"] {
        let mut payload = b"x".to_vec();
        payload.extend_from_slice(prefix);
        payload.extend_from_slice(b"\x80tail");
        let input = frame(true, 0x1, None, &payload);
        let mut c = conn(Role::Client, &Config::default());
        c.receive(&input[..4]).unwrap();
        assert_eq!(c.receive(&input[4..5]), Err(Error::InvalidUtf8));
    }
}

#[test]
fn invalid_utf8_split_across_fragments_fails_with_1007() {
    for role in [Role::Client, Role::Server] {
        let m = mask_for(role);
        // f0 90 is a valid start of a four-byte character; 28 cannot follow.
        let mut input = frame(false, 0x1, m, b"a\xf0\x90");
        let second = input.len();
        input.extend(frame(false, 0x0, m, b"\x28bc"));
        let header2 = if m.is_some() { 6 } else { 2 };
        expect_failure(
            role,
            &Config::default(),
            &input,
            second + header2 + 1,
            |e| *e == Error::InvalidUtf8,
            1007,
        );
        // A character cut off by the final fragment's end.
        let mut input = frame(false, 0x1, m, b"a");
        input.extend(frame(true, 0x0, m, b"\xce"));
        expect_failure(
            role,
            &Config::default(),
            &input,
            input.len(),
            |e| *e == Error::InvalidUtf8,
            1007,
        );
    }
    // A valid character split across fragments (and a ping) is fine.
    let mut c = conn(Role::Client, &Config::default());
    let mut input = frame(false, 0x1, None, b"\xf0\x9d");
    input.extend(frame(true, 0x9, None, b""));
    input.extend(frame(true, 0x0, None, b"\x84\x9e"));
    c.receive(&input).unwrap();
    assert_eq!(c.poll_event(), Some(Event::Ping(Bytes::new())));
    assert_eq!(c.poll_event(), Some(Event::Message(Message::from("𝄞"))));
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    let mut c = conn(Role::Client, &Config::default());
    c.receive(&frame(true, 0x2, None, b"\xff\xfe")).unwrap();
    assert_eq!(
        c.poll_event(),
        Some(Event::Message(Message::Binary(Bytes::from_static(
            b"\xff\xfe"
        ))))
    );
}

#[test]
fn close_with_a_one_byte_payload_fails_with_1002() {
    for role in [Role::Client, Role::Server] {
        let input = frame(true, 0x8, mask_for(role), &[0x03]);
        expect_violation(role, &input, 2, V::CloseOneByte);
    }
}

#[test]
fn close_with_a_code_that_may_not_be_sent_fails_with_1002() {
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        for role in [Role::Client, Role::Server] {
            let input = frame(true, 0x8, mask_for(role), &close_payload(code, "bye"));
            expect_violation(role, &input, 2, V::InvalidCloseCode(code));
        }
    }
}

#[test]
fn close_with_a_valid_code_is_echoed() {
    for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut c = conn(Role::Server, &Config::default());
        c.receive(&frame(true, 0x8, KEY, &close_payload(code, "why")))
            .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(Event::Closed(Closed {
                code: CloseCode(code),
                reason: "why".into(),
                clean: true,
                by_peer: true
            }))
        );
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert_eq!(out, frame(true, 0x8, None, &close_payload(code, "why")));
        assert!(c.is_finished());
    }
}

#[test]
fn close_reason_with_invalid_utf8_fails_with_1007() {
    for role in [Role::Client, Role::Server] {
        let mut payload = close_payload(1000, "ok");
        payload.extend_from_slice(b"\xff\xfe");
        let input = frame(true, 0x8, mask_for(role), &payload);
        expect_failure(
            role,
            &Config::default(),
            &input,
            input.len(),
            |e| *e == Error::InvalidUtf8,
            1007,
        );
    }
}

#[test]
fn frame_over_max_frame_size_fails_with_1009_at_its_header() {
    let config = Config::default().with_max_frame_size(100);
    for role in [Role::Client, Role::Server] {
        for op in [0x1, 0x2] {
            let input = frame(true, op, mask_for(role), &[b'a'; 101]);
            let header = input.len() - 101;
            expect_failure(
                role,
                &config,
                &input,
                2,
                |e| matches!(e, Error::FrameTooBig(101)),
                1009,
            );
            // Nothing of the payload is needed to refuse it.
            let mut c = conn(role, &config);
            let e = c.receive(&input[..header]).unwrap_err();
            assert_eq!(e, Error::FrameTooBig(101));
            check_failed(&mut c, role, &e, 1009, "header only");
        }
        // A frame of exactly the limit is fine.
        let mut c = conn(role, &config);
        c.receive(&frame(true, 0x2, mask_for(role), &[7; 100]))
            .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(Event::Message(Message::Binary(vec![7; 100].into())))
        );
    }
}

#[test]
fn message_over_max_message_size_fails_with_1009_at_the_fragment_that_passes_it() {
    let config = Config::default().with_max_message_size(100);
    for role in [Role::Client, Role::Server] {
        let m = mask_for(role);
        let mut input = frame(false, 0x2, m, &[1; 50]);
        input.extend(frame(false, 0x0, m, &[2; 50]));
        let third = input.len();
        input.extend(frame(true, 0x0, m, &[3; 1]));
        let header = if m.is_some() { 6 } else { 2 };
        let mut c = conn(role, &config);
        let e = c.receive(&input[..third + header]).unwrap_err();
        assert_eq!(e, Error::MessageTooBig);
        check_failed(&mut c, role, &e, 1009, "third header");
        expect_failure(
            role,
            &config,
            &input,
            third + 2,
            |e| *e == Error::MessageTooBig,
            1009,
        );

        // Exactly the limit, in fragments, is fine.
        let mut ok = frame(false, 0x1, m, &[b'a'; 50]);
        ok.extend(frame(true, 0x0, m, &[b'b'; 50]));
        let mut c = conn(role, &config);
        c.receive(&ok).unwrap();
        let text: String = "a".repeat(50) + &"b".repeat(50);
        assert_eq!(c.poll_event(), Some(Event::Message(Message::from(text))));
    }
}

#[test]
fn events_before_a_failure_are_delivered_first() {
    let mut c = conn(Role::Client, &Config::default());
    let mut input = frame(true, 0x1, None, b"before");
    input.extend(frame(true, 0x9, None, b"p"));
    input.extend([0x83, 0x00]); // reserved opcode
    input.extend(frame(true, 0x1, None, b"after"));
    // The error may be reported now or once the events before it are taken.
    let first = c.receive(&input);
    assert_eq!(
        c.poll_event(),
        Some(Event::Message(Message::from("before")))
    );
    assert_eq!(c.poll_event(), Some(Event::Ping(Bytes::from_static(b"p"))));
    let Some(Event::Closed(closed)) = c.poll_event() else {
        panic!("no Closed event");
    };
    assert_eq!((closed.code, closed.clean), (CloseCode(1002), false));
    assert_eq!(c.poll_event(), None, "nothing after the failure is parsed");
    let e = c.error().cloned().expect("sticky error");
    assert_eq!(e, Error::Protocol(V::ReservedOpcode(3)));
    if let Err(now) = first {
        assert_eq!(now, e);
    }
    assert_eq!(c.receive(b"\x81\x00"), Err(e));
    // The pong for the ping goes out before the Close frame.
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let ops: Vec<u8> = decode_frames(&out).iter().map(|f| f.opcode).collect();
    assert_eq!(ops, [0xa, 0x8]);
}

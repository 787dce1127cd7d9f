//! The closing handshake when frames cross: a Ping or the peer's Close
//! read together with what came before, this side closing while the
//! peer's Close still waits behind unpolled events, and pongs owed while
//! the send queue is full (RFC 6455 §5.5.1, §5.5.2, §7.1.2).

mod common;

use common::ws::{decode_frames, masked, open_server};
use sansproto::ws::{encode_frame, CloseCode, Config, Connection, Event, OpCode};

fn server(config: Config) -> Connection {
    open_server(config, 0)
}

/// A Ping then the peer's Close (code 1000), in one read.
fn ping_then_close() -> Vec<u8> {
    let mut input = masked(OpCode::Ping, b"still there");
    input.extend(masked(OpCode::Close, &[0x03, 0xe8]));
    input
}

/// The opcodes of what `c` sends when its output is taken before the
/// events are polled (`transmit_first`) or after.
fn frames_sent(c: &mut Connection, transmit_first: bool) -> (Vec<u8>, Vec<Event>) {
    let mut out = Vec::new();
    if transmit_first {
        c.poll_transmit(&mut out);
    }
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    c.poll_transmit(&mut out);
    let kinds = decode_frames(&out).iter().map(|f| f.opcode).collect();
    (kinds, events)
}

/// The send queue is full, so the pong waits for the next
/// `poll_transmit`; the Ping came before the peer's Close, so it is
/// answered whichever is taken first, output or events.
#[test]
fn a_pong_owed_before_the_peers_close_goes_out_in_every_order() {
    for close_first in [false, true] {
        for transmit_first in [false, true] {
            let mut c = server(Config::default().with_max_send_queue(100));
            c.send_binary(vec![7u8; 80]).unwrap();
            if close_first {
                c.close(CloseCode::NORMAL, "").unwrap();
            }
            c.receive(&ping_then_close()).unwrap();
            let (kinds, events) = frames_sent(&mut c, transmit_first);
            let want: &[u8] = match close_first {
                // The pong answers before this side's Close answers the
                // peer's.
                false => &[0x2, 0xa, 0x8],
                // This side's Close was queued before the Ping arrived.
                true => &[0x2, 0x8, 0xa],
            };
            assert_eq!(kinds, want, "close first {close_first}, {transmit_first}");
            assert!(c.is_finished());
            assert!(
                matches!(events.last(), Some(Event::Closed(closed)) if closed.clean),
                "{events:?}"
            );
        }
    }
}

/// `Closed::by_peer` follows the order of events: a Close this side sends
/// before the peer's is polled comes first, whether the peer's frame was
/// read already or not, and whatever the event bound; it is not answered
/// with a second Close.
#[test]
fn a_close_called_before_the_peers_is_polled_comes_first() {
    let mut input = masked(OpCode::Text, b"hi");
    input.extend(masked(OpCode::Text, b"ho"));
    input.extend(masked(OpCode::Close, &[0x03, 0xe8]));
    for (bound, close_before_read) in [(64, false), (1, false), (64, true)] {
        let mut c = server(Config::default().with_max_pending_events(bound));
        if close_before_read {
            c.close(CloseCode::GOING_AWAY, "").unwrap();
        }
        assert_eq!(c.receive(&input), Ok(input.len()));
        if !close_before_read {
            c.close(CloseCode::GOING_AWAY, "").unwrap();
        }
        let (kinds, events) = frames_sent(&mut c, false);
        assert_eq!(kinds, [0x8], "one Close only");
        assert_eq!(events.len(), 3, "{events:?}");
        let Some(Event::Closed(closed)) = events.last() else {
            panic!("{events:?}")
        };
        assert!(!closed.by_peer && closed.clean, "{bound}: {closed:?}");
        assert_eq!(closed.code, CloseCode::NORMAL, "the peer's code");
    }

    // Reached before this side closes: by the peer, and answered.
    let mut c = server(Config::default());
    c.receive(&input).unwrap();
    let (kinds, events) = frames_sent(&mut c, false);
    assert_eq!(kinds, [0x8]);
    let Some(Event::Closed(closed)) = events.last() else {
        panic!("{events:?}")
    };
    assert!(closed.by_peer && closed.clean, "{closed:?}");
}

/// With auto-pong off, `pong` is taken after this side's Close until the
/// peer's, also while a failure the peer caused waits behind its Ping.
#[test]
fn pong_is_taken_after_this_sides_close_while_a_failure_waits() {
    let mut config = Config::default();
    config.auto_pong = false;
    let mut c = server(config);
    c.close(CloseCode::NORMAL, "").unwrap();
    let mut input = masked(OpCode::Ping, b"ping");
    // An unmasked frame from a client: a protocol error, queued behind
    // the Ping.
    encode_frame(&mut input, true, 0, OpCode::Text, None, b"unmasked");
    c.receive(&input).unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Ping(_))));
    c.pong(&b"ping"[..]).expect("no Close came from the peer");
    let (kinds, _) = frames_sent(&mut c, false);
    assert_eq!(kinds, [0x8, 0xa], "our Close, then the pong");
    assert!(c.is_finished());
}

/// After this side's Close, a Ping is still answered (RFC 6455 §5.5.2),
/// also when the send queue is full and the pong has to wait for the next
/// `poll_transmit`.
#[test]
fn a_ping_after_this_sides_close_is_answered_when_the_send_queue_is_full() {
    let mut c = server(Config::default().with_max_send_queue(100));
    c.send_binary(vec![7u8; 80]).unwrap();
    c.close(CloseCode::NORMAL, "").unwrap();
    c.receive(&masked(OpCode::Ping, b"still there")).unwrap();
    assert_eq!(
        c.poll_event(),
        Some(Event::Ping(bytes::Bytes::from_static(b"still there")))
    );
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let frames = decode_frames(&out);
    let kinds: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    assert_eq!(kinds, [0x2, 0x8, 0xa], "{frames:?}");
    assert_eq!(frames[2].payload, &b"still there"[..]);
}

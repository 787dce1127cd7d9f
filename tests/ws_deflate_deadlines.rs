//! permessage-deflate and the session's deadlines: input left unparsed
//! behind an inflated message until it is polled.
#![cfg(feature = "deflate")]

mod common;

use common::ws::{decode_frames, negotiated};
use sansproto::ws::{CloseCode, Config, Connection, Event, Message, Role};
use std::time::{Duration, Instant};

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Input left unparsed behind an inflated message keeps the close
/// deadline running, as a terminal step waiting behind unpolled events
/// does: an application that stops polling still sees the peer's Close
/// answered, and the end of the stream counts at once.
#[test]
fn input_behind_an_inflated_message_is_parsed_at_the_close_deadline() {
    let offer = "permessage-deflate";
    let config = || Config::default().with_close_timeout(Some(Duration::from_secs(2)));
    let text = "compressible ".repeat(100);
    // A compressed message and the Close after it, in one read.
    let mut peer = negotiated(Role::Client, Config::default(), offer);
    peer.send(text.as_str()).unwrap();
    peer.close(CloseCode::NORMAL, "").unwrap();
    let mut wire = Vec::new();
    peer.poll_transmit(&mut wire);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(2);
    for close_first in [false, true] {
        let mut server = negotiated(Role::Server, config(), offer);
        server.handle_timeout(t0);
        if close_first {
            server.close(CloseCode::GOING_AWAY, "").unwrap();
        }
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        server.receive(&wire).unwrap();
        server.handle_timeout(t0);
        assert_eq!(server.poll_timeout(), Some(deadline), "{close_first}");
        server.handle_timeout(deadline - Duration::from_nanos(1));
        assert!(!server.is_finished());
        server.handle_timeout(deadline);
        assert_eq!(server.error(), None, "{close_first}");
        assert!(server.is_finished(), "{close_first}");
        out.clear();
        server.poll_transmit(&mut out);
        let answered: Vec<u8> = decode_frames(&out).iter().map(|f| f.opcode).collect();
        let want = if close_first { vec![] } else { vec![0x8] };
        assert_eq!(answered, want, "{close_first}");
        let got = events(&mut server);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], Event::Message(Message::from(text.as_str())));
        assert!(
            matches!(&got[1], Event::Closed(c) if c.clean && c.code == CloseCode::NORMAL
                && c.by_peer != close_first),
            "{got:?}"
        );
    }

    // Polled before the deadline: the deadline goes with the wait.
    let mut server = negotiated(Role::Server, config(), offer);
    server.handle_timeout(t0);
    server.receive(&wire).unwrap();
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), Some(deadline));
    assert_eq!(events(&mut server).len(), 2);
    assert_eq!(server.poll_timeout(), None, "the session has ended");
    let mut server = negotiated(Role::Server, config(), offer);
    server.handle_timeout(t0);
    let message = &wire[..wire.len() - 8];
    server.receive(&[message, message].concat()).unwrap();
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), Some(deadline));
    assert_eq!(events(&mut server).len(), 2);
    assert_eq!(server.poll_timeout(), None, "no input waits");

    // A Close called while input waits gets the whole close timeout, from
    // the call.
    let mut server = negotiated(Role::Server, config(), offer);
    server.handle_timeout(t0);
    server.receive(&[message, message].concat()).unwrap();
    server.handle_timeout(t0);
    assert!(matches!(server.poll_event(), Some(Event::Message(_))));
    let later = t0 + Duration::from_millis(1900);
    server.handle_timeout(later);
    server.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(server.poll_timeout(), Some(later + Duration::from_secs(2)));
    server.handle_timeout(deadline);
    assert_eq!(server.error(), None);

    // The end of the stream after such input finishes the session at once,
    // as it does after input parsed as it came.
    let mut server = negotiated(Role::Server, config(), offer);
    let mut two = wire.clone();
    two.truncate(wire.len() - 8);
    two.extend_from_slice(&two.clone());
    server.receive(&two).unwrap();
    server.receive_eof().unwrap();
    assert!(server.is_finished());
    let got = events(&mut server);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(&got[2], Event::Closed(c) if !c.clean));
}

//! The session's timers: deadlines while open, closing and ending.

use super::*;

#[test]
fn a_waiting_peer_close_is_answered_at_the_deadline_when_events_are_not_drained() {
    let t0 = Instant::now();
    let close_timeout = Duration::from_secs(3);
    let config = Config::default().with_close_timeout(Some(close_timeout));
    let mut s = session(Role::Server, config);
    s.handle_timeout(t0);
    s.receive(&hello_then_close()).unwrap();
    s.handle_timeout(t0 + Duration::from_secs(1));
    let deadline = s.poll_timeout().expect("a deadline while ending");
    assert_eq!(deadline, t0 + close_timeout);
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!s.is_finished(), "not yet");
    assert!(output(&mut s).is_empty(), "not yet");
    s.handle_timeout(deadline);
    // The peer's Close is answered as it would have been when polled.
    assert!(s.is_finished());
    assert_eq!(s.error(), None);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(output(&mut s), [0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(s.send("late").unwrap_err().kind, SendErrorKind::Closed);
    assert_eq!(
        s.receive(b"x"),
        Ok(b"x".len()),
        "input after the end is ignored"
    );
    // The message, then one Closed: the queued step was carried out once.
    let ev = events(&mut s);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0], text("Hello"));
    let c = closed(&ev[1]);
    assert_eq!(c.code, CloseCode::NORMAL);
    assert!(c.clean && c.by_peer);
}

#[test]
fn a_waiting_failure_is_carried_out_at_the_deadline() {
    let t0 = Instant::now();
    let mut s = session(Role::Server, Config::default());
    s.handle_timeout(t0);
    // A message, then a frame with a reserved opcode.
    let mut bytes = masked(OpCode::Text, b"Hello");
    bytes.extend_from_slice(&[0x83, 0x80, 0, 0, 0, 0]);
    s.receive(&bytes).unwrap();
    let deadline = s.poll_timeout().expect("a deadline while ending");
    s.handle_timeout(deadline);
    let expected = Error::Protocol(crate::ws::ProtocolViolation::ReservedOpcode(3));
    assert_eq!(s.error(), Some(&expected), "the failure, not a timeout");
    let out = output(&mut s);
    assert_eq!(
        out[..4],
        [0x88, 0x02, 0x03, 0xea],
        "its 1002 Close goes out"
    );
    let ev = events(&mut s);
    assert_eq!(ev[0], text("Hello"));
    assert_eq!(closed(&ev[1]).code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(ev.len(), 2);
}

#[test]
fn keepalive_pings_then_the_pong_deadline_fails() {
    let t0 = Instant::now();
    let second = Duration::from_secs(1);
    let config = Config::default().with_keepalive(second, 2 * second);
    let (mut c, mut s) = (
        session(Role::Client, config.clone()),
        session(Role::Server, config),
    );
    s.handle_timeout(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + second));
    s.handle_timeout(t0 + second);
    let ping = output(&mut s);
    assert_eq!(ping[..2], [0x89, 8], "a keepalive ping, 8-byte counter");
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 2 * second),
        "the next keepalive"
    );
    // The peer answers: activity clears the pong deadline.
    c.receive(&ping).unwrap();
    s.receive(&output(&mut c)).unwrap();
    s.handle_timeout(t0 + 2 * second);
    assert!(matches!(
        events(&mut s)[..],
        [Event::Pong { matched: true, .. }]
    ));
    assert_eq!(s.poll_timeout(), Some(t0 + 3 * second));
    // Silence from here: a ping at 3 s, the pong deadline at 5 s.
    s.handle_timeout(t0 + 3 * second);
    assert_eq!(s.poll_timeout(), Some(t0 + 4 * second));
    s.handle_timeout(t0 + 4 * second);
    assert_eq!(s.poll_timeout(), Some(t0 + 5 * second));
    s.handle_timeout(t0 + 5 * second);
    assert_eq!(s.error(), Some(&Error::Timeout(TimeoutKind::Pong)));
    assert_eq!(s.poll_timeout(), None);
}

/// Follows `poll_timeout` until it returns `None`: every deadline is acted
/// on (the next one is later), and the session finishes.
fn follow_timers(s: &mut Session) {
    for _ in 0..100 {
        let Some(at) = s.poll_timeout() else {
            return;
        };
        s.handle_timeout(at);
        events(s);
        if let Some(next) = s.poll_timeout() {
            assert!(next > at, "deadline {at:?} not acted on");
        }
    }
    panic!("timers never stopped");
}

#[test]
fn every_deadline_poll_timeout_returns_is_acted_on() {
    let config = Config::default()
        .with_keepalive(Duration::from_secs(1), Duration::from_secs(2))
        .with_close_timeout(Some(Duration::from_secs(3)));
    let t0 = Instant::now();
    let setups: [fn(&mut Session); 4] = [
        |_| {},
        |s| s.close(CloseCode::NORMAL, "").unwrap(),
        |s| {
            s.receive(&hello_then_close()).unwrap();
        },
        |s| {
            let mut bytes = MASKED_HELLO.to_vec();
            bytes.extend_from_slice(&UNMASKED_HELLO);
            s.receive(&bytes).unwrap();
        },
    ];
    for setup in setups {
        let mut s = session(Role::Server, config.clone());
        s.handle_timeout(t0);
        setup(&mut s);
        follow_timers(&mut s);
        assert!(s.is_finished(), "{s:?}");
    }
}

#[test]
fn huge_durations_never_fire_and_never_panic() {
    let config = Config::default()
        .with_keepalive(Duration::MAX, Duration::MAX)
        .with_close_timeout(Some(Duration::MAX));
    let t0 = Instant::now();
    let mut s = session(Role::Server, config.clone());
    s.handle_timeout(t0);
    assert_eq!(s.poll_timeout(), None);
    s.receive(&hello_then_close()).unwrap();
    s.handle_timeout(t0);
    assert_eq!(s.poll_timeout(), None);
    let mut s = session(Role::Client, config);
    s.handle_timeout(t0);
    s.close(CloseCode::NORMAL, "").unwrap();
    s.handle_timeout(t0 + Duration::from_secs(1 << 40));
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.error(), None);
    // A keepalive ping whose pong deadline cannot be held: no deadline.
    let config = Config::default().with_keepalive(Duration::from_secs(1), Duration::MAX);
    let mut s = session(Role::Server, config);
    s.handle_timeout(t0);
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(output(&mut s)[0], 0x89);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
}

#[test]
fn a_keepalive_ping_goes_out_past_a_full_send_queue() {
    // The pong deadline always follows a ping that was sent: a full queue
    // takes the keepalive ping anyway, one small frame past its bound.
    let t0 = Instant::now();
    let interval = Duration::from_secs(10);
    let config = Config::default()
        .with_keepalive(interval, Duration::from_secs(5))
        .with_max_send_queue(64);
    let mut s = session(Role::Server, config);
    s.handle_timeout(t0);
    s.send(vec![7u8; 49]).unwrap();
    assert_eq!(
        s.ping(Bytes::new()).unwrap_err().kind,
        SendErrorKind::QueueFull
    );
    s.handle_timeout(t0 + interval);
    let out = output(&mut s);
    assert_eq!(
        out.get(51..53),
        Some(&[0x89, 8][..]),
        "the keepalive ping: {out:02x?}"
    );
    let ping = &out[51..];
    // Its pong (masked, as a client sends it) is matched: no timeout.
    s.receive(&masked(OpCode::Pong, &ping[2..])).unwrap();
    assert!(matches!(
        events(&mut s)[..],
        [Event::Pong { matched: true, .. }]
    ));
    s.handle_timeout(t0 + interval + Duration::from_secs(6));
    assert_eq!(s.error(), None);
}

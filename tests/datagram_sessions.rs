//! Datagram sessions: the session header's byte vectors (whole, with
//! trailing bytes, truncated at every length), close notices for kicked,
//! expired and refused peers, stale datagrams of closed sessions, new ids
//! from an open session's address, the keepalive deadline, and the wire
//! without sessions. Over a simulated network and random interleavings:
//! `datagram_session_net.rs`; forged datagrams: `hostile_datagram.rs`.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::datagram::{config, datagrams, endpoint, events, sessions, sessions_with};
use sansproto::datagram::*;
use sansproto::RandomSource;

const CLIENT: u8 = 1;
const SERVER: u8 = 2;

fn dropped(peer: u8, error: PeerError) -> Event<u8> {
    Event::DatagramDropped { peer, error }
}

fn closed(peer: u8, reason: CloseReason) -> Event<u8> {
    Event::PeerClosed { peer, reason }
}

fn data(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0x10];
    d.extend_from_slice(&id.to_be_bytes());
    d.extend_from_slice(payload);
    d
}

fn keepalive(id: u32) -> Vec<u8> {
    let mut d = vec![0x12];
    d.extend_from_slice(&id.to_be_bytes());
    d
}

fn notice(sender: u32, reason: u8, receiver: u32) -> Vec<u8> {
    let mut d = vec![0x11];
    d.extend_from_slice(&sender.to_be_bytes());
    d.push(reason);
    d.extend_from_slice(&receiver.to_be_bytes());
    d
}

fn id_of(datagram: &[u8]) -> u32 {
    u32::from_be_bytes(datagram[1..5].try_into().unwrap())
}

/// A client that opened a session with the server and sent it `hello`,
/// and the server that took it; returns their session ids.
fn pair(config: Config, now: Instant) -> (Endpoint<u8>, Endpoint<u8>, u32, u32) {
    let mut client = endpoint(config.clone(), 10);
    let mut server = endpoint(config, 20);
    client.open(SERVER, now).unwrap();
    client.send(SERVER, Bytes::from_static(b"hello")).unwrap();
    let [(to, hello)] = datagrams(&mut client).try_into().unwrap();
    assert_eq!((to, hello[0], &hello[5..]), (SERVER, 0x10, &b"hello"[..]));
    server
        .receive(CLIENT, Bytes::from(hello.clone()), now)
        .unwrap();
    server.send(CLIENT, Bytes::from_static(b"hi")).unwrap();
    let [(_, hi)] = datagrams(&mut server).try_into().unwrap();
    client
        .receive(SERVER, Bytes::from(hi.clone()), now)
        .unwrap();
    events(&mut client);
    events(&mut server);
    (client, server, id_of(&hello), id_of(&hi))
}

#[test]
fn header_vectors_whole_with_trailing_bytes_and_truncated() {
    let now = Instant::now();
    let mut ep = endpoint(config(sessions()), 1);
    let d = Bytes::from(data(7, b"abc"));
    ep.receive(CLIENT, d.clone(), now).unwrap();
    let evs = events(&mut ep);
    assert_eq!(evs[0], Event::PeerOpened { peer: CLIENT });
    match &evs[1] {
        Event::Message {
            peer: CLIENT,
            payload,
        } => {
            assert_eq!(&payload[..], b"abc");
            assert_eq!(payload.as_ptr(), d[5..].as_ptr(), "a slice, not a copy");
        }
        other => panic!("unexpected {other:?}"),
    }
    // A message's bytes after the header are all payload: trailing bytes
    // belong to it.
    ep.receive(CLIENT, Bytes::from(data(7, b"abc\0\0")), now)
        .unwrap();
    assert!(matches!(&events(&mut ep)[..], [Event::Message { payload, .. }] if payload.len() == 5));
    ep.receive(CLIENT, Bytes::from(data(7, b"")), now).unwrap();
    assert!(matches!(&events(&mut ep)[..], [Event::Message { payload, .. }] if payload.is_empty()));

    ep.receive(CLIENT, Bytes::from(keepalive(7)), now).unwrap();
    assert_eq!(events(&mut ep), []);
    assert_eq!(ep.stats().sessions.keepalives_received, 1);

    let mut long = keepalive(7);
    long.push(0);
    let mut long_notice = notice(1, 1, 2);
    long_notice.push(0);
    let vectors: Vec<(Vec<u8>, PeerError)> = vec![
        (
            long.clone(),
            PeerError::ControlLength {
                kind: 0x12,
                len: 6,
                expected: 5,
            },
        ),
        (
            long_notice,
            PeerError::ControlLength {
                kind: 0x11,
                len: 11,
                expected: 10,
            },
        ),
        (
            vec![0x01, 0, 0, 0, 7, 0, 0, 0, 1],
            PeerError::UnknownKind(0x01),
        ),
        (vec![0x13, 0, 0, 0, 7], PeerError::UnknownKind(0x13)),
        (vec![0xFF; 20], PeerError::UnknownKind(0xFF)),
        (data(0, b"x"), PeerError::ZeroSessionId),
        (keepalive(0), PeerError::ZeroSessionId),
        (notice(1, 0, 2), PeerError::UnknownCloseReason(0)),
        (notice(1, 4, 2), PeerError::UnknownCloseReason(4)),
        (notice(1, 0xFF, 2), PeerError::UnknownCloseReason(0xFF)),
    ];
    let stats = ep.stats();
    for (d, error) in &vectors {
        ep.receive(CLIENT, Bytes::from(d.clone()), now).unwrap();
        assert_eq!(
            events(&mut ep),
            [dropped(CLIENT, error.clone())],
            "{d:02x?}"
        );
    }
    // Every truncation of every kind, from a peer with and without a session.
    for whole in [data(7, b""), keepalive(7), notice(1, 1, 2)] {
        for len in 0..whole.len() {
            for from in [CLIENT, 9] {
                ep.receive(from, Bytes::copy_from_slice(&whole[..len]), now)
                    .unwrap();
                let error = if len < SESSION_HEADER_LEN {
                    PeerError::SessionTruncated { len }
                } else {
                    PeerError::ControlLength {
                        kind: whole[0],
                        len,
                        expected: whole.len(),
                    }
                };
                assert_eq!(
                    events(&mut ep),
                    [dropped(from, error)],
                    "{:02x?}",
                    &whole[..len]
                );
            }
        }
    }
    let after = ep.stats();
    assert_eq!(
        after.errors.bad_session_header - stats.errors.bad_session_header,
        vectors.len() as u64 + 2 * (5 + 5 + 10)
    );
    assert_eq!((ep.peer_count(), ep.contains_peer(&9)), (1, false));
    assert_eq!(ep.stats().sessions.notices_received, 0);
    assert_eq!(
        ep.queued_datagrams(),
        0,
        "malformed datagrams are not answered"
    );
}

#[test]
fn segment_header_follows_the_session_header() {
    let now = Instant::now();
    let mut config = Config::segmented();
    config.sessions = Some(sessions());
    let mut ep = endpoint(config, 1);
    let segment = Header {
        message_id: 3,
        index: 0,
        count: 1,
    }
    .encode();
    let mut whole = data(7, &segment);
    whole.extend_from_slice(b"xyz");
    ep.receive(CLIENT, Bytes::from(whole.clone()), now).unwrap();
    let evs = events(&mut ep);
    assert_eq!(evs.len(), 2);
    assert!(matches!(&evs[1], Event::Message { payload, .. } if &payload[..] == b"xyz"));
    // Cut inside the segment header: the segment header is short.
    for len in SESSION_HEADER_LEN..SESSION_HEADER_LEN + HEADER_LEN {
        ep.receive(9, Bytes::copy_from_slice(&whole[..len]), now)
            .unwrap();
        let error = PeerError::Truncated {
            len: len - SESSION_HEADER_LEN,
        };
        assert_eq!(events(&mut ep), [dropped(9, error)]);
    }
    assert!(!ep.contains_peer(&9), "a bad segment header opens nothing");
}

#[test]
fn a_kicked_peer_is_told_and_closes() {
    let now = Instant::now();
    let (mut client, mut server, client_id, server_id) = pair(config(sessions()), now);
    assert!(server.close(&CLIENT));
    assert_eq!(events(&mut server), [closed(CLIENT, CloseReason::Closed)]);
    let [(to, kick)] = datagrams(&mut server).try_into().unwrap();
    assert_eq!(to, CLIENT);
    assert_eq!(kick, notice(server_id, 1, client_id));
    assert_eq!(server.stats().sessions.notices_sent, 1);

    client
        .receive(SERVER, Bytes::from(kick.clone()), now)
        .unwrap();
    let kicked = CloseReason::ClosedByPeer(NoticeReason::Kicked);
    assert_eq!(events(&mut client), [closed(SERVER, kicked)]);
    assert!(!client.contains_peer(&SERVER));
    let err = client
        .send(SERVER, Bytes::from_static(b"late"))
        .unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::NoSession);
    assert_eq!(client.stats().errors.send_no_session, 1);
    // The same notice again is about a session already closed: ignored.
    client.receive(SERVER, Bytes::from(kick), now).unwrap();
    assert_eq!(events(&mut client), []);
    assert_eq!(client.queued_datagrams(), 0, "a notice is never answered");
}

#[test]
fn a_notice_naming_neither_side_is_dropped() {
    let now = Instant::now();
    let (mut client, _server, client_id, server_id) = pair(config(sessions()), now);
    for forged in [
        notice(server_id ^ 1, 1, client_id ^ 1),
        notice(0, 3, 0),
        notice(0, 3, client_id.wrapping_add(1)),
    ] {
        client
            .receive(SERVER, Bytes::from(forged.clone()), now)
            .unwrap();
        let error = PeerError::UnknownSession {
            session_id: id_of(&forged),
        };
        assert_eq!(events(&mut client), [dropped(SERVER, error)]);
    }
    assert!(client.contains_peer(&SERVER));
    // Either id is enough: the server's own (it may never have learned the
    // client's), or the client's.
    client
        .receive(SERVER, Bytes::from(notice(server_id, 2, 0)), now)
        .unwrap();
    let expired = CloseReason::ClosedByPeer(NoticeReason::Expired);
    assert_eq!(events(&mut client), [closed(SERVER, expired)]);
    let (mut client, _server, client_id, _) = pair(config(sessions()), now);
    client
        .receive(SERVER, Bytes::from(notice(0, 3, client_id)), now)
        .unwrap();
    let refused = CloseReason::ClosedByPeer(NoticeReason::Refused);
    assert_eq!(events(&mut client), [closed(SERVER, refused)]);
}

#[test]
fn an_expired_peer_is_told_and_its_stale_datagrams_are_answered() {
    let t0 = Instant::now();
    let idle = Config::default().idle_timeout;
    let (mut client, mut server, client_id, server_id) = pair(config(sessions()), t0);
    server.handle_timeout(t0 + idle - Duration::from_nanos(1));
    assert_eq!(
        (events(&mut server), server.queued_datagrams()),
        (vec![], 0)
    );
    server.handle_timeout(t0 + idle);
    assert_eq!(
        events(&mut server),
        [closed(CLIENT, CloseReason::IdleTimeout)]
    );
    let [(_, expiry)] = datagrams(&mut server).try_into().unwrap();
    assert_eq!(expiry, notice(server_id, 2, client_id));

    // The notice is lost; the client keeps sending in the old session. Its
    // datagrams are dropped, not taken as a new session, and answered.
    let later = t0 + idle + Duration::from_secs(1);
    for d in [data(client_id, b"again"), keepalive(client_id)] {
        server.receive(CLIENT, Bytes::from(d), later).unwrap();
        let error = PeerError::StaleSession {
            session_id: client_id,
        };
        assert_eq!(events(&mut server), [dropped(CLIENT, error)]);
        let [(_, answer)] = datagrams(&mut server).try_into().unwrap();
        assert_eq!(answer, notice(server_id, 2, client_id));
    }
    assert_eq!(server.peer_count(), 0);
    assert_eq!(server.stats().errors.stale_session, 2);
    client.receive(SERVER, Bytes::from(expiry), later).unwrap();
    let expired = CloseReason::ClosedByPeer(NoticeReason::Expired);
    assert_eq!(events(&mut client), [closed(SERVER, expired)]);
}

#[test]
fn a_full_table_refuses_with_a_bounded_number_of_notices() {
    let t0 = Instant::now();
    let mut config = config(sessions_with(|s| {
        s.notice_limit = 3;
        s.notice_window = Duration::from_secs(1);
    }));
    config.max_peers = 1;
    let mut server = endpoint(config.clone(), 1);
    server
        .receive(0, Bytes::from(data(1, b"first")), t0)
        .unwrap();
    events(&mut server);
    for round in 0..2u32 {
        let now = t0 + Duration::from_secs(u64::from(round));
        for from in 1..=200u8 {
            server
                .receive(from, Bytes::from(data(1000 + u32::from(from), b"x")), now)
                .unwrap();
            assert_eq!(events(&mut server), [Event::PeerRefused { peer: from }]);
        }
        let notices = datagrams(&mut server);
        assert_eq!(notices.len(), 3, "round {round}");
        for (to, n) in notices {
            assert_eq!(n, notice(0, 3, 1000 + u32::from(to)));
        }
    }
    let stats = server.stats();
    assert_eq!(stats.sessions.notices_sent, 6);
    assert_eq!(stats.sessions.notices_suppressed, 2 * 197);
    assert_eq!(stats.errors.peers_refused, 400);
    assert_eq!(server.peer_count(), 1);

    // The refused side closes on it.
    let mut client = endpoint(config, 2);
    client.open(SERVER, t0).unwrap();
    client
        .send(SERVER, Bytes::from_static(b"let me in"))
        .unwrap();
    let [(_, d)] = datagrams(&mut client).try_into().unwrap();
    server
        .receive(CLIENT, Bytes::from(d), t0 + Duration::from_secs(5))
        .unwrap();
    let [(_, refusal)] = datagrams(&mut server).try_into().unwrap();
    client.receive(SERVER, Bytes::from(refusal), t0).unwrap();
    let refused = CloseReason::ClosedByPeer(NoticeReason::Refused);
    assert_eq!(events(&mut client)[1..], [closed(SERVER, refused)]);
}

#[test]
fn notices_can_be_turned_off() {
    let t0 = Instant::now();
    let off = sessions_with(|s| {
        s.close_notices = false;
    });
    let (mut client, mut server, client_id, _) = pair(config(off), t0);
    server.close(&CLIENT);
    server
        .receive(CLIENT, Bytes::from(data(client_id, b"x")), t0)
        .unwrap();
    assert_eq!(server.queued_datagrams(), 0);
    assert_eq!(server.peer_count(), 0, "still not reopened");
    client.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(client.queued_datagrams(), 0);
}

#[test]
fn stale_ids_stay_closed_and_new_ids_reopen() {
    let t0 = Instant::now();
    let mut ep = endpoint(
        config(sessions_with(|s| {
            s.max_remembered = 2;
            s.remember_for = Duration::from_secs(10);
        })),
        1,
    );
    let message = |ep: &mut Endpoint<u8>, id: u32, at: Instant| {
        ep.receive(CLIENT, Bytes::from(data(id, b"m")), at).unwrap();
        events(ep)
    };
    assert_eq!(message(&mut ep, 100, t0).len(), 2);
    ep.close(&CLIENT);
    events(&mut ep);
    datagrams(&mut ep);
    let stale = dropped(CLIENT, PeerError::StaleSession { session_id: 100 });
    assert_eq!(message(&mut ep, 100, t0), [stale]);
    assert_eq!(ep.peer_count(), 0);
    assert_eq!(datagrams(&mut ep).len(), 1, "answered: the peer was kicked");

    // A new id is a new session. A third id from the same address is held
    // back the first time and replaces the session the second.
    let opened = Event::PeerOpened { peer: CLIENT };
    let unconfirmed = |id| dropped(CLIENT, PeerError::UnconfirmedSession { session_id: id });
    assert_eq!(message(&mut ep, 101, t0)[0], opened);
    assert_eq!(message(&mut ep, 102, t0), [unconfirmed(102)]);
    let evs = message(&mut ep, 102, t0);
    assert_eq!(
        evs[..2],
        [closed(CLIENT, CloseReason::Replaced), opened.clone()]
    );
    // The replaced session's id is not shut out: it is one more new id.
    assert_eq!(message(&mut ep, 101, t0), [unconfirmed(101)]);
    assert_eq!(datagrams(&mut ep).len(), 0, "nothing answers these");
    assert_eq!(ep.remembered_sessions(), 1);

    // At most two are remembered: when 102 and then 101 close, the oldest
    // (100) goes.
    ep.close(&CLIENT);
    events(&mut ep);
    assert_eq!(message(&mut ep, 101, t0)[0], opened);
    ep.close(&CLIENT);
    events(&mut ep);
    assert_eq!(ep.remembered_sessions(), 2);
    assert_eq!(
        message(&mut ep, 100, t0)[0],
        opened,
        "forgotten: a new session"
    );
    // And none for longer than `remember_for`.
    ep.close(&CLIENT);
    events(&mut ep);
    let late = t0 + Duration::from_secs(10);
    assert_eq!(message(&mut ep, 102, late)[0], opened);
    ep.handle_timeout(late);
    assert_eq!(ep.remembered_sessions(), 0);
    let errors = ep.stats().errors;
    assert_eq!((errors.stale_session, errors.unconfirmed_session), (1, 2));
}

#[test]
fn keepalive_fires_at_its_deadline_and_moves_with_sends() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut ep = endpoint(
        config(sessions_with(|x| x.keepalive_interval = Some(10 * s))),
        1,
    );
    ep.open(SERVER, t0).unwrap();
    assert_eq!(ep.poll_timeout(), Some(t0 + 10 * s));
    ep.handle_timeout(t0 + 10 * s - Duration::from_nanos(1));
    assert_eq!(ep.queued_datagrams(), 0);
    ep.handle_timeout(t0 + 10 * s);
    let [(to, ka)] = datagrams(&mut ep).try_into().unwrap();
    assert_eq!((to, ka.len(), ka[0]), (SERVER, 5, 0x12));
    assert_eq!(ep.stats().sessions.keepalives_sent, 1);
    assert_eq!(ep.poll_timeout(), Some(t0 + 20 * s));

    // A message sent at 15 s puts the next keepalive at 25 s.
    ep.handle_timeout(t0 + 15 * s);
    ep.send(SERVER, Bytes::from_static(b"m")).unwrap();
    let [(_, m)] = datagrams(&mut ep).try_into().unwrap();
    assert_eq!(id_of(&m), id_of(&ka), "one session id in every datagram");
    ep.handle_timeout(t0 + 20 * s);
    assert_eq!(ep.queued_datagrams(), 0);
    assert_eq!(ep.poll_timeout(), Some(t0 + 25 * s));
    ep.handle_timeout(t0 + 25 * s);
    assert_eq!(datagrams(&mut ep), [(SERVER, ka)]);
    // Nothing came back: at 30 s the peer expires, with no keepalive after.
    ep.handle_timeout(t0 + 30 * s);
    assert_eq!(
        events(&mut ep)[1..],
        [closed(SERVER, CloseReason::IdleTimeout)]
    );
    assert_eq!(datagrams(&mut ep).len(), 1, "the expiry notice");
    assert_eq!(ep.poll_timeout(), None);
}
#[test]
fn unsegmented_sessions_count_the_header_against_the_mtu() {
    let now = Instant::now();
    let mut ep = endpoint(config(sessions()), 1);
    ep.open(SERVER, now).unwrap();
    let max = MTU_ETHERNET_IPV4 - SESSION_HEADER_LEN;
    assert_eq!(ep.config().max_message_size(), max);
    let err = ep.send(SERVER, Bytes::from(vec![0; max + 1])).unwrap_err();
    assert_eq!(err.kind(), &SendErrorKind::TooLarge { max });
    ep.send(SERVER, Bytes::from(vec![0; max])).unwrap();
    assert_eq!(datagrams(&mut ep)[0].1.len(), MTU_ETHERNET_IPV4);
    let over = Bytes::from(vec![0x10; MTU_ETHERNET_IPV4 + 1]);
    ep.receive(CLIENT, over, now).unwrap();
    let error = PeerError::DatagramTooLarge {
        len: MTU_ETHERNET_IPV4 + 1,
        max: MTU_ETHERNET_IPV4,
    };
    assert_eq!(events(&mut ep)[1..], [dropped(CLIENT, error)]);
}

#[test]
fn sessions_off_the_wire_is_unchanged() {
    let message_id = sansproto::seeded_random(1).next_u32();
    let mut plain = endpoint(Config::default(), 1);
    plain.send(SERVER, Bytes::from_static(b"abc")).unwrap();
    assert_eq!(datagrams(&mut plain), [(SERVER, b"abc".to_vec())]);

    let mut config = Config::segmented();
    config.mtu = HEADER_LEN + 2;
    config.segmentation.as_mut().unwrap().max_message_size = 10;
    config.segmentation.as_mut().unwrap().max_buffered_per_peer = 10;
    let mut seg = endpoint(config, 1);
    seg.send(SERVER, Bytes::from_static(b"abc")).unwrap();
    let [m0, m1, m2, m3] = message_id.to_be_bytes();
    let want = [
        vec![1, m0, m1, m2, m3, 0, 0, 0, 2, b'a', b'b'],
        vec![1, m0, m1, m2, m3, 0, 1, 0, 2, b'c'],
    ];
    let got: Vec<_> = datagrams(&mut seg).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, want);
    // A session datagram sent to an endpoint without sessions is a message
    // (unsegmented) or a bad segment header (segmented), as before.
    let mut off = endpoint(Config::segmented(), 1);
    off.receive(CLIENT, Bytes::from(keepalive(7)), Instant::now())
        .unwrap();
    assert_eq!(
        events(&mut off),
        [dropped(CLIENT, PeerError::Truncated { len: 5 })]
    );
}

fn unconfirmed(session_id: u32) -> Event<u8> {
    dropped(CLIENT, PeerError::UnconfirmedSession { session_id })
}

#[test]
fn a_restarted_peer_gets_a_new_session_on_its_second_datagram() {
    let t0 = Instant::now();
    let (_client, mut server, client_id, _) = pair(config(sessions()), t0);
    // The client restarts: a new endpoint, a new session id, and it keeps
    // sending.
    let mut restarted = endpoint(config(sessions()), 11);
    let later = t0 + Duration::from_secs(5);
    restarted.open(SERVER, later).unwrap();
    for m in [&b"again 1"[..], b"again 2", b"again 3"] {
        restarted.send(SERVER, Bytes::copy_from_slice(m)).unwrap();
    }
    let sent = datagrams(&mut restarted);
    let new_id = id_of(&sent[0].1);
    assert_ne!(new_id, client_id);
    let mut got = Vec::new();
    for (_, d) in sent {
        server.receive(CLIENT, Bytes::from(d), later).unwrap();
        got.push(events(&mut server));
    }
    // The first is held back: it alone could be forged.
    assert_eq!(got[0], [unconfirmed(new_id)]);
    // The second opens the new session and is delivered; so is the rest.
    assert_eq!(
        got[1][..2],
        [
            closed(CLIENT, CloseReason::Replaced),
            Event::PeerOpened { peer: CLIENT }
        ]
    );
    assert!(matches!(&got[1][2], Event::Message { payload, .. } if &payload[..] == b"again 2"));
    assert!(matches!(&got[2][..], [Event::Message { payload, .. }] if &payload[..] == b"again 3"));
    assert_eq!(server.session_ids(&CLIENT).unwrap().remote, Some(new_id));
    // And the server's answer reaches the restarted side's session.
    let back = Bytes::from_static(b"welcome back");
    server.send(CLIENT, back.clone()).unwrap();
    let [(_, answer)] = datagrams(&mut server).try_into().unwrap();
    restarted.receive(SERVER, answer.into(), later).unwrap();
    let message = Event::Message {
        peer: SERVER,
        payload: back,
    };
    assert_eq!(events(&mut restarted)[1..], [message], "after its own open");
}

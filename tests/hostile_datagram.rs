//! Hostile peers against the datagram endpoint, measured with a counting
//! allocator: 100k spoofed sources at an application that does not poll,
//! and reassembly-slot floods from one peer and from many. After each, an
//! honest peer's segmented message still completes. With sessions on:
//! spoofed messages, notices and keepalives, kicked sessions and their
//! stale datagrams; and datagrams forged with a live peer's address, which
//! neither take its session over nor draw more than two datagrams each.

mod common;

use bytes::Bytes;
use common::alloc::{measure, serial, Counting};
use common::datagram::{config, datagrams, endpoint, events, sessions_with};
use sansproto::datagram::{
    CloseReason, Config, Endpoint, Event, Header, PeerError, Sessions, HEADER_LEN, KIND_CLOSE,
    KIND_KEEPALIVE,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: Counting = Counting;

fn spoofed(i: u32) -> SocketAddr {
    let [a, b, c, d] = i.to_be_bytes();
    SocketAddr::from(([10 | a, b, c, d], 40_000))
}

/// Fragment `index` of a `count`-fragment message, `len` payload bytes.
fn fragment(message_id: u32, index: u16, count: u16, len: usize) -> Bytes {
    let mut d = Header {
        message_id,
        index,
        count,
    }
    .encode()
    .to_vec();
    d.resize(HEADER_LEN + len, index as u8);
    Bytes::from(d)
}

fn drain(ep: &mut Endpoint<SocketAddr>) -> Vec<Event<SocketAddr>> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// An honest peer's two-fragment message completes.
fn honest_message_completes(ep: &mut Endpoint<SocketAddr>, now: Instant) {
    drain(ep);
    let honest = SocketAddr::from(([192, 0, 2, 7], 9000));
    ep.receive(honest, fragment(42, 0, 2, 100), now).unwrap();
    ep.receive(honest, fragment(42, 1, 2, 100), now).unwrap();
    let completed = drain(ep).into_iter().any(
        |e| matches!(e, Event::Message { peer, payload } if peer == honest && payload.len() == 200),
    );
    assert!(completed, "the honest peer's message did not complete");
}

#[test]
fn spoofed_sources_unpolled_stop_at_the_event_bound() {
    let _serial = serial();
    let config = Config::segmented();
    let max_events = config.max_pending_events;
    let mut ep = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let one = fragment(1, 0, 1, 16);
    let (refused, growth) = measure("spoofed_sources_unpolled", || {
        let mut refused = 0;
        for i in 0..100_000 {
            // Handed back: the application would leave it to the kernel.
            if ep.receive(spoofed(i), one.clone(), now).is_err() {
                refused += 1;
            }
        }
        refused
    });
    assert!(refused > 90_000, "only {refused} refused");
    assert!(
        growth < 1 << 20,
        "{growth} bytes for {max_events} events and 1024 peers"
    );
    honest_message_completes(&mut ep, now);
}

#[test]
fn one_peer_flooding_partial_messages_holds_its_own_share() {
    let _serial = serial();
    let config = Config::segmented();
    let seg = config.segmentation.clone().unwrap();
    let mut ep = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let attacker = spoofed(1);
    let (_, growth) = measure("one_peer_partial_flood", || {
        for id in 0..100_000u32 {
            ep.receive(attacker, fragment(id, 0, 64, 1000), now)
                .unwrap();
            if id % 256 == 0 {
                drain(&mut ep);
            }
        }
        assert!(ep.partial_count() <= seg.max_partials_per_peer);
        assert!(ep.buffered_bytes() <= seg.max_buffered_per_peer);
    });
    assert!(
        growth < seg.max_buffered_per_peer + (1 << 20),
        "{growth} bytes for a {}-byte per-peer buffer",
        seg.max_buffered_per_peer
    );
    honest_message_completes(&mut ep, now);
}

#[test]
fn many_peers_flooding_partial_messages_leave_slots_for_others() {
    let _serial = serial();
    let mut config = Config::segmented();
    config.max_peers = 100_000;
    let seg = config.segmentation.clone().unwrap();
    let mut ep = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let (_, growth) = measure("many_peers_partial_flood", || {
        for round in 0..4u32 {
            for s in 0..20_000u32 {
                ep.receive(spoofed(s), fragment(round, 0, 64, 1000), now)
                    .unwrap();
                if s % 256 == 0 {
                    drain(&mut ep);
                }
            }
        }
        assert!(ep.partial_count() <= seg.max_partials);
        assert!(ep.buffered_bytes() <= seg.max_buffered);
    });
    // The peer table itself holds 20,000 peers here; reassembly stays
    // within its caps.
    assert!(
        growth < seg.max_buffered + (16 << 20),
        "{growth} bytes for a {}-byte reassembly cap",
        seg.max_buffered
    );
    honest_message_completes(&mut ep, now);
}

/// A session datagram of `kind` (message, close notice or keepalive)
/// carrying `id`.
fn session_datagram(kind: u8, id: u32) -> Bytes {
    let mut d = vec![kind];
    d.extend_from_slice(&id.to_be_bytes());
    match kind {
        0x10 => d.extend_from_slice(b"payload"),
        0x11 => {
            d.push(1);
            d.extend_from_slice(&id.to_be_bytes());
        }
        _ => {}
    }
    Bytes::from(d)
}

#[test]
fn spoofed_session_traffic_and_kicks_stay_bounded() {
    let _serial = serial();
    let mut config = Config::default();
    config.sessions = Some(Sessions::default());
    let sessions = config.sessions.clone().unwrap();
    let mut ep = Endpoint::new(config.clone()).unwrap();
    // The table of `ep` fills up below; one address's new ids go to an
    // endpoint of their own.
    let mut one = Endpoint::new(config).unwrap();
    let now = Instant::now();
    let mut out = Vec::new();
    let id = |i: u32| i.wrapping_mul(2_654_435_761) | 1;
    let (_, growth) = measure("spoofed_sessions", || {
        for i in 0..100_000u32 {
            let kind = [0x10, 0x11, 0x12][i as usize % 3];
            ep.receive(spoofed(i), session_datagram(kind, id(i)), now)
                .unwrap();
            if i % 64 == 0 {
                // The application kicks every peer it is given.
                for event in drain(&mut ep) {
                    if let Event::PeerOpened { peer } = event {
                        ep.close(&peer);
                    }
                }
                drain(&mut ep);
                while ep.poll_transmit(&mut out).is_some() {
                    out.clear();
                }
            }
        }
        assert!(ep.remembered_sessions() <= sessions.max_remembered);
        // Each kicked peer was heard from once: the kicks' notices went out
        // within the notice limit.
        let sent = ep.stats().sessions.notices_sent;
        assert_eq!(sent, sessions.notice_limit as u64);
        // The kicked peers keep sending in their closed sessions, a window
        // later: dropped, and answered no more than the notice limit allows.
        let next = now + sessions.notice_window;
        for i in (0..100_000u32).step_by(3) {
            ep.receive(spoofed(i), session_datagram(0x10, id(i)), next)
                .unwrap();
            if i % 256 == 0 {
                drain(&mut ep);
            }
        }
        drain(&mut ep);
        let answered = ep.stats().sessions.notices_sent - sent;
        assert_eq!(answered, sessions.notice_limit as u64);
        assert_eq!(ep.queued_datagrams(), sessions.notice_limit);
        assert!(ep.remembered_sessions() <= sessions.max_remembered);
        // One address sending a new session id in every datagram opens one
        // session: each later id is held back once and then forgotten for
        // the next, and nothing is remembered of them.
        let replacer = SocketAddr::from(([198, 51, 100, 1], 5000));
        let mut opened = 0;
        for i in 0..100_000u32 {
            one.receive(replacer, session_datagram(0x10, 0x8000_0000 | i), now)
                .unwrap();
            if i % 256 == 0 {
                opened += drain(&mut one)
                    .iter()
                    .filter(|e| matches!(e, Event::PeerOpened { .. }))
                    .count();
            }
        }
        drain(&mut one);
        assert_eq!(opened, 1);
        assert_eq!(one.stats().errors.unconfirmed_session, 99_999);
        assert_eq!((one.peer_count(), one.remembered_sessions()), (1, 0));
        assert_eq!(one.queued_datagrams(), 0);
    });
    assert!(growth < 2 << 20, "{growth} bytes");
    // The spoofed sources that reopened sessions (a window after `now`)
    // fill the table until they expire; then an honest peer opens one.
    let later = now + sessions.notice_window + Duration::from_secs(30);
    ep.handle_timeout(later);
    drain(&mut ep);
    assert_eq!(ep.peer_count(), 0);
    let honest = SocketAddr::from(([192, 0, 2, 7], 9000));
    ep.receive(honest, session_datagram(0x10, 77), later)
        .unwrap();
    assert!(drain(&mut ep)
        .iter()
        .any(|e| matches!(e, Event::Message { peer, .. } if *peer == honest)));
}

/// The address the forged datagrams below carry, and the session id its
/// real peer sends.
const VICTIM: u8 = 1;
const VICTIM_ID: u32 = 0x0c11_e417;

/// A server (`u8` addresses, `sessions`) with an open session from
/// `VICTIM`, heard from once and answered.
fn server_with_victim(sessions: Sessions, now: Instant) -> Endpoint<u8> {
    let mut server = endpoint(config(sessions), 20);
    server
        .receive(VICTIM, session_datagram(0x10, VICTIM_ID), now)
        .unwrap();
    server.send(VICTIM, Bytes::from_static(b"hi")).unwrap();
    datagrams(&mut server);
    events(&mut server);
    server
}

fn unconfirmed(session_id: u32) -> Event<u8> {
    Event::DatagramDropped {
        peer: VICTIM,
        error: PeerError::UnconfirmedSession { session_id },
    }
}

/// Runs `ep`'s timers every 100 ms from `from` to `until`, dropping its
/// events; returns the datagrams it queued meanwhile for `to`.
fn sent_until(ep: &mut Endpoint<u8>, to: u8, from: Instant, until: Instant) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let mut now = from;
    while now <= until {
        ep.handle_timeout(now);
        events(ep);
        sent.extend(
            datagrams(ep)
                .into_iter()
                .filter(|(t, _)| *t == to)
                .map(|(_, d)| d),
        );
        now += Duration::from_millis(100);
    }
    sent
}

#[test]
fn one_spoofed_datagram_does_not_take_over_a_live_session() {
    let t0 = Instant::now();
    let mut server = server_with_victim(Sessions::default(), t0);
    // An off-path sender forges the victim's address with ids of its own:
    // one datagram each, a new id every time.
    for n in 0..100u32 {
        let forged = 0x5000_0000 | n;
        server
            .receive(VICTIM, session_datagram(0x10, forged), t0)
            .unwrap();
        assert_eq!(events(&mut server), [unconfirmed(forged)]);
    }
    // The victim's own datagrams are still the session's, for as long as
    // closed sessions are remembered and beyond.
    let s = Duration::from_secs(1);
    for second in [1, 30, 61, 90] {
        let at = t0 + second * s;
        server
            .receive(VICTIM, session_datagram(0x10, VICTIM_ID), at)
            .unwrap();
        let evs = events(&mut server);
        assert!(
            matches!(&evs[..], [Event::Message { peer: VICTIM, .. }]),
            "at {second} s: {evs:?}"
        );
    }
    let ids = server.session_ids(&VICTIM).unwrap();
    assert_eq!(ids.remote, Some(VICTIM_ID));
    assert_eq!(server.stats().peers_opened, 1);
    assert_eq!(server.stats().errors.unconfirmed_session, 100);
    assert_eq!(
        server.queued_datagrams(),
        0,
        "nothing answers the forgeries"
    );
}

#[test]
fn a_new_id_seen_once_is_forgotten_after_the_idle_timeout() {
    let t0 = Instant::now();
    let idle = Config::default().idle_timeout;
    let mut server = server_with_victim(Sessions::default(), t0);
    let forged = 0x5eed_0002;
    let receive = |server: &mut Endpoint<u8>, id: u32, at: Instant| {
        server
            .receive(VICTIM, session_datagram(0x10, id), at)
            .unwrap();
        events(server)
    };
    assert_eq!(receive(&mut server, forged, t0), [unconfirmed(forged)]);
    // The victim keeps its session open meanwhile.
    let half = t0 + idle / 2;
    assert_eq!(receive(&mut server, VICTIM_ID, half).len(), 1);
    let late = t0 + idle;
    assert_eq!(receive(&mut server, forged, late), [unconfirmed(forged)]);
    // Seen again within the idle timeout: a new session.
    let evs = receive(&mut server, forged, late);
    let replaced = Event::PeerClosed {
        peer: VICTIM,
        reason: CloseReason::Replaced,
    };
    assert_eq!(evs[0], replaced);
}

#[test]
fn a_persistent_forger_holds_the_address_only_while_it_sends() {
    let t0 = Instant::now();
    let mut server = server_with_victim(Sessions::default(), t0);
    let replaced = Event::PeerClosed {
        peer: VICTIM,
        reason: CloseReason::Replaced,
    };
    let opened = Event::PeerOpened { peer: VICTIM };
    // Two datagrams with the same new id are taken as a restart.
    let forged = 0x5eed_0001;
    for _ in 0..2 {
        server
            .receive(VICTIM, session_datagram(0x10, forged), t0)
            .unwrap();
    }
    let evs = events(&mut server);
    assert_eq!(
        evs[..3],
        [unconfirmed(forged), replaced.clone(), opened.clone()]
    );
    // The victim's own id is not shut out as a closed session's: its
    // second datagram takes the address back.
    let later = t0 + Duration::from_millis(10);
    server
        .receive(VICTIM, session_datagram(0x10, VICTIM_ID), later)
        .unwrap();
    assert_eq!(events(&mut server), [unconfirmed(VICTIM_ID)]);
    server
        .receive(VICTIM, session_datagram(0x10, VICTIM_ID), later)
        .unwrap();
    let evs = events(&mut server);
    assert_eq!(evs[..2], [replaced, opened]);
    assert!(matches!(&evs[2], Event::Message { peer: VICTIM, .. }));
    assert_eq!(server.session_ids(&VICTIM).unwrap().remote, Some(VICTIM_ID));
    assert_eq!(
        server.remembered_sessions(),
        0,
        "replaced sessions are not shut out"
    );
}

#[test]
fn one_spoofed_datagram_draws_at_most_two_datagrams() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut config = config(sessions_with(|x| x.keepalive_interval = Some(s)));
    config.idle_timeout = 30 * s;
    let mut server = endpoint(config.clone(), 1);
    server.receive(9, session_datagram(0x10, 77), t0).unwrap();
    let sent = sent_until(&mut server, 9, t0, t0 + 120 * s);
    // One keepalive, then the expiry notice: 2 where 30 went before.
    let kinds: Vec<u8> = sent.iter().map(|d| d[0]).collect();
    assert_eq!(kinds, [KIND_KEEPALIVE, KIND_CLOSE]);
    assert_eq!(server.peer_count(), 0);

    // Many forged sources: together they draw no more than the notice
    // limit allows per window (a keepalive window and an expiry window).
    let limit = Sessions::default().notice_limit;
    let mut server = endpoint(config, 2);
    for from in 10..=200u8 {
        server
            .receive(from, session_datagram(0x10, u32::from(from)), t0)
            .unwrap();
    }
    let mut sent = 0;
    let mut now = t0;
    while now <= t0 + 120 * s {
        server.handle_timeout(now);
        events(&mut server);
        sent += datagrams(&mut server).len();
        now += Duration::from_millis(100);
    }
    assert_eq!(sent, 2 * limit, "to 191 forged sources");
    let stats = server.stats().sessions;
    assert_eq!(
        stats.keepalives_skipped + stats.notices_suppressed,
        2 * (191 - limit as u64)
    );
}

#[test]
fn keepalives_resume_once_the_peer_is_heard_again() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut config = config(sessions_with(|x| x.keepalive_interval = Some(s)));
    config.idle_timeout = 30 * s;
    let mut server = endpoint(config, 1);
    server.receive(9, session_datagram(0x10, 77), t0).unwrap();
    assert_eq!(sent_until(&mut server, 9, t0, t0 + 10 * s).len(), 1);
    // A second datagram of the session: the address counts as validated.
    let heard = t0 + 10 * s + Duration::from_millis(50);
    server
        .receive(9, session_datagram(0x12, 77), heard)
        .unwrap();
    let sent = sent_until(&mut server, 9, heard, heard + 10 * s);
    assert_eq!(sent.len(), 10, "one a second");
    assert_eq!(server.stats().sessions.keepalives_sent, 11);
}

/// The limit of the wire format (see `Sessions`, forged source
/// addresses): a session opened with `open` learns the peer's id from the
/// first message from its address, so a message forged before the peer's
/// first reply holds the session until the peer's second datagram
/// replaces it, and a close notice forged to match then closes it. Neither
/// shuts the real peer out.
#[test]
fn a_message_forged_before_the_first_reply_to_open_holds_the_session_until_the_peer_sends_twice() {
    let t0 = Instant::now();
    const CLIENT: u8 = 2; // the client's address as the server sees it
    let forged = 0x5eed_0003;
    let setup = || {
        let mut client = endpoint(config(Sessions::default()), 1);
        let mut server = endpoint(config(Sessions::default()), 2);
        client.open(VICTIM, t0).unwrap();
        client.send(VICTIM, Bytes::from_static(b"hello")).unwrap();
        for (_, d) in datagrams(&mut client) {
            server.receive(CLIENT, Bytes::from(d), t0).unwrap();
        }
        events(&mut client);
        events(&mut server);
        // Before the server answers, a forged message "from" it arrives.
        client
            .receive(VICTIM, session_datagram(0x10, forged), t0)
            .unwrap();
        let taken = Event::Message {
            peer: VICTIM,
            payload: Bytes::from_static(b"payload"),
        };
        assert_eq!(events(&mut client), [taken]);
        assert_eq!(client.session_ids(&VICTIM).unwrap().remote, Some(forged));
        (client, server)
    };
    let reply = |server: &mut Endpoint<u8>, text: &'static [u8]| {
        server.send(CLIENT, Bytes::from_static(text)).unwrap();
        Bytes::from(datagrams(server).remove(0).1)
    };
    let message = |peer, text: &'static [u8]| Event::Message {
        peer,
        payload: Bytes::from_static(text),
    };

    // The server's first reply is dropped; its second replaces the session.
    let (mut client, mut server) = setup();
    let first = reply(&mut server, b"one");
    let server_id = u32::from_be_bytes(first[1..5].try_into().unwrap());
    client.receive(VICTIM, first, t0).unwrap();
    assert_eq!(events(&mut client), [unconfirmed(server_id)]);
    client
        .receive(VICTIM, reply(&mut server, b"two"), t0)
        .unwrap();
    let replaced = Event::PeerClosed {
        peer: VICTIM,
        reason: CloseReason::Replaced,
    };
    let opened = Event::PeerOpened { peer: VICTIM };
    assert_eq!(
        events(&mut client),
        [replaced, opened.clone(), message(VICTIM, b"two")]
    );
    assert_eq!(client.session_ids(&VICTIM).unwrap().remote, Some(server_id));
    // The client's new session has a new id: the server takes it on the
    // client's second datagram, as a restart.
    for text in [&b"three"[..], b"four"] {
        client.send(VICTIM, Bytes::from_static(text)).unwrap();
    }
    for (_, d) in datagrams(&mut client) {
        server.receive(CLIENT, Bytes::from(d), t0).unwrap();
    }
    let evs = events(&mut server);
    assert!(
        matches!(&evs[..], [Event::DatagramDropped { error: PeerError::UnconfirmedSession { .. }, .. }, Event::PeerClosed { reason: CloseReason::Replaced, .. }, Event::PeerOpened { .. }, m] if *m == message(CLIENT, b"four")),
        "{evs:?}"
    );

    // A close notice naming the forged id closes the session; the
    // server's next datagram opens a new one.
    let (mut client, mut server) = setup();
    client
        .receive(VICTIM, session_datagram(0x11, forged), t0)
        .unwrap();
    let kicked = Event::PeerClosed {
        peer: VICTIM,
        reason: CloseReason::ClosedByPeer(sansproto::datagram::NoticeReason::Kicked),
    };
    assert_eq!(events(&mut client), [kicked]);
    client
        .receive(VICTIM, reply(&mut server, b"one"), t0)
        .unwrap();
    assert_eq!(events(&mut client), [opened, message(VICTIM, b"one")]);
}

//! Every machine's timers fire at their deadline and not before: a
//! nanosecond early, `handle_timeout` does nothing and `poll_timeout`
//! still names the same deadline; at it, the timer's effect happens.
//! Driven with explicit instants, through each machine's own methods
//! (no `Driver` import).

use sansproto::prefix;
use sansproto::ws::proxy::{
    ProxiedClient, ProxiedError, ProxiedEvent, Proxy, ProxyConfig, ProxyError, ProxyRequest,
};
use sansproto::ws::{ClientRequest, CloseCode, Config, Connection, Error, Role, TimeoutKind};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);
const NANO: Duration = Duration::from_nanos(1);

fn output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    out
}

fn open(role: Role, config: Config) -> Connection {
    Connection::after_handshake(role, config, None, None, sansproto::seeded_random(7))
}

/// A nanosecond before `deadline` nothing happens to `c`: no error, no
/// bytes, and the same deadline.
fn quiet_just_before(c: &mut Connection, deadline: Instant) {
    c.handle_timeout(deadline - NANO);
    assert_eq!(c.error(), None);
    assert!(output(c).is_empty(), "nothing sent before the deadline");
    assert_eq!(c.poll_timeout(), Some(deadline));
}

#[test]
fn ws_keepalive_ping_goes_out_at_its_deadline() {
    let t0 = Instant::now();
    let config = Config::default().with_keepalive(SECOND, 2 * SECOND);
    let mut c = open(Role::Server, config);
    assert_eq!(c.poll_timeout(), None, "timers start at the first call");
    c.handle_timeout(t0);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + SECOND);
    quiet_just_before(&mut c, deadline);
    c.handle_timeout(deadline);
    let ping = output(&mut c);
    assert_eq!(ping[..2], [0x89, 8], "a keepalive ping with its counter");
    assert_eq!(c.poll_timeout(), Some(t0 + 2 * SECOND), "the next one");
}

/// An instant earlier than one passed before (read before a batch of work,
/// say) counts as that one: the peer's traffic never moves the keepalive
/// deadline back, and neither does a close begun in between.
#[test]
fn ws_an_older_now_never_moves_a_deadline_back() {
    let t0 = Instant::now();
    let at = |secs: u32| t0 + secs * SECOND;
    let config = Config::default()
        .with_keepalive(10 * SECOND, 3 * SECOND)
        .with_close_timeout(Some(4 * SECOND));
    let mut c = open(Role::Server, config);
    c.handle_timeout(at(100));
    assert_eq!(c.poll_timeout(), Some(at(110)));
    // A masked empty binary frame from the peer, then an older instant.
    c.receive(&[0x82, 0x80, 1, 2, 3, 4]).unwrap();
    c.handle_timeout(at(95));
    assert_eq!(c.poll_timeout(), Some(at(110)), "idle since 100, not 95");
    quiet_just_before(&mut c, at(110));
    c.handle_timeout(at(110));
    assert_eq!(output(&mut c)[0], 0x89, "the keepalive ping at 110");
    c.close(CloseCode::NORMAL, "").unwrap();
    c.handle_timeout(at(105));
    assert_eq!(
        c.poll_timeout(),
        Some(at(114)),
        "the close deadline from 110"
    );
    assert_eq!(output(&mut c)[0], 0x88);
    quiet_just_before(&mut c, at(114));
    c.handle_timeout(at(114));
    assert_eq!(c.error(), Some(&Error::Timeout(TimeoutKind::Close)));
}

#[test]
fn ws_pong_deadline_fails_the_connection_at_its_deadline() {
    let t0 = Instant::now();
    // The keepalive interval is longer than the pong timeout, so the
    // pong deadline is the next one after the first ping.
    let config = Config::default().with_keepalive(10 * SECOND, 3 * SECOND);
    let mut c = open(Role::Server, config);
    c.handle_timeout(t0);
    c.handle_timeout(t0 + 10 * SECOND);
    assert_eq!(output(&mut c)[0], 0x89);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 13 * SECOND);
    quiet_just_before(&mut c, deadline);
    assert!(c.is_open());
    c.handle_timeout(deadline);
    assert_eq!(c.error(), Some(&Error::Timeout(TimeoutKind::Pong)));
    assert!(!c.is_open());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn ws_close_deadline_fails_the_connection_at_its_deadline() {
    let t0 = Instant::now();
    let config = Config::default().with_close_timeout(Some(4 * SECOND));
    let mut c = open(Role::Client, config);
    c.handle_timeout(t0);
    assert_eq!(c.poll_timeout(), None, "no timer while open");
    c.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(output(&mut c)[0], 0x88, "the Close frame");
    c.handle_timeout(t0 + SECOND);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 4 * SECOND, "from the latest now seen");
    quiet_just_before(&mut c, deadline);
    assert!(!c.is_finished());
    c.handle_timeout(deadline);
    assert_eq!(c.error(), Some(&Error::Timeout(TimeoutKind::Close)));
    assert!(c.is_finished());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn ws_server_handshake_fails_at_its_deadline() {
    let t0 = Instant::now();
    let config = Config::default().with_handshake_timeout(Some(5 * SECOND));
    let mut c = Connection::server(config);
    c.handle_timeout(t0);
    // Half a request does not move the deadline.
    c.receive(b"GET / HTTP/1.1\r\nHost: example.com\r\n")
        .unwrap();
    c.handle_timeout(t0 + SECOND);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 5 * SECOND);
    quiet_just_before(&mut c, deadline);
    assert!(!c.is_finished());
    c.handle_timeout(deadline);
    assert_eq!(c.error(), Some(&Error::Timeout(TimeoutKind::Handshake)));
    assert!(c.is_finished());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn ws_server_handshake_deadline_bounds_a_plain_request_left_unanswered() {
    let t0 = Instant::now();
    let config = Config::default().with_handshake_timeout(Some(5 * SECOND));
    let mut c = Connection::server(config);
    c.handle_timeout(t0);
    c.receive(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .unwrap();
    c.handle_timeout(t0 + SECOND);
    assert!(matches!(
        c.poll_event(),
        Some(sansproto::ws::Event::HttpRequest(_))
    ));
    // The request does not stop the clock: a client that sends one and
    // stays silent is let go at the same deadline as one that sends half.
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 5 * SECOND);
    quiet_just_before(&mut c, deadline);
    assert!(!c.is_finished());
    c.handle_timeout(deadline);
    assert_eq!(c.error(), Some(&Error::Timeout(TimeoutKind::Handshake)));
    assert!(c.is_finished());
    assert!(output(&mut c).is_empty(), "no answer to the request");
    assert_eq!(c.poll_timeout(), None);

    // Answered in time, the deadline goes with the exchange.
    let mut c = Connection::server(Config::default().with_handshake_timeout(Some(5 * SECOND)));
    c.handle_timeout(t0);
    c.receive(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .unwrap();
    c.send_http_response(200, "OK", &[], b"").unwrap();
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(t0 + 9 * SECOND);
    assert_eq!(c.error(), None);
}

#[test]
fn ws_client_handshake_fails_at_its_deadline() {
    let t0 = Instant::now();
    let config = Config::default().with_handshake_timeout(Some(5 * SECOND));
    let mut c = Connection::client(config, ClientRequest::new("example.com", "/")).unwrap();
    assert!(output(&mut c).starts_with(b"GET / HTTP/1.1\r\n"));
    c.handle_timeout(t0);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 5 * SECOND);
    quiet_just_before(&mut c, deadline);
    c.handle_timeout(deadline);
    assert_eq!(c.error(), Some(&Error::Timeout(TimeoutKind::Handshake)));
    assert!(c.is_finished());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn prefix_idle_timeout_ends_the_connection_at_its_deadline() {
    let t0 = Instant::now();
    let config = prefix::Config::builder()
        .idle_timeout(10 * SECOND)
        .build()
        .unwrap();
    let mut c = prefix::Connection::new(config);
    c.handle_timeout(t0);
    // Input at t0+2 moves the deadline to 10 s after the next call.
    c.receive(&[0, 0, 0, 1, b'x']).unwrap();
    assert!(c.poll_event().is_some());
    c.handle_timeout(t0 + 2 * SECOND);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 12 * SECOND);
    c.handle_timeout(deadline - NANO);
    assert_eq!(c.poll_event(), None);
    assert!(!c.is_finished());
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline);
    assert!(c.is_finished(), "no event waits before it: ended at once");
    assert_eq!(c.poll_event(), Some(prefix::Event::IdleTimeout));
    assert!(c.is_finished());
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.stats().errors.idle_timeout, 1);
}

#[test]
fn prefix_heartbeat_goes_out_at_its_deadline() {
    let t0 = Instant::now();
    let heartbeat = vec![0u8, 0, 0, 0];
    let config = prefix::Config::builder()
        .heartbeat(3 * SECOND, heartbeat.clone())
        .idle_timeout(10 * SECOND)
        .build()
        .unwrap();
    let mut c = prefix::Connection::new(config);
    c.handle_timeout(t0);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 3 * SECOND, "the earlier of the two");
    let mut out = Vec::new();
    c.handle_timeout(deadline - NANO);
    assert_eq!(c.poll_transmit(&mut out), 0);
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline);
    c.poll_transmit(&mut out);
    assert_eq!(out, heartbeat);
    assert_eq!(c.poll_timeout(), Some(t0 + 6 * SECOND));
}

#[test]
fn proxy_deadline_fails_the_exchange_at_its_deadline() {
    let t0 = Instant::now();
    let config = ProxyConfig::default().with_handshake_timeout(Some(5 * SECOND));
    let mut p = Proxy::new(ProxyRequest::new("proxy:3128", "example.com:80"), config).unwrap();
    assert_eq!(p.poll_timeout(), None);
    p.handle_timeout(t0);
    let deadline = p.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 5 * SECOND);
    p.handle_timeout(deadline - NANO);
    assert_eq!(p.error(), None);
    assert_eq!(p.poll_timeout(), Some(deadline));
    p.handle_timeout(deadline);
    assert_eq!(p.error(), Some(&ProxyError::Timeout));
    assert!(p.is_finished());
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn proxied_client_deadlines_are_the_proxys_then_the_connections() {
    let t0 = Instant::now();
    let proxy_config = ProxyConfig::default().with_handshake_timeout(Some(5 * SECOND));
    let proxy = Proxy::new(
        ProxyRequest::new("proxy:3128", "example.com:80"),
        proxy_config,
    )
    .unwrap();
    let config = Config::default().with_handshake_timeout(Some(7 * SECOND));
    let request = ClientRequest::new("example.com", "/");
    let mut c = ProxiedClient::new(proxy, config, request).unwrap();
    c.handle_timeout(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + 5 * SECOND));
    c.receive(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    assert!(matches!(c.poll_event(), Some(ProxiedEvent::Proxy(_))));
    assert_eq!(
        c.poll_timeout(),
        None,
        "until the connection's timers start"
    );
    // The connection's handshake deadline counts from the tunnel.
    c.handle_timeout(t0 + 2 * SECOND);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 9 * SECOND);
    c.handle_timeout(deadline - NANO);
    assert!(c.error().is_none());
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline);
    assert_eq!(
        c.error(),
        Some(ProxiedError::Ws(Error::Timeout(TimeoutKind::Handshake)))
    );
    assert!(c.is_finished());
}

#[test]
fn ws_keepalive_counts_from_the_101_not_from_the_timer_call_before_it() {
    // The 101 is inbound traffic: a handshake that took longer than the
    // keepalive interval does not send a ping the moment it opens.
    let t0 = Instant::now();
    let config = Config::default().with_keepalive(5 * SECOND, 5 * SECOND);
    let mut c = Connection::client(config, ClientRequest::new("example.com", "/")).unwrap();
    let request = String::from_utf8(output(&mut c)).unwrap();
    c.handle_timeout(t0);
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        sansproto::ws::accept_key(key.as_bytes())
    );
    c.receive(response.as_bytes()).unwrap();
    assert!(c.is_open());
    c.handle_timeout(t0 + 6 * SECOND);
    assert!(output(&mut c).is_empty(), "no ping at once");
    assert_eq!(c.poll_timeout(), Some(t0 + 11 * SECOND));
    quiet_just_before(&mut c, t0 + 11 * SECOND);
    c.handle_timeout(t0 + 11 * SECOND);
    assert_eq!(output(&mut c)[0], 0x89, "the keepalive ping, at its time");
}

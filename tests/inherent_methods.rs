//! Every machine is driven through its own methods: no `Driver` import
//! here. A `ProxiedClient` offers the sends, output and read-into calls a
//! `ws::Connection` does.

use bytes::Buf;
use sansproto::prefix;
use sansproto::ws::proxy::{ProxiedClient, ProxiedEvent, Proxy, ProxyEvent, ProxyRequest};
use sansproto::ws::{ClientRequest, Config, Connection, Event, Message, SendErrorKind};

#[test]
fn prefix_connection_without_the_driver_trait() {
    let mut a = prefix::Connection::new(prefix::Config::default());
    let mut b = prefix::Connection::new(prefix::Config::default());
    a.send(b"hello").unwrap();
    let mut wire = Vec::new();
    assert_eq!(a.poll_transmit(&mut wire), 9);
    assert_eq!(b.receive(&wire), Ok(9));
    assert_eq!(b.poll_event(), Some(prefix::Event::Frame("hello".into())));
    assert_eq!(b.poll_event(), None);
    assert_eq!(b.poll_timeout(), None);
    b.handle_timeout(std::time::Instant::now());
    assert!(!b.is_finished());
    assert_eq!(b.receive_eof(), Ok(()));
    assert!(b.is_finished());
}

/// Writes everything `output()` holds, as a vectored write would.
fn drain(c: &mut ProxiedClient) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut out = c.output();
    while out.has_remaining() {
        let chunk = out.chunk();
        wire.extend_from_slice(chunk);
        let n = chunk.len();
        out.advance(n);
    }
    wire
}

fn proxied() -> ProxiedClient {
    let proxy = Proxy::new(
        ProxyRequest::new("proxy:3128", "example.com:80"),
        Default::default(),
    )
    .unwrap();
    let request = ClientRequest::new("example.com", "/");
    ProxiedClient::with_random(
        proxy,
        Config::default(),
        request,
        sansproto::seeded_random(3),
    )
    .unwrap()
}

#[test]
fn proxied_client_forwards_borrowed_sends_output_and_read_into() {
    let mut c = proxied();
    c.send_text_str("hi").unwrap();
    c.send_binary_slice(&[1, 2, 3]).unwrap();
    c.send_prepared(&Message::from("all").prepare()).unwrap();
    c.send_uncompressed("plain").unwrap();
    // Only the CONNECT request goes out before the tunnel opens.
    let request_len = c.buffered_amount();
    let connect = drain(&mut c);
    assert!(connect.starts_with(b"CONNECT example.com:80 HTTP/1.1\r\n"));
    assert!(request_len > connect.len(), "the messages wait, counted");
    assert!(drain(&mut c).is_empty());

    // The proxy's reply, read into the space the client lends.
    let reply = b"HTTP/1.1 200 Connection established\r\n\r\n";
    let space = c.receive_buffer(reply.len()).unwrap();
    space[..reply.len()].copy_from_slice(reply);
    c.commit_received(reply.len()).unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(ProxiedEvent::Proxy(ProxyEvent::Connected(_)))
    ));

    // The upgrade request now, then the server's answer appended to the
    // lent buffer.
    let mut server = Connection::server(Config::default());
    server.receive(&drain(&mut c)).unwrap();
    let mut answer = Vec::new();
    server.poll_transmit(&mut answer);
    c.receive_buf_mut(answer.len())
        .unwrap()
        .extend_from_slice(&answer);
    c.commit_appended().unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(ProxiedEvent::Ws(Event::Open(_)))
    ));
    assert!(c.is_open());

    // The messages queued before, in order.
    server.receive(&drain(&mut c)).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    assert_eq!(
        server.poll_event(),
        Some(Event::Message(Message::from("hi")))
    );
    assert_eq!(
        server.poll_event(),
        Some(Event::Message(Message::from(vec![1u8, 2, 3])))
    );
    for text in ["all", "plain"] {
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(Message::from(text)))
        );
    }
    assert_eq!(c.buffered_amount(), 0);
}

#[test]
fn proxied_client_hands_borrowed_sends_back_after_a_refusal() {
    let mut c = proxied();
    drain(&mut c);
    assert!(c
        .receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        .is_err());
    let e = c.send_text_str("late").unwrap_err();
    assert_eq!(*e.kind(), SendErrorKind::Closed);
    assert_eq!(*e.payload(), Message::from("late"));
    let e = c.send_binary_slice(b"late").unwrap_err();
    assert_eq!(*e.kind(), SendErrorKind::Closed);
    assert_eq!(*e.payload(), Message::from(b"late".to_vec()));
    let e = c.send_uncompressed("late").unwrap_err();
    assert_eq!(*e.kind(), SendErrorKind::Closed);
    assert_eq!(*e.payload(), Message::from("late"));
    let e = c
        .send_prepared(&Message::from("late").prepare())
        .unwrap_err();
    assert_eq!(*e.kind(), SendErrorKind::Closed);
    assert_eq!(*e.payload().message(), Message::from("late"));
}

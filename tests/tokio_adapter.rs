//! The tokio adapter: 1,000 echo connections at once over loopback, every
//! message checked; keepalive, pong and close deadlines to the second
//! under tokio's paused clock; and `next()` futures dropped mid-read
//! thousands of times without losing a byte.
#![cfg(feature = "tokio")]

mod common;

use sansproto::tokio::{Error, WebSocket};
use sansproto::ws::{ClientRequest, CloseCode, Config, Connection, Message, Role, TimeoutKind};
use std::time::Duration;
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

#[tokio::test]
async fn a_thousand_connections_echo_through_the_adapter() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut ws = WebSocket::accept(stream, Config::default()).await.unwrap();
                while let Some(message) = ws.next().await {
                    ws.send(message.unwrap()).await.unwrap();
                }
            });
        }
    });
    let clients: Vec<_> = (0..1000)
        .map(|id| {
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let request = ClientRequest::new(addr.to_string(), "/");
                let mut ws = WebSocket::connect(stream, request, Config::default())
                    .await
                    .unwrap();
                for i in 0..5 {
                    let sent = Message::from(format!("client {id} message {i}"));
                    ws.send(sent.clone()).await.unwrap();
                    assert_eq!(ws.next().await.unwrap().unwrap(), sent);
                }
                ws.close(CloseCode::NORMAL, "done").await.unwrap();
                assert!(ws.next().await.is_none());
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
}

/// A server session over one end of an in-memory pipe; the other end is
/// returned raw, for a peer that reads and never answers.
fn server_over_pipe(config: Config) -> (WebSocket<DuplexStream>, DuplexStream) {
    common::tokio::server_over_pipe(config, 64 << 10)
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_go_out_and_a_missing_pong_ends_the_connection_on_time() {
    let config = Config::default().with_keepalive(Duration::from_secs(10), Duration::from_secs(5));
    let (mut ws, mut peer) = server_over_pipe(config);
    let start = Instant::now();
    let result = ws.next().await;
    assert!(
        matches!(
            result,
            Some(Err(Error::Ws(sansproto::ws::Error::Timeout(
                TimeoutKind::Pong
            ))))
        ),
        "{result:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert!(ws.next().await.is_none());
    // The silent peer was sent the keepalive ping.
    let mut got = Vec::new();
    peer.read_buf(&mut got).await.unwrap();
    assert_eq!(got[0], 0x89, "a ping first: {got:02x?}");
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_close_ends_at_the_close_deadline() {
    let config = Config::default().with_close_timeout(Some(Duration::from_secs(3)));
    let (mut ws, mut peer) = server_over_pipe(config);
    let start = Instant::now();
    let result = ws.close(CloseCode::NORMAL, "bye").await;
    assert!(
        matches!(
            result,
            Err(Error::Ws(sansproto::ws::Error::Timeout(TimeoutKind::Close)))
        ),
        "{result:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    let mut got = Vec::new();
    peer.read_buf(&mut got).await.unwrap();
    assert_eq!(
        &got[..4],
        [0x88, 0x05, 0x03, 0xe8],
        "the Close went out first"
    );
}

#[tokio::test]
async fn dropping_pending_next_futures_loses_nothing() {
    // A small pipe: every message arrives over many reads.
    let (a, b) = tokio::io::duplex(256);
    let server = Connection::after_handshake(
        Role::Server,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(1),
    );
    let client = Connection::after_handshake(
        Role::Client,
        Config::default(),
        None,
        None,
        sansproto::seeded_random(2),
    );
    let messages: Vec<Message> = (0..200usize)
        .map(|i| {
            Message::Binary(
                (0..(i * 97) % 5000)
                    .map(|j| (i + j) as u8)
                    .collect::<Vec<u8>>()
                    .into(),
            )
        })
        .collect();
    let sending = {
        let messages = messages.clone();
        tokio::spawn(async move {
            let mut ws = WebSocket::new(b, client);
            for m in messages {
                ws.send(m).await.unwrap();
            }
            ws.close(CloseCode::NORMAL, "done").await.unwrap();
        })
    };
    let mut ws = WebSocket::new(a, server);
    let (mut got, mut dropped) = (Vec::new(), 0u32);
    loop {
        tokio::select! {
            biased;
            // Ready on its second poll: the `next()` beside it is dropped
            // whenever it did not finish within one poll.
            () = tokio::task::yield_now() => dropped += 1,
            m = ws.next() => match m {
                Some(m) => got.push(m.unwrap()),
                None => break,
            },
        }
    }
    sending.await.unwrap();
    assert_eq!(got, messages);
    assert!(dropped > 100, "only {dropped} futures were dropped");
}

#[tokio::test(start_paused = true)]
async fn frames_go_both_ways_and_the_idle_timeout_ends_them_on_time() {
    use sansproto::prefix;
    use sansproto::tokio::Frames;
    let (a, b) = tokio::io::duplex(16);
    let idle = prefix::Config::builder()
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut server = Frames::new(a, prefix::Connection::new(idle));
    let mut client = Frames::new(b, prefix::Connection::new(prefix::Config::default()));
    let payloads: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; i * 7]).collect();
    let sending = tokio::spawn(async move {
        for p in (0..50).map(|i| vec![i as u8; i * 7]) {
            client.send(&p).await.unwrap();
        }
        client
    });
    for p in &payloads {
        assert_eq!(server.next().await.unwrap().unwrap(), p[..]);
    }
    let _client = sending.await.unwrap();
    // Nothing more arrives: the idle timeout ends the stream 30 s later.
    let start = Instant::now();
    assert!(server.next().await.is_none());
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test]
async fn the_application_decides_each_upgrade() {
    use sansproto::ws::{Accept, Reject};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.unwrap();
            let ws = WebSocket::accept_with(stream, Config::default(), |request| {
                if request.path() == "/chat" {
                    Ok(Accept::new().with_protocol("chat.v1"))
                } else {
                    Err(Reject::new(404))
                }
            })
            .await;
            outcomes.push(ws.map(drop).map_err(|e| e.to_string()));
        }
        outcomes
    });
    let chat = Config::default().with_protocols(["chat.v1"]).unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = ClientRequest::new(addr.to_string(), "/chat");
    let mut ws = WebSocket::connect(stream, request, chat.clone())
        .await
        .unwrap();
    assert!(ws.connection().is_open());
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = ClientRequest::new(addr.to_string(), "/elsewhere");
    let refused = WebSocket::connect(stream, request, chat).await;
    assert!(matches!(refused, Err(Error::Ws(_))), "{refused:?}");
    let outcomes = server.await.unwrap();
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(outcomes[1].is_err(), "{outcomes:?}");
}

#[tokio::test]
async fn accept_with_returns_a_rejection_with_its_status() {
    use sansproto::ws::{HandshakeError, Reject};
    use tokio::io::AsyncWriteExt;
    let (mut theirs, ours) = tokio::io::duplex(4096);
    theirs
        .write_all(
            b"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let refused = WebSocket::accept_with(ours, Config::default(), |_| Err(Reject::new(404))).await;
    match refused {
        Err(Error::Ws(sansproto::ws::Error::Handshake(HandshakeError::Status(404)))) => {}
        other => panic!("not the rejection: {other:?}"),
    }
    // The rejection was written before the call returned.
    let mut answer = Vec::new();
    theirs.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 404 "), "{answer:?}");
}

/// Drops `future` after polling it once, as a `select!` whose other
/// branch is ready at once does; true when it had not completed.
async fn poll_once_then_drop(future: impl std::future::Future) -> bool {
    tokio::select! {
        biased;
        _ = future => false,
        _ = std::future::ready(()) => true,
    }
}

/// `send` queues its message when first polled, so a send dropped before
/// its write is done still delivers it (once: a caller that retried would
/// deliver it twice); queued through the connection, the message waits
/// for a `flush`, which is cancellation safe, to go out.
#[tokio::test]
async fn a_dropped_send_has_queued_its_message_and_a_dropped_flush_resumes() {
    let (a, b) = tokio::io::duplex(1024);
    let conn = |role| {
        Connection::after_handshake(
            role,
            Config::default(),
            None,
            None,
            sansproto::seeded_random(3),
        )
    };
    let mut client = WebSocket::new(a, conn(Role::Client));
    let mut server = WebSocket::new(b, conn(Role::Server));
    let receiving = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(message) = server.next().await {
            got.push(message.unwrap());
        }
        got
    });
    let first = Message::from(vec![1u8; 64 << 10]);
    let second = Message::from(vec![2u8; 64 << 10]);
    // Larger than the pipe: neither write can be done in one poll.
    assert!(poll_once_then_drop(client.send(first.clone())).await);
    client.connection().send(second.clone()).unwrap();
    assert!(poll_once_then_drop(client.flush()).await);
    client.flush().await.unwrap();
    client.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(receiving.await.unwrap(), [first, second]);
}

#[tokio::test(start_paused = true)]
async fn datagrams_echo_segmented_messages_and_idle_peers_expire_on_time() {
    use sansproto::datagram::{CloseReason, Config as UdpConfig, Endpoint, Event};
    use sansproto::tokio::Datagrams;
    let mut config = UdpConfig::segmented();
    config.idle_timeout = Duration::from_secs(20);
    let server_socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server_socket.local_addr().unwrap();
    let mut server = Datagrams::new(server_socket, Endpoint::new(config.clone()).unwrap());
    let client_socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client_socket.local_addr().unwrap();
    let mut client = Datagrams::new(client_socket, Endpoint::new(config).unwrap());
    let sizes = [0usize, 1, 1400, 5000, 60_000];
    let serving = tokio::spawn(async move {
        let mut echoed = 0;
        loop {
            match server.next().await.unwrap() {
                Event::Message { peer, payload } => {
                    server.send(peer, payload).await.unwrap();
                    echoed += 1;
                }
                Event::PeerClosed { peer, reason } => {
                    return (echoed, peer, reason, Instant::now());
                }
                _ => {}
            }
        }
    });
    for (i, &n) in sizes.iter().enumerate() {
        let message = bytes::Bytes::from((0..n).map(|j| (i + j) as u8).collect::<Vec<u8>>());
        client.send(server_addr, message.clone()).await.unwrap();
        loop {
            if let Event::Message { peer, payload } = client.next().await.unwrap() {
                assert_eq!(peer, server_addr);
                assert_eq!(payload, message);
                break;
            }
        }
    }
    let last = Instant::now();
    let (echoed, peer, reason, at) = serving.await.unwrap();
    assert_eq!(echoed, sizes.len());
    assert_eq!((peer, reason), (client_addr, CloseReason::IdleTimeout));
    assert_eq!(at - last, Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn a_refused_send_hands_the_message_back() {
    let (mut ws, _peer) = server_over_pipe(Config::default());
    ws.connection().close(CloseCode::NORMAL, "bye").unwrap();
    match ws.send("late").await {
        Err(Error::MessageRefused(refused)) => {
            assert_eq!(refused.kind(), &sansproto::ws::SendErrorKind::Closed);
            assert_eq!(refused.into_payload(), Message::from("late"));
        }
        other => panic!("{other:?}"),
    }
    let (a, _b) = tokio::io::duplex(64);
    let mut frames = sansproto::tokio::Frames::new(
        a,
        sansproto::prefix::Connection::new(sansproto::prefix::Config::default()),
    );
    frames.connection().close();
    match frames.send(&b"late"[..]).await {
        Err(Error::FrameRefused(refused)) => assert_eq!(refused.into_payload(), &b"late"[..]),
        other => panic!("{other:?}"),
    }
}

/// A peer that sends a plain HTTP request and half-closes, at a
/// connection that never answers it: `next()` returns the handshake's
/// failure and ends, instead of reading the ended stream again and again.
#[tokio::test]
async fn an_ended_stream_is_not_read_again() {
    use tokio::io::AsyncWriteExt;
    let (ours, mut theirs) = tokio::io::duplex(4096);
    let mut ws = WebSocket::new(ours, Connection::server(Config::default()));
    theirs
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    theirs.shutdown().await.unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(
        matches!(
            failed.expect("next() returns"),
            Some(Err(Error::Ws(sansproto::ws::Error::Handshake(
                sansproto::ws::HandshakeError::Eof
            ))))
        ),
        "the unanswered request fails at the peer's end"
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(ended.expect("next() returns").is_none());
}

/// A peer that reads nothing does not hold the deadlines off: the close
/// deadline passes, and is reported, while the Close frame still waits to
/// be written.
#[tokio::test(start_paused = true)]
async fn deadlines_run_while_the_output_waits() {
    let (ours, _theirs) = tokio::io::duplex(1024);
    let config = Config::default().with_close_timeout(Some(Duration::from_secs(3)));
    let conn = Connection::after_handshake(
        Role::Server,
        config,
        None,
        None,
        sansproto::seeded_random(9),
    );
    let mut ws = WebSocket::new(ours, conn);
    ws.connection()
        .send(Message::from(vec![0u8; 100_000]))
        .unwrap();
    ws.connection().close(CloseCode::NORMAL, "bye").unwrap();
    let start = Instant::now();
    let event = ws.next_event().await.unwrap();
    assert!(
        matches!(&event, Some(sansproto::ws::Event::Closed(c)) if !c.clean),
        "{event:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(
        ws.connection().error(),
        Some(&sansproto::ws::Error::Timeout(TimeoutKind::Close))
    );
}

//! Every wait of the tokio adapters ends, to the millisecond, under
//! tokio's paused clock: a finished connection's last output against a
//! peer that reads nothing is given up on after the close timeout (the
//! linger, for `Frames`), and `connect_url`'s whole setup (TCP, CONNECT
//! proxy, the caller's wrap, the opening handshake) shares the handshake
//! timeout.
#![cfg(feature = "tokio")]

mod common;

use sansproto::prefix;
use sansproto::tokio::{Error, Frames, SetupStep, WebSocket};
use sansproto::ws::proxy::ProxyError;
use sansproto::ws::{CloseCode, Config, Event, TimeoutKind};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A pipe that holds this much: a peer that reads nothing stalls every
/// write past it.
const PIPE: usize = 1024;

/// More than the pipe holds.
const BIG: usize = 64 << 10;

/// Runs `task` on its own and checks that it is still running a
/// millisecond before `bound` and done at `bound` exactly; returns what it
/// returned. A task that never ends fails the test (after an hour of the
/// paused clock) instead of hanging it.
async fn ends_at<T: Send + 'static>(
    bound: Duration,
    task: impl Future<Output = T> + Send + 'static,
) -> T {
    let start = Instant::now();
    let handle = tokio::spawn(task);
    tokio::time::sleep(bound - Duration::from_millis(1)).await;
    assert!(!handle.is_finished(), "done before {bound:?}");
    let out = tokio::time::timeout(Duration::from_secs(3600), handle)
        .await
        .unwrap_or_else(|_| panic!("still waiting an hour later (bound {bound:?})"))
        .unwrap();
    assert_eq!(start.elapsed(), bound);
    out
}

/// A server session over a small pipe whose other end is returned and
/// never read.
fn stalled_server(config: Config) -> (WebSocket<DuplexStream>, DuplexStream) {
    common::tokio::server_over_pipe(config, PIPE)
}

#[tokio::test(start_paused = true)]
async fn close_against_a_peer_that_reads_nothing_returns_within_twice_the_close_timeout() {
    let config = Config::default().with_close_timeout(Some(Duration::from_secs(3)));
    let (mut ws, _peer) = stalled_server(config);
    ws.connection().send(vec![7u8; BIG]).unwrap();
    // The close deadline (3 s) fails the connection; what is still queued
    // is dropped a close timeout later.
    let (ws, result) = ends_at(Duration::from_secs(6), async move {
        let result = ws.close(CloseCode::NORMAL, "bye").await;
        (ws, result)
    })
    .await;
    assert!(
        matches!(
            result,
            Err(Error::Ws(sansproto::ws::Error::Timeout(TimeoutKind::Close)))
        ),
        "{result:?}"
    );
    let mut ws = ws;
    assert_eq!(
        ws.connection().buffered_amount(),
        0,
        "the output was dropped"
    );
    assert!(ws.next().await.is_none());
    assert!(ws.flush().await.is_ok(), "nothing more to write");
}

#[tokio::test(start_paused = true)]
async fn a_send_stalled_past_a_failure_returns_the_failure_after_the_close_timeout() {
    let config = Config::default()
        .with_keepalive(Duration::from_secs(10), Duration::from_secs(5))
        .with_close_timeout(Some(Duration::from_secs(3)));
    let (ws, _peer) = stalled_server(config);
    // The peer reads nothing, so it answers no keepalive ping: the pong
    // deadline fails the connection at 15 s, and the send gives up on its
    // output 3 s later.
    let (mut ws, result) = ends_at(Duration::from_secs(18), async move {
        let mut ws = ws;
        let result = ws.send(vec![7u8; BIG]).await;
        (ws, result)
    })
    .await;
    assert!(
        matches!(
            result,
            Err(Error::Ws(sansproto::ws::Error::Timeout(TimeoutKind::Pong)))
        ),
        "{result:?}"
    );
    // The failure was returned once; the connection is over.
    let refused = ws.send("more").await;
    assert!(
        matches!(refused, Err(Error::MessageRefused(_))),
        "{refused:?}"
    );
    assert!(ws.next().await.is_none());
    assert_eq!(ws.connection().buffered_amount(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_flush_after_the_failure_was_seen_ends_at_the_close_timeout() {
    let config = Config::default()
        .with_keepalive(Duration::from_secs(10), Duration::from_secs(5))
        .with_close_timeout(Some(Duration::from_secs(3)));
    let (mut ws, _peer) = stalled_server(config);
    ws.connection().send(vec![7u8; BIG]).unwrap();
    let start = Instant::now();
    // Events come out while the output waits: the end shows at the pong
    // deadline.
    loop {
        match ws.next_event().await.unwrap() {
            Some(Event::Closed(closed)) => {
                assert!(!closed.clean);
                break;
            }
            Some(_) => {}
            None => panic!("finished without its Closed event"),
        }
    }
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    let (mut ws, result) = ends_at(Duration::from_secs(3), async move {
        let result = ws.flush().await;
        (ws, result)
    })
    .await;
    assert!(
        matches!(
            result,
            Err(Error::Ws(sansproto::ws::Error::Timeout(TimeoutKind::Pong)))
        ),
        "{result:?}"
    );
    // Once given up on, a flush has nothing to wait for.
    let before = Instant::now();
    assert!(ws.flush().await.is_ok());
    assert!(ws.next().await.is_none());
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_clean_close_whose_reply_cannot_go_out_reports_the_linger() {
    let config = Config::default().with_close_timeout(Some(Duration::from_secs(3)));
    let (mut ws, mut peer) = stalled_server(config);
    // A message that fills the pipe exactly (4 bytes of header), then the
    // peer's Close (masked with a zero key), and the peer reads nothing.
    ws.send(vec![7u8; PIPE - 4]).await.unwrap();
    peer.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
        .await
        .unwrap();
    // The closing handshake is over, cleanly; only its reply waits.
    let (mut ws, result) = ends_at(Duration::from_secs(3), async move {
        let result = ws.next().await;
        (ws, result)
    })
    .await;
    match result {
        Some(Err(Error::Linger { dropped })) => assert_eq!(dropped, 4, "the Close reply"),
        other => panic!("{other:?}"),
    }
    assert!(ws.next().await.is_none());
}

/// Frames over a small pipe whose other end is returned and never read.
fn stalled_frames() -> (Frames<DuplexStream>, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(PIPE);
    let conn = prefix::Connection::new(prefix::Config::default());
    (Frames::new(ours, conn), theirs)
}

#[tokio::test(start_paused = true)]
async fn frames_close_against_a_peer_that_reads_nothing_ends_at_the_linger() {
    let (mut frames, _peer) = stalled_frames();
    frames.connection().send(vec![7u8; BIG]).unwrap();
    let result = ends_at(Frames::<DuplexStream>::DEFAULT_LINGER, async move {
        frames.close().await
    })
    .await;
    match result {
        Err(Error::Linger { dropped }) => assert!(dropped > 0 && dropped <= BIG + 4),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_frames_sink_closes_within_the_linger_it_was_given() {
    let (mut frames, _peer) = stalled_frames();
    frames.set_linger(Some(Duration::from_secs(2)));
    frames.connection().send(vec![7u8; BIG]).unwrap();
    let (mut frames, result) = ends_at(Duration::from_secs(2), async move {
        let result =
            poll_fn(|cx| futures_sink::Sink::<bytes::Bytes>::poll_close(Pin::new(&mut frames), cx))
                .await;
        (frames, result)
    })
    .await;
    assert!(matches!(result, Err(Error::Linger { .. })), "{result:?}");
    assert!(frames.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_reads_slowly_gets_everything_past_the_linger() {
    use tokio::io::AsyncReadExt;
    let (mut frames, mut peer) = stalled_frames();
    frames.set_linger(Some(Duration::from_secs(1)));
    // 64 KiB at 1 KiB every 100 ms: 6.4 s, far past the 1 s linger, but
    // the peer never stops reading for as long as the linger.
    frames.connection().send(vec![7u8; BIG]).unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut chunk = [0u8; PIPE];
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match peer.read(&mut chunk).await.unwrap() {
                0 => break got,
                n => got.extend_from_slice(&chunk[..n]),
            }
        }
    });
    let start = Instant::now();
    frames.close().await.unwrap();
    assert!(
        start.elapsed() > Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    drop(frames);
    let got = reader.await.unwrap();
    assert_eq!(got.len(), BIG + 4);
}

/// A server that accepts TCP connections, holds them, and never says a
/// word (nor reads one): neither a WebSocket handshake nor a CONNECT reply.
async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            held.push(listener.accept().await.unwrap().0);
        }
    });
    addr
}

/// Handshake timeout of the connect tests.
const SETUP: Duration = Duration::from_secs(5);

fn is_handshake_timeout(r: &Result<WebSocket<TcpStream>, Error>) -> bool {
    matches!(
        r,
        Err(Error::Ws(sansproto::ws::Error::Timeout(
            TimeoutKind::Handshake
        )))
    )
}

#[tokio::test(start_paused = true)]
async fn connect_url_to_a_server_that_never_answers_ends_at_the_handshake_timeout() {
    let url = format!("ws://{}/", silent_server().await);
    let config = Config::default().with_handshake_timeout(Some(SETUP));
    let result = ends_at(SETUP, async move {
        WebSocket::connect_url(&url, None, config).await
    })
    .await;
    assert!(is_handshake_timeout(&result), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn the_wrap_and_the_handshake_share_the_handshake_timeout() {
    let url = format!("ws://{}/", silent_server().await);
    let config = Config::default().with_handshake_timeout(Some(SETUP));
    // A slow wrap (a TLS handshake, say) leaves the opening handshake the
    // rest of the time, not a fresh timeout.
    let result = ends_at(SETUP, async move {
        WebSocket::connect_url_with(&url, None, config, |tcp, _| async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok(tcp)
        })
        .await
    })
    .await;
    assert!(is_handshake_timeout(&result), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn a_wrap_that_never_finishes_times_out_as_the_wrap_step() {
    let url = format!("wss://{}/", silent_server().await);
    let config = Config::default().with_handshake_timeout(Some(SETUP));
    let result = ends_at(SETUP, async move {
        WebSocket::connect_url_with(&url, None, config, |tcp, _| async move {
            let _held = tcp;
            std::future::pending::<std::io::Result<TcpStream>>().await
        })
        .await
    })
    .await;
    assert!(
        matches!(result, Err(Error::SetupTimeout(SetupStep::Wrap))),
        "{result:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_proxy_that_never_answers_ends_at_the_handshake_timeout() {
    let proxy = format!("http://{}", silent_server().await);
    let config = Config::default().with_handshake_timeout(Some(SETUP));
    let result = ends_at(SETUP, async move {
        WebSocket::connect_url("ws://example.com/", Some(&proxy), config).await
    })
    .await;
    assert!(
        matches!(result, Err(Error::Proxy(ProxyError::Timeout))),
        "{result:?}"
    );
}

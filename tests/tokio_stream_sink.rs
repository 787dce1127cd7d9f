//! The tokio adapters as `futures` `Stream`s and `Sink`s: messages and
//! frames through `poll_next`, `poll_ready`/`start_send`/`poll_flush`,
//! the closing handshake through `poll_close`, and `poll_ready` waiting
//! while the send queue is over its high mark.
#![cfg(feature = "tokio")]

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use sansproto::prefix;
use sansproto::tokio::{Error, Frames, WebSocket};
use sansproto::ws::{Config, Connection, Message, Role};
use std::future::poll_fn;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt, DuplexStream};

fn pair(config: Config) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(64 << 10);
    let make = |role, seed| {
        Connection::after_handshake(
            role,
            config.clone(),
            None,
            None,
            sansproto::seeded_random(seed),
        )
    };
    (
        WebSocket::new(a, make(Role::Client, 1)),
        WebSocket::new(b, make(Role::Server, 2)),
    )
}

async fn next<T: Stream + Unpin>(stream: &mut T) -> Option<T::Item> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

async fn feed<T: Sink<I, Error = Error> + Unpin, I>(sink: &mut T, item: I) -> Result<(), Error> {
    poll_fn(|cx| Pin::new(&mut *sink).poll_ready(cx)).await?;
    Pin::new(&mut *sink).start_send(item)?;
    poll_fn(|cx| Pin::new(&mut *sink).poll_flush(cx)).await
}

async fn close<T: Sink<I, Error = Error> + Unpin, I>(sink: &mut T) -> Result<(), Error> {
    poll_fn(|cx| Pin::new(&mut *sink).poll_close(cx)).await
}

#[tokio::test]
async fn messages_go_through_the_stream_and_sink_and_close_ends_both() {
    let (mut client, mut server) = pair(Config::default());
    let echo = tokio::spawn(async move {
        let mut echoed = 0;
        while let Some(message) = next(&mut server).await {
            feed(&mut server, message.unwrap()).await.unwrap();
            echoed += 1;
        }
        echoed
    });
    let sent = [
        Message::from("one"),
        Message::from(vec![2u8; 100_000]),
        Message::from("three"),
    ];
    for message in &sent {
        feed(&mut client, message.clone()).await.unwrap();
        assert_eq!(&next(&mut client).await.unwrap().unwrap(), message);
    }
    // The closing handshake runs to its end; the server's stream ends.
    close(&mut client).await.unwrap();
    assert!(next(&mut client).await.is_none());
    assert_eq!(echo.await.unwrap(), 3);
}

/// Reads and discards what arrives on `io` until `n` bytes have come.
async fn read_bytes(io: &mut (impl AsyncRead + Unpin), n: usize) {
    let mut buf = vec![0u8; 8192];
    let mut got = 0;
    while got < n {
        got += io.read(&mut buf).await.unwrap();
    }
}

#[tokio::test]
async fn poll_ready_waits_over_the_high_mark_until_the_peer_reads() {
    let (ours, mut theirs) = tokio::io::duplex(16 << 10);
    let config = Config::default().with_send_marks(32 << 10, 8 << 10);
    let conn = Connection::after_handshake(
        Role::Server,
        config,
        None,
        None,
        sansproto::seeded_random(3),
    );
    let mut ws = WebSocket::new(ours, conn);
    // Queue past the high mark without writing anything out.
    for _ in 0..5 {
        ws.connection()
            .send(Message::from(vec![1u8; 10_000]))
            .unwrap();
    }
    assert!(ws.connection().is_backpressured());
    // Nobody reads: the pipe fills and `poll_ready` stays pending.
    let waited = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx)),
    )
    .await;
    assert!(waited.is_err(), "poll_ready waits while over the high mark");
    // Once the peer reads, it completes with the queue drained to its low
    // mark; a flush writes the rest.
    let reader = tokio::spawn(async move {
        read_bytes(&mut theirs, 5 * 10_004).await;
        theirs
    });
    poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx))
        .await
        .unwrap();
    assert!(!ws.connection().is_backpressured());
    assert!(ws.connection().buffered_amount() <= 8 << 10);
    poll_fn(|cx| Pin::new(&mut ws).poll_flush(cx))
        .await
        .unwrap();
    assert_eq!(ws.connection().buffered_amount(), 0);
    drop(reader.await.unwrap());
}

#[tokio::test]
async fn frames_go_through_the_stream_and_sink() {
    let (a, b) = tokio::io::duplex(8 << 10);
    let conn = || prefix::Connection::new(prefix::Config::default());
    let mut left = Frames::new(a, conn());
    let mut right = Frames::new(b, conn());
    let frames: Vec<Bytes> = (0..50u8)
        .map(|i| Bytes::from(vec![i; 1000 * i as usize]))
        .collect();
    let sent = frames.clone();
    let writer = tokio::spawn(async move {
        for frame in sent {
            feed(&mut left, frame).await.unwrap();
        }
        close(&mut left).await.unwrap();
    });
    let mut got = Vec::new();
    while let Some(frame) = next(&mut right).await {
        got.push(frame.unwrap());
    }
    assert_eq!(got, frames);
    writer.await.unwrap();
}

/// A stream that is also a sink can be used where `futures` code expects
/// both (a generic forwarding loop, here).
async fn forward_one<T>(from: &mut T, to: &mut T)
where
    T: Stream<Item = Result<Message, Error>> + Sink<Message, Error = Error> + Unpin,
{
    let message = next(from).await.unwrap().unwrap();
    feed(to, message).await.unwrap();
}

#[tokio::test]
async fn generic_futures_code_drives_it() {
    let (mut client, mut server) = pair(Config::default());
    let (mut client2, mut server2) = pair(Config::default());
    feed(&mut client, Message::from("relayed")).await.unwrap();
    forward_one(&mut server, &mut server2).await;
    assert_eq!(
        next(&mut client2).await.unwrap().unwrap(),
        Message::from("relayed")
    );
}

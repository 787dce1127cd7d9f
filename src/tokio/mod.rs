//! Async adapters for tokio (feature `tokio`): WebSocket connections
//! ([`WebSocket`]) and length-prefixed frames ([`Frames`]) over any
//! `AsyncRead + AsyncWrite` stream, and a datagram endpoint over a
//! `UdpSocket` ([`Datagrams`]), with timers on tokio's clock.
//!
//! The machine keeps every partial read, so reading is cancellation safe:
//! dropping a pending [`WebSocket::next`] (in a `select!`, say) loses no
//! bytes and no message, and the next call goes on where it stopped. A
//! `send` queues its message when first polled; only its write is safe to
//! drop ([`WebSocket`] says how to send inside a `select!`). Timers (keepalive pings, pong, close and handshake
//! deadlines) need no task of their own: whatever future is polled waits
//! for input only until the machine's next deadline.
//!
//! A peer that reads nothing holds no wait for ever: the deadlines run
//! while output waits, and once a connection is finished (closed, or
//! failed) its last output gets the WebSocket close timeout (the linger,
//! for [`Frames`]) to go out, then it is dropped
//! ([`WebSocket`] says how). [`WebSocket::connect_url`] bounds its whole
//! setup, proxy and TLS included, by the handshake timeout.
//!
//! ```no_run
//! use sansproto::tokio::WebSocket;
//! use sansproto::ws::Config;
//!
//! # async fn run() -> Result<(), sansproto::tokio::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9002").await?;
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut ws = WebSocket::accept(stream, Config::default()).await?;
//!         while let Some(message) = ws.next().await {
//!             ws.send(message?).await?;
//!         }
//!         Ok::<_, sansproto::tokio::Error>(())
//!     });
//! }
//! # }
//! ```
//!
//! A server and a client over loopback, as a test would run them:
//!
//! ```
//! use sansproto::tokio::WebSocket;
//! use sansproto::ws::{CloseCode, Config, Message};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/echo", listener.local_addr()?);
//! tokio::spawn(async move {
//!     let (stream, _) = listener.accept().await?;
//!     let mut ws = WebSocket::accept(stream, Config::default()).await?;
//!     while let Some(message) = ws.next().await {
//!         ws.send(message?).await?;
//!     }
//!     Ok::<_, sansproto::tokio::Error>(())
//! });
//! let mut client = WebSocket::connect_url(&url, None, Config::default()).await?;
//! client.send("hello").await?;
//! assert_eq!(client.next().await.unwrap()?, Message::from("hello"));
//! client.close(CloseCode::NORMAL, "done").await?;
//! # Ok::<(), sansproto::tokio::Error>(())
//! # }).unwrap();
//! ```

mod connect;
mod datagram;
mod driven;
mod frames;
mod ws;

pub use connect::SetupStep;
pub use datagram::Datagrams;
pub use frames::Frames;
pub use ws::WebSocket;

use std::io;

/// Why an adapter stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The WebSocket connection failed (the peer broke the protocol, a
    /// deadline passed, the handshake was refused); its Close frame, if
    /// any, was sent.
    #[error(transparent)]
    Ws(#[from] crate::ws::Error),
    /// The length-prefixed stream broke its framing.
    #[error(transparent)]
    Prefix(crate::prefix::DecodeError),
    /// A message was refused (the connection is closing or closed, or it
    /// would pass the send queue's limit): it is handed back.
    #[error(transparent)]
    MessageRefused(crate::ws::SendError<crate::ws::Message>),
    /// A frame was refused (the connection is closed, or the send queue is
    /// full): it is handed back.
    #[error(transparent)]
    FrameRefused(crate::prefix::SendError<bytes::Bytes>),
    /// A datagram was refused (too large, or the send queue is full).
    #[error(transparent)]
    Datagram(crate::datagram::SendError),
    /// A client connection could not be set up: a bad WebSocket or proxy
    /// URL, or a field that cannot be sent.
    #[error(transparent)]
    Setup(#[from] crate::ws::proxy::SetupError),
    /// The HTTP CONNECT proxy refused the tunnel or broke its protocol.
    #[error(transparent)]
    Proxy(crate::ws::proxy::ProxyError),
    /// The peer sent a plain HTTP request instead of an upgrade; it was
    /// answered `426 Upgrade Required`.
    #[error("not a WebSocket upgrade request")]
    NotWebSocket,
    /// The connection is closed: nothing more can be sent.
    #[error("the connection is closed")]
    Closed,
    /// The connection was finished (closed, or failed with its failure
    /// already returned), but the peer read nothing more for the linger
    /// (the WebSocket [`close_timeout`](crate::ws::Config::close_timeout),
    /// or [`Frames::set_linger`]): the adapter gave up on the last output,
    /// dropped the bytes still queued, and writes nothing more.
    #[error("the peer stopped reading: {dropped} queued bytes dropped after the linger")]
    Linger {
        /// How many queued bytes were dropped (bytes the stream itself
        /// buffers, a TLS layer's say, are not counted).
        dropped: usize,
    },
    /// [`WebSocket::connect_url`] (or
    /// [`connect_url_with`](WebSocket::connect_url_with)) passed the
    /// configuration's [`handshake_timeout`](crate::ws::Config::handshake_timeout),
    /// counted from the call, in this step. The steps with a timeout of
    /// their own report it instead: the CONNECT exchange as
    /// [`Error::Proxy`] with [`ProxyError::Timeout`](crate::ws::proxy::ProxyError::Timeout),
    /// the opening handshake as [`Error::Ws`] with
    /// [`TimeoutKind::Handshake`](crate::ws::TimeoutKind::Handshake).
    #[error("{0} timed out")]
    SetupTimeout(SetupStep),
}

//! A WebSocket connection over a tokio stream.

use super::driven::Driven;
use super::Error;
use crate::ws::{
    Accept, ClientRequest, CloseCode, Config, Connection, Event, Message, Opened, Reject,
    UpgradeRequest,
};
use ::tokio::io::{AsyncRead, AsyncWrite};
use futures_core::Stream;
use futures_sink::Sink;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// A [`Connection`] driven over `S`: messages in with
/// [`next`](Self::next), out with [`send`](Self::send). Pings are answered,
/// and the closing handshake and the deadlines run, inside those calls.
///
/// Every method but [`send`](Self::send) is cancellation safe: the
/// connection holds what was read and what is still to be written, so a
/// dropped [`next`](Self::next), [`next_event`](Self::next_event) or
/// [`flush`](Self::flush) loses nothing, and the next call goes on where
/// it stopped. `send` queues its message as soon as it is first polled and
/// then writes it out: only the write is cancellation safe. Dropped before
/// it completes, the send has queued its message all the same; it goes out
/// with the next write, and sending it again sends it twice. To bound the
/// wait for a message, queue it through [`connection`](Self::connection)
/// and put the flush in the `select!`:
///
/// ```no_run
/// # async fn run(mut ws: sansproto::tokio::WebSocket<tokio::net::TcpStream>) -> Result<(), sansproto::tokio::Error> {
/// use sansproto::tokio::Error;
/// use std::time::Duration;
///
/// // Queued once, whatever becomes of the wait below.
/// ws.connection().send("update").map_err(Error::MessageRefused)?;
/// tokio::select! {
///     written = ws.flush() => written?,
///     _ = tokio::time::sleep(Duration::from_secs(5)) => {
///         // Still queued: the next flush, send or next goes on with it.
///     }
/// }
/// # Ok(()) }
/// ```
///
/// No wait is unbounded while the connection has a deadline: a peer that
/// reads nothing does not hold off the keepalive, pong, close and
/// handshake deadlines, which run while output waits in any method. Once
/// the connection is finished (closed, or failed), what is still queued
/// gets the configuration's [`close_timeout`](Config::close_timeout) more
/// to go out, counted from the first wait after the end and started again
/// whenever the peer reads some of it; then it is dropped, nothing more is written, and the waiting method returns the
/// connection's failure (if not yet returned) or [`Error::Linger`]. So
/// [`close`](Self::close) against a peer that reads nothing returns within
/// twice the close timeout. With no close timeout these waits last as long
/// as the peer takes. While the connection is open with no deadline
/// (keepalive off), a write waits as long as the peer does not read, as a
/// blocking socket would.
///
/// It is also a [`Stream`] of received messages and a [`Sink`] of messages
/// to send, for code written against the `futures` traits.
#[derive(Debug)]
pub struct WebSocket<S> {
    inner: Driven<S, Connection>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Drives `conn` over `io` as it is: a server or client connection
    /// still in its handshake (events such as [`Event::Upgrade`] come out
    /// of [`next_event`](Self::next_event)), or one opened elsewhere
    /// ([`Connection::after_handshake`]).
    pub fn new(io: S, conn: Connection) -> Self {
        let linger = conn.close_timeout();
        Self {
            inner: Driven::new(io, conn, linger),
        }
    }

    /// Runs the server side of the opening handshake on `io`, accepting
    /// any valid upgrade with `config`'s choices. A plain HTTP request is
    /// answered `426 Upgrade Required` and refused with
    /// [`Error::NotWebSocket`].
    pub async fn accept(io: S, config: Config) -> Result<Self, Error> {
        let mut ws = Self::new(io, Connection::server(config));
        ws.open().await?;
        Ok(ws)
    }

    /// Runs the server side of the opening handshake on `io`, with the
    /// application deciding the upgrade: `decide` sees the request (path,
    /// `Origin`, offered subprotocols and extensions, headers) and accepts
    /// it with its choices or rejects it with a response. A rejection is
    /// sent, then returned as [`Error::Ws`] with
    /// [`HandshakeError::Status`](crate::ws::HandshakeError::Status)
    /// holding its status.
    ///
    /// ```no_run
    /// use sansproto::tokio::WebSocket;
    /// use sansproto::ws::{Accept, Config, Reject};
    ///
    /// # async fn run(stream: tokio::net::TcpStream) -> Result<(), sansproto::tokio::Error> {
    /// let ws = WebSocket::accept_with(stream, Config::default(), |request| {
    ///     if request.path() == "/chat" { Ok(Accept::new()) } else { Err(Reject::new(404)) }
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept_with(
        io: S,
        config: Config,
        mut decide: impl FnMut(&UpgradeRequest) -> Result<Accept, Reject>,
    ) -> Result<Self, Error> {
        let mut ws = Self::new(io, Connection::server_with_decision(config));
        // The status of the rejection sent, once it is queued.
        let mut rejected = None;
        loop {
            match ws.next_event().await? {
                Some(Event::Upgrade(request)) => {
                    let refused = match decide(&request) {
                        Ok(accept) => ws
                            .inner
                            .machine
                            .accept(accept)
                            .err()
                            .map(|e| e.kind().clone()),
                        Err(reject) => {
                            let status = reject.status;
                            let refused = ws.inner.machine.reject(reject).err();
                            if refused.is_none() {
                                rejected = Some(status);
                            }
                            refused.map(|e| e.kind().clone())
                        }
                    };
                    if let Some(kind) = refused {
                        return Err(Error::Ws(crate::ws::Error::Send(kind)));
                    }
                }
                Some(Event::Open(_)) => {
                    // The 101 goes out now, whatever the caller does next.
                    ws.flush().await?;
                    return Ok(ws);
                }
                Some(Event::HttpRequest(_)) => return Err(ws.refuse_plain_http().await),
                Some(_) => {}
                // The connection is finished and its output written.
                None => {
                    let rejected = rejected.map(|status| {
                        Error::Ws(crate::ws::Error::Handshake(
                            crate::ws::HandshakeError::Status(status),
                        ))
                    });
                    return Err(ws.failure().or(rejected).unwrap_or(Error::Closed));
                }
            }
        }
    }

    /// Runs the client side of the opening handshake on `io` (already
    /// connected to `request.host`).
    pub async fn connect(io: S, request: ClientRequest, config: Config) -> Result<Self, Error> {
        let conn = Connection::client(config, request).map_err(crate::ws::Error::Handshake)?;
        let mut ws = Self::new(io, conn);
        ws.open().await?;
        Ok(ws)
    }

    /// Drives the handshake until the connection opens.
    async fn open(&mut self) -> Result<Box<Opened>, Error> {
        loop {
            match self.next_event().await? {
                Some(Event::Open(opened)) => {
                    // The 101 (or what the client queued) goes out now.
                    self.flush().await?;
                    return Ok(opened);
                }
                Some(Event::HttpRequest(_)) => return Err(self.refuse_plain_http().await),
                Some(_) => {}
                None => return Err(self.failure().unwrap_or(Error::Closed)),
            }
        }
    }

    /// Answers a plain HTTP request `426 Upgrade Required`.
    async fn refuse_plain_http(&mut self) -> Error {
        let _ = self.inner.machine.send_http_response(
            426,
            "Upgrade Required",
            &[("Sec-WebSocket-Version", "13")],
            b"",
        );
        match self.flush().await {
            Ok(()) => Error::NotWebSocket,
            Err(e) => e,
        }
    }

    /// The next message; `None` once the connection has closed cleanly.
    /// A failure (the peer broke the protocol, a deadline passed) is
    /// returned once, after its Close frame went out (or was given up on
    /// after the close timeout); then `None`.
    pub async fn next(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_next_message(cx)).await
    }

    /// The next event of any kind (opening, messages, pings and pongs,
    /// closing); `None` once the connection is finished and its output
    /// written.
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        poll_fn(|cx| self.inner.poll_next_event(cx)).await
    }

    /// Queues `message`, then writes it out (with whatever else is queued),
    /// as [`flush`](Self::flush) does. A refused message (the connection
    /// closing, or over the send queue's limit) comes back in
    /// [`Error::MessageRefused`]. While the peer reads nothing the
    /// connection's deadlines run; when one fails it, the write is given up
    /// on after the close timeout and the failure is returned.
    ///
    /// Not cancellation safe as a whole: the message is queued when the
    /// future is first polled, and only the write after that may be
    /// dropped safely. A send dropped before it completes (in a `select!`,
    /// under a timeout) has queued its message, which goes out with the
    /// next write; calling `send` with it again sends it twice. Queue
    /// through [`connection`](Self::connection) and `select!` on `flush`
    /// instead (see the [type's docs](WebSocket)).
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.inner
            .machine
            .send(message)
            .map_err(Error::MessageRefused)?;
        self.flush().await
    }

    /// Starts the closing handshake and drives it to its end (the peer's
    /// Close, or the close deadline). Against a peer that reads nothing it
    /// returns within twice the [`close_timeout`](Config::close_timeout):
    /// the close deadline fails the connection
    /// ([`TimeoutKind::Close`](crate::ws::TimeoutKind::Close)), and what is
    /// still queued is dropped a close timeout later. When the closing
    /// handshake completed but its last bytes could not go out within the
    /// close timeout, the result is [`Error::Linger`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let _ = self.inner.machine.close(code, reason);
        while self.next_event().await?.is_some() {}
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes everything queued (vectored, from where it is queued), within
    /// the bounds above: once the connection is finished, for at most the
    /// close timeout.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_flush(cx)).await
    }

    /// The connection, for its state and the commands the adapter does not
    /// wrap (pings, borrowed sends, statistics).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.inner.machine
    }

    /// The stream and the connection.
    pub fn into_inner(self) -> (S, Connection) {
        (self.inner.io, self.inner.machine)
    }

    /// The connection's failure, the first time it is asked for.
    fn failure(&mut self) -> Option<Error> {
        self.inner.take_failure()
    }

    /// The next message, poll by poll: what [`next`](Self::next) awaits.
    fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.inner.poll_next_picked(cx, |event| match event {
            Event::Message(m) => Some(m),
            _ => None,
        })
    }
}

/// Received messages, as [`next`](WebSocket::next) gives them.
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_message(cx)
    }
}

/// Messages to send. `poll_ready` waits while the send queue is over its
/// high mark ([`Config::with_send_marks`]), writing it out meanwhile;
/// `poll_close` runs the closing handshake (close code 1000) to its end.
impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        let this = self.get_mut();
        this.inner
            .machine
            .send(message)
            .map_err(Error::MessageRefused)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.inner.machine.is_open() {
            let _ = this.inner.machine.close(CloseCode::NORMAL, "");
        }
        // What still arrives before the peer's Close is let go.
        while ready!(this.inner.poll_next_event(cx))?.is_some() {}
        Poll::Ready(this.failure().map_or(Ok(()), Err))
    }
}

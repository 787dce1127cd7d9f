//! Length-prefixed frames over a tokio stream.

use super::driven::Driven;
use super::Error;
use crate::prefix::{self, Connection, Event};
use ::tokio::io::{AsyncRead, AsyncWrite};
use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A [`prefix::Connection`] driven over `S`: frames in with
/// [`next`](Self::next), out with [`send`](Self::send); its idle timeout
/// and heartbeat run on tokio's clock inside those calls. Like
/// [`WebSocket`](super::WebSocket), a [`Stream`] of received frames and a
/// [`Sink`] of frames to send, and cancellation safe in the same way:
/// every method but [`send`](Self::send), which queues its frame when
/// first polled and only then writes (see there).
///
/// While the peer reads nothing, the connection's idle timeout and
/// heartbeat keep running. Once the connection is finished (closed, the
/// peer's end, the idle timeout, a framing error), what is still queued
/// gets the linger ([`DEFAULT_LINGER`](Self::DEFAULT_LINGER), or
/// [`set_linger`](Self::set_linger)) to go out, counted from the first
/// wait after the end and started again whenever the peer reads some of
/// it; then it is dropped, nothing more is written, and
/// the waiting method returns the failure (if not yet returned) or
/// [`Error::Linger`]. While the connection is open, a write waits as long
/// as the peer does not read, as a blocking socket would.
///
/// ```
/// use sansproto::prefix::{Config, Connection};
/// use sansproto::tokio::Frames;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (a, b) = tokio::io::duplex(1024);
/// let mut left = Frames::new(a, Connection::new(Config::default()));
/// let mut right = Frames::new(b, Connection::new(Config::default()));
/// left.send(&b"{\"hello\":1}"[..]).await?;
/// assert_eq!(right.next().await.unwrap()?, &b"{\"hello\":1}"[..]);
/// # Ok::<(), sansproto::tokio::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Frames<S> {
    inner: Driven<S, Connection>,
}

impl<S> Frames<S> {
    /// How long what is queued may wait on a peer that reads nothing once
    /// the connection is finished, unless [`set_linger`](Self::set_linger)
    /// says otherwise: 10 s, the WebSocket close timeout's default.
    pub const DEFAULT_LINGER: Duration = Duration::from_secs(10);
}

impl<S: AsyncRead + AsyncWrite + Unpin> Frames<S> {
    /// Drives `conn` over `io`, with the [`DEFAULT_LINGER`](Self::DEFAULT_LINGER).
    pub fn new(io: S, conn: Connection) -> Self {
        Self {
            inner: Driven::new(io, conn, Some(Self::DEFAULT_LINGER)),
        }
    }

    /// Sets how long what is queued may wait on a peer that reads nothing
    /// once the connection is finished; `None`: as long as it takes. A
    /// wait already under way starts again.
    pub fn set_linger(&mut self, linger: Option<Duration>) {
        self.inner.set_linger(linger);
    }

    /// The next frame; `None` once the stream has ended cleanly (or the
    /// idle timeout passed). A stream that breaks the framing is returned
    /// once as [`Error::Prefix`], then `None`.
    pub async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        poll_fn(|cx| self.poll_next_frame(cx)).await
    }

    /// The next event of any kind; `None` once the connection is finished
    /// and its output written.
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        poll_fn(|cx| self.inner.poll_next_event(cx)).await
    }

    /// Queues `payload` as one frame, then writes it out (with whatever
    /// else is queued), as [`flush`](Self::flush) does. A refused frame
    /// (the connection closed, or the send queue full) comes back in
    /// [`Error::FrameRefused`].
    ///
    /// Not cancellation safe as a whole: the frame is queued when the
    /// future is first polled, and only the write after that may be
    /// dropped safely. A send dropped before it completes has queued its
    /// frame, which goes out with the next write; calling `send` with it
    /// again sends it twice. To bound the wait, queue the frame through
    /// [`connection`](Self::connection) (`prefix::Connection::send`) and
    /// put `flush`, which is cancellation safe, in the `select!`.
    pub async fn send(&mut self, payload: impl AsRef<[u8]>) -> Result<(), Error> {
        self.queue(payload)?;
        self.flush().await
    }

    /// Writes what is queued; once the connection is finished, for at most
    /// the linger.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_flush(cx)).await
    }

    /// Finishes the connection once what is queued is written, and shuts
    /// the stream's write side. Against a peer that reads nothing it
    /// returns [`Error::Linger`] after the linger, with what was queued
    /// dropped.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.inner.machine.close();
        poll_fn(|cx| self.inner.poll_shutdown(cx)).await
    }

    /// The connection, for its state and the commands the adapter does not
    /// wrap (batches, headers, multi-part frames, timers).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.inner.machine
    }

    /// The stream and the connection.
    pub fn into_inner(self) -> (S, Connection) {
        (self.inner.io, self.inner.machine)
    }

    /// Queues `payload` as one frame, or hands it back.
    fn queue(&mut self, payload: impl AsRef<[u8]>) -> Result<(), Error> {
        self.inner.machine.send(payload).map_err(|e| {
            let (kind, payload) = e.into_parts();
            let payload = Bytes::copy_from_slice(payload.as_ref());
            Error::FrameRefused(prefix::SendError::new(kind, payload))
        })
    }

    /// The next frame, poll by poll: what [`next`](Self::next) awaits.
    fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        self.inner.poll_next_picked(cx, |event| match event {
            Event::Frame(frame) => Some(frame),
            _ => None,
        })
    }
}

/// Received frames, as [`next`](Frames::next) gives them.
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Frames<S> {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_frame(cx)
    }
}

/// Frames to send. `poll_ready` waits while the send queue is over its
/// high mark ([`Builder::send_marks`](crate::prefix::Builder::send_marks)),
/// writing it out meanwhile; `poll_close` finishes the connection once
/// what is queued is written (for at most the linger), and shuts the
/// stream's write side.
impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Bytes> for Frames<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: Bytes) -> Result<(), Error> {
        self.get_mut().queue(frame)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.inner.machine.close();
        this.inner.poll_shutdown(cx)
    }
}

//! A WebSocket connection over a tokio stream.

use super::Error;
use crate::ws::{
    Accept, ClientRequest, CloseCode, Config, Connection, Event, Message, Opened, Reject,
    UpgradeRequest,
};
use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::time::{sleep_until, Instant};
use bytes::Buf;

/// The least space offered to each read: a read that stops short of a
/// frame's end costs another one.
const READ_SIZE: usize = 64 * 1024;

/// A [`Connection`] driven over `S`: messages in with
/// [`next`](Self::next), out with [`send`](Self::send). Pings are answered,
/// and the closing handshake and the deadlines run, inside those calls.
///
/// Every method is cancellation safe: the connection holds what was read
/// and what is still to be written.
#[derive(Debug)]
pub struct WebSocket<S> {
    io: S,
    conn: Connection,
    /// The connection's failure was returned once.
    reported: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Drives `conn` over `io` as it is: a server or client connection
    /// still in its handshake (events such as [`Event::Upgrade`] come out
    /// of [`next_event`](Self::next_event)), or one opened elsewhere
    /// ([`Connection::after_handshake`]).
    pub fn new(io: S, conn: Connection) -> Self {
        Self {
            io,
            conn,
            reported: false,
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
    /// sent, and returned as the connection's failure.
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
        loop {
            match ws.next_event().await? {
                Some(Event::Upgrade(request)) => {
                    let refused = match decide(&request) {
                        Ok(accept) => ws.conn.accept(accept).err().map(|e| e.kind().clone()),
                        Err(reject) => ws.conn.reject(reject).err().map(|e| e.kind().clone()),
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
                None => return Err(ws.failure().unwrap_or(Error::Closed)),
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
        let _ = self.conn.send_http_response(
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
    /// returned once, after its Close frame went out; then `None`.
    pub async fn next(&mut self) -> Option<Result<Message, Error>> {
        loop {
            match self.next_event().await {
                Ok(Some(Event::Message(m))) => return Some(Ok(m)),
                Ok(Some(_)) => {}
                Ok(None) => return self.failure().map(Err),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next event of any kind (opening, messages, pings and pongs,
    /// closing); `None` once the connection is finished and its output
    /// written.
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        loop {
            self.conn.handle_timeout(Instant::now().into_std());
            if let Some(event) = self.conn.poll_event() {
                return Ok(Some(event));
            }
            self.flush().await?;
            if self.conn.is_finished() {
                return Ok(None);
            }
            self.read().await?;
        }
    }

    /// Queues `message` and writes it out (with whatever else is queued).
    /// A refused message (the connection closing, or over the send queue's
    /// limit) comes back in [`Error::MessageRefused`].
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.conn.send(message).map_err(Error::MessageRefused)?;
        self.flush().await
    }

    /// Starts the closing handshake and drives it to its end (the peer's
    /// Close, or the close deadline).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let _ = self.conn.close(code, reason);
        while self.next_event().await?.is_some() {}
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes everything queued (vectored, from where it is queued).
    pub async fn flush(&mut self) -> Result<(), Error> {
        let mut output = self.conn.output();
        while output.has_remaining() {
            // Each write advances the queue: a cancelled flush resumes where
            // it stopped.
            if self.io.write_buf(&mut output).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
        }
        self.io.flush().await?;
        Ok(())
    }

    /// The connection, for its state and the commands the adapter does not
    /// wrap (pings, borrowed sends, statistics).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream and the connection.
    pub fn into_inner(self) -> (S, Connection) {
        (self.io, self.conn)
    }

    /// Reads once from the stream into the connection, waiting no longer
    /// than its next deadline.
    async fn read(&mut self) -> Result<(), Error> {
        let deadline = self.conn.poll_timeout().map(Instant::from_std);
        let Self { io, conn, .. } = self;
        // `None` only while events wait to be polled: the caller polls them.
        let Some(buf) = conn.receive_buf_mut(READ_SIZE) else {
            return Ok(());
        };
        let read = async {
            match deadline {
                Some(at) => ::tokio::select! {
                    n = io.read_buf(buf) => Some(n),
                    () = sleep_until(at) => None,
                },
                None => Some(io.read_buf(buf).await),
            }
        };
        match read.await {
            // Past the deadline: `handle_timeout` runs on the next pass.
            None => {
                let _ = conn.commit_appended();
            }
            Some(Ok(0)) => {
                let _ = conn.receive_eof();
            }
            Some(Ok(_)) => {
                let _ = conn.commit_appended();
            }
            Some(Err(e)) => return Err(e.into()),
        }
        Ok(())
    }

    /// The connection's failure, the first time it is asked for.
    fn failure(&mut self) -> Option<Error> {
        if self.reported {
            return None;
        }
        let e = self.conn.error()?.clone();
        self.reported = true;
        Some(Error::Ws(e))
    }
}

//! Length-prefixed frames over a tokio stream.

use super::Error;
use crate::prefix::{self, Connection, Event};
use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::time::{sleep_until, Instant};
use bytes::Bytes;

/// The most read at once.
const READ_SIZE: usize = 64 * 1024;

/// A [`prefix::Connection`] driven over `S`: frames in with
/// [`next`](Self::next), out with [`send`](Self::send); its idle timeout
/// and heartbeat run on tokio's clock inside those calls. Cancellation
/// safe, as [`WebSocket`](super::WebSocket) is.
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
    io: S,
    conn: Connection,
    /// Read from the stream; `taken` bytes of it are in the connection.
    input: Vec<u8>,
    taken: usize,
    /// Taken from the connection to write; `written` bytes of it are out.
    output: Vec<u8>,
    written: usize,
    /// The connection's failure was returned once.
    reported: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Frames<S> {
    /// Drives `conn` over `io`.
    pub fn new(io: S, conn: Connection) -> Self {
        Self {
            io,
            conn,
            input: Vec::new(),
            taken: 0,
            output: Vec::new(),
            written: 0,
            reported: false,
        }
    }

    /// The next frame; `None` once the stream has ended cleanly (or the
    /// idle timeout passed). A stream that breaks the framing is returned
    /// once as [`Error::Prefix`], then `None`.
    pub async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            match self.next_event().await {
                Ok(Some(Event::Frame(frame))) => return Some(Ok(frame)),
                Ok(Some(_)) => {}
                Ok(None) => return self.failure().map(Err),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next event of any kind; `None` once the connection is finished
    /// and its output written.
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

    /// Queues `payload` as one frame and writes it out. A refused frame
    /// (the connection closed, or the send queue full) comes back in
    /// [`Error::FrameRefused`].
    pub async fn send(&mut self, payload: impl AsRef<[u8]>) -> Result<(), Error> {
        if let Err(e) = self.conn.send(payload) {
            let (kind, payload) = e.into_parts();
            let payload = Bytes::copy_from_slice(payload.as_ref());
            return Err(Error::FrameRefused(prefix::SendError::new(kind, payload)));
        }
        self.flush().await
    }

    /// Writes what is queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        loop {
            if self.written == self.output.len() {
                self.output.clear();
                self.written = 0;
                if self.conn.poll_transmit(&mut self.output) == 0 {
                    break;
                }
            }
            // Only what was written counts as out: a cancelled flush
            // resumes where it stopped.
            let rest = self.output.get(self.written..).unwrap_or(&[]);
            let n = self.io.write(rest).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            self.written += n;
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Finishes the connection once what is queued is written.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.conn.close();
        self.flush().await?;
        self.io.shutdown().await?;
        Ok(())
    }

    /// The connection, for its state and the commands the adapter does not
    /// wrap (batches, headers).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream and the connection.
    pub fn into_inner(self) -> (S, Connection) {
        (self.io, self.conn)
    }

    /// Feeds the connection what was read and not yet taken, or reads once
    /// from the stream, waiting no longer than the next deadline.
    async fn read(&mut self) -> Result<(), Error> {
        if self.taken < self.input.len() {
            // Taken whole, or not at all while events wait (they are polled
            // before the next call).
            let rest = self.input.get(self.taken..).unwrap_or(&[]);
            if let Ok(n) = self.conn.receive(rest) {
                self.taken += n;
            }
            if self.taken < self.input.len() && self.conn.error().is_none() {
                return Ok(());
            }
        }
        self.input.clear();
        self.taken = 0;
        self.input.reserve(READ_SIZE);
        let deadline = self.conn.poll_timeout().map(Instant::from_std);
        let Self { io, input, .. } = self;
        let read = async {
            match deadline {
                Some(at) => ::tokio::select! {
                    n = io.read_buf(input) => Some(n),
                    () = sleep_until(at) => None,
                },
                None => Some(io.read_buf(input).await),
            }
        };
        match read.await {
            // Past the deadline: `handle_timeout` runs on the next pass.
            None => {}
            Some(Ok(0)) => {
                let _ = self.conn.receive_eof();
            }
            Some(Ok(n)) => {
                if let Ok(taken) = self.conn.receive(self.input.get(..n).unwrap_or(&[])) {
                    self.taken = taken;
                }
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
        Some(Error::Prefix(e))
    }
}

impl From<prefix::DecodeError> for Error {
    fn from(e: prefix::DecodeError) -> Self {
        Error::Prefix(e)
    }
}

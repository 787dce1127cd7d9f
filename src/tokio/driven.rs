//! The one loop behind the stream adapters: a machine driven over a tokio
//! stream, poll by poll. Reads land straight in the machine's receive
//! buffer, output leaves as its queued chunks (vectored when the stream
//! can), and the machine's next deadline bounds every wait.

use super::Error;
use crate::{Driver, Output};
use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::time::{Instant, Sleep};
use bytes::{Buf, BytesMut};
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// The least space offered to each read: a read that stops short of a
/// frame's end costs another one.
const READ_SIZE: usize = 64 * 1024;

/// Most chunks handed to one vectored write.
const MAX_SLICES: usize = 64;

/// What the adapters need of a stream machine beyond [`Driver`].
pub(crate) trait Machine: Driver {
    /// The receive buffer to append a read to; `None` while events must be
    /// polled first (or the machine takes no more input).
    fn lend(&mut self, min: usize) -> Option<&mut BytesMut>;
    /// Takes what the read appended.
    fn take_appended(&mut self);
    /// What is queued to send.
    fn output(&mut self) -> Output<'_>;
    /// The machine's sticky failure, as the adapters report it.
    fn failure(&self) -> Option<Error>;
    /// Whether the send queue is over its high mark.
    fn is_backpressured(&self) -> bool;
}

/// A machine and the stream it is driven over.
#[derive(Debug)]
pub(crate) struct Driven<S, M> {
    pub(crate) io: S,
    pub(crate) machine: M,
    /// Wakes the task at the machine's next deadline.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The machine's failure was returned once.
    reported: bool,
    /// The stream's read side ended.
    eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin, M: Machine> Driven<S, M> {
    pub(crate) fn new(io: S, machine: M) -> Self {
        Self {
            io,
            machine,
            sleep: None,
            reported: false,
            eof: false,
        }
    }

    /// The next event; `None` once the machine is finished and its output
    /// written. Every step is kept in the machine, so a dropped poll loses
    /// nothing.
    pub(crate) fn poll_next_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<M::Event>, Error>> {
        loop {
            self.machine.handle_timeout(Instant::now().into_std());
            if let Some(event) = self.machine.poll_event() {
                return Poll::Ready(Ok(Some(event)));
            }
            match self.poll_flush(cx) {
                Poll::Ready(result) => result?,
                // A peer that reads nothing does not hold the deadlines
                // off: they run while the output waits.
                Poll::Pending if self.poll_deadline(cx).is_ready() => continue,
                Poll::Pending => return Poll::Pending,
            }
            if self.machine.is_finished() {
                return Poll::Ready(Ok(None));
            }
            let read = if self.eof {
                // The stream ended but the machine goes on (it waits for
                // the application, or a deadline): nothing more to read.
                if self.machine.poll_timeout().is_none() {
                    return Poll::Ready(Ok(None));
                }
                Poll::Pending
            } else {
                self.poll_read(cx)
            };
            match read {
                Poll::Ready(result) => result?,
                Poll::Pending => {
                    if self.poll_deadline(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// The next event `pick` takes (a message, a frame), skipping the
    /// others; `None` once the machine is finished, after its failure was
    /// returned once.
    pub(crate) fn poll_next_picked<T>(
        &mut self,
        cx: &mut Context<'_>,
        pick: impl Fn(M::Event) -> Option<T>,
    ) -> Poll<Option<Result<T, Error>>> {
        loop {
            match ready!(self.poll_next_event(cx)) {
                Ok(Some(event)) => {
                    if let Some(item) = pick(event) {
                        return Poll::Ready(Some(Ok(item)));
                    }
                }
                Ok(None) => return Poll::Ready(self.take_failure().map(Err)),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }

    /// Ready for another send: at once, or, while the send queue is over
    /// its high mark, once writing has brought it down.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.machine.is_backpressured() {
            ready!(self.poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes everything queued, from where it is queued.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Self { io, machine, .. } = self;
        let mut output = machine.output();
        while output.has_remaining() {
            let written = if io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let n = output.chunks_vectored(&mut slices);
                let slices = slices.get(..n).unwrap_or_default();
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, slices))?
            } else {
                ready!(Pin::new(&mut *io).poll_write(cx, output.chunk()))?
            };
            if written == 0 {
                return Poll::Ready(Err(
                    std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                ));
            }
            // Each write advances the queue: a dropped flush resumes where
            // it stopped.
            output.advance(written);
        }
        Pin::new(io).poll_flush(cx).map_err(Error::from)
    }

    /// Reads once into the machine.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Self {
            io, machine, eof, ..
        } = self;
        // `None` only while events wait to be polled: the caller polls them.
        let Some(buf) = machine.lend(READ_SIZE) else {
            return Poll::Ready(Ok(()));
        };
        let n = ready!(tokio_util::io::poll_read_buf(Pin::new(io), cx, buf))?;
        // Failures are sticky in the machine and come out as its events
        // and its failure.
        if n == 0 {
            *eof = true;
            let _ = machine.receive_eof();
        } else {
            machine.take_appended();
        }
        Poll::Ready(Ok(()))
    }

    /// Ready once the machine's next deadline has passed (never without
    /// one); registers the task to wake then.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.machine.poll_timeout() else {
            return Poll::Pending;
        };
        let at = Instant::from_std(deadline);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(::tokio::time::sleep_until(at)));
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        sleep.as_mut().poll(cx)
    }

    /// The machine's failure, the first time it is asked for.
    pub(crate) fn take_failure(&mut self) -> Option<Error> {
        if self.reported {
            return None;
        }
        let e = self.machine.failure()?;
        self.reported = true;
        Some(e)
    }
}

impl Machine for crate::ws::Connection {
    fn lend(&mut self, min: usize) -> Option<&mut BytesMut> {
        self.receive_buf_mut(min)
    }

    fn take_appended(&mut self) {
        let _ = self.commit_appended();
    }

    fn output(&mut self) -> Output<'_> {
        crate::ws::Connection::output(self)
    }

    fn failure(&self) -> Option<Error> {
        self.error().cloned().map(Error::Ws)
    }

    fn is_backpressured(&self) -> bool {
        crate::ws::Connection::is_backpressured(self)
    }
}

impl Machine for crate::prefix::Connection {
    fn lend(&mut self, min: usize) -> Option<&mut BytesMut> {
        self.receive_buf_mut(min)
    }

    fn take_appended(&mut self) {
        let _ = self.commit_appended();
    }

    fn output(&mut self) -> Output<'_> {
        crate::prefix::Connection::output(self)
    }

    fn failure(&self) -> Option<Error> {
        self.error().cloned().map(Error::Prefix)
    }

    fn is_backpressured(&self) -> bool {
        crate::prefix::Connection::is_backpressured(self)
    }
}

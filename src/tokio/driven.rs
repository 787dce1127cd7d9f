//! The one loop behind the stream adapters: a machine driven over a tokio
//! stream, poll by poll. Reads land straight in the machine's receive
//! buffer, output leaves as its queued chunks (vectored when the stream
//! can), and every wait is bounded: by the machine's next deadline while
//! it has one, and once it is finished (closed or failed) by the linger
//! its last output is given to go out.

use super::Error;
use crate::{Driver, Output};
use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::time::{Instant, Sleep};
use bytes::{Buf, BytesMut};
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

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

/// What ended a wait on a stalled write or read.
enum Waited {
    /// The machine's deadline: run its timers and try again.
    Deadline,
    /// The linger of a finished machine's output: give up on it.
    Linger,
}

/// A machine and the stream it is driven over.
#[derive(Debug)]
pub(crate) struct Driven<S, M> {
    pub(crate) io: S,
    pub(crate) machine: M,
    /// Wakes the task at the next deadline (the machine's, or the linger).
    sleep: Option<Pin<Box<Sleep>>>,
    /// The machine's failure was returned once.
    reported: bool,
    /// The stream's read side ended.
    eof: bool,
    /// How long output may wait on the peer once the machine is finished;
    /// `None`: as long as it takes.
    linger: Option<Duration>,
    /// When that output is given up on: set the first time it waits with
    /// the machine finished, kept across calls, and cleared by every write
    /// that makes progress (the linger bounds a peer that reads nothing,
    /// not a slow one).
    linger_until: Option<Instant>,
    /// The linger passed: what was queued was dropped, and nothing more is
    /// written.
    abandoned: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin, M: Machine> Driven<S, M> {
    pub(crate) fn new(io: S, machine: M, linger: Option<Duration>) -> Self {
        Self {
            io,
            machine,
            sleep: None,
            reported: false,
            eof: false,
            linger,
            linger_until: None,
            abandoned: false,
        }
    }

    /// Sets the linger; a wait already under way starts it again.
    pub(crate) fn set_linger(&mut self, linger: Option<Duration>) {
        self.linger = linger;
        self.linger_until = None;
    }

    /// The next event; `None` once the machine is finished and its output
    /// written (or given up on). Every step is kept in the machine, so a
    /// dropped poll loses nothing.
    pub(crate) fn poll_next_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<M::Event>, Error>> {
        loop {
            self.machine.handle_timeout(Instant::now().into_std());
            if let Some(event) = self.machine.poll_event() {
                return Poll::Ready(Ok(Some(event)));
            }
            match self.poll_write(cx) {
                Poll::Ready(result) => result?,
                // A peer that reads nothing does not hold the deadlines
                // off: they run while the output waits, and the linger
                // bounds it once they are over.
                Poll::Pending => match ready!(self.poll_wait(cx)) {
                    Waited::Deadline => continue,
                    Waited::Linger => return Poll::Ready(Err(self.give_up())),
                },
            }
            if self.machine.is_finished() {
                return Poll::Ready(Ok(None));
            }
            let read = if self.eof {
                // The stream ended but the machine goes on (it waits for
                // the application, or a deadline): nothing more to read.
                if crate::driver::stalled_at_eof(&self.machine) {
                    return Poll::Ready(Ok(None));
                }
                Poll::Pending
            } else {
                self.poll_read(cx)
            };
            match read {
                Poll::Ready(result) => result?,
                Poll::Pending => {
                    if self.poll_wait(cx).is_pending() {
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

    /// Writes everything queued, from where it is queued. While the peer
    /// reads nothing, the machine's deadlines run; once the machine is
    /// finished and the linger has passed, what is left is dropped and the
    /// machine's failure (if not yet returned) or [`Error::Linger`] comes
    /// back.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_bounded(cx, Self::poll_write)
    }

    /// Writes everything queued, then shuts the stream's write side, within
    /// the same bounds as [`poll_flush`](Self::poll_flush).
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_bounded(cx, |this, cx| {
            ready!(this.poll_write(cx))?;
            if this.abandoned {
                return Poll::Ready(Ok(()));
            }
            Pin::new(&mut this.io)
                .poll_shutdown(cx)
                .map_err(Error::from)
        })
    }

    /// Polls `step` until it is done, running the machine's deadlines while
    /// it waits and giving up when the linger has passed.
    fn poll_bounded(
        &mut self,
        cx: &mut Context<'_>,
        mut step: impl FnMut(&mut Self, &mut Context<'_>) -> Poll<Result<(), Error>>,
    ) -> Poll<Result<(), Error>> {
        loop {
            if let Poll::Ready(result) = step(self, cx) {
                return Poll::Ready(result);
            }
            // Timers start here when nothing has driven the machine yet.
            self.machine.handle_timeout(Instant::now().into_std());
            match ready!(self.poll_wait(cx)) {
                Waited::Deadline => {}
                Waited::Linger => return Poll::Ready(Err(self.give_up())),
            }
        }
    }

    /// Writes everything queued, from where it is queued, and flushes the
    /// stream; nothing once the output was given up on.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.abandoned {
            return Poll::Ready(Ok(()));
        }
        let Self {
            io,
            machine,
            linger_until,
            ..
        } = self;
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
            // The peer reads: a linger under way starts again.
            *linger_until = None;
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

    /// Ready once what bounds the current wait has passed: the machine's
    /// next deadline, or, once the machine is finished, the linger (never
    /// without either); registers the task to wake then.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Waited> {
        let (at, waited) = match self.machine.poll_timeout() {
            Some(deadline) => (Instant::from_std(deadline), Waited::Deadline),
            None if self.machine.is_finished() => match self.linger_deadline() {
                Some(at) => (at, Waited::Linger),
                None => return Poll::Pending,
            },
            None => return Poll::Pending,
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(::tokio::time::sleep_until(at)));
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(waited)
    }

    /// When the finished machine's output is given up on, counted from the
    /// first time it waits since a write last made progress; `None`
    /// without a linger.
    fn linger_deadline(&mut self) -> Option<Instant> {
        let linger = self.linger?;
        Some(
            *self
                .linger_until
                .get_or_insert_with(|| deadline_after(linger)),
        )
    }

    /// The linger passed: drops what is still queued, writes nothing more,
    /// and says why.
    fn give_up(&mut self) -> Error {
        let mut output = self.machine.output();
        let dropped = output.remaining();
        output.advance(dropped);
        self.abandoned = true;
        self.take_failure().unwrap_or(Error::Linger { dropped })
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

/// `now + after` on tokio's clock, saturating as the machines' deadlines
/// do.
pub(super) fn deadline_after(after: Duration) -> Instant {
    Instant::from_std(crate::timer::deadline_after(
        Instant::now().into_std(),
        after,
    ))
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

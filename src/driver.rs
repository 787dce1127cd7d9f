//! The one contract every stream machine in this crate honours.
//!
//! [`Driver`] is the sans-IO form of a transport driver: bytes come in through
//! [`Driver::receive`], the end of the stream through [`Driver::receive_eof`];
//! the machine answers with events ([`Driver::poll_event`]) and bytes to send
//! ([`Driver::poll_transmit`]). Time enters only through
//! [`Driver::handle_timeout`], with an `Instant` the caller read from its own
//! clock. One generic loop therefore drives a WebSocket connection and a
//! length-prefixed connection alike:
//!
//! ```no_run
//! use sansproto::Driver;
//! use std::io::{Read, Write};
//! use std::time::{Duration, Instant};
//!
//! fn run<D: Driver>(
//!     stream: &mut std::net::TcpStream,
//!     machine: &mut D,
//!     mut on_event: impl FnMut(&mut D, D::Event),
//! ) -> std::io::Result<()> {
//!     let mut input = vec![0u8; 64 * 1024];
//!     let mut output = Vec::new();
//!     loop {
//!         // 1. Run due timers (this also starts them on the first pass).
//!         machine.handle_timeout(Instant::now());
//!         // 2. Write whatever the machine wants sent.
//!         machine.poll_transmit(&mut output);
//!         stream.write_all(&output)?;
//!         output.clear();
//!         if machine.is_finished() {
//!             return Ok(());
//!         }
//!         // 3. Wait for bytes, at most until the next timer.
//!         let wait = machine
//!             .poll_timeout()
//!             .map(|t| t.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
//!         stream.set_read_timeout(wait)?;
//!         match stream.read(&mut input) {
//!             Ok(0) => { let _ = machine.receive_eof(); }
//!             Ok(n) => {
//!                 // 4. Feed the bytes, handing every event to the
//!                 //    application whenever the machine asks for that first.
//!                 let mut data = &input[..n];
//!                 while !data.is_empty() {
//!                     match machine.receive(data) {
//!                         Ok(taken) => data = &data[taken..],
//!                         Err(_) => break, // the machine has failed
//!                     }
//!                     while let Some(event) = machine.poll_event() {
//!                         on_event(machine, event);
//!                     }
//!                 }
//!             }
//!             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
//!                 || e.kind() == std::io::ErrorKind::TimedOut => {}
//!             Err(e) => return Err(e),
//!         }
//!         while let Some(event) = machine.poll_event() {
//!             on_event(machine, event);
//!         }
//!     }
//! }
//! ```
//!
//! The call order is free: every method may be called at any time, extra
//! `handle_timeout` calls are harmless, and a machine that has failed keeps
//! returning the same error from `receive`. Timers start at the first
//! `handle_timeout` call, and inbound bytes received since the previous call
//! count as activity at its `now`, so call it after every read as above.

use std::time::Instant;

/// A sans-IO stream protocol machine: bytes in, events and bytes out.
///
/// Implemented by [`crate::ws::Connection`] and [`crate::prefix::Connection`].
pub trait Driver {
    /// What the machine reports to the application.
    type Event;
    /// Why the machine failed. Errors caused by the peer are sticky: once
    /// returned, every later `receive` returns the same error again.
    type Error: std::error::Error;

    /// Feeds bytes read from the transport and returns how many it took:
    /// all of `data`, or none (`Ok(0)`) once as many events as the
    /// machine's configured bound wait to be polled, until `poll_event`
    /// has drained them. Then offer the same bytes again; nothing is lost. This keeps what a
    /// peer can make the machine hold bounded when the application falls
    /// behind. A loop that polls every event after each `receive` (until
    /// `poll_event` returns `None`) always has its bytes taken whole. A
    /// failure in input that waited is found while the events are polled:
    /// the machine is then finished, and the next `receive` returns it. Never pass an empty slice to mean end of stream; call
    /// [`Driver::receive_eof`] instead.
    ///
    /// Events completed before a failure stay available from
    /// [`Driver::poll_event`], and whatever the machine sends on failure (a
    /// WebSocket Close frame, an HTTP error response) is queued for
    /// [`Driver::poll_transmit`] before the error is returned.
    fn receive(&mut self, data: &[u8]) -> Result<usize, Self::Error>;

    /// Reports that the transport's read side reached end of stream.
    fn receive_eof(&mut self) -> Result<(), Self::Error>;

    /// Takes the next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// Appends every queued outgoing byte to `out` and returns how many were
    /// appended.
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize;

    /// The earliest instant at which [`Driver::handle_timeout`] has work to do.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Runs every timer that is due at `now`. Calling it early or twice is harmless.
    fn handle_timeout(&mut self, now: Instant);

    /// True once the machine has nothing more to send or receive: after the
    /// queued output is written, the transport should be closed.
    fn is_finished(&self) -> bool;
}

/// Implements [`Driver`] for a machine whose inherent methods of the same
/// names and signatures do the work (every machine of the crate has them,
/// so that callers need not import the trait).
macro_rules! by_inherent_methods {
    ($machine:ty, $event:ty, $error:ty) => {
        impl $crate::Driver for $machine {
            type Event = $event;
            type Error = $error;

            fn receive(&mut self, data: &[u8]) -> Result<usize, $error> {
                <$machine>::receive(self, data)
            }
            fn receive_eof(&mut self) -> Result<(), $error> {
                <$machine>::receive_eof(self)
            }
            fn poll_event(&mut self) -> Option<$event> {
                <$machine>::poll_event(self)
            }
            fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
                <$machine>::poll_transmit(self, out)
            }
            fn poll_timeout(&self) -> Option<std::time::Instant> {
                <$machine>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: std::time::Instant) {
                <$machine>::handle_timeout(self, now)
            }
            fn is_finished(&self) -> bool {
                <$machine>::is_finished(self)
            }
        }
    };
}
pub(crate) use by_inherent_methods;

/// Whether a loop driving `machine` over a stream whose read side has
/// ended should stop: the machine is not finished and has no deadline, so
/// nothing the loop does can move it on (it waits for the application,
/// which hears only of the events already handed out).
///
/// Such a loop never reads again: a read at the end of a stream returns at
/// once, so reading again would spin. While the machine has a deadline it
/// waits for that instead, its timers being what can still end it.
pub(crate) fn stalled_at_eof<D: Driver + ?Sized>(machine: &D) -> bool {
    !machine.is_finished() && machine.poll_timeout().is_none()
}

//! A blocking `std::net` loop that drives any [`Driver`]: a WebSocket
//! connection, a length-prefixed connection, or a machine wrapping one (TLS,
//! a proxy tunnel).
//!
//! [`drive`] reads with a timeout taken from the machine's next deadline
//! ([`Driver::poll_timeout`]), so its timers (keepalive pings, close and
//! idle timeouts) fire even while the peer is silent. Writes wait the same
//! way, and at each deadline a waiting write first takes what the peer has
//! sent meanwhile (no more than the peer has read), then runs the timers: a
//! peer that reads a large output slowly has its pongs, its Close and its
//! data seen while the output is still going out, while a peer that reads
//! nothing is heard once and then times out as a silent one does. The last
//! output of a finished machine is given up once the peer has read none of
//! it for two seconds: a peer that stops reading does not hold a thread for
//! ever. Every event goes to a
//! callback, which may answer through the machine it is handed:
//!
//! ```no_run
//! use sansproto::{blocking, ws};
//! use std::net::TcpListener;
//!
//! let listener = TcpListener::bind("127.0.0.1:9002")?;
//! for stream in listener.incoming() {
//!     let mut stream = stream?;
//!     let mut conn = ws::Connection::server(ws::Config::default());
//!     let failure = blocking::drive(&mut stream, &mut conn, |conn, event| {
//!         if let ws::Event::Message(message) = event {
//!             let _ = conn.send(message); // echo
//!         }
//!     })?;
//!     if let Some(e) = failure {
//!         eprintln!("the peer broke the protocol: {e}");
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! With [`serve`] running the server and [`connect`] opening a client, over
//! loopback:
//!
//! ```
//! use sansproto::{blocking, ws};
//! use std::net::TcpListener;
//! use std::thread;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let url = format!("ws://{}/", listener.local_addr()?);
//! thread::spawn(move || {
//!     let make = || ws::Connection::server(ws::Config::default());
//!     blocking::serve(listener, 4, make, |conn, event| {
//!         if let ws::Event::Message(message) = event {
//!             let _ = conn.send(message); // echo
//!         }
//!     })
//! });
//! let (mut stream, mut conn) = blocking::connect(&url, ws::Config::default())?;
//! conn.send("hello").expect("queued until the handshake completes");
//! let mut echoed = None;
//! blocking::drive(&mut stream, &mut conn, |conn, event| {
//!     if let ws::Event::Message(message) = event {
//!         echoed = Some(message);
//!         let _ = conn.close(ws::CloseCode::NORMAL, "done");
//!     }
//! })?;
//! assert_eq!(echoed, Some(ws::Message::from("hello")));
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::ws::{self, ClientRequest, WsUrl};
use crate::Driver;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The most read at once.
const READ_SIZE: usize = 64 * 1024;

/// Drives `machine` over `stream` until it is finished or the transport
/// fails, handing every event to `on_event`; then closes the stream
/// gracefully ([`linger_close`]).
///
/// Returns the machine's first error, when the peer broke its protocol (the
/// machine has then already queued its answer, a Close frame say, and it was
/// written), or the transport's error (`ErrorKind::TimedOut` when the peer
/// read nothing of the finished machine's last output for two seconds).
///
/// Input is fed in the order the machine asks for: when it takes no more
/// until its events are polled, they are handed to `on_event` first, so no
/// byte read is lost and no queue grows without bound. That holds while a
/// write waits too: at each deadline what the peer sent meanwhile is read
/// (no more than the peer has read of the output) and fed, its events
/// handed to `on_event` at once, and what the machine queues then (a pong,
/// the answer to a Close) goes out once the output being written has.
///
/// Once the peer's end is read, nothing more is: a machine that goes on
/// is driven by its timers alone, until its next deadline; one left
/// unfinished with no deadline (waiting for an answer `on_event` did not
/// give) is left as it is, and `drive` returns.
pub fn drive<D: Driver>(
    stream: &mut TcpStream,
    machine: &mut D,
    on_event: impl FnMut(&mut D, D::Event),
) -> io::Result<Option<D::Error>> {
    let mut inbound = Inbound {
        buf: vec![0u8; READ_SIZE],
        on_event,
        failure: None,
        eof: false,
    };
    let mut output = Vec::new();
    let result = loop {
        // Due timers run (and start, on the first pass).
        machine.handle_timeout(Instant::now());
        while let Some(event) = machine.poll_event() {
            (inbound.on_event)(machine, event);
        }
        if machine.poll_transmit(&mut output) > 0 {
            if let Err(e) = write_out(stream, machine, &mut output, &mut inbound) {
                break Err(e);
            }
            // Round again: while the write waited, input may have been fed
            // and timers run, and what the machine queued or reported then
            // (a pong, the answer to a Close, its end) comes first.
            continue;
        }
        if machine.is_finished() {
            break Ok(());
        }
        if inbound.eof {
            // The stream ended and the machine goes on: reading again would
            // return at once, for ever. Only its timers can end it now.
            if crate::driver::stalled_at_eof(machine) {
                break Ok(());
            }
            if let Some(wait) = read_timeout(machine, Instant::now()) {
                thread::sleep(wait);
            }
            continue;
        }
        // Wait for bytes at most until the next deadline.
        if let Err(e) = stream.set_read_timeout(read_timeout(machine, Instant::now())) {
            break Err(e);
        }
        if let Err(e) = inbound.read(stream, machine, READ_SIZE) {
            break Err(e);
        }
    };
    linger_close(stream);
    result.map(|()| inbound.failure)
}

/// The peer's side of [`drive`]: the read buffer, the event callback, the
/// machine's first error, and whether the peer's end was read.
struct Inbound<D: Driver, F> {
    buf: Vec<u8>,
    on_event: F,
    failure: Option<D::Error>,
    eof: bool,
}

impl<D: Driver, F: FnMut(&mut D, D::Event)> Inbound<D, F> {
    /// Reads at most `limit` bytes once (waiting as the stream is set to)
    /// and feeds what came to `machine`, the peer's end as
    /// [`Driver::receive_eof`]. Returns how many bytes came: 0 at the end
    /// or when the read timed out, would block or was interrupted.
    fn read(&mut self, stream: &mut TcpStream, machine: &mut D, limit: usize) -> io::Result<usize> {
        let room = limit.min(self.buf.len());
        let (fed, came) = match stream.read(self.buf.get_mut(..room).unwrap_or(&mut [])) {
            Ok(0) => {
                self.eof = true;
                (machine.receive_eof(), 0)
            }
            Ok(n) => {
                let data = self.buf.get(..n).unwrap_or(&[]);
                (feed(machine, data, &mut self.on_event), n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                return Ok(0)
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = fed {
            self.failure.get_or_insert(e);
        }
        Ok(came)
    }

    /// Takes what the peer has sent already, without waiting for more, up
    /// to `allowance` bytes (which it uses up): reads until none is left,
    /// the peer's end, the machine is finished, or the allowance is spent.
    /// Nothing is read once the peer's end was.
    fn drain(
        &mut self,
        stream: &mut TcpStream,
        machine: &mut D,
        allowance: &mut usize,
    ) -> io::Result<()> {
        if self.eof || *allowance == 0 {
            return Ok(());
        }
        stream.set_nonblocking(true)?;
        let mut read = Ok(());
        while *allowance > 0 && !machine.is_finished() {
            match self.read(stream, machine, *allowance) {
                Ok(0) => break,
                Ok(n) => *allowance = allowance.saturating_sub(n),
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        // Blocking again, whatever the reads did, for the writes' timeouts.
        stream.set_nonblocking(false)?;
        read
    }
}

/// What a write may read of the peer's input before any of its output has
/// gone out: enough for a Close or a few pings, not for a stream of data.
const READ_GRACE: usize = 512;

/// How long the last output of a finished machine may wait for a peer
/// that reads nothing, and how long [`linger_close`] waits for the peer's
/// end.
const LINGER: Duration = Duration::from_secs(2);

/// Writes `output` out and empties it. Each write waits at most until the
/// machine's next deadline. When a write comes back at a deadline and the
/// machine is not finished, what the peer sent meanwhile is read without
/// waiting and fed ([`Inbound::drain`]), then the timers run: the peer's
/// pong or data counts as its activity, and its Close is seen.
///
/// That happens whether the write stalled or got some bytes out: a write
/// returns at the deadline either way, and a peer that reads slowly but
/// steadily makes every write get a few bytes out, so waiting for a stall
/// would leave its pongs unread and the timers stopped.
///
/// What is read is held to what the peer reads: at each deadline no more
/// than the bytes written since the last one (plus [`READ_GRACE`] at the
/// first). So a peer that sends but never reads is heard until the socket
/// stops taking output, then its pong or close timeout ends the machine as
/// if nothing were read; and what the application answers to the input
/// read meanwhile stays within what went out.
///
/// What the machine queues meanwhile (pongs, the answer to a Close, a
/// keepalive ping, a Close on a timeout) stays in its own queue, bounded
/// by its limits, and [`drive`] writes it right after `output`: where it
/// would go if appended here, without this buffer growing at every
/// deadline.
///
/// Once the machine is finished, its output is given up with
/// `ErrorKind::TimedOut` when the peer reads none of it for [`LINGER`]. An
/// open machine without deadlines waits for the peer as a blocking socket
/// does.
fn write_out<D: Driver, F: FnMut(&mut D, D::Event)>(
    stream: &mut TcpStream,
    machine: &mut D,
    output: &mut Vec<u8>,
    inbound: &mut Inbound<D, F>,
) -> io::Result<()> {
    let mut written = 0;
    let mut given_up_at = None;
    let mut allowance = READ_GRACE;
    while written < output.len() {
        let now = Instant::now();
        let wait = match (machine.is_finished(), given_up_at) {
            (false, _) => read_timeout(machine, now),
            (true, None) => {
                given_up_at = Some(now + LINGER);
                Some(LINGER)
            }
            (true, Some(at)) => Some(at.saturating_duration_since(now)),
        };
        if wait.is_some_and(|w| w.is_zero()) {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                "the peer read nothing of the last output",
            ));
        }
        stream.set_write_timeout(wait)?;
        let stalled = match stream.write(output.get(written..).unwrap_or(&[])) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                allowance = allowance.saturating_add(n);
                // The peer reads: the linger starts again.
                given_up_at = None;
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(e) if e.kind() == ErrorKind::Interrupted => false,
            Err(e) => return Err(e),
        };
        let due = machine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= Instant::now());
        if written < output.len() && !machine.is_finished() && (stalled || due) {
            inbound.drain(stream, machine, &mut allowance)?;
            // What was not read now is not owed later: the next reads wait
            // for more of the output to go.
            allowance = 0;
            machine.handle_timeout(Instant::now());
        }
    }
    output.clear();
    Ok(())
}

/// Serves the connections `listener` accepts, each on a thread of its own,
/// at most `max_connections` at once (accepting waits while that many are
/// open): a machine from `make` (for example
/// `|| ws::Connection::server(config.clone())`) driven by [`drive`], its
/// events handed to `on_event`. Never returns; a failed accept (no file
/// descriptors left, say) is retried after a pause. A panic in `make` or
/// `on_event` ends that connection's thread (its stream dropped) and
/// frees its place among the `max_connections`.
///
/// ```no_run
/// use sansproto::{blocking, ws};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:9002")?;
/// blocking::serve(
///     listener,
///     1000,
///     || ws::Connection::server(ws::Config::default()),
///     |conn, event| {
///         if let ws::Event::Message(m) = event {
///             let _ = conn.send(m);
///         }
///     },
/// )
/// # ; Ok::<(), std::io::Error>(())
/// ```
pub fn serve<D, M, F>(listener: TcpListener, max_connections: usize, make: M, on_event: F)
where
    D: Driver + 'static,
    M: Fn() -> D + Send + Sync + 'static,
    F: Fn(&mut D, D::Event) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let on_event = Arc::new(on_event);
    let open = Arc::new(Open::default());
    let max = max_connections.max(1);
    loop {
        let slot = Slot::take(&open, max);
        let mut stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        };
        let (make, on_event) = (Arc::clone(&make), Arc::clone(&on_event));
        thread::spawn(move || {
            // Given back when the thread ends, by a panic in `make` or
            // `on_event` too.
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let mut machine = make();
            let _ = drive(&mut stream, &mut machine, |m, e| on_event(m, e));
        });
    }
}

/// The connections [`serve`] has open, and a signal when one ends.
#[derive(Default)]
struct Open {
    count: Mutex<usize>,
    ended: Condvar,
}

/// One of [`serve`]'s connections, counted in [`Open`] until dropped.
struct Slot(Arc<Open>);

impl Slot {
    /// Waits until fewer than `max` connections are open, and counts one
    /// more.
    fn take(open: &Arc<Open>, max: usize) -> Self {
        let mut n = open.count.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= max {
            n = open.ended.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Self(Arc::clone(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        drop(n);
        self.0.ended.notify_one();
    }
}

/// Opens a TCP connection to a `ws://` URL and the client connection that
/// will run the opening handshake over it (in [`drive`]). `wss://` needs
/// TLS, which this module does not do: chain a TLS machine (rustls is
/// sans-IO too) with the connection instead.
///
/// ```no_run
/// use sansproto::{blocking, ws};
///
/// let (mut stream, mut conn) = blocking::connect("ws://127.0.0.1:9002/", ws::Config::default())?;
/// conn.send("hello").expect("queued until the handshake completes");
/// blocking::drive(&mut stream, &mut conn, |conn, event| {
///     if let ws::Event::Message(m) = event {
///         println!("{m:?}");
///         let _ = conn.close(ws::CloseCode::NORMAL, "done");
///     }
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn connect(url: &str, config: ws::Config) -> io::Result<(TcpStream, ws::Connection)> {
    let invalid = |e: String| io::Error::new(ErrorKind::InvalidInput, e);
    let parsed = WsUrl::parse(url).map_err(|e| invalid(e.to_string()))?;
    if parsed.secure {
        return Err(invalid("wss:// needs TLS: chain a TLS machine".into()));
    }
    let request = ClientRequest::from_url(url).map_err(|e| invalid(e.to_string()))?;
    let conn = ws::Connection::client(config, request).map_err(|e| invalid(e.to_string()))?;
    let stream = TcpStream::connect(parsed.authority())?;
    stream.set_nodelay(true)?;
    Ok((stream, conn))
}

/// How long a read may wait: until the machine's next deadline (at least a
/// millisecond, since a zero timeout is refused), or for ever without one.
pub fn read_timeout<D: Driver>(machine: &D, now: Instant) -> Option<Duration> {
    machine.poll_timeout().map(|deadline| {
        deadline
            .saturating_duration_since(now)
            .max(Duration::from_millis(1))
    })
}

/// Feeds `data` to `machine`, handing events to `on_event` whenever the
/// machine takes no more until they are polled. Stops at the machine's
/// error (it reports its end through its events too).
pub fn feed<D: Driver>(
    machine: &mut D,
    mut data: &[u8],
    on_event: &mut impl FnMut(&mut D, D::Event),
) -> Result<(), D::Error> {
    while !data.is_empty() {
        let taken = machine.receive(data)?;
        // `taken` is all of `data` or none of it.
        data = data.get(taken..).unwrap_or(&[]);
        while let Some(event) = machine.poll_event() {
            on_event(machine, event);
        }
    }
    Ok(())
}

/// Half-closes the stream and reads until the peer closes too (for at most
/// two seconds), so that the last bytes written are not lost to a reset
/// when unread input is still in flight.
pub fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + LINGER;
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefix;

    #[test]
    fn feed_hands_out_events_when_the_machine_stops_taking_input() {
        // Six frames, and room for one pending event: they can only be
        // taken by polling between them, however the reads are cut.
        let mut wire = Vec::new();
        for i in 0..6u8 {
            wire.extend_from_slice(&[0, 0, 0, 1, i]);
        }
        for cut in 0..=wire.len() {
            let mut conn = one_event_at_a_time();
            let mut seen = Vec::new();
            let mut on_event = |_: &mut prefix::Connection, event| {
                if let prefix::Event::Frame(f) = event {
                    seen.extend_from_slice(&f);
                }
            };
            let (a, b) = wire.split_at(cut);
            feed(&mut conn, a, &mut on_event).expect("valid frames");
            feed(&mut conn, b, &mut on_event).expect("valid frames");
            feed(&mut conn, &[0, 0, 0], &mut on_event).expect("a partial header");
            while let Some(event) = Driver::poll_event(&mut conn) {
                on_event(&mut conn, event);
            }
            assert_eq!(seen, [0, 1, 2, 3, 4, 5], "cut at {cut}");
        }
        // A frame over the limit is the machine's error.
        let mut conn = one_event_at_a_time();
        let err = feed(&mut conn, &[0xff, 0xff, 0xff, 0xff, 0], &mut |_, _| {});
        assert!(err.is_err(), "{err:?}");
    }

    fn one_event_at_a_time() -> prefix::Connection {
        prefix::Connection::new(
            prefix::Config::builder()
                .max_pending_events(1)
                .build()
                .expect("valid"),
        )
    }

    #[test]
    fn the_read_waits_until_the_next_deadline() {
        let now = Instant::now();
        let mut conn = crate::ws::Connection::server(
            crate::ws::Config::default().with_handshake_timeout(Some(Duration::from_secs(5))),
        );
        crate::Driver::handle_timeout(&mut conn, now);
        assert_eq!(read_timeout(&conn, now), Some(Duration::from_secs(5)));
        // Past the deadline: the shortest wait a socket accepts.
        assert_eq!(
            read_timeout(&conn, now + Duration::from_secs(9)),
            Some(Duration::from_millis(1))
        );
    }
}

//! A blocking `std::net` loop that drives any `sansproto::Driver`.
#![allow(dead_code)]

use sansproto::Driver;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Drives `machine` over `stream` until it is finished or the transport
/// fails, handing every event to `on_event`. Closes the stream gracefully.
pub fn drive<D: Driver>(
    stream: &mut TcpStream,
    machine: &mut D,
    mut on_event: impl FnMut(&mut D, D::Event),
) -> std::io::Result<()> {
    let mut input = vec![0u8; 64 * 1024];
    let mut output = Vec::with_capacity(64 * 1024);
    let result = loop {
        machine.handle_timeout(Instant::now());
        while let Some(event) = machine.poll_event() {
            on_event(machine, event);
        }
        machine.poll_transmit(&mut output);
        if !output.is_empty() {
            if let Err(e) = stream.write_all(&output) {
                break Err(e);
            }
            output.clear();
        }
        if machine.is_finished() {
            break Ok(());
        }
        let wait = machine.poll_timeout().map(|t| {
            t.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        stream.set_read_timeout(wait)?;
        match stream.read(&mut input) {
            Ok(0) => {
                let _ = machine.receive_eof();
            }
            Ok(n) => feed(machine, &input[..n], &mut on_event),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => break Err(e),
        }
    };
    linger_close(stream);
    result
}

/// Feeds `data` to `machine`, handing events to `on_event` whenever the
/// machine takes no more until they are polled.
pub fn feed<D: Driver>(
    machine: &mut D,
    mut data: &[u8],
    on_event: &mut impl FnMut(&mut D, D::Event),
) {
    while !data.is_empty() {
        match machine.receive(data) {
            Ok(taken) => data = data.get(taken..).unwrap_or_default(),
            // Failed: the machine reports its end through its events.
            Err(_) => return,
        }
        while let Some(event) = machine.poll_event() {
            on_event(machine, event);
        }
    }
}

/// Half-closes the stream and reads until the peer closes too (briefly), so
/// the last bytes written are not lost to a reset.
pub fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

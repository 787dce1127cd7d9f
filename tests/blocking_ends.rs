//! How `blocking::drive` and `blocking::serve` end a connection that
//! cannot go on: a plain HTTP request left unanswered, a stream that has
//! ended, a callback that panicked.

use sansproto::ws::{
    CloseCode, Config, Connection, Error, Event, HandshakeError, Message, TimeoutKind,
};
use sansproto::{blocking, Driver};
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for what should happen at once (or at a short
/// deadline) before calling it a hang.
const HANG: Duration = Duration::from_secs(10);

/// What `drive` returned, and the connection's error then.
type Ended = (Option<Error>, Option<Error>);

/// Accepts one connection and drives a server connection made with
/// `config` over it, ignoring every event; returns the client's stream
/// and, once `drive` returns, how it ended.
fn ignoring_server(config: Config) -> (TcpStream, mpsc::Receiver<Ended>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut conn = Connection::server(config);
        let failure = blocking::drive(&mut stream, &mut conn, |_, _| {}).unwrap();
        let _ = tx.send((failure, conn.error().cloned()));
    });
    (TcpStream::connect(addr).unwrap(), rx)
}

#[test]
fn drive_ends_when_a_plain_request_is_left_unanswered_and_the_peer_half_closes() {
    let (mut client, ended) = ignoring_server(Config::default());
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let eof = Error::Handshake(HandshakeError::Eof);
    assert_eq!(ended.recv_timeout(HANG), Ok((Some(eof.clone()), Some(eof))));
}

#[test]
fn drive_lets_go_of_a_plain_request_left_unanswered_at_the_handshake_deadline() {
    let config = Config::default().with_handshake_timeout(Some(Duration::from_millis(200)));
    let (mut client, ended) = ignoring_server(config);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The client stays connected and silent. A deadline is no breach of
    // the protocol: `drive` returns no failure, the connection has it.
    assert_eq!(
        ended.recv_timeout(HANG),
        Ok((None, Some(Error::Timeout(TimeoutKind::Handshake))))
    );
    drop(client);
}

/// A machine that the end of the stream does not finish: only its
/// deadline does, if it has one, or a second end of stream (which a loop
/// that reads an ended stream again gives it at once).
struct DeafToEof {
    deadline: Option<Instant>,
    eofs: usize,
    timed_out: bool,
}

impl Driver for DeafToEof {
    type Event = ();
    type Error = std::io::Error;

    fn receive(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        Ok(data.len())
    }
    fn receive_eof(&mut self) -> Result<(), Self::Error> {
        self.eofs += 1;
        Ok(())
    }
    fn poll_event(&mut self) -> Option<()> {
        None
    }
    fn poll_transmit(&mut self, _: &mut Vec<u8>) -> usize {
        0
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.filter(|_| !self.is_finished())
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|at| at <= now) {
            self.timed_out = true;
        }
    }
    fn is_finished(&self) -> bool {
        self.timed_out || self.eofs > 1
    }
}

/// Drives `machine` over a connection whose peer sent a few bytes and
/// half-closed.
fn drive_to_the_end(machine: &mut DeafToEof) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.write_all(b"hello").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    let failure = blocking::drive(&mut stream, machine, |_, _| {}).unwrap();
    assert!(failure.is_none());
}

#[test]
fn drive_reads_no_more_once_the_stream_has_ended() {
    // No deadline: nothing can move the machine on, and drive returns with
    // it unfinished.
    let mut machine = DeafToEof {
        deadline: None,
        eofs: 0,
        timed_out: false,
    };
    drive_to_the_end(&mut machine);
    assert_eq!(machine.eofs, 1, "the ended stream was read again");
    assert!(!machine.is_finished());

    // A deadline: drive waits for it, without reading, and its timer ends
    // the machine.
    let mut machine = DeafToEof {
        deadline: Some(Instant::now() + Duration::from_millis(100)),
        eofs: 0,
        timed_out: false,
    };
    drive_to_the_end(&mut machine);
    assert_eq!(machine.eofs, 1, "the ended stream was read again");
    assert!(machine.timed_out, "the deadline ended the machine");
}

#[test]
fn serve_frees_the_slot_of_a_connection_whose_callback_panicked() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    thread::spawn(move || {
        blocking::serve(
            listener,
            1,
            || Connection::server(Config::default()),
            |conn, event| {
                if let Event::Message(m) = event {
                    // An application bug: this panic is expected.
                    assert_ne!(m, Message::from("boom"), "the callback panics");
                    let _ = conn.send(m);
                }
            },
        )
    });
    // The one slot goes to a connection whose callback panics...
    let (mut stream, mut conn) = blocking::connect(&url, Config::default()).unwrap();
    conn.send("boom").unwrap();
    let _ = blocking::drive(&mut stream, &mut conn, |_, _| {});
    // ...and is free again once its thread is gone.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, mut conn) = blocking::connect(&url, Config::default()).unwrap();
        conn.send("hello").unwrap();
        let mut echoed = None;
        let _ = blocking::drive(&mut stream, &mut conn, |conn, event| {
            if let Event::Message(m) = event {
                echoed = Some(m);
                let _ = conn.close(CloseCode::NORMAL, "");
            }
        });
        let _ = tx.send(echoed);
    });
    assert_eq!(rx.recv_timeout(HANG), Ok(Some(Message::from("hello"))));
}

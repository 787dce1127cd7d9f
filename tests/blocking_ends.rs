//! How `blocking::drive` and `blocking::serve` end a connection that
//! cannot go on: a plain HTTP request left unanswered, a stream that has
//! ended, a callback that panicked.

use sansproto::blocking;
use sansproto::ws::{Config, Connection, Error, HandshakeError};
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long a test waits for what should happen at once (or at a short
/// deadline) before calling it a hang.
const HANG: Duration = Duration::from_secs(10);

/// Accepts one connection and drives a server connection made with
/// `config` over it, ignoring every event; returns the client's stream
/// and what `drive` returns, once it does.
fn ignoring_server(config: Config) -> (TcpStream, mpsc::Receiver<Option<Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut conn = Connection::server(config);
        let failure = blocking::drive(&mut stream, &mut conn, |_, _| {}).unwrap();
        let _ = tx.send(failure);
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
    assert_eq!(
        ended.recv_timeout(HANG),
        Ok(Some(Error::Handshake(HandshakeError::Eof)))
    );
}

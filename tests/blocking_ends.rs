//! How `blocking::drive` and `blocking::serve` end a connection that
//! cannot go on: a plain HTTP request left unanswered, a stream that has
//! ended, a callback that panicked.

use sansproto::blocking;
use sansproto::ws::{Config, Connection, Error, HandshakeError, TimeoutKind};
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

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

//! tokio adapters over in-memory pipes.
#![cfg(feature = "tokio")]

use sansproto::tokio::WebSocket;
use sansproto::ws::{Config, Connection, Role};
use tokio::io::DuplexStream;

/// A server session over one end of an in-memory pipe holding `pipe`
/// bytes; the other end is returned raw, for a peer that reads (or not)
/// and never answers.
pub fn server_over_pipe(config: Config, pipe: usize) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(pipe);
    let conn = Connection::after_handshake(
        Role::Server,
        config,
        None,
        None,
        sansproto::seeded_random(1),
    );
    (WebSocket::new(ours, conn), theirs)
}

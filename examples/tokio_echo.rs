//! A WebSocket echo server on tokio. Each connection reads straight into
//! the sans-IO connection's own buffer (`receive_buffer`, then
//! `commit_received`), so no per-connection read buffer is kept, and an
//! idle connection holds none at all: space is asked for only once the
//! socket is readable.
//!
//! `cargo run --example tokio_echo -- 127.0.0.1:9002`

use sansproto::ws::{Config, Connection, Event};
use std::io::ErrorKind;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The least space offered to each read.
const READ_SIZE: usize = 16 * 1024;

/// Echoes every message until the connection is finished.
pub async fn serve(stream: &mut TcpStream, conn: &mut Connection) -> std::io::Result<()> {
    let mut output = Vec::new();
    loop {
        conn.handle_timeout(Instant::now());
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => {
                    let _ = conn.send(m);
                }
                Event::HttpRequest(_) => {
                    let _ = conn.send_http_response(
                        426,
                        "Upgrade Required",
                        &[("Sec-WebSocket-Version", "13")],
                        b"",
                    );
                }
                _ => {}
            }
        }
        conn.poll_transmit(&mut output);
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if conn.is_finished() {
            return stream.shutdown().await;
        }
        let timer = conn.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            ready = stream.readable() => {
                ready?;
                // `None` only while events wait, and every one was polled.
                let Some(space) = conn.receive_buffer(READ_SIZE) else { continue };
                match stream.try_read(space) {
                    Ok(0) => { let _ = conn.receive_eof(); }
                    Ok(n) => { let _ = conn.commit_received(n); }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        let _ = conn.commit_received(0);
                    }
                    Err(e) => return Err(e),
                }
            },
            _ = async { match timer {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            } } => {}
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("tokio echo server on ws://{}", listener.local_addr()?);
    loop {
        let (mut stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut conn = Connection::server(Config::default());
            let _ = serve(&mut stream, &mut conn).await;
        });
    }
}

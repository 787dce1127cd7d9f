//! A WebSocket echo server on tokio. Each connection reads straight into
//! the sans-IO connection's own buffer (`receive_buf_mut`, then
//! `commit_appended`), so no per-connection read buffer is kept, and an
//! idle connection holds none at all: space is asked for only once the
//! socket is readable. Output is written with `writev` from `output()`:
//! an echoed message goes out from where it was read, never copied.
//!
//! `cargo run --example tokio_echo -- 127.0.0.1:9002`

use sansproto::bytes::Buf;
use sansproto::ws::{Config, Connection, Event};
use std::io::ErrorKind;
use std::time::Instant;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};

/// The least space offered to each read. Large: a read that stops a few
/// bytes short of a frame's end (a 16 KiB message and its header, say)
/// costs a second read and often a second wait for readiness. The space is
/// asked for only once the socket is readable, and freed when a read
/// drains it, so an idle connection still holds none.
const READ_SIZE: usize = 64 * 1024;

/// Echoes every message until the connection is finished.
pub async fn serve(stream: &mut TcpStream, conn: &mut Connection) -> std::io::Result<()> {
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
        let mut output = conn.output();
        if output.has_remaining() {
            stream.write_all_buf(&mut output).await?;
        }
        if conn.is_finished() {
            return stream.shutdown().await;
        }
        let readable = match conn.poll_timeout() {
            None => stream.readable().await,
            Some(t) => tokio::select! {
                ready = stream.readable() => ready,
                _ = tokio::time::sleep_until(t.into()) => continue,
            },
        };
        readable?;
        // `None` only while events wait, and every one was polled.
        let Some(buf) = conn.receive_buf_mut(READ_SIZE) else {
            continue;
        };
        // Appends to the connection's own buffer, without zeroing it first.
        let room = buf.capacity() - buf.len();
        match stream.try_read_buf(buf) {
            Ok(0) => {
                let _ = conn.receive_eof();
            }
            Ok(n) => {
                if n < room {
                    // The socket is drained: say so, as `read` does, rather
                    // than find out with a read that would block.
                    let _ = stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(ErrorKind::WouldBlock.into())
                    });
                }
                let _ = conn.commit_appended();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let _ = conn.commit_appended();
            }
            Err(e) => return Err(e),
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

//! A WebSocket echo server on tokio, driving the same sans-IO connection
//! through the generic `Driver` trait.
//!
//! `cargo run --example tokio_echo -- 127.0.0.1:9002`

use sansproto::ws::{Config, Connection, Event};
use sansproto::Driver;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Runs any `Driver` over a tokio stream until it is finished.
async fn drive<D: Driver>(
    stream: &mut TcpStream,
    machine: &mut D,
    mut on_event: impl FnMut(&mut D, D::Event),
) -> std::io::Result<()> {
    let mut input = vec![0u8; 64 * 1024];
    let mut output = Vec::new();
    loop {
        machine.handle_timeout(Instant::now());
        while let Some(event) = machine.poll_event() {
            on_event(machine, event);
        }
        machine.poll_transmit(&mut output);
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if machine.is_finished() {
            return stream.shutdown().await;
        }
        let timer = machine.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            read = stream.read(&mut input) => match read? {
                0 => { let _ = machine.receive_eof(); }
                n => {
                    // Everything is taken unless events must be polled first.
                    let mut data = &input[..n];
                    while let Ok(taken) = machine.receive(data) {
                        data = &data[taken..];
                        if data.is_empty() {
                            break;
                        }
                        while let Some(event) = machine.poll_event() {
                            on_event(machine, event);
                        }
                    }
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
            let _ = drive(&mut stream, &mut conn, |conn, event| match event {
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
            })
            .await;
        });
    }
}

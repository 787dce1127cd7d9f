//! The three echo servers, each on a thread with a tokio current-thread
//! runtime of its own.

use crate::tokio_echo;
use crate::Server;
use futures_util::{SinkExt, StreamExt};
use sansproto::ws::{accept_key, Config, Connection};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts `server` on a thread of its own; returns its address and the
/// thread's id (for its CPU time).
pub fn start(server: Server) -> (SocketAddr, u32) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            tx.send((addr, crate::load::thread_id())).expect("started");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                match server {
                    Server::Sansproto => tokio::spawn(sansproto(stream)),
                    Server::TokioTungstenite => tokio::spawn(tungstenite(stream)),
                    Server::Fastwebsockets => {
                        tokio::spawn(tokio::task::unconstrained(fastwebsockets(stream)))
                    }
                };
            }
        });
    });
    rx.recv().expect("server address")
}

/// `examples/tokio_echo.rs`, as it is.
async fn sansproto(mut stream: TcpStream) {
    let mut conn = Connection::server(Config::default());
    let _ = tokio_echo::serve(&mut stream, &mut conn).await;
}

/// tokio-tungstenite's echo, with its defaults.
async fn tungstenite(stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if message.is_binary() || message.is_text() {
            if ws.send(message).await.is_err() {
                return;
            }
        } else if message.is_close() {
            return;
        }
    }
}

/// fastwebsockets' echo example: a `FragmentCollector` that writes every
/// data frame back. The upgrade is answered by hand (its example uses
/// hyper; that only changes the handshake).
async fn fastwebsockets(mut stream: TcpStream) {
    use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let Some(key) = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    }) else {
        return;
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key.as_bytes())
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
    while let Ok(frame) = ws.read_frame().await {
        let echoed = match frame.opcode {
            OpCode::Close => return,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await,
            _ => Ok(()),
        };
        if echoed.is_err() {
            return;
        }
    }
}

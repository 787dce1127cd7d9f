//! The echo servers (three libraries and a floor without one), each on a thread with a tokio current-thread
//! runtime of its own.

use crate::tokio_echo;
use crate::Server;
use futures_util::{SinkExt, StreamExt};
use sansproto::ws::{accept_key, Config, Connection};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
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
                    Server::Floor => tokio::spawn(floor(stream)),
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

/// Answers the HTTP upgrade by hand: reads the request head (the load
/// generator sends nothing more until it has the answer) and writes the
/// 101 response. False when the stream ends first or has no key.
async fn upgrade_by_hand(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let Some(key) = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    }) else {
        return false;
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await.is_ok()
}

/// fastwebsockets' echo example: a `FragmentCollector` that writes every
/// data frame back. The upgrade is answered by hand (its example uses
/// hyper; that only changes the handshake).
async fn fastwebsockets(mut stream: TcpStream) {
    use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
    if !upgrade_by_hand(&mut stream).await {
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

/// The floor: no WebSocket library, and none of a library's checks. It
/// keeps one read buffer, takes each whole frame's header as given
/// (unfragmented, at most 2^32 bytes, as the load generator sends),
/// unmasks the payload in place and writes the frame back with one
/// `writev` of a short header and the payload where it was read. What it
/// costs per message is the sockets, the runtime and the unmasking: what
/// any echo server here pays, whatever library it uses.
async fn floor(mut stream: TcpStream) {
    if !upgrade_by_hand(&mut stream).await {
        return;
    }
    let mut buf = vec![0u8; 64 << 10];
    let (mut start, mut end) = (0, 0);
    loop {
        // Every whole frame in the buffer, echoed.
        while let Some((header_len, len)) = frame_at(&buf[start..end]) {
            let body = start + header_len;
            if end - body < len {
                break;
            }
            let opcode = buf[start] & 0x0f;
            if opcode == 0x8 {
                return;
            }
            let key = [buf[body - 4], buf[body - 3], buf[body - 2], buf[body - 1]];
            let payload = &mut buf[body..body + len];
            sansproto::ws::apply_mask(payload, key, 0);
            let mut header = [0u8; 10];
            header[0] = buf[start];
            let header = match len {
                0..=125 => {
                    header[1] = len as u8;
                    &header[..2]
                }
                126..=0xffff => {
                    header[1] = 126;
                    header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                    &header[..4]
                }
                _ => {
                    header[1] = 127;
                    header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                    &header[..10]
                }
            };
            if write_two(&mut stream, header, &buf[body..body + len])
                .await
                .is_err()
            {
                return;
            }
            start = body + len;
        }
        // Room for the rest of the frame under way, at the buffer's front.
        if start > 0 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let want = frame_at(&buf[..end]).map_or(0, |(h, len)| h + len);
        if want > buf.len() {
            buf.resize(want, 0);
        }
        // Read as `examples/tokio_echo.rs` does: a short read says the
        // socket is drained, which saves the read that would block.
        if stream.readable().await.is_err() {
            return;
        }
        let room = buf.len() - end;
        match stream.try_read(&mut buf[end..]) {
            Ok(0) => return,
            Ok(n) => {
                end += n;
                if n < room {
                    let _ = stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// A masked frame's header length and payload length, once its header is
/// all there.
fn frame_at(b: &[u8]) -> Option<(usize, usize)> {
    let (&len7, rest) = b.get(1).zip(b.get(2..))?;
    match len7 & 0x7f {
        126 => Some((
            8,
            u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
        )),
        127 => Some((
            14,
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
        )),
        n => Some((6, n as usize)),
    }
    .filter(|&(h, _)| b.len() >= h)
}

/// Writes `a` then `b` with `writev`, as many times as partial writes take.
async fn write_two(stream: &mut TcpStream, a: &[u8], b: &[u8]) -> std::io::Result<()> {
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        let n = stream
            .write_vectored(&[std::io::IoSlice::new(a), std::io::IoSlice::new(b)])
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

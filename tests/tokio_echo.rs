//! The `tokio_echo` example, as built, serves a client that sends messages
//! of several sizes (each echo checked), reading straight into the
//! connection's buffer, and ends with a clean closing handshake.

mod common;

use common::examples::Server;
use sansproto::ws::{ClientRequest, CloseCode, Config, Connection, Event, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn echoes_every_size_and_closes_cleanly() {
    let server = Server::start("tokio_echo", &["127.0.0.1:0"], "ws://", true);
    let addr = server.address.clone();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = ClientRequest::new(addr.clone(), "/");
    let mut client = Connection::client(Config::default(), request).unwrap();
    let sizes = [0usize, 1, 125, 126, 20_000, 70_000, 1 << 20];
    let messages: Vec<Message> = sizes
        .iter()
        .map(|&n| Message::Binary((0..n).map(|i| i as u8).collect::<Vec<u8>>().into()))
        .collect();
    for m in &messages {
        client.send(m.clone()).unwrap();
    }
    client.close(CloseCode::NORMAL, "done").unwrap();
    let (mut echoed, mut closed) = (Vec::new(), None);
    let (mut out, mut buf) = (Vec::new(), vec![0u8; 64 << 10]);
    while !client.is_finished() {
        client.poll_transmit(&mut out);
        stream.write_all(&out).await.unwrap();
        out.clear();
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            client.receive_eof().unwrap();
        } else {
            client.receive(&buf[..n]).unwrap();
        }
        while let Some(event) = client.poll_event() {
            match event {
                Event::Message(m) => echoed.push(m),
                Event::Closed(c) => closed = Some(c),
                _ => {}
            }
        }
    }
    assert_eq!(echoed, messages);
    let closed = closed.unwrap();
    assert!(closed.clean && !closed.by_peer, "{closed:?}");
    drop(stream);
    drop(server);
}

//! The `udp_echo` example's server and client, as built, over real UDP
//! sockets on 127.0.0.1, while another socket sprays garbage at the server.

mod common;

use common::examples::{build, Server};
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn echo_over_loopback_survives_garbage() {
    let server = Server::start("udp_echo", &["server", "127.0.0.1:0"], "echoing on ", false);
    let server_addr: SocketAddr = server.address.parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spraying = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let len = (sent as usize * 37) % 1500;
                let mut datagram: Vec<u8> = (0..len).map(|i| (i as u32 ^ sent) as u8).collect();
                if let Some(first) = datagram.first_mut() {
                    *first = (sent % 3) as u8; // versions 0, 1 and 2
                }
                let _ = junk.send_to(&datagram, server_addr);
                sent += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    // The example's client sends messages of several sizes, up to 256 KiB
    // (segmented), and checks every echo.
    let client = Command::new(build(&["udp_echo"]).remove(0))
        .args(["client", &server_addr.to_string()])
        .output()
        .unwrap();

    stop.store(true, Ordering::Relaxed);
    spraying.join().unwrap();
    let log = server.stop();
    assert!(client.status.success(), "{client:?}\n{log}");
    assert!(
        log.contains("server: dropped a datagram"),
        "the garbage reached the server and was dropped: {log}"
    );
}

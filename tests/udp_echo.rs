//! The `udp_echo` example's server and client, in-process over real UDP
//! sockets on 127.0.0.1, while another socket sprays garbage at the server.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../examples/udp_echo.rs"]
mod udp_echo;

#[test]
fn echo_over_loopback_survives_garbage() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let serving = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || udp_echo::serve(&server, || stop.load(Ordering::Relaxed)))
    };
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

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let result = udp_echo::run_client(&client, server_addr, udp_echo::SIZES);

    stop.store(true, Ordering::Relaxed);
    spraying.join().unwrap();
    let stats = serving.join().unwrap().unwrap();
    assert_eq!(result, Ok(()));
    assert!(stats.echoed >= udp_echo::SIZES.len());
    assert!(stats.dropped > 0, "the garbage reached the server");
}

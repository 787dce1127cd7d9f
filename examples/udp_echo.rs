//! UDP echo over `sansproto::datagram`, segmentation on, with `std::net`.
//!
//! ```text
//! cargo run --example udp_echo -- server 127.0.0.1:7001
//! cargo run --example udp_echo -- client 127.0.0.1:7001
//! ```
//!
//! The client sends messages from 1 byte to 256 KiB, waits for each echo,
//! checks it byte for byte, retries a message a few times if UDP lost part of
//! it, and exits non-zero if any message never came back intact. The server
//! echoes every message to its sender and shrugs off garbage datagrams.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansproto::datagram::{Config, Endpoint, Event};

/// Message sizes the client tries, around the MTU and up to 256 KiB.
pub const SIZES: &[usize] = &[1, 2, 1000, 1463, 1464, 1472, 1473, 65536, 262_144];

/// How often the client sends a message before giving up on it.
const ATTEMPTS: usize = 5;

/// How long the client waits for one echo.
const ECHO_WAIT: Duration = Duration::from_secs(2);

/// Both sides' configuration: segmentation on, messages up to 256 KiB.
pub fn config() -> Config {
    let mut config = Config::segmented();
    config.max_queued_datagrams = 4096;
    config.max_queued_bytes = 8 << 20;
    if let Some(seg) = config.segmentation.as_mut() {
        seg.max_message_size = 256 * 1024;
        seg.max_fragments = 180; // 262_144 bytes in 1463-byte fragments
        seg.max_buffered_per_peer = 1 << 20;
        seg.max_buffered = 32 << 20;
    }
    config
}

/// What a server loop did before it stopped.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Messages echoed.
    pub echoed: usize,
    /// Datagrams dropped as malformed.
    pub dropped: usize,
}

/// What the example asks of the kernel for each socket's receive buffer: a
/// whole 256 KiB message in 180 datagrams, several times over, so a receiver
/// that is not scheduled for a while loses nothing. The kernel may grant less
/// (`net.core.rmem_max`), and the pacing in [`flush`] covers the rest.
const RECEIVE_BUFFER: usize = 4 << 20;

/// Binds a UDP socket with a receive buffer of up to [`RECEIVE_BUFFER`].
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)?;
    // Best effort: a smaller buffer only makes loss under load more likely,
    // and the client retries lost messages.
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER);
    Ok(socket)
}

/// Sends every queued datagram, pausing briefly every 16 so a receiver on the
/// same host keeps up with a 180-datagram message.
fn flush(socket: &UdpSocket, endpoint: &mut Endpoint<SocketAddr>) -> std::io::Result<()> {
    let mut datagram = Vec::new();
    let mut sent = 0usize;
    while let Some(to) = endpoint.poll_transmit(&mut datagram) {
        socket.send_to(&datagram, to)?;
        datagram.clear();
        sent += 1;
        if sent % 16 == 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    Ok(())
}

/// Waits for one datagram until `deadline` at the latest and feeds it in.
fn receive_once(
    socket: &UdpSocket,
    endpoint: &mut Endpoint<SocketAddr>,
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<()> {
    let now = Instant::now();
    let until = endpoint
        .poll_timeout()
        .map_or(deadline, |t| t.min(deadline));
    let wait = until
        .saturating_duration_since(now)
        .max(Duration::from_millis(1));
    socket.set_read_timeout(Some(wait))?;
    match socket.recv_from(buf) {
        Ok((n, from)) => {
            let datagram = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
            // Events are polled after every datagram, so the queue is never
            // full here; were it, UDP may drop the datagram.
            if let Err(e) = endpoint.receive(from, datagram, Instant::now()) {
                eprintln!("{}: {e}", e.from);
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::ConnectionReset
            ) => {}
        Err(e) => return Err(e),
    }
    endpoint.handle_timeout(Instant::now());
    Ok(())
}

/// Echoes every message back to its sender until `stop` returns true.
pub fn serve(socket: &UdpSocket, stop: impl Fn() -> bool) -> std::io::Result<ServeStats> {
    let mut endpoint = Endpoint::new(config()).map_err(std::io::Error::other)?;
    let mut buf = vec![0u8; 65_536];
    let mut stats = ServeStats::default();
    while !stop() {
        let tick = Instant::now() + Duration::from_millis(100);
        receive_once(socket, &mut endpoint, &mut buf, tick)?;
        while let Some(event) = endpoint.poll_event() {
            match event {
                Event::Message { peer, payload } => match endpoint.send(peer, payload) {
                    Ok(()) => stats.echoed += 1,
                    Err(e) => eprintln!("server: cannot echo to {peer}: {e}"),
                },
                Event::DatagramDropped { peer, error } => {
                    stats.dropped += 1;
                    eprintln!("server: dropped a datagram from {peer}: {error}");
                }
                other => eprintln!("server: {other:?}"),
            }
        }
        flush(socket, &mut endpoint)?;
    }
    Ok(stats)
}

/// The message of `size` bytes the client sends.
fn pattern(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i.wrapping_mul(31) ^ size) as u8)
        .collect()
}

/// Sends each size in `sizes` to `server` and checks its echo.
pub fn run_client(socket: &UdpSocket, server: SocketAddr, sizes: &[usize]) -> Result<(), String> {
    let mut endpoint = Endpoint::new(config()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65_536];
    for &size in sizes {
        let message = pattern(size);
        let mut echoed = false;
        for attempt in 1..=ATTEMPTS {
            endpoint
                .send(server, message.clone())
                .map_err(|e| format!("send {size} bytes: {e}"))?;
            flush(socket, &mut endpoint).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + ECHO_WAIT;
            while !echoed && Instant::now() < deadline {
                receive_once(socket, &mut endpoint, &mut buf, deadline)
                    .map_err(|e| e.to_string())?;
                while let Some(event) = endpoint.poll_event() {
                    match event {
                        Event::Message { peer, payload } if peer == server => {
                            echoed |= payload == message;
                        }
                        Event::MessageDropped { reason, .. } => {
                            eprintln!("client: lost an echo ({reason:?})");
                        }
                        _ => {}
                    }
                }
            }
            if echoed {
                println!("{size} bytes echoed intact (attempt {attempt})");
                break;
            }
            eprintln!("client: no echo of {size} bytes yet (attempt {attempt} of {ATTEMPTS})");
        }
        if !echoed {
            return Err(format!("{size} bytes never came back intact"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, addr) = match args.as_slice() {
        [mode, addr] => (mode.as_str(), addr.as_str()),
        _ => {
            eprintln!("usage: udp_echo (server|client) ADDR:PORT");
            return ExitCode::from(2);
        }
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("bad address {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match mode {
        "server" => bind(addr)
            .and_then(|socket| {
                println!("echoing on {}", socket.local_addr()?);
                serve(&socket, || false)
            })
            .map(drop)
            .map_err(|e| e.to_string()),
        "client" => {
            let local: SocketAddr = if addr.is_ipv4() {
                "0.0.0.0:0".parse().unwrap()
            } else {
                "[::]:0".parse().unwrap()
            };
            bind(local)
                .map_err(|e| e.to_string())
                .and_then(|socket| run_client(&socket, addr, SIZES))
        }
        _ => Err(format!("unknown mode {mode}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

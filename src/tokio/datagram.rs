//! A datagram endpoint over a tokio `UdpSocket`.

use super::Error;
use crate::datagram::{Backlogged, Endpoint, Event, SendError};
use ::tokio::net::UdpSocket;
use ::tokio::time::{sleep_until, Instant};
use bytes::Bytes;
use std::net::SocketAddr;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// An [`Endpoint`] behind one tokio `UdpSocket`, with no task of its own:
/// [`next`](Self::next) reads datagrams, runs the peer and reassembly
/// timers on tokio's clock and writes what is queued, until an event for
/// the application comes out. Cancellation safe: a datagram read is handed
/// to the endpoint before anything else can happen, and one being sent is
/// sent again by the next call.
///
/// A datagram the socket refuses to send (an unreachable destination, say)
/// is dropped, as the network might have dropped it, and counted in
/// [`ErrorStats::transmit_failed`](crate::datagram::ErrorStats::transmit_failed);
/// the others still go out. One to port 0, where nothing can be sent (a
/// refusal notice answering a datagram whose source port was 0, which
/// anyone can forge), is dropped and counted the same way without trying.
/// Only reading from the socket can fail [`next`](Self::next).
///
/// ```no_run
/// use sansproto::datagram::{Config, Endpoint, Event};
/// use sansproto::tokio::Datagrams;
///
/// # async fn run() -> Result<(), sansproto::tokio::Error> {
/// let socket = tokio::net::UdpSocket::bind("127.0.0.1:7001").await?;
/// let endpoint = Endpoint::new(Config::segmented()).expect("a valid configuration");
/// let mut udp = Datagrams::new(socket, endpoint);
/// loop {
///     if let Event::Message { peer, payload } = udp.next().await? {
///         let _ = udp.endpoint().send(peer, payload); // echo
///     }
/// }
/// # }
/// ```
///
/// Two endpoints over loopback, a message split into datagrams and put
/// back together:
///
/// ```
/// use bytes::Bytes;
/// use sansproto::datagram::{Config, Endpoint, Event};
/// use sansproto::tokio::Datagrams;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let open = |socket| Datagrams::new(socket, Endpoint::new(Config::segmented()).unwrap());
/// let mut a = open(tokio::net::UdpSocket::bind("127.0.0.1:0").await?);
/// let mut b = open(tokio::net::UdpSocket::bind("127.0.0.1:0").await?);
/// let to = b.socket().local_addr()?;
/// let message = Bytes::from(vec![7u8; 10_000]);
/// a.send(to, message.clone()).await?;
/// loop {
///     if let Event::Message { payload, .. } = b.next().await? {
///         assert_eq!(payload, message);
///         break;
///     }
/// }
/// # Ok::<(), sansproto::tokio::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Datagrams {
    socket: UdpSocket,
    endpoint: Endpoint<SocketAddr>,
    /// One datagram's room, reused: what is received is copied out of it,
    /// so a small datagram holds only its own bytes.
    buf: Vec<u8>,
    /// The datagram being sent, and to whom, until the send completes (a
    /// cancelled send is sent again, not lost or merged with the next).
    out: Vec<u8>,
    out_to: Option<SocketAddr>,
    /// A datagram the endpoint refused while its events waited.
    backlogged: Option<(SocketAddr, Bytes)>,
}

impl Datagrams {
    /// Drives `endpoint` over `socket`.
    pub fn new(socket: UdpSocket, endpoint: Endpoint<SocketAddr>) -> Self {
        Self {
            socket,
            endpoint,
            buf: vec![0; MAX_DATAGRAM],
            out: Vec::new(),
            out_to: None,
            backlogged: None,
        }
    }

    /// The next event (a message, a peer opened or closed, a datagram
    /// dropped and why).
    pub async fn next(&mut self) -> Result<Event<SocketAddr>, Error> {
        loop {
            let now = Instant::now().into_std();
            self.endpoint.handle_timeout(now);
            if let Some(event) = self.endpoint.poll_event() {
                return Ok(event);
            }
            if let Some((from, datagram)) = self.backlogged.take() {
                self.take(from, datagram, now);
                continue;
            }
            self.flush().await?;
            self.read().await?;
        }
    }

    /// Queues `message` for `to` and writes what is queued.
    pub async fn send(&mut self, to: SocketAddr, message: Bytes) -> Result<(), Error> {
        self.endpoint.send(to, message)?;
        self.flush().await
    }

    /// Writes every queued datagram; one the socket refuses is dropped
    /// and counted (see above), not returned as an error.
    pub async fn flush(&mut self) -> Result<(), Error> {
        loop {
            let to = match self.out_to {
                Some(to) => to,
                None => {
                    self.out.clear();
                    match self.endpoint.poll_transmit(&mut self.out) {
                        Some(to) => {
                            self.out_to = Some(to);
                            to
                        }
                        None => return Ok(()),
                    }
                }
            };
            let sent = if to.port() == 0 {
                false
            } else {
                self.socket.send_to(&self.out, to).await.is_ok()
            };
            // Sent, or dropped for good (a datagram is not retried).
            self.out_to = None;
            if !sent {
                self.endpoint.transmit_failed();
            }
        }
    }

    /// The endpoint, for its commands and state (sends queued here go out
    /// with the next call).
    pub fn endpoint(&mut self) -> &mut Endpoint<SocketAddr> {
        &mut self.endpoint
    }

    /// The socket (for its address and options).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The socket and the endpoint.
    pub fn into_inner(self) -> (UdpSocket, Endpoint<SocketAddr>) {
        (self.socket, self.endpoint)
    }

    /// Waits for a datagram, no longer than the next deadline, and hands
    /// it to the endpoint.
    async fn read(&mut self) -> Result<(), Error> {
        let deadline = self.endpoint.poll_timeout().map(Instant::from_std);
        let Self { socket, buf, .. } = self;
        let received = async {
            match deadline {
                Some(at) => ::tokio::select! {
                    r = socket.recv_from(buf) => Some(r),
                    () = sleep_until(at) => None,
                },
                None => Some(socket.recv_from(buf).await),
            }
        };
        match received.await {
            None => Ok(()),
            Some(Ok((n, from))) => {
                let datagram = Bytes::copy_from_slice(self.buf.get(..n).unwrap_or(&[]));
                self.take(from, datagram, Instant::now().into_std());
                Ok(())
            }
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// Hands a datagram to the endpoint, keeping it while the endpoint's
    /// events wait to be polled.
    fn take(&mut self, from: SocketAddr, datagram: Bytes, now: std::time::Instant) {
        if let Err(Backlogged { from, datagram }) = self.endpoint.receive(from, datagram, now) {
            self.backlogged = Some((from, datagram));
        }
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Error::Datagram(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::{Config, Sessions, KIND_DATA};
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    async fn socket() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    async fn next(udp: &mut Datagrams) -> Event<SocketAddr> {
        let next = ::tokio::time::timeout(WAIT, udp.next());
        next.await.unwrap().unwrap()
    }

    async fn received(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = vec![0; MAX_DATAGRAM];
        let recv = socket.recv_from(&mut buf);
        let (n, _) = ::tokio::time::timeout(WAIT, recv).await.unwrap().unwrap();
        buf.truncate(n);
        buf
    }

    /// A datagram the socket refuses (an IPv6 destination for an IPv4
    /// socket) is dropped and counted; the one queued after it goes out.
    #[::tokio::test]
    async fn a_datagram_the_socket_refuses_is_dropped_and_the_rest_go_out() {
        let peer = socket().await;
        let to = peer.local_addr().unwrap();
        let mut udp = Datagrams::new(socket().await, Endpoint::new(Config::default()).unwrap());
        let nowhere: SocketAddr = "[::1]:9".parse().unwrap();
        udp.endpoint()
            .send(nowhere, Bytes::from_static(b"lost"))
            .unwrap();
        udp.endpoint()
            .send(to, Bytes::from_static(b"delivered"))
            .unwrap();
        udp.flush().await.unwrap();
        assert_eq!(received(&peer).await, b"delivered");
        let stats = udp.endpoint().stats();
        assert_eq!((stats.errors.transmit_failed, stats.tx.frames), (1, 2));
        assert_eq!(udp.endpoint().queued_datagrams(), 0);
    }

    /// With sessions on and the table full, a message from source port 0
    /// (which anyone can forge) is answered with a refusal notice to port
    /// 0, which no socket can send. The adapter drops that notice and
    /// goes on to deliver the open peer's message.
    #[::tokio::test]
    async fn a_refusal_to_source_port_0_does_not_stop_the_adapter() {
        let config = Config {
            sessions: Some(Sessions::default()),
            max_peers: 1,
            ..Config::default()
        };
        let peer = socket().await;
        let peer_addr = peer.local_addr().unwrap();
        let mut udp = Datagrams::new(socket().await, Endpoint::new(config).unwrap());
        let now = std::time::Instant::now();
        udp.endpoint().open(peer_addr, now).unwrap();
        assert_eq!(next(&mut udp).await, Event::PeerOpened { peer: peer_addr });
        // A message (kind 0x10, session id 1, "x") from 127.0.0.1:0.
        let port_0: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let forged = Bytes::from_static(&[KIND_DATA, 0, 0, 0, 1, b'x']);
        udp.endpoint().receive(port_0, forged, now).unwrap();
        assert_eq!(next(&mut udp).await, Event::PeerRefused { peer: port_0 });
        assert_eq!(udp.endpoint().queued_datagrams(), 1, "the refusal");
        // The open peer's message comes after the refusal is flushed.
        let message = [KIND_DATA, 0, 0, 0, 2, b'h', b'i'];
        let to = udp.socket().local_addr().unwrap();
        peer.send_to(&message, to).await.unwrap();
        assert_eq!(
            next(&mut udp).await,
            Event::Message {
                peer: peer_addr,
                payload: Bytes::from_static(b"hi")
            }
        );
        let stats = udp.endpoint().stats();
        assert_eq!(stats.errors.transmit_failed, 1);
        assert_eq!(stats.sessions.notices_sent, 1);
        assert_eq!(udp.endpoint().queued_datagrams(), 0);
    }
}

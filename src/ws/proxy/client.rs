//! A CONNECT exchange chained into the connection that runs in the tunnel.

use super::{
    websocket_target, Proxy, ProxyConfig, ProxyError, ProxyEvent, ProxyRequest, SetupError,
};
use crate::ws::http::url::WsUrl;
use crate::ws::{
    ClientRequest, CloseCode, Config, Connection, Error, Event, Message, PreparedMessage,
    SendError, SendErrorKind, Text,
};
use crate::{default_random, Driver, Random};
use bytes::Bytes;
use std::time::Instant;

/// An event of a [`ProxiedClient`]: the proxy's reply, then the events of
/// the connection in the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxiedEvent<E = Event> {
    /// The proxy opened the tunnel or refused it.
    Proxy(ProxyEvent),
    /// An event of the connection in the tunnel.
    Ws(E),
}

impl<E> ProxiedEvent<E> {
    /// The connection's event, for loops that only care about those.
    pub fn into_ws(self) -> Option<E> {
        match self {
            Self::Ws(e) => Some(e),
            Self::Proxy(_) => None,
        }
    }
}

/// Why a [`ProxiedClient`] failed: the proxy exchange, or the connection
/// in the tunnel. Sticky, like the errors it carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxiedError<E: std::error::Error + 'static = Error> {
    /// The proxy refused or the exchange with it failed.
    #[error("proxy: {0}")]
    Proxy(ProxyError),
    /// The connection in the tunnel failed.
    #[error(transparent)]
    Ws(E),
}

/// A WebSocket client (or any [`Driver`] that speaks first on the stream)
/// behind an HTTP CONNECT proxy, as one sans-IO machine.
///
/// It sends the proxy's CONNECT request, and once the proxy answers 2xx
/// hands every later byte, starting with those right behind the reply, to
/// the connection, and only then sends what the connection queued (the
/// upgrade request, then any commands given meanwhile). Events come as
/// [`ProxiedEvent`]s: [`ProxyEvent::Connected`] or
/// [`ProxyEvent::Refused`] first, then the connection's own. Timers are
/// the proxy's handshake deadline while the tunnel is being set up, then
/// the connection's (its handshake timeout counts from the tunnel).
///
/// The [module docs](super) show the exchange byte by byte; a blocking
/// loop is the one that drives a [`Connection`]:
///
/// ```no_run
/// use sansproto::ws::proxy::{ProxiedClient, ProxiedEvent, ProxyEvent};
/// use sansproto::ws::{Config, Event};
/// use sansproto::Driver;
/// use std::io::{Read, Write};
///
/// let mut client = ProxiedClient::from_urls(
///     "http://user:pass@127.0.0.1:3128",
///     "ws://example.com/chat",
///     Config::default(),
/// )?;
/// let mut stream = std::net::TcpStream::connect(client.proxy().address())?;
/// client.send_text("hello")?;
/// let (mut buf, mut out) = (vec![0u8; 65536], Vec::new());
/// while !client.is_finished() {
///     client.poll_transmit(&mut out);
///     stream.write_all(&out)?;
///     out.clear();
///     let n = stream.read(&mut buf)?;
///     // Taken whole: every event is polled before the next read.
///     let _ = if n == 0 { client.receive_eof() } else { client.receive(&buf[..n]).map(drop) };
///     while let Some(event) = client.poll_event() {
///         match event {
///             ProxiedEvent::Proxy(ProxyEvent::Refused(r)) => eprintln!("proxy said {}", r.status),
///             ProxiedEvent::Ws(Event::Message(m)) => println!("{m:?}"),
///             _ => {}
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ProxiedClient<D = Connection> {
    proxy: Proxy,
    inner: D,
    /// The transport ended while bytes read with the proxy's reply still
    /// waited for the connection: the end is handed on after them.
    eof_held: bool,
}

impl ProxiedClient<Connection> {
    /// A WebSocket client for `request` in a tunnel through `proxy`. The
    /// tunnel's target is the proxy request's; the `Host` of the upgrade
    /// request is `request.host`.
    pub fn new(proxy: Proxy, config: Config, request: ClientRequest) -> Result<Self, SetupError> {
        Self::with_random(proxy, config, request, default_random())
    }

    /// Like [`new`](Self::new), drawing the handshake key and masking keys
    /// from `random` (seed it for byte-exact tests).
    pub fn with_random(
        proxy: Proxy,
        config: Config,
        request: ClientRequest,
        random: Random,
    ) -> Result<Self, SetupError> {
        let ws = Connection::client_with_random(config, request, random)
            .map_err(SetupError::Handshake)?;
        Ok(Self::chain(proxy, ws))
    }

    /// A client for the `ws://` URL `ws_url` through the proxy at
    /// `proxy_url` (`http://[user:password@]host[:port]`), with the default
    /// [`ProxyConfig`]. A `wss://` URL is refused ([`SetupError::NeedsTls`]):
    /// this connection would speak plain text inside the tunnel; run TLS
    /// over it and [`chain`](Self::chain) the connection in instead.
    pub fn from_urls(proxy_url: &str, ws_url: &str, config: Config) -> Result<Self, SetupError> {
        if WsUrl::parse(ws_url).is_ok_and(|u| u.secure) {
            return Err(SetupError::NeedsTls);
        }
        let target = websocket_target(ws_url)?;
        let request = ClientRequest::from_url(ws_url).map_err(SetupError::WebSocketUrl)?;
        let proxy = Proxy::new(
            ProxyRequest::from_url(proxy_url, target)?,
            ProxyConfig::default(),
        )?;
        Self::new(proxy, config, request)
    }

    /// The sticky error, once the proxy exchange or the connection failed.
    pub fn error(&self) -> Option<ProxiedError> {
        match self.proxy.error() {
            Some(e) => Some(ProxiedError::Proxy(e.clone())),
            None => self.inner.error().cloned().map(ProxiedError::Ws),
        }
    }

    /// True while data messages may be sent: the tunnel and then the
    /// WebSocket opening handshake completed, and no Close was sent.
    pub fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    /// Queues a data message; before the WebSocket opens it waits, and
    /// after a refusal by the proxy it is handed back.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        let message = message.into();
        self.refuse_after_proxy_failure(message)
            .and_then(|m| self.inner.send(m))
    }

    /// Queues a text message copied from a borrowed `&str`, with no
    /// allocation once the WebSocket is open (see
    /// [`Connection::send_text_str`]).
    pub fn send_text_str(&mut self, text: &str) -> Result<(), SendError<Message>> {
        self.refuse_after_proxy_failure(()).map_err(|e| SendError {
            kind: e.kind,
            payload: Message::from(text),
        })?;
        self.inner.send_text_str(text)
    }

    /// Queues a binary message copied from a borrowed slice; see
    /// [`send_text_str`](Self::send_text_str).
    pub fn send_binary_slice(&mut self, data: &[u8]) -> Result<(), SendError<Message>> {
        self.refuse_after_proxy_failure(()).map_err(|e| SendError {
            kind: e.kind,
            payload: Message::Binary(Bytes::copy_from_slice(data)),
        })?;
        self.inner.send_binary_slice(data)
    }

    /// Queues a data message without the negotiated extension's transform
    /// (see [`Connection::send_uncompressed`]).
    pub fn send_uncompressed(
        &mut self,
        message: impl Into<Message>,
    ) -> Result<(), SendError<Message>> {
        let message = message.into();
        self.refuse_after_proxy_failure(message)
            .and_then(|m| self.inner.send_uncompressed(m))
    }

    /// Queues a prepared message (see [`Connection::send_prepared`]); a
    /// client masks every frame, so it encodes the message itself.
    pub fn send_prepared(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), SendError<PreparedMessage>> {
        self.refuse_after_proxy_failure(prepared.clone())?;
        self.inner.send_prepared(prepared)
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: impl Into<Text>) -> Result<(), SendError<Message>> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError<Message>> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues a Ping; the matching Pong is reported with `matched: true`.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.refuse_after_proxy_failure(payload.into())
            .and_then(|p| self.inner.ping(p))
    }

    /// Queues an unsolicited Pong.
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.refuse_after_proxy_failure(payload.into())
            .and_then(|p| self.inner.pong(p))
    }

    /// Starts the closing handshake (see [`Connection::close`]).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError<()>> {
        self.refuse_after_proxy_failure(())
            .and_then(|()| self.inner.close(code, reason))
    }

    /// Bytes queued for sending and not yet taken: what is left of the
    /// CONNECT request, and the connection's (see
    /// [`Connection::buffered_amount`]). Once the proxy exchange failed,
    /// the connection's never go out and are not counted.
    pub fn buffered_amount(&self) -> usize {
        if self.proxy.error().is_some() {
            return self.proxy.queued_bytes();
        }
        self.proxy.queued_bytes() + self.inner.buffered_amount()
    }

    /// The queued output as a [`Buf`](bytes::Buf) for a vectored write
    /// (see [`Connection::output`]): the CONNECT request, then, once it
    /// was all written and the tunnel is open, the connection's bytes.
    /// Call it again after writing everything it held: what the
    /// connection queued may follow.
    pub fn output(&mut self) -> crate::Output<'_> {
        if self.proxy.is_connected() && self.proxy.queued_bytes() == 0 {
            self.inner.output()
        } else {
            self.proxy.output()
        }
    }

    /// Space to read from the transport into, at least `min` bytes; then
    /// [`commit_received`](Self::commit_received) the count read. `None`
    /// means poll events first (see [`Connection::receive_buffer`]),
    /// also while bytes that came with the proxy's reply wait for the
    /// connection.
    pub fn receive_buffer(&mut self, min: usize) -> Option<&mut [u8]> {
        if matches!(self.feed_tunnel(), Ok(false)) {
            return None;
        }
        self.inner.receive_buffer(min)
    }

    /// Takes `n` bytes read into the space
    /// [`receive_buffer`](Self::receive_buffer) gave, as
    /// [`receive`](Self::receive) takes bytes.
    pub fn commit_received(&mut self, n: usize) -> Result<(), ProxiedError> {
        if self.proxy.is_connected() {
            return self.inner.commit_received(n).map_err(ProxiedError::Ws);
        }
        let bytes = self.inner.take_committed(n);
        self.receive(&bytes).map(drop)
    }

    /// The connection's receive buffer itself, for a read that appends
    /// without zeroing (tokio's `read_buf`); then
    /// [`commit_appended`](Self::commit_appended). See
    /// [`Connection::receive_buf_mut`]; `None` as for
    /// [`receive_buffer`](Self::receive_buffer).
    pub fn receive_buf_mut(&mut self, min: usize) -> Option<&mut bytes::BytesMut> {
        if matches!(self.feed_tunnel(), Ok(false)) {
            return None;
        }
        self.inner.receive_buf_mut(min)
    }

    /// Takes the bytes a read appended to the buffer
    /// [`receive_buf_mut`](Self::receive_buf_mut) lent.
    pub fn commit_appended(&mut self) -> Result<(), ProxiedError> {
        if self.proxy.is_connected() {
            return self.inner.commit_appended().map_err(ProxiedError::Ws);
        }
        let bytes = self.inner.take_appended();
        self.receive(&bytes).map(drop)
    }

    fn refuse_after_proxy_failure<T>(&self, payload: T) -> Result<T, SendError<T>> {
        match self.proxy.error() {
            Some(_) => Err(SendError {
                kind: SendErrorKind::Closed,
                payload,
            }),
            None => Ok(payload),
        }
    }
}

impl<D: Driver> ProxiedClient<D> {
    /// Runs `inner` in the tunnel `proxy` opens: it gets no bytes, and
    /// what it queues is not sent, until the proxy answered 2xx. `inner`
    /// must be fresh (nothing received yet): a client connection, or a
    /// driver wrapping one (TLS for `wss:`, say).
    pub fn chain(proxy: Proxy, inner: D) -> Self {
        Self {
            proxy,
            inner,
            eof_held: false,
        }
    }

    /// The CONNECT exchange.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The connection in the tunnel.
    pub fn connection(&self) -> &D {
        &self.inner
    }

    /// The connection in the tunnel, for commands. Feed received bytes to
    /// the `ProxiedClient`, not to it.
    pub fn connection_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// True once the proxy answered 2xx.
    pub fn is_tunnel_open(&self) -> bool {
        self.proxy.is_connected()
    }

    /// Feeds bytes read from the transport: to the proxy exchange until the
    /// tunnel is open, to the connection after that. Returns how many were
    /// taken, as [`Driver::receive`] says.
    pub fn receive(&mut self, data: &[u8]) -> Result<usize, ProxiedError<D::Error>>
    where
        D::Error: 'static,
    {
        if self.proxy.is_connected() {
            if !self.feed_tunnel().map_err(ProxiedError::Ws)? {
                return Ok(0);
            }
            return self.inner.receive(data).map_err(ProxiedError::Ws);
        }
        self.proxy.receive(data).map_err(ProxiedError::Proxy)?;
        self.feed_tunnel().map_err(ProxiedError::Ws)?;
        Ok(data.len())
    }

    /// Once the tunnel is open, hands the connection what the proxy read
    /// past its reply, as far as the connection takes it; the rest waits
    /// in the proxy for the next call (or `poll_event`). True when none is
    /// left.
    fn feed_tunnel(&mut self) -> Result<bool, D::Error> {
        if !self.proxy.is_connected() {
            return Ok(true);
        }
        let rest = self.proxy.take_buffered();
        if rest.is_empty() {
            return Ok(true);
        }
        let taken = self.inner.receive(&rest)?;
        if taken < rest.len() {
            self.proxy.put_back(&rest[taken..]);
            return Ok(false);
        }
        Ok(true)
    }

    /// Reports that the transport's read side ended.
    pub fn receive_eof(&mut self) -> Result<(), ProxiedError<D::Error>>
    where
        D::Error: 'static,
    {
        if self.proxy.is_connected() {
            if !self.feed_tunnel().map_err(ProxiedError::Ws)? {
                self.eof_held = true;
                return Ok(());
            }
            self.inner.receive_eof().map_err(ProxiedError::Ws)
        } else {
            self.proxy.receive_eof().map_err(ProxiedError::Proxy)
        }
    }

    /// Takes the next event: the proxy's first, then the connection's.
    pub fn poll_event(&mut self) -> Option<ProxiedEvent<D::Event>> {
        if let Some(e) = self.proxy.poll_event() {
            return Some(ProxiedEvent::Proxy(e));
        }
        if let Some(e) = self.inner.poll_event() {
            return Some(ProxiedEvent::Ws(e));
        }
        // The connection has room again for bytes that came with the
        // proxy's reply and waited. A failure is the connection's own
        // sticky error, reported through its events and `receive`.
        if self.proxy.is_connected() {
            let fed = self.feed_tunnel();
            if self.eof_held && matches!(fed, Ok(true)) {
                self.eof_held = false;
                let _ = self.inner.receive_eof();
            }
            return self.inner.poll_event().map(ProxiedEvent::Ws);
        }
        None
    }

    /// Appends every byte to send to `out`: the CONNECT request, then,
    /// once the tunnel is open, the connection's bytes.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let mut n = self.proxy.poll_transmit(out);
        if self.proxy.is_connected() {
            n += self.inner.poll_transmit(out);
        }
        n
    }

    /// The next deadline: the proxy's until the tunnel is open, then the
    /// connection's.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.proxy.is_connected() {
            self.inner.poll_timeout()
        } else {
            self.proxy.poll_timeout()
        }
    }

    /// Runs the timers due at `now`. The connection's timers start at the
    /// first call after the tunnel opened.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.proxy.is_connected() {
            self.inner.handle_timeout(now);
        } else {
            self.proxy.handle_timeout(now);
        }
    }

    /// True once the proxy refused or failed, or the connection in the
    /// tunnel is finished: write what `poll_transmit` gives, then close
    /// the transport.
    pub fn is_finished(&self) -> bool {
        if self.proxy.is_connected() {
            self.inner.is_finished()
        } else {
            self.proxy.error().is_some()
        }
    }
}

impl<D: Driver> Driver for ProxiedClient<D>
where
    D::Error: 'static,
{
    type Event = ProxiedEvent<D::Event>;
    type Error = ProxiedError<D::Error>;

    fn receive(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        ProxiedClient::receive(self, data)
    }
    fn receive_eof(&mut self) -> Result<(), Self::Error> {
        ProxiedClient::receive_eof(self)
    }
    fn poll_event(&mut self) -> Option<Self::Event> {
        ProxiedClient::poll_event(self)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        ProxiedClient::poll_transmit(self, out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ProxiedClient::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ProxiedClient::handle_timeout(self, now)
    }
    fn is_finished(&self) -> bool {
        ProxiedClient::is_finished(self)
    }
}

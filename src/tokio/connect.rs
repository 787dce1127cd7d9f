//! Client connections from a URL: straight to the host or through an HTTP
//! CONNECT proxy, with TLS (or any other layer) put on by the caller.

use super::driven::deadline_after;
use super::{Error, WebSocket};
use crate::ws::proxy::{Proxy, ProxyConfig, ProxyError, ProxyRequest, SetupError};
use crate::ws::{ClientRequest, Config, TimeoutKind, WsUrl};
use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{TcpStream, ToSocketAddrs};
use ::tokio::time::{sleep_until, timeout_at, Instant};
use std::fmt;
use std::future::Future;
use std::io;

/// The step of a client's setup that passed its deadline, in
/// [`Error::SetupTimeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetupStep {
    /// Resolving the name and opening the TCP connection (to the host, or
    /// to the proxy).
    Connect,
    /// The caller's `wrap` (a TLS handshake, say).
    Wrap,
}

impl fmt::Display for SetupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "the TCP connection",
            Self::Wrap => "the caller's wrap of the connection",
        })
    }
}

impl WebSocket<TcpStream> {
    /// Connects to a `ws://` URL and runs the opening handshake: over a
    /// TCP connection to the host, or, with `proxy`
    /// (`http://[user:password@]host[:port]`), through the tunnel an HTTP
    /// CONNECT proxy opens to it. `wss://` needs TLS: use
    /// [`connect_url_with`](WebSocket::connect_url_with).
    ///
    /// The whole setup is bounded by `config`'s
    /// [`handshake_timeout`](Config::handshake_timeout), counted from this
    /// call: the TCP connection, the CONNECT exchange and the opening
    /// handshake share it, and the step it runs out in is reported (see
    /// [`connect_url_with`](WebSocket::connect_url_with)). With no
    /// handshake timeout, nothing is bounded.
    ///
    /// ```no_run
    /// use sansproto::tokio::WebSocket;
    /// use sansproto::ws::Config;
    ///
    /// # async fn run() -> Result<(), sansproto::tokio::Error> {
    /// let proxy = Some("http://proxy.example:3128");
    /// let mut ws = WebSocket::connect_url("ws://example.com/chat", proxy, Config::default()).await?;
    /// ws.send("hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_url(
        url: &str,
        proxy: Option<&str>,
        config: Config,
    ) -> Result<Self, Error> {
        if WsUrl::parse(url).is_ok_and(|u| u.secure) {
            let refused = crate::ws::UrlError::Scheme("ws (wss needs connect_url_with)");
            return Err(Error::Setup(SetupError::WebSocketUrl(refused)));
        }
        Self::connect_url_with(url, proxy, config, |tcp, _| async { Ok(tcp) }).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Connects to a `ws://` or `wss://` URL and runs the opening
    /// handshake over what `wrap` makes of the TCP connection: `wrap` gets
    /// the connection (to the host, or the tunnel through `proxy`, as
    /// [`connect_url`](WebSocket::connect_url) opens it) and the parsed
    /// URL, and returns the stream to speak WebSocket over. For `wss://`
    /// that is a TLS client stream for the URL's host, from the connector
    /// the caller configured (tokio-rustls, say):
    ///
    /// ```no_run
    /// use sansproto::tokio::WebSocket;
    /// use sansproto::ws::Config;
    /// use tokio::net::TcpStream;
    ///
    /// // Stands for the caller's TLS connector: with tokio-rustls,
    /// // `connector.connect(ServerName::try_from(host)?, tcp)`.
    /// async fn tls_connect(host: String, tcp: TcpStream) -> std::io::Result<TcpStream> {
    ///     # let _ = host;
    ///     Ok(tcp)
    /// }
    ///
    /// # async fn run() -> Result<(), sansproto::tokio::Error> {
    /// let url = "wss://example.com/chat";
    /// let mut ws = WebSocket::connect_url_with(url, None, Config::default(), |tcp, url| {
    ///     tls_connect(url.host.clone(), tcp)
    /// })
    /// .await?;
    /// ws.send("hello").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// `config`'s [`handshake_timeout`](Config::handshake_timeout) bounds
    /// the whole setup, counted from this call: each step has what the
    /// ones before it left. When it passes, the setup is dropped and the
    /// step is reported: [`Error::SetupTimeout`] with
    /// [`SetupStep::Connect`] for the TCP connection (to the host or to the
    /// proxy), [`Error::Proxy`] with [`ProxyError::Timeout`] for the
    /// CONNECT exchange, [`Error::SetupTimeout`] with [`SetupStep::Wrap`]
    /// for `wrap`, and [`Error::Ws`] with
    /// [`TimeoutKind::Handshake`](crate::ws::TimeoutKind::Handshake) for the
    /// opening handshake. With no handshake timeout, only the CONNECT
    /// exchange is bounded, by [`ProxyConfig`]'s default.
    pub async fn connect_url_with<F, Fut>(
        url: &str,
        proxy: Option<&str>,
        config: Config,
        wrap: F,
    ) -> Result<Self, Error>
    where
        F: FnOnce(TcpStream, &WsUrl) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let setup = |e| Error::Setup(SetupError::WebSocketUrl(e));
        let parsed = WsUrl::parse(url).map_err(setup)?;
        let request = ClientRequest::from_url(url).map_err(setup)?;
        let deadline = config.handshake_timeout.map(deadline_after);
        let late_connect = || Error::SetupTimeout(SetupStep::Connect);
        let tcp = match proxy {
            None => within(deadline, connect(parsed.authority()), late_connect).await?,
            Some(proxy_url) => {
                let request = ProxyRequest::from_url(proxy_url, parsed.authority())?;
                // The exchange's own deadline is the same setting (the
                // proxy's default without one); the setup's deadline caps
                // it.
                let defaults = ProxyConfig::default();
                let timeout = config.handshake_timeout.or(defaults.handshake_timeout);
                let proxy_config = defaults.with_handshake_timeout(timeout);
                let mut proxy = Proxy::new(request, proxy_config)?;
                let mut tcp = within(deadline, connect(proxy.address()), late_connect).await?;
                let exchange = tunnel(&mut proxy, &mut tcp);
                within(deadline, exchange, || Error::Proxy(ProxyError::Timeout)).await?;
                tcp
            }
        };
        tcp.set_nodelay(true)?;
        let wrapped = async { Ok(wrap(tcp, &parsed).await?) };
        let io = within(deadline, wrapped, || Error::SetupTimeout(SetupStep::Wrap)).await?;
        let handshake = Self::connect(io, request, config);
        let late_handshake = || Error::Ws(crate::ws::Error::Timeout(TimeoutKind::Handshake));
        within(deadline, handshake, late_handshake).await
    }
}

/// Opens a TCP connection to `address`.
async fn connect(address: impl ToSocketAddrs) -> Result<TcpStream, Error> {
    Ok(TcpStream::connect(address).await?)
}

/// Runs `step` until `deadline`; after it, the step is dropped and `late`
/// says which one it was.
async fn within<T>(
    deadline: Option<Instant>,
    step: impl Future<Output = Result<T, Error>>,
    late: impl FnOnce() -> Error,
) -> Result<T, Error> {
    match deadline {
        None => step.await,
        Some(at) => timeout_at(at, step).await.unwrap_or_else(|_| Err(late())),
    }
}

/// Runs the CONNECT exchange on `tcp` until the proxy opens the tunnel.
async fn tunnel(proxy: &mut Proxy, tcp: &mut TcpStream) -> Result<(), Error> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        proxy.handle_timeout(Instant::now().into_std());
        out.clear();
        proxy.poll_transmit(&mut out);
        tcp.write_all(&out).await?;
        while proxy.poll_event().is_some() {}
        if let Some(e) = proxy.error() {
            return Err(Error::Proxy(e.clone()));
        }
        if proxy.is_connected() {
            // Nothing may come through the tunnel before this side speaks.
            if !proxy.take_buffered().is_empty() {
                let early = "the proxy sent bytes before the tunnel was used";
                return Err(io::Error::new(io::ErrorKind::InvalidData, early).into());
            }
            return Ok(());
        }
        let read = tcp.read(&mut buf);
        let n = match proxy.poll_timeout().map(Instant::from_std) {
            Some(at) => ::tokio::select! {
                n = read => Some(n?),
                () = sleep_until(at) => None,
            },
            None => Some(read.await?),
        };
        let taken = match n {
            None => Ok(()),
            Some(0) => proxy.receive_eof(),
            Some(n) => proxy.receive(buf.get(..n).unwrap_or_default()),
        };
        if let Err(e) = taken {
            return Err(Error::Proxy(e));
        }
    }
}

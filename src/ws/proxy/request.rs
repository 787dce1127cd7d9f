//! The CONNECT request: where the proxy is, what to ask it for, and how
//! to authenticate.

use crate::ws::handshake::HandshakeError;
use crate::ws::http::field::{push_extra, FieldError, HeadWriter, CONNECT_OWNED};
use crate::ws::http::url::{parse_authority, parse_proxy_url, UrlError, WsUrl};

pub use crate::ws::http::Credentials;

/// What to ask a CONNECT proxy for, and where it is.
///
/// ```
/// use sansproto::ws::proxy::ProxyRequest;
/// let r = ProxyRequest::from_url("http://user:p%40ss@10.0.0.1:3128/", "example.com:443").unwrap();
/// assert_eq!(r.proxy, "10.0.0.1:3128");
/// assert_eq!(r.credentials.unwrap().password, "p@ss");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The proxy's address, `host:port`: where the caller opens the
    /// transport. Not sent.
    pub proxy: String,
    /// The tunnel's target, `host:port`: the request target and `Host`.
    pub target: String,
    /// Sent as `Proxy-Authorization: Basic` when set.
    pub credentials: Option<Credentials>,
    /// Extra header fields, sent in order after the others.
    pub headers: Vec<(String, String)>,
}

impl ProxyRequest {
    /// A request for a tunnel to `target` (`host:port`) through the proxy
    /// at `proxy` (`host:port`), without credentials.
    pub fn new(proxy: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            proxy: proxy.into(),
            target: target.into(),
            credentials: None,
            headers: Vec::new(),
        }
    }

    /// A request through the proxy named by an `http://` URL, e.g.
    /// `http://user:pass@proxy:3128` (port 80 when none is given).
    /// Percent-escapes in the user name and password are decoded.
    pub fn from_url(proxy_url: &str, target: impl Into<String>) -> Result<Self, SetupError> {
        let (proxy, credentials) = parse_proxy_url(proxy_url).map_err(SetupError::ProxyUrl)?;
        Ok(Self {
            proxy,
            target: target.into(),
            credentials,
            headers: Vec::new(),
        })
    }

    /// Sets the credentials for `Proxy-Authorization: Basic`.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Adds a header field to the CONNECT request (e.g. `User-Agent`).
    /// The name must be a token and the value free of control characters;
    /// `Host` and `Proxy-Authorization` are written by the request itself.
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, SetupError> {
        push_extra(&mut self.headers, CONNECT_OWNED, name, value).map_err(SetupError::Field)?;
        Ok(self)
    }

    /// The CONNECT request's bytes; every field is checked.
    ///
    /// ```
    /// use sansproto::ws::proxy::ProxyRequest;
    /// let r = ProxyRequest::new("proxy:3128", "example.com:443")
    ///     .with_header("User-Agent", "demo")
    ///     .unwrap();
    /// assert_eq!(
    ///     r.encode().unwrap(),
    ///     b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: demo\r\n\r\n"
    /// );
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, SetupError> {
        if !matches!(parse_authority(&self.target), Some((_, Some(_)))) {
            return Err(SetupError::Target(self.target.clone()));
        }
        let field = SetupError::Field;
        let mut w = HeadWriter::request("CONNECT", &self.target, CONNECT_OWNED).map_err(field)?;
        w.own("Host", &self.target).map_err(field)?;
        if let Some(c) = &self.credentials {
            w.own("Proxy-Authorization", &c.basic().map_err(field)?)
                .map_err(field)?;
        }
        for (name, value) in &self.headers {
            w.extra(name, value).map_err(field)?;
        }
        Ok(w.finish(b""))
    }
}

/// The tunnel target for a `ws://` or `wss://` URL: its host with the
/// URL's port, or 80 (`ws`) or 443 (`wss`).
///
/// ```
/// use sansproto::ws::proxy::websocket_target;
/// assert_eq!(websocket_target("wss://example.com/chat").unwrap(), "example.com:443");
/// assert_eq!(websocket_target("ws://[::1]:9001").unwrap(), "[::1]:9001");
/// ```
pub fn websocket_target(ws_url: &str) -> Result<String, SetupError> {
    WsUrl::parse(ws_url)
        .map(|u| u.authority())
        .map_err(SetupError::WebSocketUrl)
}

/// The caller's proxy or WebSocket settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The proxy URL is not `http://[user[:password]@]host[:port][/]`.
    #[error("bad proxy URL: {0}")]
    ProxyUrl(UrlError),
    /// The tunnel target is not `host:port`.
    #[error("bad tunnel target {0:?}: host:port is required")]
    Target(String),
    /// The WebSocket URL is not `ws://` or `wss://` with a host.
    #[error("bad WebSocket URL: {0}")]
    WebSocketUrl(UrlError),
    /// A `wss://` URL given where no TLS is run: the upgrade (and any
    /// credentials in the URL) would cross the tunnel in plain text. Run
    /// TLS over the tunnel and chain the connection in
    /// ([`ProxiedClient::chain`](super::ProxiedClient::chain)).
    #[error("wss:// needs TLS over the tunnel: chain a TLS machine")]
    NeedsTls,
    /// A field cannot be sent in the request (a header name that is not a
    /// token, a control character in a value, `:` in a user name, a field
    /// the request writes itself).
    #[error("{0}")]
    Field(FieldError),
    /// The WebSocket request cannot be built.
    #[error("WebSocket request: {0}")]
    Handshake(HandshakeError),
}

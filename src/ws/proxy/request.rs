//! The CONNECT request: where the proxy is, what to ask it for, and how
//! to authenticate.

use crate::ws::handshake::{is_header_safe, push_header, HandshakeError};
use base64::Engine;
use std::fmt;

/// A user name and password for `Proxy-Authorization: Basic` (RFC 7617).
/// Its `Debug` output leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (may not contain `:`).
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The `Proxy-Authorization` value: `Basic` and `user:password` in base64.
    ///
    /// ```
    /// use sansproto::ws::proxy::Credentials;
    /// let c = Credentials { user: "user".into(), password: "pass".into() };
    /// assert_eq!(c.basic(), "Basic dXNlcjpwYXNz");
    /// ```
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

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
        let bad = |why: &str| SetupError::ProxyUrl(format!("{why}: {proxy_url}"));
        let rest = strip_scheme(proxy_url, "http://").ok_or_else(|| bad("not an http:// URL"))?;
        let rest = match rest.find(['/', '?', '#']) {
            Some(i) if &rest[i..] == "/" => &rest[..i],
            Some(_) => return Err(bad("a proxy URL has no path or query")),
            None => rest,
        };
        let (userinfo, authority) = match rest.rsplit_once('@') {
            Some((u, a)) => (Some(u), a),
            None => (None, rest),
        };
        let proxy = if split_port(authority).is_some() {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        if split_port(&proxy).is_none() {
            return Err(bad("bad host or port"));
        }
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let decode = |s| percent_decode(s).ok_or_else(|| bad("bad percent-escape"));
                Some(Credentials {
                    user: decode(user)?,
                    password: decode(password)?,
                })
            }
        };
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
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The CONNECT request's bytes.
    ///
    /// ```
    /// use sansproto::ws::proxy::ProxyRequest;
    /// let r = ProxyRequest::new("proxy:3128", "example.com:443").with_header("User-Agent", "demo");
    /// assert_eq!(
    ///     r.encode().unwrap(),
    ///     b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: demo\r\n\r\n"
    /// );
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, SetupError> {
        if split_port(&self.target).is_none() {
            return Err(SetupError::Target(self.target.clone()));
        }
        if let Some(c) = &self.credentials {
            // Both travel in base64; only a colon in the user name is ambiguous.
            if c.user.contains(':') {
                return Err(SetupError::Field("user name"));
            }
        }
        for (name, value) in &self.headers {
            if !is_token(name) || !is_header_safe(value) {
                return Err(SetupError::Field("header field"));
            }
        }
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"CONNECT ");
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        push_header(&mut out, "Host", &self.target);
        if let Some(c) = &self.credentials {
            push_header(&mut out, "Proxy-Authorization", &c.basic());
        }
        for (name, value) in &self.headers {
            push_header(&mut out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
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
    let bad = || SetupError::WebSocketUrl(ws_url.to_owned());
    let (rest, port) = match strip_scheme(ws_url, "ws://") {
        Some(rest) => (rest, 80),
        None => (strip_scheme(ws_url, "wss://").ok_or_else(bad)?, 443),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let target = if split_port(host).is_some() {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    split_port(&target).ok_or_else(bad)?;
    Ok(target)
}

fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| url.get(scheme.len()..))
        .flatten()
}

/// Splits `host:port` (with `[v6]:port` for IPv6) when both parts are valid.
fn split_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    let port_ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let port = port.parse::<u16>().ok().filter(|p| port_ok && *p > 0)?;
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').is_some_and(|a| {
            !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b))
        }
    };
    host_ok.then_some((host, port))
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The caller's proxy or WebSocket settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The proxy URL is not `http://[user[:password]@]host[:port][/]`.
    #[error("bad proxy URL ({0})")]
    ProxyUrl(String),
    /// The tunnel target is not `host:port`.
    #[error("bad tunnel target {0:?}: host:port is required")]
    Target(String),
    /// The WebSocket URL is not `ws://` or `wss://` with a host.
    #[error("bad WebSocket URL {0:?}")]
    WebSocketUrl(String),
    /// A field holds characters that cannot be sent in a header (CR, LF,
    /// NUL; `:` in a user name; a header name that is not a token).
    #[error("{0} cannot be sent in an HTTP request")]
    Field(&'static str),
    /// The WebSocket request cannot be built.
    #[error("WebSocket request: {0}")]
    Handshake(HandshakeError),
}

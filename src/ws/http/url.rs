//! The one URL parser: `ws://` and `wss://` for WebSocket clients,
//! `http://` for CONNECT proxies, and the request target a server reads
//! (origin-form or absolute-form, RFC 9112 §3.2).
//!
//! Schemes are case-insensitive, IPv6 literals sit in brackets, the port
//! defaults by scheme, the query is kept and the fragment dropped. User
//! information (`user:password@`) never reaches a `Host` header or a
//! request target: it is decoded into [`Credentials`], which a WebSocket
//! client sends as `Authorization: Basic` and a proxy client as
//! `Proxy-Authorization: Basic`. A `\` in the authority is refused:
//! browsers (WHATWG) read it as the start of the path, RFC 3986 as part of
//! the user information, so the two would name different hosts. Errors
//! never repeat the URL, so a password cannot reach a log through them.

use super::field::{is_target_byte, FieldError};
use base64::Engine;
use std::fmt;

/// A user name and password for HTTP Basic authentication (RFC 7617).
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
    /// The `Authorization` value: `Basic` and `user:password` in base64.
    ///
    /// ```
    /// use sansproto::ws::Credentials;
    /// let c = Credentials { user: "user".into(), password: "pass".into() };
    /// assert_eq!(c.basic().unwrap(), "Basic dXNlcjpwYXNz");
    /// ```
    pub fn basic(&self) -> Result<String, FieldError> {
        // Both travel in base64; only a colon in the user name is ambiguous.
        if self.user.contains(':') {
            return Err(FieldError::UserName);
        }
        let pair = format!("{}:{}", self.user, self.password);
        Ok(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }
}

/// Why a URL was refused. It names the part at fault, never the URL's
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not one this parser takes (`ws`, `wss`; `http` for a
    /// proxy).
    #[error("unsupported URL scheme (expected {0})")]
    Scheme(&'static str),
    /// The host is empty or not a valid host name or bracketed IPv6
    /// address, or the authority holds a `\` (which browsers read as the
    /// start of the path and RFC 3986 as user information).
    #[error("bad host in URL")]
    Host,
    /// The port is not a number from 1 to 65535.
    #[error("bad port in URL")]
    Port,
    /// The user information holds a bad percent-escape or is not UTF-8.
    #[error("bad user information in URL")]
    Userinfo,
    /// The path or query holds a space, a control character, a byte past
    /// ASCII, or a `\` (which browsers read as `/`). The other characters
    /// a URI may not hold (`` "<>^`{|} ``) are percent-encoded instead.
    #[error("bad path or query in URL")]
    Target,
    /// A proxy URL has a path or query.
    #[error("a proxy URL has no path or query")]
    ProxyPath,
}

/// A parsed `ws://` or `wss://` URL.
///
/// The characters RFC 3986 allows nowhere in a URI (`` "<>^`{|} ``) are
/// percent-encoded in the target, as browsers do, so the request target
/// sent is always a valid one.
///
/// ```
/// use sansproto::ws::WsUrl;
/// let url = WsUrl::parse("WSS://alice:s%40fe@[::1]:9001/chat?room=1#top").unwrap();
/// assert!(url.secure);
/// assert_eq!((url.host.as_str(), url.port), ("[::1]", 9001));
/// assert_eq!(url.host_header(), "[::1]:9001");
/// assert_eq!(url.target, "/chat?room=1");
/// assert_eq!(url.credentials.unwrap().password, "s@fe");
/// assert_eq!(WsUrl::parse("ws://example.com").unwrap().host_header(), "example.com");
/// assert_eq!(WsUrl::parse("ws://h/a|b?q={}").unwrap().target, "/a%7Cb?q=%7B%7D");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss`: TLS runs under the WebSocket.
    pub secure: bool,
    /// The host: a name, an IPv4 address, or an IPv6 address in brackets.
    pub host: String,
    /// The port (80 for `ws`, 443 for `wss` when the URL has none).
    pub port: u16,
    /// The request target: path and query, starting with `/`, with the
    /// characters a URI may not hold percent-encoded.
    pub target: String,
    /// Decoded user information, if the URL had any.
    pub credentials: Option<Credentials>,
}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URL.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) =
            split_scheme(url, &["ws", "wss"]).ok_or(UrlError::Scheme("ws or wss"))?;
        let secure = scheme.eq_ignore_ascii_case("wss");
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, target) = split_authority(rest);
        let (credentials, host, port) = parse_server(authority, if secure { 443 } else { 80 })?;
        let mut encoded = String::with_capacity(target.len() + 1);
        if !target.starts_with('/') {
            encoded.push('/');
        }
        for b in target.bytes() {
            match b {
                _ if is_target_byte(b) => encoded.push(char::from(b)),
                b'\\' => return Err(UrlError::Target),
                _ if b.is_ascii_graphic() => encoded.push_str(&format!("%{b:02X}")),
                _ => return Err(UrlError::Target),
            }
        }
        let target = encoded;
        Ok(Self {
            secure,
            host,
            port,
            target,
            credentials,
        })
    }

    /// The `Host` header value: the host, with the port when it is not
    /// the scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.secure { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            self.authority()
        }
    }

    /// `host:port`, the port always written: a CONNECT target, or where
    /// to open the transport.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Parses a proxy URL, `http://[user[:password]@]host[:port][/]`, into
/// the proxy's `host:port` and its credentials.
pub(crate) fn parse_proxy_url(url: &str) -> Result<(String, Option<Credentials>), UrlError> {
    let (_, rest) = split_scheme(url, &["http"]).ok_or(UrlError::Scheme("http"))?;
    let authority = match rest.find(['/', '?', '#']) {
        Some(i) if &rest[i..] == "/" => &rest[..i],
        Some(_) => return Err(UrlError::ProxyPath),
        None => rest,
    };
    let (credentials, host, port) = parse_server(authority, 80)?;
    Ok((format!("{host}:{port}"), credentials))
}

/// A request target in a form a GET may take (RFC 9112 §3.2): origin-form
/// (`/path?query`) or absolute-form (`http://host/path?query`, also
/// `https`, `ws` and `wss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestTarget<'a> {
    /// An absolute-form target's authority (`host[:port]`), which a server
    /// uses instead of `Host` (RFC 9112 §3.2.2).
    pub(crate) authority: Option<&'a str>,
    /// The path, starting with `/` (`/` for an absolute-form target
    /// without one).
    pub(crate) path: &'a str,
    /// The query, without its `?`.
    pub(crate) query: Option<&'a str>,
}

/// Parses a request target a GET may carry; `None` for any other form
/// (asterisk-form `*`, authority-form `host:port`), an absolute-form
/// target with user information or a bad authority (RFC 9110 §4.2.4), or
/// a target with a fragment or a byte that is not visible ASCII.
pub(crate) fn parse_request_target(target: &str) -> Option<RequestTarget<'_>> {
    if target.contains('#') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let (authority, path_query) = if target.starts_with('/') {
        (None, target)
    } else {
        let (scheme, rest) = split_scheme(target, &["http", "https", "ws", "wss"])?;
        let (authority, path_query) = split_authority(rest);
        let secure = ["https", "wss"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme));
        match parse_server(authority, if secure { 443 } else { 80 }) {
            Ok((None, _, _)) => (Some(authority), path_query),
            _ => return None,
        }
    };
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    Some(RequestTarget {
        authority,
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// The authority after `scheme://`, and the path and query behind it.
fn split_authority(rest: &str) -> (&str, &str) {
    match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    }
}

/// `scheme://` (case-insensitive, one of `schemes`) and the rest.
fn split_scheme<'a>(url: &'a str, schemes: &[&str]) -> Option<(&'a str, &'a str)> {
    let (scheme, rest) = url.split_once("://")?;
    schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        .then_some((scheme, rest))
}

/// `[userinfo@]host[:port]` into credentials, host and port.
fn parse_server(
    authority: &str,
    default_port: u16,
) -> Result<(Option<Credentials>, String, u16), UrlError> {
    if authority.contains('\\') {
        return Err(UrlError::Host);
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let credentials = match userinfo {
        None => None,
        Some(u) => {
            let (user, password) = u.split_once(':').unwrap_or((u, ""));
            let decode = |s| percent_decode(s).ok_or(UrlError::Userinfo);
            Some(Credentials {
                user: decode(user)?,
                password: decode(password)?,
            })
        }
    };
    let (host, port) = split_host_port(hostport).ok_or(UrlError::Host)?;
    if !is_host(host) {
        return Err(UrlError::Host);
    }
    let port = match port {
        None => default_port,
        Some(p) => parse_port(p).ok_or(UrlError::Port)?,
    };
    Ok((credentials, host.to_owned(), port))
}

/// Splits `host[:port]` (`[v6][:port]`) without judging either part.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    // An empty port is no port (RFC 3986 §3.2.3: `host:` is `host`).
    Some((host, port.filter(|p| !p.is_empty())))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|p| *p > 0)
}

/// A host name, IPv4 address or bracketed IPv6 address.
fn is_host(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').is_some_and(|a| {
            a.contains(':')
                && a.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b))
        }
    }
}

/// Splits `host:port` (the port required) when both parts are valid.
pub(crate) fn parse_authority(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = split_host_port(s)?;
    if !is_host(host) {
        return None;
    }
    match port {
        None => Some((host, None)),
        Some(p) => parse_port(p).map(|p| (host, Some(p))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls() {
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!(
            (u.host_header().as_str(), u.target.as_str(), u.port),
            ("example.com", "/", 80)
        );
        let u = WsUrl::parse("Ws://h:8080?q=1#frag").unwrap();
        assert_eq!(
            (u.host_header().as_str(), u.target.as_str()),
            ("h:8080", "/?q=1")
        );
        let u = WsUrl::parse("wss://h/p#frag").unwrap();
        assert_eq!(
            (
                u.host_header().as_str(),
                u.authority().as_str(),
                u.target.as_str()
            ),
            ("h", "h:443", "/p")
        );
        // An empty port is the scheme's (RFC 3986 §3.2.3).
        let u = WsUrl::parse("wss://h:/p").unwrap();
        assert_eq!((u.host_header().as_str(), u.port), ("h", 443));
        let u = WsUrl::parse("ws://user:pw@example.com:8080/x").unwrap();
        assert_eq!(u.host_header(), "example.com:8080");
        assert_eq!(
            u.credentials.as_ref().map(|c| c.user.as_str()),
            Some("user")
        );
        assert!(
            !format!("{u:?}").contains("pw"),
            "Debug leaves the password out"
        );
        let u = WsUrl::parse("ws://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 80));
    }

    #[test]
    fn bad_ws_urls() {
        for (url, err) in [
            ("http://h/", UrlError::Scheme("ws or wss")),
            ("ws:///p", UrlError::Host),
            ("ws://:80/", UrlError::Host),
            ("ws://h:99999/", UrlError::Port),
            ("ws://h:abc/", UrlError::Port),
            ("ws://h:0/", UrlError::Port),
            ("ws://a b/", UrlError::Host),
            ("ws://[::1/", UrlError::Host),
            ("ws://[zz]/", UrlError::Host),
            ("ws://h/a b", UrlError::Target),
            ("ws://h/a\tb", UrlError::Target),
            ("ws://u%zz:p@h/", UrlError::Userinfo),
            ("ws://evil.com\\@good.com/", UrlError::Host),
            ("ws://h/a\\b", UrlError::Target),
        ] {
            assert_eq!(WsUrl::parse(url), Err(err.clone()), "{url}");
            assert!(!err.to_string().contains("://"));
        }
    }

    #[test]
    fn request_targets() {
        let t = |target| parse_request_target(target).map(|t| (t.authority, t.path, t.query));
        assert_eq!(t("/chat?room=1"), Some((None, "/chat", Some("room=1"))));
        assert_eq!(t("/"), Some((None, "/", None)));
        assert_eq!(
            t("http://h:8080/a?b"),
            Some((Some("h:8080"), "/a", Some("b")))
        );
        assert_eq!(t("WSS://[::1]"), Some((Some("[::1]"), "/", None)));
        assert_eq!(t("https://h?q"), Some((Some("h"), "/", Some("q"))));
        for bad in [
            "*",
            "h:80",
            "chat",
            "",
            "ftp://h/",
            "http://u@h/",
            "http:///a",
            "http://h:0/",
            "http://a\\@h/",
            "/a#f",
            "/a b",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn proxy_urls() {
        assert_eq!(
            parse_proxy_url("HTTP://user:p%40ss@10.0.0.1:3128/").unwrap(),
            (
                "10.0.0.1:3128".to_owned(),
                Some(Credentials {
                    user: "user".into(),
                    password: "p@ss".into()
                })
            )
        );
        assert_eq!(parse_proxy_url("http://proxy").unwrap().0, "proxy:80");
        assert_eq!(parse_proxy_url("http://proxy/x"), Err(UrlError::ProxyPath));
        assert_eq!(
            parse_proxy_url("socks5://proxy"),
            Err(UrlError::Scheme("http"))
        );
    }
}

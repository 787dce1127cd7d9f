//! The server's side of an upgrade: the validated request, and what
//! accepting it negotiates.

use super::answer::{Accept, Accepted, Protocol};
use super::{accept_key, HandshakeError, Headers, HttpRequest};
use crate::ws::extension::{Extension, ExtensionOffer};
use crate::ws::http::body::Declared;
use crate::ws::http::field::{check_host, FieldError};
use crate::ws::http::url::{parse_request_target, RequestTarget};
use crate::ws::http::MalformedHttp;
use crate::ws::Config;
use base64::Engine;
use bytes::Bytes;

/// A valid WebSocket upgrade request, waiting for the application's
/// decision: [`accept`](Self::accept) it with an [`Accept`], or answer it
/// with a [`Reject`](crate::ws::Reject).
///
/// A server made with
/// [`Connection::server_with_decision`](crate::ws::Connection::server_with_decision)
/// reports it as [`Event::Upgrade`](crate::ws::Event::Upgrade); a server
/// that parses HTTP itself builds it with [`from_headers`](Self::from_headers)
/// (or `from_http` with the `http` feature).
///
/// ```
/// use sansproto::ws::{Accept, Config, OriginPolicy, UpgradeRequest};
/// let headers: [(&str, &[u8]); 7] = [
///     ("Host", b"example.com"),
///     ("Upgrade", b"websocket"),
///     ("Connection", b"Upgrade"),
///     ("Sec-WebSocket-Version", b"13"),
///     ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
///     ("Sec-WebSocket-Protocol", b"chat.v2, chat.v1"),
///     ("Origin", b"https://example.com"),
/// ];
/// let request = UpgradeRequest::from_headers("GET", "/chat?room=7", headers).unwrap();
/// assert_eq!((request.path(), request.query()), ("/chat", Some("room=7")));
/// assert_eq!(request.host(), "example.com");
/// assert_eq!(request.protocols, ["chat.v2", "chat.v1"]);
/// OriginPolicy::allow(["https://example.com"]).check(&request).unwrap();
///
/// let answer = Accept::new().with_protocol("chat.v1").with_header("X-Room", "7").unwrap();
/// let accepted = request.accept(&Config::default(), &answer).unwrap();
/// assert_eq!(
///     accepted.response_bytes().unwrap(),
///     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///       Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat.v1\r\n\
///       X-Room: 7\r\n\r\n"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// Method, request target and header fields as received.
    pub request: HttpRequest,
    /// The subprotocols the client offered, in its order.
    pub protocols: Vec<String>,
    /// The extensions the client offered, in its order (offers that are
    /// not valid header syntax are left out: they are declined).
    pub extensions: Vec<ExtensionOffer>,
    key: String,
}

impl UpgradeRequest {
    /// The heap the request holds, with what was parsed out of it.
    pub(crate) fn heap(&self) -> usize {
        use crate::memory::slots;
        let protocols = self.protocols.iter().map(String::capacity).sum::<usize>();
        let offers = self.extensions.iter().map(|e| {
            let params = e
                .params
                .iter()
                .map(|(n, v)| n.capacity() + v.as_ref().map_or(0, String::capacity));
            e.name.capacity()
                + slots::<(String, Option<String>)>(e.params.capacity())
                + params.sum::<usize>()
        });
        self.request.heap()
            + slots::<String>(self.protocols.capacity())
            + protocols
            + slots::<ExtensionOffer>(self.extensions.capacity())
            + offers.sum::<usize>()
            + self.key.capacity()
    }

    /// Validates an upgrade request (RFC 6455 §4.2.1): GET with an
    /// origin-form or absolute-form target, `Upgrade: websocket`,
    /// `Connection: Upgrade`, one valid `Host`, no body, version 13 and one
    /// 16-byte `Sec-WebSocket-Key`.
    ///
    /// A request target that is not origin-form or absolute-form (`*`,
    /// `host:port`) is [`MalformedHttp::Target`], a repeated or invalid
    /// `Host` is [`HandshakeError::Header`]`("Host")` (RFC 9112 §3.2), and
    /// a body (`Transfer-Encoding`, or `Content-Length` other than 0) is
    /// [`HandshakeError::Body`], or [`MalformedHttp::ContentLength`] /
    /// [`MalformedHttp::ConflictingFraming`] when its length is unclear: a
    /// server that read on would take the body's bytes for frames. All are
    /// answered with 400 ([`Reject::for_error`](crate::ws::Reject::for_error)).
    pub fn from_headers<'a, I>(
        method: &str,
        target: &str,
        headers: I,
    ) -> Result<Self, HandshakeError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let headers = Headers(
            headers
                .into_iter()
                .map(|(n, v)| (n.to_owned(), Bytes::copy_from_slice(v)))
                .collect(),
        );
        Self::parse(HttpRequest {
            method: method.to_owned(),
            path: target.to_owned(),
            headers,
        })
    }

    /// Validates a request parsed by the crate's HTTP layer.
    pub(crate) fn parse(request: HttpRequest) -> Result<Self, HandshakeError> {
        let headers = &request.headers;
        if request.method != "GET" {
            return Err(HandshakeError::Method(request.method.clone()));
        }
        if parse_request_target(&request.path).is_none() {
            return Err(HandshakeError::Malformed(MalformedHttp::Target));
        }
        if !is_upgrade(headers) {
            return Err(HandshakeError::Header("Upgrade"));
        }
        if !headers.has_token("Connection", "upgrade") {
            return Err(HandshakeError::Header("Connection"));
        }
        let host = headers
            .single("Host")
            .and_then(|h| std::str::from_utf8(h).ok());
        if host.is_none_or(|h| check_host(h).is_err()) {
            return Err(HandshakeError::Header("Host"));
        }
        match Declared::from_headers(headers).map_err(HandshakeError::Malformed)? {
            Declared::Nothing | Declared::Length(0) => {}
            _ => return Err(HandshakeError::Body),
        }
        if headers
            .get_all("Sec-WebSocket-Version")
            .map(<[u8]>::trim_ascii)
            .ne([&b"13"[..]])
        {
            return Err(HandshakeError::Version);
        }
        let key = headers
            .single("Sec-WebSocket-Key")
            .ok_or(HandshakeError::Header("Sec-WebSocket-Key"))?;
        match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(raw) if raw.len() == 16 => {}
            _ => return Err(HandshakeError::Header("Sec-WebSocket-Key")),
        }
        let key = String::from_utf8_lossy(key).into_owned();
        let extensions = headers
            .get_all("Sec-WebSocket-Extensions")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter_map(|v| ExtensionOffer::parse_list(v).ok())
            .flatten()
            .collect();
        let protocols = headers.list("Sec-WebSocket-Protocol");
        Ok(Self {
            protocols,
            extensions,
            key,
            request,
        })
    }

    /// The request target's parts. A request that passed validation has a
    /// target in one of the two forms; were the public `request` changed
    /// since to one in neither, it reads as the path `/`.
    fn target(&self) -> RequestTarget<'_> {
        parse_request_target(&self.request.path).unwrap_or(RequestTarget {
            authority: None,
            path: "/",
            query: None,
        })
    }

    /// The request target's path, without the query: `/chat` for
    /// `/chat?room=1` and for the absolute-form
    /// `http://example.com/chat?room=1` alike (RFC 9112 §3.2.2).
    pub fn path(&self) -> &str {
        self.target().path
    }

    /// The request target's query, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.target().query
    }

    /// The host the request is for: an absolute-form target's authority,
    /// which takes the place of `Host` (RFC 9112 §3.2.2), else the `Host`
    /// field (`host[:port]`, as received).
    pub fn host(&self) -> &str {
        self.target()
            .authority
            .or_else(|| self.request.headers.get_str("Host").map(str::trim))
            .unwrap_or("")
    }

    /// True when the request carries `Expect: 100-continue`: RFC 9110 §7.8
    /// then requires a 100 (Continue) before the 101, which
    /// [`Accepted::response_bytes`] writes first.
    pub fn expects_continue(&self) -> bool {
        self.request.headers.has_token("Expect", "100-continue")
    }

    /// The `Origin` header, which browsers send (RFC 6454); see
    /// [`OriginPolicy`](crate::ws::OriginPolicy).
    pub fn origin(&self) -> Option<&str> {
        self.request.headers.get_str("Origin")
    }

    /// Accepts the upgrade: negotiates as `answer` says, with `config`'s
    /// extensions and response header fields.
    pub fn accept(&self, config: &Config, answer: &Accept) -> Result<Accepted, FieldError> {
        let protocol = match &answer.protocol {
            Protocol::Configured => config
                .protocols()
                .iter()
                .find(|p| self.protocols.iter().any(|o| o == *p))
                .cloned(),
            Protocol::Chosen(p) if self.protocols.contains(p) => Some(p.clone()),
            Protocol::Chosen(p) => return Err(FieldError::NotOffered(p.clone())),
            Protocol::Declined => None,
        };
        let extension = if answer.extensions {
            negotiate_extensions(config, &self.extensions)
        } else {
            None
        };
        let mut headers = config.headers().to_vec();
        headers.extend(answer.headers.iter().cloned());
        let accepted = Accepted {
            continue_first: self.expects_continue(),
            accept: accept_key(self.key.as_bytes()),
            protocol,
            extension,
            headers,
        };
        accepted.response_bytes()?;
        Ok(accepted)
    }
}

/// True when the request asks for a WebSocket upgrade at all.
pub(crate) fn is_upgrade(headers: &Headers) -> bool {
    headers.has_token("Upgrade", "websocket")
}

fn negotiate_extensions(
    config: &Config,
    offers: &[ExtensionOffer],
) -> Option<(ExtensionOffer, Box<dyn Extension>)> {
    config.extensions.iter().find_map(|f| {
        let mine: Vec<&ExtensionOffer> = offers.iter().filter(|o| o.name == f.name()).collect();
        if mine.is_empty() {
            None
        } else {
            f.accept_offer(&mine)
        }
    })
}

/// Validates an upgrade request that was already parsed elsewhere (hyper,
/// axum, a custom HTTP server) and accepts it with the configured choices:
/// [`UpgradeRequest::from_headers`], then [`UpgradeRequest::accept`] with
/// [`Accept::new`].
///
/// ```
/// use sansproto::ws::{accept_headers, Config};
/// let headers: [(&str, &[u8]); 5] = [
///     ("Host", b"example.com"),
///     ("Upgrade", b"websocket"),
///     ("Connection", b"Upgrade"),
///     ("Sec-WebSocket-Version", b"13"),
///     ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
/// ];
/// let accepted = accept_headers(&Config::default(), "GET", headers).unwrap();
/// assert_eq!(accepted.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_headers<'a, I>(
    config: &Config,
    method: &str,
    headers: I,
) -> Result<Accepted, HandshakeError>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let request = UpgradeRequest::from_headers(method, "/", headers)?;
    Ok(request.accept(config, &Accept::new())?)
}

#[cfg(feature = "http")]
mod http_interop {
    use super::*;
    use crate::ws::handshake::Reject;

    impl UpgradeRequest {
        /// Validates an upgrade request given as an `http::Request` (from
        /// hyper, axum or any `http`-based server), for the application to
        /// decide on. The whole URI is the request target, so
        /// [`path`](Self::path), [`query`](Self::query) and
        /// [`host`](Self::host) read it as they read one this crate parsed.
        ///
        /// ```
        /// use sansproto::ws::{Accept, Config, Connection, Reject, UpgradeRequest};
        /// let req = http::Request::get("/chat")
        ///     .header("Host", "example.com")
        ///     .header("Upgrade", "websocket")
        ///     .header("Connection", "Upgrade")
        ///     .header("Sec-WebSocket-Version", "13")
        ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        ///     .header("Origin", "https://evil.example")
        ///     .body(())
        ///     .unwrap();
        /// let upgrade = UpgradeRequest::from_http(&req).unwrap();
        /// let refusal = Reject::new(403).to_response().unwrap();
        /// assert_eq!(refusal.status(), http::StatusCode::FORBIDDEN);
        ///
        /// let config = Config::default();
        /// let accepted = upgrade.accept(&config, &Accept::new()).unwrap();
        /// let response = accepted.to_response().unwrap();
        /// assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
        /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        /// // Once the HTTP stack has sent the response and handed over the stream:
        /// let conn = Connection::server_accepted(config, accepted);
        /// assert!(conn.is_open());
        /// ```
        pub fn from_http<B>(request: &http::Request<B>) -> Result<Self, HandshakeError> {
            Self::from_headers(
                request.method().as_str(),
                &request.uri().to_string(),
                request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_bytes())),
            )
        }
    }

    impl Accepted {
        /// Validates an `http::Request` and accepts it with the configured
        /// choices ([`UpgradeRequest::from_http`], then
        /// [`UpgradeRequest::accept`] with [`Accept::new`]).
        pub fn from_request<B>(
            config: &Config,
            request: &http::Request<B>,
        ) -> Result<Self, HandshakeError> {
            Ok(UpgradeRequest::from_http(request)?.accept(config, &Accept::new())?)
        }

        /// The 101 response as an `http::Response`. The 100 (Continue)
        /// that an `Expect: 100-continue` request needs before it
        /// ([`UpgradeRequest::expects_continue`]) is an interim response,
        /// which the HTTP stack sends.
        pub fn to_response(&self) -> Result<http::Response<()>, FieldError> {
            self.response_bytes()?;
            let mut builder =
                http::Response::builder().status(http::StatusCode::SWITCHING_PROTOCOLS);
            builder = builder
                .header(http::header::UPGRADE, "websocket")
                .header(http::header::CONNECTION, "Upgrade");
            for (k, v) in self.response_headers() {
                builder = builder.header(k, v);
            }
            builder
                .body(())
                .map_err(|_| FieldError::Name("a header the http crate refuses".into()))
        }
    }

    impl Reject {
        /// The refusal as an `http::Response` (without the `Content-Length`
        /// and `Connection` fields, which the HTTP stack writes).
        pub fn to_response(&self) -> Result<http::Response<Bytes>, FieldError> {
            self.response_bytes()?;
            let mut builder = http::Response::builder().status(self.status);
            for (k, v) in &self.headers {
                builder = builder.header(k, v);
            }
            builder
                .body(self.body.clone())
                .map_err(|_| FieldError::Status(self.status))
        }
    }

    impl HandshakeError {
        /// The HTTP status a server answers this error with (400, 405, 426,
        /// 431 or 500).
        pub fn status(&self) -> http::StatusCode {
            http::StatusCode::from_u16(Reject::for_error(self).status)
                .unwrap_or(http::StatusCode::BAD_REQUEST)
        }
    }
}

/// An upgrade request with RFC 6455 §1.3's fields, `extra` replacing or
/// (with an empty value) removing them.
#[cfg(test)]
pub(crate) fn test_request(extra: &[(&str, &str)]) -> Result<UpgradeRequest, HandshakeError> {
    let mut h = vec![
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    for (k, v) in extra {
        h.retain(|(n, _)| n != k);
        if !v.is_empty() {
            h.push((k, v));
        }
    }
    UpgradeRequest::from_headers("GET", "/chat", h.iter().map(|(k, v)| (*k, v.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::handshake::Reject;
    use test_request as request;
    #[test]
    fn rfc_example_is_accepted() {
        let a = request(&[])
            .unwrap()
            .accept(&Config::default(), &Accept::new())
            .unwrap();
        assert_eq!(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            a.response_bytes().unwrap(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn bad_requests_are_refused_with_the_right_error() {
        assert_eq!(
            UpgradeRequest::from_headers("POST", "/", [("Host", &b"h"[..])]).unwrap_err(),
            HandshakeError::Method("POST".into())
        );
        assert_eq!(
            request(&[("Sec-WebSocket-Version", "8")]).unwrap_err(),
            HandshakeError::Version
        );
        assert_eq!(
            request(&[("Connection", "keep-alive")]).unwrap_err(),
            HandshakeError::Header("Connection")
        );
        assert_eq!(
            request(&[("Sec-WebSocket-Key", "c2hvcnQ=")]).unwrap_err(),
            HandshakeError::Header("Sec-WebSocket-Key")
        );
        let resp = Reject::for_error(&HandshakeError::Version)
            .response_bytes()
            .unwrap();
        let resp = String::from_utf8(resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(resp.contains("Sec-WebSocket-Version: 13\r\n"));
    }

    #[test]
    fn subprotocol_choice() {
        let c = Config::default().with_protocols(["v2", "v1"]).unwrap();
        let r = request(&[("Sec-WebSocket-Protocol", "v1, v2")]).unwrap();
        assert_eq!(
            r.accept(&c, &Accept::new()).unwrap().protocol.as_deref(),
            Some("v2")
        );
        let chosen = Accept::new().with_protocol("v1");
        assert_eq!(
            r.accept(&c, &chosen).unwrap().protocol.as_deref(),
            Some("v1")
        );
        assert_eq!(
            r.accept(&c, &Accept::new().without_protocol())
                .unwrap()
                .protocol,
            None
        );
        assert_eq!(
            r.accept(&c, &Accept::new().with_protocol("v3"))
                .unwrap_err(),
            FieldError::NotOffered("v3".into())
        );
        let r = request(&[("Sec-WebSocket-Protocol", "v3")]).unwrap();
        assert_eq!(r.accept(&c, &Accept::new()).unwrap().protocol, None);
    }
}

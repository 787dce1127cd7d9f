//! Server side of the opening handshake.

use super::{accept_key, complete, push_header, HandshakeError, Headers, HttpRequest};
use crate::ws::extension::{Extension, ExtensionOffer};
use crate::ws::Config;
use base64::Engine;
use std::fmt;

/// The outcome of a valid upgrade request: what the 101 response says.
///
/// Produced by [`accept_headers`] for servers that parse HTTP themselves,
/// and turned into an open connection by
/// [`Connection::server_accepted`](crate::ws::Connection::server_accepted).
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
    /// The subprotocol chosen, if any.
    pub protocol: Option<String>,
    pub(crate) extension: Option<(ExtensionOffer, Box<dyn Extension>)>,
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("accept", &self.accept)
            .field("protocol", &self.protocol)
            .field("extension", &self.extension.as_ref().map(|(o, _)| o))
            .finish()
    }
}

impl Accepted {
    /// The negotiated extension's response parameters, if one was accepted.
    pub fn extension(&self) -> Option<&ExtensionOffer> {
        self.extension.as_ref().map(|(o, _)| o)
    }

    /// The header fields of the 101 response besides `Upgrade` and
    /// `Connection`: accept key, subprotocol, extensions and the configured
    /// extra headers.
    pub fn response_headers(&self, config: &Config) -> Vec<(String, String)> {
        let mut h = vec![("Sec-WebSocket-Accept".to_owned(), self.accept.clone())];
        if let Some(p) = &self.protocol {
            h.push(("Sec-WebSocket-Protocol".to_owned(), p.clone()));
        }
        if let Some(o) = self.extension() {
            h.push(("Sec-WebSocket-Extensions".to_owned(), o.to_string()));
        }
        h.extend(config.headers.iter().cloned());
        h
    }

    /// The whole 101 response.
    pub fn response_bytes(&self, config: &Config) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        );
        for (k, v) in self.response_headers(config) {
            push_header(&mut out, &k, &v);
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Validates an upgrade request that was already parsed elsewhere (hyper,
/// axum, a custom HTTP server) and negotiates subprotocol and extensions.
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
    let headers = Headers(
        headers
            .into_iter()
            .map(|(n, v)| (n.to_owned(), bytes::Bytes::copy_from_slice(v)))
            .collect(),
    );
    validate_upgrade(config, method, &headers)
}

/// True when the request asks for a WebSocket upgrade at all.
pub(crate) fn is_upgrade(headers: &Headers) -> bool {
    headers.has_token("Upgrade", "websocket")
}

pub(crate) fn validate_upgrade(
    config: &Config,
    method: &str,
    headers: &Headers,
) -> Result<Accepted, HandshakeError> {
    if method != "GET" {
        return Err(HandshakeError::Method(method.to_owned()));
    }
    if !is_upgrade(headers) {
        return Err(HandshakeError::Header("Upgrade"));
    }
    if !headers.has_token("Connection", "upgrade") {
        return Err(HandshakeError::Header("Connection"));
    }
    if headers.get("Host").is_none() {
        return Err(HandshakeError::Header("Host"));
    }
    if headers
        .get_all("Sec-WebSocket-Version")
        .map(<[u8]>::trim_ascii)
        .ne([&b"13"[..]])
    {
        return Err(HandshakeError::Version);
    }
    let mut keys = headers.get_all("Sec-WebSocket-Key");
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k.trim_ascii(),
        _ => return Err(HandshakeError::Header("Sec-WebSocket-Key")),
    };
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::Header("Sec-WebSocket-Key")),
    }
    let offered = headers.list("Sec-WebSocket-Protocol");
    let protocol = config
        .protocols
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .cloned();
    Ok(Accepted {
        accept: accept_key(key),
        protocol,
        extension: negotiate_extensions(config, headers),
    })
}

fn negotiate_extensions(
    config: &Config,
    headers: &Headers,
) -> Option<(ExtensionOffer, Box<dyn Extension>)> {
    if config.extensions.is_empty() {
        return None;
    }
    // Offers that are not valid header syntax are declined, not failed.
    let offers: Vec<ExtensionOffer> = headers
        .get_all("Sec-WebSocket-Extensions")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(|v| ExtensionOffer::parse_list(v).ok())
        .flatten()
        .collect();
    config.extensions.iter().find_map(|f| {
        let mine: Vec<&ExtensionOffer> = offers.iter().filter(|o| o.name == f.name()).collect();
        if mine.is_empty() {
            None
        } else {
            f.accept_offer(&mine)
        }
    })
}

/// Parses a complete request head (through the blank line); also returns
/// the HTTP minor version.
pub(crate) fn parse_request(
    head: &[u8],
    max_headers: usize,
) -> Result<(HttpRequest, u8), HandshakeError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut storage);
    complete(&req.parse(head), max_headers)?;
    let request = HttpRequest {
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        headers: Headers::from_httparse(req.headers),
    };
    Ok((request, req.version.unwrap_or_default()))
}

/// The HTTP response sent for a refused upgrade.
pub(crate) fn error_response(err: &HandshakeError) -> Vec<u8> {
    let (status, extra) = match err {
        HandshakeError::Version => ("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n"),
        HandshakeError::TooLarge(_) | HandshakeError::TooManyHeaders(_) => {
            ("431 Request Header Fields Too Large", "")
        }
        HandshakeError::Method(_) => ("405 Method Not Allowed", "Allow: GET\r\n"),
        _ => ("400 Bad Request", ""),
    };
    let body = format!("{err}\n");
    format!(
        "HTTP/1.1 {status}\r\n{extra}Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(feature = "http")]
impl Accepted {
    /// Validates an upgrade request given as an `http::Request` (from
    /// hyper, axum or any `http`-based server).
    ///
    /// ```
    /// use sansproto::ws::{Accepted, Config, Connection};
    /// let req = http::Request::get("/chat")
    ///     .header("Host", "example.com")
    ///     .header("Upgrade", "websocket")
    ///     .header("Connection", "Upgrade")
    ///     .header("Sec-WebSocket-Version", "13")
    ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .body(())
    ///     .unwrap();
    /// let config = Config::default();
    /// let accepted = Accepted::from_request(&config, &req).unwrap();
    /// let response = accepted.to_response(&config);
    /// assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// // Once the HTTP stack has sent the response and handed over the stream:
    /// let conn = Connection::server_accepted(config, accepted);
    /// assert!(conn.is_open());
    /// ```
    pub fn from_request<B>(
        config: &Config,
        request: &http::Request<B>,
    ) -> Result<Self, HandshakeError> {
        accept_headers(
            config,
            request.method().as_str(),
            request
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes())),
        )
    }

    /// The 101 response as an `http::Response`.
    pub fn to_response(&self, config: &Config) -> http::Response<()> {
        let mut builder = http::Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::CONNECTION, "Upgrade");
        for (k, v) in self.response_headers(config) {
            builder = builder.header(k, v);
        }
        builder.body(()).unwrap_or_else(|_| {
            // Only configured extra headers can be invalid; answer without them.
            let mut r = http::Response::new(());
            *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
            r
        })
    }
}

#[cfg(feature = "http")]
impl HandshakeError {
    /// The HTTP status a server answers this error with (400, 405, 426 or 431).
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::Version => http::StatusCode::UPGRADE_REQUIRED,
            Self::Method(_) => http::StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) | Self::TooManyHeaders(_) => {
                http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(extra: &[(&str, &str)]) -> Headers {
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
        Headers(
            h.into_iter()
                .map(|(k, v)| (k.to_owned(), bytes::Bytes::copy_from_slice(v.as_bytes())))
                .collect(),
        )
    }

    #[test]
    fn rfc_example_is_accepted() {
        let a = validate_upgrade(&Config::default(), "GET", &headers(&[])).unwrap();
        assert_eq!(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let resp = String::from_utf8(a.response_bytes(&Config::default())).unwrap();
        assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(resp.ends_with("\r\n\r\n"));
    }

    #[test]
    fn bad_requests_are_refused_with_the_right_error() {
        let c = Config::default();
        assert_eq!(
            validate_upgrade(&c, "POST", &headers(&[])).unwrap_err(),
            HandshakeError::Method("POST".into())
        );
        assert_eq!(
            validate_upgrade(&c, "GET", &headers(&[("Sec-WebSocket-Version", "8")])).unwrap_err(),
            HandshakeError::Version
        );
        assert_eq!(
            validate_upgrade(&c, "GET", &headers(&[("Connection", "keep-alive")])).unwrap_err(),
            HandshakeError::Header("Connection")
        );
        assert_eq!(
            validate_upgrade(&c, "GET", &headers(&[("Sec-WebSocket-Key", "c2hvcnQ=")]))
                .unwrap_err(),
            HandshakeError::Header("Sec-WebSocket-Key")
        );
        let resp = String::from_utf8(error_response(&HandshakeError::Version)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 426 "));
        assert!(resp.contains("Sec-WebSocket-Version: 13\r\n"));
    }

    #[test]
    fn subprotocol_is_the_servers_first_choice_the_client_offered() {
        let c = Config::default().with_protocols(["v2", "v1"]);
        let a =
            validate_upgrade(&c, "GET", &headers(&[("Sec-WebSocket-Protocol", "v1, v2")])).unwrap();
        assert_eq!(a.protocol.as_deref(), Some("v2"));
        let a = validate_upgrade(&c, "GET", &headers(&[("Sec-WebSocket-Protocol", "v3")])).unwrap();
        assert_eq!(a.protocol, None);
    }
}

//! Client side of the opening handshake.

use super::{
    accept_key, complete, is_header_safe, push_header, HandshakeError, Headers, HttpResponse,
};
use crate::ws::extension::{Extension, ExtensionOffer};
use crate::ws::Config;
use bytes::Bytes;

/// Where a client connects: the `Host` header, the request target and an
/// optional `Origin`.
///
/// ```
/// use sansproto::ws::ClientRequest;
/// let r = ClientRequest::from_url("ws://example.com:9001/chat?x=1").unwrap();
/// assert_eq!((r.host.as_str(), r.path.as_str()), ("example.com:9001", "/chat?x=1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The `Host` header value (`host` or `host:port`).
    pub host: String,
    /// The request target, starting with `/`.
    pub path: String,
    /// The `Origin` header, sent when set.
    pub origin: Option<String>,
}

impl ClientRequest {
    /// A request for `path` on `host`.
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            path: path.into(),
            origin: None,
        }
    }

    /// Splits a `ws://` or `wss://` URL into host and path.
    pub fn from_url(url: &str) -> Result<Self, HandshakeError> {
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("wss://"))
            .ok_or_else(|| {
                HandshakeError::Malformed(format!("not a ws:// or wss:// URL: {url}"))
            })?;
        let (host, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes().get(i) == Some(&b'?') => {
                (&rest[..i], format!("/{}", &rest[i..]))
            }
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        if host.is_empty()
            || !is_header_safe(host)
            || !is_header_safe(&path)
            || host.contains(char::is_whitespace)
        {
            return Err(HandshakeError::Malformed(format!("bad URL: {url}")));
        }
        Ok(Self::new(host, path))
    }

    /// Sets the `Origin` header.
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }
}

/// Builds the upgrade request.
pub(crate) fn build_request(
    req: &ClientRequest,
    config: &Config,
    key: &str,
) -> Result<Vec<u8>, HandshakeError> {
    let unsafe_field = [&req.host, &req.path]
        .into_iter()
        .chain(req.origin.as_ref())
        .chain(config.protocols.iter())
        .chain(config.headers.iter().flat_map(|(k, v)| [k, v]))
        .any(|s| !is_header_safe(s));
    if unsafe_field || req.path.contains(' ') {
        return Err(HandshakeError::Malformed(
            "CR, LF or NUL in a request field".into(),
        ));
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(req.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_header(&mut out, "Host", &req.host);
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    push_header(&mut out, "Sec-WebSocket-Key", key);
    out.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
    if let Some(o) = &req.origin {
        push_header(&mut out, "Origin", o);
    }
    if !config.protocols.is_empty() {
        push_header(
            &mut out,
            "Sec-WebSocket-Protocol",
            &config.protocols.join(", "),
        );
    }
    let offers: Vec<String> = config
        .extensions
        .iter()
        .map(|f| f.offer().to_string())
        .collect();
    if !offers.is_empty() {
        push_header(&mut out, "Sec-WebSocket-Extensions", &offers.join(", "));
    }
    for (k, v) in &config.headers {
        push_header(&mut out, k, v);
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// A parsed response head.
pub(crate) struct ResponseHead {
    pub(crate) response: HttpResponse,
}

/// Parses a complete response head (through the blank line).
pub(crate) fn parse_response(
    head: &[u8],
    max_headers: usize,
) -> Result<ResponseHead, HandshakeError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut resp = httparse::Response::new(&mut storage);
    complete(&resp.parse(head), max_headers)?;
    Ok(ResponseHead {
        response: HttpResponse {
            status: resp.code.unwrap_or_default(),
            reason: resp.reason.unwrap_or_default().to_owned(),
            headers: Headers::from_httparse(resp.headers),
            body: Bytes::new(),
        },
    })
}

/// What a valid 101 response negotiated.
pub(crate) struct Negotiated {
    pub(crate) protocol: Option<String>,
    pub(crate) extension: Option<Box<dyn Extension>>,
}

/// Checks a 101 response against the request that was sent.
pub(crate) fn validate_response(
    config: &Config,
    key: &str,
    headers: &Headers,
) -> Result<Negotiated, HandshakeError> {
    if !headers.has_token("Upgrade", "websocket") {
        return Err(HandshakeError::Header("Upgrade"));
    }
    if !headers.has_token("Connection", "upgrade") {
        return Err(HandshakeError::Header("Connection"));
    }
    let accept = headers.get("Sec-WebSocket-Accept").map(<[u8]>::trim_ascii);
    if accept != Some(accept_key(key.as_bytes()).as_bytes()) {
        return Err(HandshakeError::AcceptMismatch);
    }
    let chosen = headers.list("Sec-WebSocket-Protocol");
    let protocol = match chosen.as_slice() {
        [] => None,
        [p] if config.protocols.contains(p) => Some(p.clone()),
        _ => return Err(HandshakeError::Subprotocol(chosen.join(", "))),
    };
    let mut responses = Vec::new();
    for v in headers.get_all("Sec-WebSocket-Extensions") {
        let v =
            std::str::from_utf8(v).map_err(|_| HandshakeError::Extension("not UTF-8".into()))?;
        responses.extend(
            ExtensionOffer::parse_list(v).map_err(|e| HandshakeError::Extension(e.to_string()))?,
        );
    }
    let extension = match responses.as_slice() {
        [] => None,
        [r] => {
            let factory = config
                .extensions
                .iter()
                .find(|f| f.name() == r.name)
                .ok_or_else(|| HandshakeError::Extension(format!("{} was not offered", r.name)))?;
            Some(
                factory
                    .accept_response(r)
                    .map_err(HandshakeError::Extension)?,
            )
        }
        _ => {
            return Err(HandshakeError::Extension(
                "more than one extension accepted".into(),
            ))
        }
    };
    Ok(Negotiated {
        protocol,
        extension,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        let config = Config::default()
            .with_protocols(["chat"])
            .with_header("X-Token", "abc");
        let req =
            ClientRequest::new("server.example.com", "/chat").with_origin("http://example.com");
        let bytes = build_request(&req, &config, "dGhlIHNhbXBsZSBub25jZQ==").unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Origin: http://example.com\r\nSec-WebSocket-Protocol: chat\r\nX-Token: abc\r\n\r\n"
        );
        let bad = ClientRequest::new("a\r\nInjected: 1", "/");
        assert!(build_request(&bad, &config, "k").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            ClientRequest::from_url("ws://h").unwrap(),
            ClientRequest::new("h", "/")
        );
        assert_eq!(
            ClientRequest::from_url("wss://h:1?q").unwrap(),
            ClientRequest::new("h:1", "/?q")
        );
        assert_eq!(
            ClientRequest::from_url("ws://h/p#frag").unwrap(),
            ClientRequest::new("h", "/p")
        );
        assert!(ClientRequest::from_url("http://h/").is_err());
        assert!(ClientRequest::from_url("ws:///p").is_err());
    }

    #[test]
    fn response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let config = Config::default().with_protocols(["chat"]);
        let h = |extra: &[(&str, &str)]| {
            let mut v = vec![
                ("Upgrade".to_owned(), Bytes::from_static(b"websocket")),
                ("Connection".to_owned(), Bytes::from_static(b"Upgrade")),
                (
                    "Sec-WebSocket-Accept".to_owned(),
                    Bytes::from_static(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                ),
            ];
            for (k, val) in extra {
                v.retain(|(n, _)| n != k);
                v.push((k.to_string(), Bytes::copy_from_slice(val.as_bytes())));
            }
            Headers(v)
        };
        assert!(validate_response(&config, key, &h(&[]))
            .unwrap()
            .protocol
            .is_none());
        assert_eq!(
            validate_response(&config, key, &h(&[("Sec-WebSocket-Protocol", "chat")]))
                .unwrap()
                .protocol
                .as_deref(),
            Some("chat")
        );
        assert!(matches!(
            validate_response(&config, key, &h(&[("Sec-WebSocket-Protocol", "other")])),
            Err(HandshakeError::Subprotocol(_))
        ));
        assert_eq!(
            validate_response(&config, key, &h(&[("Sec-WebSocket-Accept", "wrong")])).err(),
            Some(HandshakeError::AcceptMismatch)
        );
        assert!(matches!(
            validate_response(
                &config,
                key,
                &h(&[("Sec-WebSocket-Extensions", "permessage-deflate")])
            ),
            Err(HandshakeError::Extension(_))
        ));
    }
}

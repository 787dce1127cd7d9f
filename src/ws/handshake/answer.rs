//! The application's answers to an upgrade request: [`Accept`] (and the
//! [`Accepted`] outcome with its 101 response) or [`Reject`].

use super::HandshakeError;
use crate::ws::extension::{Extension, ExtensionOffer};
use crate::ws::http::field::{
    check_subprotocol, push_extra, FieldError, HeadWriter, HANDSHAKE_OWNED, RESPONSE_OWNED,
};
use bytes::Bytes;
use std::fmt;

/// Which subprotocol an [`Accept`] answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The first of the configured ones that the client offered.
    Configured,
    /// This one, which the client must have offered.
    Chosen(String),
    /// None.
    Declined,
}

/// The application's yes to an upgrade: which subprotocol, whether to
/// negotiate extensions, and extra response header fields.
///
/// By default the subprotocol is the first of
/// [`Config::protocols`](crate::ws::Config::protocols) that the client
/// offered, and the configured extensions are negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    pub(crate) protocol: Protocol,
    pub(crate) extensions: bool,
    pub(crate) headers: Vec<(String, String)>,
}

impl Default for Accept {
    fn default() -> Self {
        Self::new()
    }
}

impl Accept {
    /// Accept with the configured choices.
    pub fn new() -> Self {
        Self {
            protocol: Protocol::Configured,
            extensions: true,
            headers: Vec::new(),
        }
    }

    /// Answers with subprotocol `protocol`, which must be one the client
    /// offered (else accepting fails with [`FieldError::NotOffered`]).
    pub fn with_protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Protocol::Chosen(protocol.into());
        self
    }

    /// Answers without a subprotocol.
    pub fn without_protocol(mut self) -> Self {
        self.protocol = Protocol::Declined;
        self
    }

    /// Declines every extension offer.
    pub fn without_extensions(mut self) -> Self {
        self.extensions = false;
        self
    }

    /// Adds a header field to the 101 response. Names must be tokens,
    /// values free of control characters, and the fields the handshake
    /// writes itself (`Upgrade`, `Connection`, `Sec-WebSocket-*`…) cannot
    /// be added.
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, FieldError> {
        push_extra(&mut self.headers, HANDSHAKE_OWNED, name, value)?;
        Ok(self)
    }
}

/// The outcome of an accepted upgrade: what the 101 response says.
///
/// Made by [`UpgradeRequest::accept`](crate::ws::UpgradeRequest::accept) or [`accept_headers`](crate::ws::accept_headers) for servers
/// that parse HTTP themselves, and turned into an open connection by
/// [`Connection::server_accepted`](crate::ws::Connection::server_accepted).
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
    /// The subprotocol chosen, if any.
    pub protocol: Option<String>,
    pub(crate) extension: Option<(ExtensionOffer, Box<dyn Extension>)>,
    pub(crate) headers: Vec<(String, String)>,
    /// The request carried `Expect: 100-continue`: a 100 (Continue) goes
    /// out before the 101 (RFC 9110 §7.8).
    pub(crate) continue_first: bool,
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("accept", &self.accept)
            .field("protocol", &self.protocol)
            .field("extension", &self.extension.as_ref().map(|(o, _)| o))
            .field("headers", &self.headers)
            .field("continue_first", &self.continue_first)
            .finish()
    }
}

impl Accepted {
    /// The negotiated extension's response parameters, if one was accepted.
    pub fn extension(&self) -> Option<&ExtensionOffer> {
        self.extension.as_ref().map(|(o, _)| o)
    }

    /// The header fields of the 101 response besides `Upgrade` and
    /// `Connection`: accept key, subprotocol, extensions and the extra
    /// fields (the configured ones, then the [`Accept`]'s).
    pub fn response_headers(&self) -> Vec<(String, String)> {
        let mut h = vec![("Sec-WebSocket-Accept".to_owned(), self.accept.clone())];
        if let Some(p) = &self.protocol {
            h.push(("Sec-WebSocket-Protocol".to_owned(), p.clone()));
        }
        if let Some(o) = self.extension() {
            h.push(("Sec-WebSocket-Extensions".to_owned(), o.to_string()));
        }
        h.extend(self.headers.iter().cloned());
        h
    }

    /// The whole 101 response, behind `HTTP/1.1 100 Continue` when the
    /// request carried `Expect: 100-continue` (RFC 9110 §7.8: the 100 MUST
    /// come before the 101). Every field is checked first (the public
    /// `accept` and `protocol` may have been changed since).
    pub fn response_bytes(&self) -> Result<Vec<u8>, FieldError> {
        let mut w = HeadWriter::response(101, "Switching Protocols", HANDSHAKE_OWNED)?;
        w.own("Upgrade", "websocket")?;
        w.own("Connection", "Upgrade")?;
        w.own("Sec-WebSocket-Accept", &self.accept)?;
        if let Some(p) = &self.protocol {
            check_subprotocol(p)?;
            w.own("Sec-WebSocket-Protocol", p)?;
        }
        if let Some(o) = self.extension() {
            w.own("Sec-WebSocket-Extensions", &o.to_string())?;
        }
        for (k, v) in &self.headers {
            w.extra(k, v)?;
        }
        let switching = w.finish(b"");
        Ok(if self.continue_first {
            [&b"HTTP/1.1 100 Continue\r\n\r\n"[..], &switching].concat()
        } else {
            switching
        })
    }
}

/// The application's no to an upgrade (or its answer to a plain HTTP
/// request): a final status, header fields and a body, sent with
/// `Content-Length` and `Connection: close`.
///
/// ```
/// use sansproto::ws::Reject;
/// let r = Reject::new(403).with_header("X-Reason", "origin").unwrap().with_body("not from here");
/// assert_eq!(
///     r.response_bytes().unwrap(),
///     b"HTTP/1.1 403 Forbidden\r\nX-Reason: origin\r\nContent-Length: 13\r\n\
///       Connection: close\r\n\r\nnot from here"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The status, 200 to 999.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header fields, written in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Reject {
    /// A refusal with `status`, its usual reason phrase and no body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            reason: reason_phrase(status).to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Sets the reason phrase.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Adds a header field; `Content-Length`, `Transfer-Encoding` and
    /// `Connection` are written by the response itself.
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, FieldError> {
        push_extra(&mut self.headers, RESPONSE_OWNED, name, value)?;
        Ok(self)
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The whole response, every field checked.
    pub fn response_bytes(&self) -> Result<Vec<u8>, FieldError> {
        if !(200..=999).contains(&self.status) {
            return Err(FieldError::Status(self.status));
        }
        let mut w = HeadWriter::response(self.status, &self.reason, RESPONSE_OWNED)?;
        for (k, v) in &self.headers {
            w.extra(k, v)?;
        }
        w.own("Content-Length", &self.body.len().to_string())?;
        w.own("Connection", "close")?;
        Ok(w.finish(&self.body))
    }

    /// The refusal a server sends for a request that is not a valid
    /// upgrade: 400, 405 (with `Allow: GET`), 426 (with
    /// `Sec-WebSocket-Version: 13`) or 431, with the reason as the body.
    pub fn for_error(err: &HandshakeError) -> Self {
        let (status, extra) = match err {
            HandshakeError::Version => (426, Some(("Sec-WebSocket-Version", "13"))),
            HandshakeError::TooLarge(_) | HandshakeError::TooManyHeaders(_) => (431, None),
            HandshakeError::Method(_) => (405, Some(("Allow", "GET"))),
            HandshakeError::Field(_) => (500, None),
            _ => (400, None),
        };
        let mut r = Self::new(status).with_body(format!("{err}\n"));
        r.headers
            .extend(extra.map(|(k, v)| (k.to_owned(), v.to_owned())));
        r.headers.push((
            "Content-Type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        ));
        r
    }
}

/// The usual reason phrase of a status (empty when unknown, as RFC 9112
/// allows).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::handshake::upgrade::test_request as request;
    use crate::ws::Config;
    #[test]
    fn answers_refuse_unsafe_fields() {
        for (name, value, err) in [
            (
                "X",
                "v\r\n\r\nHTTP/1.1 200 OK",
                FieldError::Value("X".into()),
            ),
            ("Bad Name", "v", FieldError::Name("Bad Name".into())),
            (
                "Sec-WebSocket-Accept",
                "x",
                FieldError::Reserved("Sec-WebSocket-Accept".into()),
            ),
        ] {
            assert_eq!(Accept::new().with_header(name, value).unwrap_err(), err);
        }
        assert_eq!(
            Reject::new(403)
                .with_header("Content-Length", "0")
                .unwrap_err(),
            FieldError::Reserved("Content-Length".into())
        );
        let mut accepted = request(&[])
            .unwrap()
            .accept(&Config::default(), &Accept::new())
            .unwrap();
        accepted.protocol = Some("a, b".into());
        assert_eq!(
            accepted.response_bytes().unwrap_err(),
            FieldError::Subprotocol("a, b".into())
        );
        accepted.protocol = None;
        accepted.accept = "k\r\nX: y".into();
        assert!(matches!(
            accepted.response_bytes(),
            Err(FieldError::Value(_))
        ));
        let mut r = Reject::new(101);
        assert_eq!(r.response_bytes().unwrap_err(), FieldError::Status(101));
        r.status = 400;
        r.reason = "a\r\nb".into();
        assert_eq!(r.response_bytes().unwrap_err(), FieldError::Reason);
        r.reason.clear();
        r.headers.push(("X".into(), "\n".into()));
        assert_eq!(
            r.response_bytes().unwrap_err(),
            FieldError::Value("X".into())
        );
    }
}

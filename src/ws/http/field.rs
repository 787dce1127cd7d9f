//! The safety check every header field written in either direction passes.
//!
//! Names are RFC 9110 tokens; values hold no control characters but
//! horizontal tab (so no CR, LF or NUL can split a message); subprotocols
//! are tokens; a request target is origin-form and holds only characters
//! a URI may (RFC 3986); and the fields a message's
//! writer owns (for a WebSocket handshake: `Host`, `Upgrade`,
//! `Connection`, every `Sec-WebSocket-*`) cannot be added a second time.

/// A header field, request target, status line or subprotocol that cannot
/// be written; returned by the call that supplied it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A header name is empty or holds a character that is not allowed in
    /// an RFC 9110 token (a space, a colon, a control character…).
    #[error("header name {0:?} is not an RFC 9110 token")]
    Name(String),
    /// A header value holds CR, LF, NUL or another control character.
    #[error("the value of {0} holds a control character (CR, LF, NUL…)")]
    Value(String),
    /// The header is written by the message's own rules (`Host`,
    /// `Upgrade`, `Connection`, `Sec-WebSocket-*`, framing headers) and
    /// cannot be added.
    #[error("{0} is written by the protocol itself and cannot be added")]
    Reserved(String),
    /// A subprotocol is empty or not an RFC 9110 token (`"a, b"` would be
    /// read as two, `"chat v1"` is not one).
    #[error("subprotocol {0:?} is not an RFC 9110 token")]
    Subprotocol(String),
    /// A request target is not origin-form: it must start with `/` and
    /// hold only visible ASCII that a URI may hold (no space, tab, control
    /// character, `#`, or any of `` "<>\^`{|} ``, RFC 3986 §2).
    #[error("request target {0:?} is not origin-form")]
    Target(String),
    /// A `Host` (or CONNECT target) is not `host[:port]`.
    #[error("host {0:?} is not host[:port]")]
    Host(String),
    /// A subprotocol the client did not offer was chosen.
    #[error("subprotocol {0:?} was not offered by the client")]
    NotOffered(String),
    /// A status code outside 200–999 where a final answer is written.
    #[error("status {0} cannot be sent here (a final status, 200-999, is required)")]
    Status(u16),
    /// A user name for Basic credentials holds a colon (RFC 7617 §2).
    #[error("a user name with a colon cannot be sent as Basic credentials")]
    UserName,
    /// A reason phrase holds a control character.
    #[error("the reason phrase holds a control character")]
    Reason,
}

/// True for an RFC 9110 token (`1*tchar`).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// True when `s` may be written as a field value or reason phrase:
/// visible ASCII, spaces, tabs and bytes past ASCII (obs-text), no other
/// control character.
pub(crate) fn is_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Checks a subprotocol name.
pub(crate) fn check_subprotocol(p: &str) -> Result<(), FieldError> {
    if is_token(p) {
        Ok(())
    } else {
        Err(FieldError::Subprotocol(p.to_owned()))
    }
}

/// True for a byte a request target may hold as it is: visible ASCII but
/// `#` (a fragment is never sent) and the characters RFC 3986 allows
/// nowhere in a URI (`` "<>\^`{|} ``).
pub(crate) fn is_target_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"#\"<>\\^`{|}".contains(&b)
}

/// Checks a request target to write: origin-form (`/path?query`) as
/// [`parse_request_target`](super::url::parse_request_target) reads it,
/// and of bytes a URI may hold as they are (a target received is read more
/// leniently: any visible ASCII but `#`).
pub(crate) fn check_target(target: &str) -> Result<(), FieldError> {
    let ok = target.bytes().all(is_target_byte)
        && super::url::parse_request_target(target).is_some_and(|t| t.authority.is_none());
    if ok {
        Ok(())
    } else {
        Err(FieldError::Target(target.to_owned()))
    }
}

/// Checks a `Host` value: `host[:port]`, `[v6]` in brackets.
pub(crate) fn check_host(host: &str) -> Result<(), FieldError> {
    match super::url::parse_authority(host) {
        Some(_) => Ok(()),
        None => Err(FieldError::Host(host.to_owned())),
    }
}

/// The fields the opening handshake writes itself, in either direction.
pub(crate) const HANDSHAKE_OWNED: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-*",
    "Content-Length",
    "Transfer-Encoding",
];

/// The fields written for a response with a body this crate frames.
pub(crate) const RESPONSE_OWNED: &[&str] = &["Content-Length", "Transfer-Encoding", "Connection"];

/// The fields a CONNECT request writes itself.
pub(crate) const CONNECT_OWNED: &[&str] = &["Host", "Proxy-Authorization"];

/// True when `name` is in `owned` (an entry ending in `*` is a prefix).
fn is_owned(owned: &[&str], name: &str) -> bool {
    owned.iter().any(|o| match o.strip_suffix('*') {
        Some(prefix) => name
            .get(..prefix.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(prefix)),
        None => name.eq_ignore_ascii_case(o),
    })
}

/// Checks a field a caller adds to a message whose writer owns `owned`.
pub(crate) fn check_extra(owned: &[&str], name: &str, value: &str) -> Result<(), FieldError> {
    if !is_token(name) {
        return Err(FieldError::Name(name.to_owned()));
    }
    if is_owned(owned, name) {
        return Err(FieldError::Reserved(name.to_owned()));
    }
    if !is_value(value) {
        return Err(FieldError::Value(name.to_owned()));
    }
    Ok(())
}

/// Checks a field a caller adds to a message whose writer owns `owned`,
/// then keeps it in `fields`.
pub(crate) fn push_extra(
    fields: &mut Vec<(String, String)>,
    owned: &[&str],
    name: impl Into<String>,
    value: impl Into<String>,
) -> Result<(), FieldError> {
    let (name, value) = (name.into(), value.into());
    check_extra(owned, &name, &value)?;
    fields.push((name, value));
    Ok(())
}

/// Writes an HTTP/1.1 head; every field is checked before it is written,
/// so a message is either whole and safe or not written at all.
#[derive(Debug)]
pub(crate) struct HeadWriter {
    out: Vec<u8>,
    owned: &'static [&'static str],
}

impl HeadWriter {
    /// A request line; `target` is checked as origin-form unless the
    /// method is CONNECT (authority-form, `host:port`).
    pub(crate) fn request(
        method: &str,
        target: &str,
        owned: &'static [&'static str],
    ) -> Result<Self, FieldError> {
        if method == "CONNECT" {
            check_host(target)?;
        } else {
            check_target(target)?;
        }
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        Ok(Self { out, owned })
    }

    /// A status line.
    pub(crate) fn response(
        status: u16,
        reason: &str,
        owned: &'static [&'static str],
    ) -> Result<Self, FieldError> {
        if !(100..=999).contains(&status) {
            return Err(FieldError::Status(status));
        }
        if !is_value(reason) {
            return Err(FieldError::Reason);
        }
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
        Ok(Self { out, owned })
    }

    /// A field the writer owns (its name is the protocol's; the value is
    /// still checked).
    pub(crate) fn own(&mut self, name: &'static str, value: &str) -> Result<(), FieldError> {
        if !is_value(value) {
            return Err(FieldError::Value(name.to_owned()));
        }
        self.push(name, value);
        Ok(())
    }

    /// A field the caller supplied.
    pub(crate) fn extra(&mut self, name: &str, value: &str) -> Result<(), FieldError> {
        check_extra(self.owned, name, value)?;
        self.push(name, value);
        Ok(())
    }

    fn push(&mut self, name: &str, value: &str) {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Ends the head; `body` follows it.
    pub(crate) fn finish(mut self, body: &[u8]) -> Vec<u8> {
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_targets() {
        assert!(is_token("Sec-WebSocket-Key"));
        for bad in ["", "Bad Name", "a:b", "a\r\nb", "é"] {
            assert_eq!(
                check_extra(&[], bad, "v"),
                Err(FieldError::Name(bad.into()))
            );
        }
        for bad in ["v\r\n\r\nHTTP/1.1 200 OK", "a\nb", "a\0b", "a\x7fb"] {
            assert_eq!(
                check_extra(&[], "X", bad),
                Err(FieldError::Value("X".into()))
            );
        }
        assert_eq!(check_extra(&[], "X", "a\tb é"), Ok(()));
        for owned in [
            "host",
            "SEC-WEBSOCKET-KEY",
            "Sec-WebSocket-Protocol",
            "connection",
        ] {
            assert_eq!(
                check_extra(HANDSHAKE_OWNED, owned, "v"),
                Err(FieldError::Reserved(owned.into()))
            );
        }
        assert_eq!(check_extra(HANDSHAKE_OWNED, "Sec-Fetch-Mode", "v"), Ok(()));
        for bad in [
            "", "chat", "/a b", "/a\tb", "/a#f", "/é", "/a\"b", "/a\\b", "/{x}", "/a|b", "/`",
        ] {
            assert_eq!(check_target(bad), Err(FieldError::Target(bad.into())));
        }
        assert_eq!(check_target("/chat?room=1&x=%20"), Ok(()));
        for bad in ["a, b", "chat v1", ""] {
            assert_eq!(
                check_subprotocol(bad),
                Err(FieldError::Subprotocol(bad.into()))
            );
        }
        for bad in ["a b", "", "h:99999", "h:abc", ":80", "[::1]x", "user@h"] {
            assert_eq!(check_host(bad), Err(FieldError::Host(bad.into())));
        }
        // An empty port is allowed, and means none (RFC 3986 §3.2.3).
        for good in ["[::1]:9001", "h:", "[::1]:", "h:80"] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn writer_writes_whole_safe_heads() {
        let mut w = HeadWriter::response(403, "Forbidden", RESPONSE_OWNED).unwrap();
        w.extra("X-Why", "origin").unwrap();
        assert_eq!(
            w.extra("Content-Length", "1"),
            Err(FieldError::Reserved("Content-Length".into()))
        );
        w.own("Content-Length", "2").unwrap();
        assert_eq!(
            w.finish(b"no"),
            b"HTTP/1.1 403 Forbidden\r\nX-Why: origin\r\nContent-Length: 2\r\n\r\nno"
        );
        assert_eq!(
            HeadWriter::response(99, "x", &[]).unwrap_err(),
            FieldError::Status(99)
        );
        assert_eq!(
            HeadWriter::response(400, "a\r\nb", &[]).unwrap_err(),
            FieldError::Reason
        );
        assert!(HeadWriter::request("GET", "/a b", &[]).is_err());
        assert!(HeadWriter::request("CONNECT", "h:443", &[]).is_ok());
        assert!(HeadWriter::request("CONNECT", "h:0", &[]).is_err());
    }
}

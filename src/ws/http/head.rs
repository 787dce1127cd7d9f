//! HTTP/1.1 heads: found without rescanning, bounded, parsed by httparse.

use bytes::Bytes;

/// HTTP header fields in the order received.
///
/// Its `Debug` output shows the fields' names, never their values: any
/// of them may be a credential (`Authorization`, `Cookie`, an API key), so
/// logging a request logs none.
///
/// ```
/// use bytes::Bytes;
/// use sansproto::ws::Headers;
/// let h = Headers(vec![
///     ("Host".into(), Bytes::from_static(b"example.com")),
///     ("Cookie".into(), Bytes::from_static(b"session=secret")),
/// ]);
/// assert_eq!(format!("{h:?}"), r#"Headers(["Host", "Cookie"])"#);
/// assert_eq!(h.get_str("cookie"), Some("session=secret"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Bytes)>);

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_tuple("Headers").field(&names).finish()
    }
}

impl Headers {
    /// The heap the fields hold (their names' capacity and their values).
    pub(crate) fn heap(&self) -> usize {
        let fields = self.0.iter().map(|(n, v)| n.capacity() + v.len());
        crate::memory::slots::<(String, Bytes)>(self.0.capacity()) + fields.sum::<usize>()
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// The first value of `name` as text, when it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value of `name` trimmed, when the field appears exactly once.
    pub(crate) fn single<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        let mut values = self.get_all(name);
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v.trim_ascii()),
            _ => None,
        }
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// True when some value of `name`, read as a comma-separated list,
    /// contains `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// Every comma-separated element of every value of `name`, trimmed.
    /// Bytes that are not UTF-8 become U+FFFD: no element is left out, so
    /// one that is not valid text still counts (and matches no token).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .flat_map(|v| v.split(|b| *b == b','))
            .map(|t| String::from_utf8_lossy(t.trim_ascii()).into_owned())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn from_httparse(h: &[httparse::Header<'_>]) -> Self {
        Self(
            h.iter()
                .map(|h| (h.name.to_owned(), Bytes::copy_from_slice(h.value)))
                .collect(),
        )
    }
}

/// An HTTP request: an upgrade request, or a plain request received where
/// an upgrade was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/chat?room=1`.
    pub path: String,
    /// The header fields.
    pub headers: Headers,
}

impl HttpRequest {
    /// The heap the request holds.
    pub(crate) fn heap(&self) -> usize {
        self.method.capacity() + self.path.capacity() + self.headers.heap()
    }
}

/// An HTTP response: a refused upgrade or a proxy's reply, as a client
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields.
    pub headers: Headers,
    /// The body bytes received (up to the configured limit).
    pub body: Bytes,
}

/// What is wrong with an HTTP/1.1 message head (RFC 9112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedHttp {
    /// A line ends in a bare LF instead of CRLF (RFC 9112 §2.2 lets a
    /// recipient reject such a message).
    #[error("a line ends in a bare LF")]
    BareLf,
    /// The head ends before its start line and fields are complete
    /// (RFC 9112 §2.1).
    #[error("incomplete head")]
    Incomplete,
    /// A field name holds a byte that is not a token character (RFC 9110
    /// §5.1).
    #[error("invalid header name")]
    HeaderName,
    /// A field value holds a byte a field value may not (RFC 9110 §5.5).
    #[error("invalid header value")]
    HeaderValue,
    /// A line break is not CRLF where one is required (RFC 9112 §2.2).
    #[error("invalid new line")]
    NewLine,
    /// The status line's code is not three digits (RFC 9112 §4).
    #[error("invalid response status")]
    Status,
    /// The method or request target is not valid (RFC 9112 §3).
    #[error("invalid token")]
    Token,
    /// The HTTP version is not `HTTP/1.x` (RFC 9112 §2.3).
    #[error("invalid HTTP version")]
    Version,
    /// An upgrade request in HTTP/1.0 (RFC 6455 §4.1: the request MUST be
    /// HTTP/1.1 or later).
    #[error("an upgrade needs HTTP/1.1")]
    UpgradeBeforeHttp11,
    /// The request target is not in a form a GET takes: asterisk-form
    /// (`*`) and authority-form (`host:port`) are for OPTIONS and CONNECT
    /// (RFC 9112 §3.2); an absolute-form target may not carry user
    /// information (RFC 9110 §4.2.4).
    #[error("the request target is not origin-form or absolute-form")]
    Target,
    /// `Content-Length` is not a decimal number, or its values differ
    /// (RFC 9110 §8.6, RFC 9112 §6.3 item 5): where the body ends is not
    /// known.
    #[error("invalid Content-Length")]
    ContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3 item 3:
    /// a sign of request smuggling or response splitting, handled as an
    /// error).
    #[error("both Transfer-Encoding and Content-Length")]
    ConflictingFraming,
}

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not valid HTTP/1.1.
    Malformed(MalformedHttp),
    /// Larger than the byte limit.
    TooLarge(usize),
    /// More fields than the limit.
    TooManyHeaders(usize),
}

/// Finds the end of a head arriving in pieces, scanning each byte once.
#[derive(Debug, Default, Clone)]
pub(crate) struct HeadReader {
    scanned: usize,
}

impl HeadReader {
    /// How many of `data`'s bytes to buffer now, behind `buffered` bytes
    /// of a head not yet complete: no more than a head within `max_size`
    /// can use (one byte past it shows the head is too large). The rest
    /// waits in the caller's slice until the head is found, so one huge
    /// read is never copied before the limit is checked.
    pub(crate) fn room(buffered: usize, data: &[u8], max_size: usize) -> usize {
        max_size
            .saturating_add(1)
            .saturating_sub(buffered)
            .min(data.len())
    }

    /// The length of the head at the front of `buf` (blank line included),
    /// once all of it is there. Fails as soon as the head is known to be
    /// larger than `max_size`, or holds a line ended by a bare LF (RFC 9112
    /// §2.2 lets a recipient refuse those; waiting for a CRLF that never
    /// comes would only hold the connection until the limit or deadline).
    pub(crate) fn find(&mut self, buf: &[u8], max_size: usize) -> Result<Option<usize>, HeadError> {
        // Only what a head may use is looked at, so the verdict does not
        // depend on how much more happens to be buffered behind it.
        let buf = buf.get(..max_size.saturating_add(1)).unwrap_or(buf);
        let mut found = None;
        let start = self.scanned.min(buf.len());
        for (i, _) in buf
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(_, b)| **b == b'\n')
        {
            if i == 0 || buf.get(i - 1) != Some(&b'\r') {
                return Err(HeadError::Malformed(MalformedHttp::BareLf));
            }
            if i >= 3 && buf.get(i - 3..=i) == Some(b"\r\n\r\n") {
                found = Some(i + 1);
                break;
            }
        }
        match found {
            Some(end) if end > max_size => Err(HeadError::TooLarge(max_size)),
            Some(end) => {
                self.scanned = 0;
                Ok(Some(end))
            }
            None if buf.len() > max_size => Err(HeadError::TooLarge(max_size)),
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }
}

/// Maps httparse's verdict on a complete head.
fn complete(parsed: &httparse::Result<usize>, max_headers: usize) -> Result<(), HeadError> {
    let malformed = match parsed {
        Ok(httparse::Status::Complete(_)) => return Ok(()),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders(max_headers)),
        Ok(httparse::Status::Partial) => MalformedHttp::Incomplete,
        Err(httparse::Error::HeaderName) => MalformedHttp::HeaderName,
        Err(httparse::Error::HeaderValue) => MalformedHttp::HeaderValue,
        Err(httparse::Error::NewLine) => MalformedHttp::NewLine,
        Err(httparse::Error::Status) => MalformedHttp::Status,
        Err(httparse::Error::Token) => MalformedHttp::Token,
        Err(httparse::Error::Version) => MalformedHttp::Version,
    };
    Err(HeadError::Malformed(malformed))
}

/// Parses a complete request head (through the blank line); also returns
/// the HTTP minor version.
pub(crate) fn parse_request(
    head: &[u8],
    max_headers: usize,
) -> Result<(HttpRequest, u8), HeadError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut storage);
    complete(&req.parse(head), max_headers)?;
    // A complete parse has filled in the whole start line.
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed(MalformedHttp::Incomplete));
    };
    let request = HttpRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers: Headers::from_httparse(req.headers),
    };
    Ok((request, version))
}

/// Parses a complete response head (through the blank line). A field
/// value folded over several lines (obs-fold) is taken, each fold replaced
/// by one space, as RFC 9112 §5.2 asks of a user agent; a request with one
/// is still refused.
/// Also returns the HTTP minor version.
pub(crate) fn parse_response(
    head: &[u8],
    max_headers: usize,
) -> Result<(HttpResponse, u8), HeadError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut resp = httparse::Response::new(&mut storage);
    let parsed = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response(&mut resp, head);
    complete(&parsed, max_headers)?;
    // A complete parse has filled in the whole status line.
    let (Some(status), Some(reason), Some(version)) = (resp.code, resp.reason, resp.version) else {
        return Err(HeadError::Malformed(MalformedHttp::Incomplete));
    };
    let mut headers = Headers::from_httparse(resp.headers);
    for (_, value) in &mut headers.0 {
        if value.iter().any(|b| matches!(b, b'\r' | b'\n')) {
            *value = unfold(value);
        }
    }
    let response = HttpResponse {
        status,
        reason: reason.to_owned(),
        headers,
        body: Bytes::new(),
    };
    Ok((response, version))
}

/// A field value with each obs-fold (`OWS CRLF RWS`, RFC 9112 §5.2), and
/// the white space around it, replaced by one space.
fn unfold(value: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(value.len());
    let mut fold = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {
                fold = true;
                while out.last().is_some_and(|l| matches!(l, b' ' | b'\t')) {
                    out.pop();
                }
            }
            b' ' | b'\t' if fold => {}
            _ => {
                if std::mem::take(&mut fold) && !out.is_empty() {
                    out.push(b' ');
                }
                out.push(b);
            }
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_is_found_across_pieces_without_rescanning() {
        let msg = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for split in 0..msg.len() {
            let mut reader = HeadReader::default();
            let first = reader.find(&msg[..split], 100).unwrap();
            let end = first.or_else(|| reader.find(msg, 100).unwrap());
            assert_eq!(end, Some(msg.len() - 4), "split {split}");
        }
    }

    #[test]
    fn a_bare_lf_ends_the_head_with_an_error() {
        for msg in [
            &b"GET / HTTP/1.1\nHost: a\n\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        ] {
            for split in 0..msg.len() {
                let mut reader = HeadReader::default();
                let first = reader.find(&msg[..split], 100);
                let result = first.and_then(|_| reader.find(msg, 100));
                assert_eq!(
                    result,
                    Err(HeadError::Malformed(MalformedHttp::BareLf)),
                    "split {split}"
                );
            }
        }
    }

    #[test]
    fn room_stops_one_byte_past_the_limit() {
        assert_eq!(HeadReader::room(0, &[0; 8 << 20], 16 << 10), (16 << 10) + 1);
        assert_eq!(HeadReader::room(100, &[0; 10], 1000), 10);
        assert_eq!(HeadReader::room(2000, &[0; 10], 1000), 0);
    }

    #[test]
    fn head_limit_applies_before_and_after_the_blank_line() {
        let msg = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            HeadReader::default().find(msg, msg.len()),
            Ok(Some(msg.len()))
        );
        assert_eq!(
            HeadReader::default().find(msg, msg.len() - 1),
            Err(HeadError::TooLarge(msg.len() - 1))
        );
        assert_eq!(
            HeadReader::default().find(&msg[..10], 9),
            Err(HeadError::TooLarge(9))
        );
    }

    #[test]
    fn parse_limits_and_errors() {
        let head = b"GET /x HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        let (req, minor) = parse_request(head, 2).unwrap();
        assert_eq!(
            (req.method.as_str(), req.path.as_str(), minor),
            ("GET", "/x", 1)
        );
        assert_eq!(
            parse_request(head, 1).unwrap_err(),
            HeadError::TooManyHeaders(1)
        );
        assert_eq!(
            parse_request(b"GET /x HTTP/9\r\n\r\n", 4).unwrap_err(),
            HeadError::Malformed(MalformedHttp::Version)
        );
        let (r, minor) = parse_response(b"HTTP/1.1 403 Forbidden\r\nX: y\r\n\r\n", 4).unwrap();
        assert_eq!(minor, 1);
        assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden"));
        assert_eq!(r.headers.get_str("x"), Some("y"));
    }

    #[test]
    fn obs_fold_is_unfolded_in_a_response_and_refused_in_a_request() {
        let (r, _) =
            parse_response(b"HTTP/1.1 200 OK\r\nA: x  \r\n \r\n\ty\r\nB: 1\r\n\r\n", 4).unwrap();
        assert_eq!(r.headers.get_str("a"), Some("x y"));
        assert_eq!(r.headers.get_str("b"), Some("1"));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nA: x\r\n y\r\n\r\n", 4).unwrap_err(),
            HeadError::Malformed(MalformedHttp::HeaderName)
        );
    }

    #[test]
    fn headers_tokens() {
        let h = Headers(vec![
            (
                "Connection".into(),
                Bytes::from_static(b"keep-alive, Upgrade"),
            ),
            ("X".into(), Bytes::from_static(b"a, b")),
            ("x".into(), Bytes::from_static(b"c")),
        ]);
        assert!(h.has_token("connection", "upgrade"));
        assert!(!h.has_token("connection", "close"));
        assert_eq!(h.list("x"), ["a", "b", "c"]);
        let odd = Headers(vec![("P".into(), Bytes::from_static(b"\xffchat, ok"))]);
        assert_eq!(odd.list("p"), ["\u{fffd}chat", "ok"]);
        assert_eq!(h.get_str("X"), Some("a, b"));
        assert_eq!(h.len(), 3);
    }
}

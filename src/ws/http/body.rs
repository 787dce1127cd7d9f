//! HTTP/1.1 message bodies, read within a bound (RFC 9112 §6), and the one
//! reading of the fields that frame them.

use super::head::{Headers, HttpResponse, MalformedHttp};
use crate::buf::RecvBuf;
use bytes::BytesMut;

/// How a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length` bytes still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// Everything until the transport ends.
    UntilEof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Waiting for a chunk-size line.
    Size,
    /// Data bytes of the current chunk still to come.
    Data(u64),
    /// Waiting for the CRLF after a chunk's data.
    DataEnd,
}

/// How a message's header fields frame its body (RFC 9112 §6.3 items 3
/// to 6; the cases a status or a method decides are the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Declared {
    /// Neither `Transfer-Encoding` nor `Content-Length`.
    Nothing,
    /// `Content-Length`: this many bytes.
    Length(u64),
    /// `Transfer-Encoding` with `chunked` as the final coding.
    Chunked,
    /// `Transfer-Encoding` whose final coding is not `chunked`: a response
    /// body runs until the connection closes, a request's length cannot be
    /// known (RFC 9112 §6.3 item 4).
    NotChunked,
}

impl Declared {
    /// Reads the framing fields. Fails on both `Transfer-Encoding` and
    /// `Content-Length` (item 3: a sign of smuggling, handled as an
    /// error), and on a `Content-Length` that is not `1*DIGIT` or whose
    /// values differ (item 5); `Content-Length: 4, 4` (one field or
    /// several) is 4 (RFC 9110 §8.6).
    pub(crate) fn from_headers(headers: &Headers) -> Result<Self, MalformedHttp> {
        let has_te = headers.get("Transfer-Encoding").is_some();
        let mut length = None;
        for value in headers.get_all("Content-Length") {
            for n in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                let n = parse_decimal(n).ok_or(MalformedHttp::ContentLength)?;
                if length.replace(n).is_some_and(|before| before != n) {
                    return Err(MalformedHttp::ContentLength);
                }
            }
        }
        match (has_te, length) {
            (true, Some(_)) => Err(MalformedHttp::ConflictingFraming),
            (true, None) => {
                let codings = headers.list("Transfer-Encoding");
                let last = codings.last().map(String::as_str);
                Ok(if last.is_some_and(|c| c.eq_ignore_ascii_case("chunked")) {
                    Self::Chunked
                } else {
                    Self::NotChunked
                })
            }
            (false, Some(n)) => Ok(Self::Length(n)),
            (false, None) => Ok(Self::Nothing),
        }
    }
}

/// `1*DIGIT` as a number (no sign, no space, no overflow).
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// Where a body read stands after the bytes given so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyStatus {
    /// More bytes are expected.
    Partial,
    /// The body ended as its framing says.
    Complete,
    /// The bound was reached; the rest is not waited for.
    Truncated,
    /// The chunked framing is broken; the body holds what came before.
    Malformed,
}

/// A response body being read: at most `cap` bytes are kept, and the
/// framing's own bookkeeping (a chunk-size line) is bounded too.
#[derive(Debug)]
pub(crate) struct BodyReader {
    framing: Framing,
    body: BytesMut,
    cap: usize,
}

impl BodyReader {
    /// The body of a response with `status` and `headers`, of HTTP minor
    /// version `minor`, in a reply to a request that was not HEAD (RFC 9112
    /// §6.3). Fails when the fields do not say where the body ends
    /// ([`Declared::from_headers`]): a user agent then discards the
    /// response and closes (item 5). `Transfer-Encoding` in an HTTP/1.0
    /// response makes its framing faulty, `Content-Length` or not (§6.1):
    /// its body is read until the connection closes.
    pub(crate) fn for_response(
        status: u16,
        headers: &Headers,
        minor: u8,
        cap: usize,
    ) -> Result<Self, MalformedHttp> {
        let framing = if matches!(status, 100..=199 | 204 | 304) {
            Framing::Length(0)
        } else if minor == 0 && headers.get("Transfer-Encoding").is_some() {
            Framing::UntilEof
        } else {
            match Declared::from_headers(headers)? {
                Declared::Chunked => Framing::Chunked(Chunk::Size),
                Declared::Length(n) => Framing::Length(n),
                Declared::NotChunked | Declared::Nothing => Framing::UntilEof,
            }
        };
        Ok(Self {
            framing,
            body: BytesMut::new(),
            cap,
        })
    }

    /// Moves body bytes out of `recv` (leaving whatever follows the body).
    pub(crate) fn read(&mut self, recv: &mut RecvBuf) -> BodyStatus {
        let cap = self.cap;
        let body = &mut self.body;
        let keep = |body: &mut BytesMut, data: &[u8]| {
            let room = cap.saturating_sub(body.len()).min(data.len());
            body.extend_from_slice(data.split_at(room).0);
        };
        let full = |body: &BytesMut| body.len() >= cap;
        loop {
            match &mut self.framing {
                Framing::Length(rest) => {
                    let n = clamp(*rest, recv.len());
                    keep(body, recv.as_slice().split_at(n).0);
                    recv.advance(n);
                    *rest -= n as u64;
                    return match (*rest, full(body)) {
                        (0, _) => BodyStatus::Complete,
                        (_, true) => BodyStatus::Truncated,
                        _ => BodyStatus::Partial,
                    };
                }
                Framing::UntilEof => {
                    keep(body, recv.as_slice());
                    recv.advance(recv.len());
                    return if full(body) {
                        BodyStatus::Truncated
                    } else {
                        BodyStatus::Partial
                    };
                }
                Framing::Chunked(chunk) => match *chunk {
                    Chunk::Size => match httparse::parse_chunk_size(recv.as_slice()) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            if used > MAX_CHUNK_LINE {
                                return BodyStatus::Malformed;
                            }
                            recv.advance(used);
                            if size == 0 {
                                return BodyStatus::Complete;
                            }
                            *chunk = Chunk::Data(size);
                        }
                        Ok(httparse::Status::Partial) if recv.len() <= MAX_CHUNK_LINE => {
                            return BodyStatus::Partial;
                        }
                        _ => return BodyStatus::Malformed,
                    },
                    Chunk::Data(rest) => {
                        let n = clamp(rest, recv.len());
                        keep(body, recv.as_slice().split_at(n).0);
                        recv.advance(n);
                        if full(body) {
                            return BodyStatus::Truncated;
                        }
                        match rest - n as u64 {
                            0 => *chunk = Chunk::DataEnd,
                            left => {
                                *chunk = Chunk::Data(left);
                                return BodyStatus::Partial;
                            }
                        }
                    }
                    Chunk::DataEnd => match recv.as_slice() {
                        [b'\r', b'\n', ..] => {
                            recv.advance(2);
                            *chunk = Chunk::Size;
                        }
                        [] | [b'\r'] => return BodyStatus::Partial,
                        _ => return BodyStatus::Malformed,
                    },
                },
            }
        }
    }

    /// The heap bytes the body read so far holds.
    pub(crate) fn held(&self) -> usize {
        self.body.capacity()
    }

    /// The body read so far.
    #[cfg(test)]
    pub(crate) fn finish(self) -> bytes::Bytes {
        self.body.freeze()
    }

    /// `head` with the body read so far: the response as reported. The
    /// body is taken, leaving the reader empty.
    pub(crate) fn response(&mut self, head: &HttpResponse) -> HttpResponse {
        HttpResponse {
            body: std::mem::take(&mut self.body).freeze(),
            ..head.clone()
        }
    }
}

/// `want` bytes, at most `have`.
fn clamp(want: u64, have: usize) -> usize {
    usize::try_from(want).map_or(have, |w| w.min(have))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn headers(fields: &[(&str, &str)]) -> Headers {
        Headers(
            fields
                .iter()
                .map(|(n, v)| (n.to_string(), Bytes::copy_from_slice(v.as_bytes())))
                .collect(),
        )
    }

    /// Feeds `wire` whole, byte by byte, and with trailing bytes; returns
    /// the body, the final status and what was left unread.
    fn read_all(h: &Headers, cap: usize, wire: &[u8]) -> (Bytes, BodyStatus, Vec<u8>) {
        let mut results = Vec::new();
        for piece in [wire.len(), 1] {
            for trailing in [&b""[..], b"NEXT"] {
                let mut reader = BodyReader::for_response(400, h, 1, cap).unwrap();
                let mut recv = RecvBuf::new();
                let mut status = BodyStatus::Partial;
                let all = [wire, trailing].concat();
                for chunk in all.chunks(piece) {
                    recv.extend(chunk);
                    if status == BodyStatus::Partial {
                        status = reader.read(&mut recv);
                    }
                }
                let left = recv.as_slice().to_vec();
                if status == BodyStatus::Complete {
                    assert_eq!(left, trailing, "piece {piece}: what follows the body stays");
                }
                results.push((reader.finish(), status, left));
            }
        }
        let first = results[0].clone();
        for r in &results {
            assert_eq!((&r.0, r.1), (&first.0, first.1));
        }
        first
    }

    #[test]
    fn content_length() {
        let (body, status, _) = read_all(&headers(&[("Content-Length", "5")]), 100, b"hello");
        assert_eq!((&body[..], status), (&b"hello"[..], BodyStatus::Complete));
    }

    #[test]
    fn chunked_rfc9112_example() {
        let h = headers(&[("Transfer-Encoding", "chunked")]);
        let wire = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n";
        let (body, status, _) = read_all(&h, 100, wire);
        assert_eq!(&body[..], b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(status, BodyStatus::Complete);
    }

    #[test]
    fn chunked_is_bounded_and_checked() {
        let h = headers(&[("Transfer-Encoding", "gzip, chunked")]);
        let (body, status, _) = read_all(&h, 6, b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n");
        assert_eq!((&body[..], status), (&b"Wikipe"[..], BodyStatus::Truncated));
        let (body, status, _) = read_all(&h, 100, b"4\r\nWikiXX");
        assert_eq!((&body[..], status), (&b"Wiki"[..], BodyStatus::Malformed));
        let mut reader = BodyReader::for_response(500, &h, 1, 100).unwrap();
        let mut recv = RecvBuf::new();
        recv.extend(&[b'1'; MAX_CHUNK_LINE + 1]);
        assert_eq!(reader.read(&mut recv), BodyStatus::Malformed);
    }

    #[test]
    fn until_eof_and_no_body_statuses() {
        let mut reader = BodyReader::for_response(403, &headers(&[]), 1, 100).unwrap();
        let mut recv = RecvBuf::new();
        recv.extend(b"denied");
        assert_eq!(reader.read(&mut recv), BodyStatus::Partial);
        assert_eq!(&reader.finish()[..], b"denied");
        let h = headers(&[("Content-Length", "9")]);
        for status in [101, 204, 304] {
            let mut reader = BodyReader::for_response(status, &h, 1, 100).unwrap();
            assert_eq!(reader.read(&mut RecvBuf::new()), BodyStatus::Complete);
        }
    }
}

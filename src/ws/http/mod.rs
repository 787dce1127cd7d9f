//! The one HTTP/1.1 layer under every handshake: the server's and the
//! client's opening handshake and the CONNECT proxy all read and write
//! HTTP through it.
//!
//! - [`head`](self::head): finding a head without rescanning, under a size
//!   and header-count limit, and parsing it with httparse.
//! - [`body`](self::body): what the framing fields say of a body (for a
//!   refusal read and an upgrade request refused alike), and reading it
//!   within a bound, by `Content-Length`, `Transfer-Encoding: chunked` or
//!   until the stream ends.
//! - [`field`](self::field): the safety check every header field, request
//!   target, status line and subprotocol passes before it is written.
//! - [`url`](self::url): the one parser of `ws://`, `wss://` and `http://`
//!   (proxy) URLs, and of the request target a server reads.

pub(crate) mod body;
pub(crate) mod field;
pub(crate) mod head;
pub(crate) mod url;

pub use field::FieldError;
pub use head::{Headers, HttpRequest, HttpResponse, MalformedHttp};
pub use url::{Credentials, UrlError, WsUrl};

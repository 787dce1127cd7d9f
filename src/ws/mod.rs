//! WebSocket (RFC 6455): a sans-IO connection for servers and clients.
//!
//! A [`Connection`] takes the bytes read from a transport and gives back
//! [`Event`]s and bytes to write. It does the opening handshake (or starts
//! after one done elsewhere), framing, masking, fragmentation, incremental
//! UTF-8 validation, ping/pong, the closing handshake and keepalive timers,
//! with a limit on everything the peer controls ([`Config`]).
//!
//! ```
//! use sansproto::ws::{Config, Connection, Event, Message};
//!
//! let mut server = Connection::server(Config::default());
//! let request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n";
//! server.receive(request).unwrap();
//! // RFC 6455 §5.7: a masked "Hello" from the client.
//! server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]).unwrap();
//!
//! assert!(matches!(server.poll_event(), Some(Event::Open(_))));
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::from("Hello"))));
//!
//! let mut out = Vec::new();
//! server.poll_transmit(&mut out);
//! assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! ```

mod close;
mod config;
mod connection;
#[cfg(feature = "deflate")]
mod deflate;
mod error;
mod extension;
mod frame;
pub mod handshake;
mod http;
mod mask;
mod message;
mod prepared;
pub mod proxy;
mod session;
mod stats;
mod utf8;

pub use close::CloseCode;
pub use config::{Config, ConfigError, MIN_HANDSHAKE_SIZE};
pub use connection::{Connection, Role};
#[cfg(feature = "deflate")]
pub use deflate::{DeflateConfig, PerMessageDeflate, PERMESSAGE_DEFLATE};
pub use error::{Error, ProtocolViolation, SendError, SendErrorKind, TimeoutKind};
pub use extension::{
    EncodingKey, Extension, ExtensionError, ExtensionFactory, ExtensionOffer, ExtensionParamError,
    ExtensionResponseError, ExtensionSyntaxError,
};
pub use frame::{encode_frame, FrameHeader, HeaderError, OpCode, MAX_HEADER_LEN, RSV1, RSV2, RSV3};
pub use handshake::{
    accept_headers, accept_key, Accept, Accepted, ClientRequest, HandshakeError, Headers,
    HttpRequest, HttpResponse, MalformedHttp, OriginPolicy, Reject, UpgradeRequest,
};
pub use http::{Credentials, FieldError, UrlError, WsUrl};
pub use mask::apply_mask;
pub use message::{Closed, Event, Message, MessageKind, NotUtf8, Opened, Text};
pub use prepared::PreparedMessage;
pub use session::Session;
pub use stats::{CompressionStats, ControlStats, ErrorStats, Stats};

//! Length-prefixed stream framing.
//!
//! A frame on the wire is laid out as
//!
//! ```text
//! | offset bytes | length field | body ...                          |
//! |<---- header (offset + length field) --->|
//! |<-------------------------- frame ------------------------------>|
//! ```
//!
//! The length field is a fixed-width unsigned integer (1, 2, 3, 4 or 8 bytes,
//! either byte order) or a varint ([LEB128 or BER](varint)). Its value `L`
//! gives the body length as `L + length_adjustment`, minus the header length
//! when the length counts the header. This covers every layout Netty's
//! `LengthFieldBasedFrameDecoder` describes: bytes before the length field
//! (Pomelo's package type, Tarantool 1.5's request type), bytes after it that
//! the length does not count (Tarantool's request id, via a positive
//! adjustment), and lengths that count the whole frame.
//!
//! Each decoded frame is handed over as [`bytes::Bytes`] split out of the
//! receive buffer without a copy, after the configured number of bytes is
//! stripped from its front (by default the whole header, leaving the body).
//!
//! **Limits.** [`Builder::max_frame_length`] bounds the *whole frame*: offset
//! bytes, length field and body, before anything is stripped (Netty's
//! meaning). [`Builder::max_payload_length`] bounds only the *body*, the bytes
//! after the length field (tokio-util's meaning when the adjustment is 0). A
//! frame over the limit fails the stream (the default), or, with
//! [`Builder::discard_too_long_frames`], is skipped as its bytes arrive and
//! reported once. Memory is never reserved from a claimed length: the buffer
//! grows only with the bytes that actually arrive.
//!
//! The pieces:
//! - [`Config`] and its [`Builder`]: the frame layout and limits, validated once.
//! - [`Decoder`]: incremental, over any split of the input.
//! - [`Encoder`]: the symmetric writer, including batches into one buffer.
//! - [`Connection`]: a [`Driver`](crate::Driver) with a send queue, an idle
//!   timeout and a heartbeat.
//! - `Codec` (feature `tokio-util`): `tokio_util::codec` adapters.
//!
//! ```
//! use sansproto::prefix::{Config, Decoded, Decoder, Encoder};
//! use bytes::BytesMut;
//!
//! // Pomelo packages: 1-byte type, 3-byte big-endian body length; keep the type.
//! let config = Config::builder()
//!     .length_field_offset(1)
//!     .length_field_width(3)
//!     .strip(0)
//!     .build()?;
//! let mut wire = Vec::new();
//! Encoder::new(&config).encode(&[4], b"{}", &mut wire)?;
//! assert_eq!(wire, [4, 0, 0, 2, b'{', b'}']);
//!
//! let mut decoder = Decoder::new(&config);
//! let mut buf = BytesMut::from(&wire[..3]); // half a package: no frame yet
//! assert_eq!(decoder.decode(&mut buf)?, None);
//! buf.extend_from_slice(&wire[3..]);
//! assert_eq!(decoder.decode(&mut buf)?, Some(Decoded::Frame(wire.clone().into())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use bytes::Bytes;
use std::time::Duration;

#[cfg(feature = "tokio-util")]
mod codec;
mod config_error;
mod connection;
mod decoder;
mod encoder;
pub mod varint;

#[cfg(feature = "tokio-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-util")))]
pub use codec::{Codec, CodecError, WithHeader};
pub use config_error::ConfigError;
pub use connection::{Connection, ErrorStats, Event, SendError, SendErrorKind, Stats};
pub use decoder::{DecodeError, Decoded, Decoder};
pub use encoder::{EncodeError, Encoder};

use varint::{Varint, VarintFormat};

/// Byte order of a fixed-width length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ByteOrder {
    /// Most significant byte first (network order). The default.
    #[default]
    BigEndian,
    /// Least significant byte first.
    LittleEndian,
}

/// How the length field is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LengthField {
    /// `width` bytes (1, 2, 3, 4 or 8) in `order`.
    Fixed { width: usize, order: ByteOrder },
    /// A varint of at most `max_bytes` bytes.
    Varint(Varint),
}

impl LengthField {
    /// The shortest the field can be, in bytes.
    fn min_len(&self) -> usize {
        match self {
            LengthField::Fixed { width, .. } => *width,
            LengthField::Varint(_) => 1,
        }
    }
}

/// Which bytes the frame limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The whole frame: offset bytes, length field and body.
    Frame(usize),
    /// The body only: the bytes after the length field.
    Payload(usize),
}

/// How many bytes to strip from the front of each decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strip {
    /// The header: offset bytes and length field, however long the field is.
    Header,
    /// A fixed number of bytes.
    Bytes(usize),
}

/// The frame layout shared by the decoder and the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    pub(crate) offset: usize,
    pub(crate) field: LengthField,
    pub(crate) adjustment: i64,
    pub(crate) includes_header: bool,
    pub(crate) strip: Strip,
    pub(crate) limit: Limit,
    pub(crate) discard: bool,
}

/// Default frame limit: 8 MiB for the whole frame.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 8 * 1024 * 1024;
/// Default bound on bytes queued for sending: 16 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// Default bound on a [`Connection`]'s events waiting to be polled.
pub const DEFAULT_MAX_PENDING_EVENTS: usize = 1024;

/// A validated frame layout plus the [`Connection`] options.
///
/// Built with [`Config::builder`]. The default is a 4-byte big-endian length
/// of the body at offset 0, the header stripped (each frame is handed over as
/// its body), at most [`DEFAULT_MAX_FRAME_LENGTH`] bytes per frame, failing
/// on a longer one: the framing of tokio-util's `LengthDelimitedCodec` and
/// Netty's `LengthFieldPrepender(4)`.
///
/// ```
/// use bytes::BytesMut;
/// use sansproto::prefix::{ByteOrder, Config, DecodeError, Decoder};
///
/// // Tarantool 1.5 iproto: LE u32 type, LE u32 body length, LE u32 request id.
/// // The request id follows the length field but is not counted by it.
/// let iproto = Config::builder()
///     .length_field_offset(4)
///     .length_field_width(4)
///     .byte_order(ByteOrder::LittleEndian)
///     .length_adjustment(4)
///     .strip(0)
///     // Bodies of up to 2^31 bytes; the length counted after adjustment
///     // holds the request id too.
///     .max_payload_length((1 << 31) + 4)
///     .build()?;
/// // The server takes bodies of up to 2^31 bytes: such a header is taken,
/// // and the decoder waits for the body (as it arrives, never reserved).
/// let header = |body: u32| {
///     let mut h = BytesMut::from(&17u32.to_le_bytes()[..]);
///     h.extend_from_slice(&body.to_le_bytes());
///     h.extend_from_slice(&7u32.to_le_bytes());
///     h
/// };
/// assert_eq!(Decoder::new(&iproto).decode(&mut header(1 << 31)), Ok(None));
/// assert!(matches!(
///     Decoder::new(&iproto).decode(&mut header((1 << 31) + 1)),
///     Err(DecodeError::FrameTooLong { .. })
/// ));
/// // Width 5 does not exist: the builder says so instead of panicking.
/// assert!(Config::builder().length_field_width(5).build().is_err());
/// # Ok::<(), sansproto::prefix::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) framing: Framing,
    pub(crate) max_queued_bytes: usize,
    pub(crate) send_marks: Option<(usize, usize)>,
    pub(crate) max_pending_events: usize,
    pub(crate) memory_budget: Option<usize>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) heartbeat: Option<(Duration, Bytes)>,
}

impl Default for Config {
    /// [`Builder`]'s defaults (which pass its checks).
    fn default() -> Self {
        Builder::default().assemble()
    }
}

impl Config {
    /// A builder starting from [`Config::default`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Bytes before the length field.
    pub fn length_field_offset(&self) -> usize {
        self.framing.offset
    }

    /// The longest a header (offset bytes plus length field) can be.
    pub fn max_header_length(&self) -> usize {
        self.framing.offset
            + match self.framing.field {
                LengthField::Fixed { width, .. } => width,
                LengthField::Varint(v) => v.max_bytes(),
            }
    }
}

/// Builds a [`Config`]; every setter may be called in any order and the
/// combination is checked once, in [`Builder::build`].
#[derive(Debug, Clone)]
pub struct Builder {
    offset: usize,
    width: usize,
    order: ByteOrder,
    varint: Option<VarintFormat>,
    varint_max_bytes: usize,
    reject_non_minimal: bool,
    adjustment: i64,
    includes_header: bool,
    strip: Strip,
    limit: Limit,
    discard: bool,
    max_queued_bytes: usize,
    send_marks: Option<(usize, usize)>,
    max_pending_events: usize,
    memory_budget: Option<usize>,
    idle_timeout: Option<Duration>,
    heartbeat: Option<(Duration, Bytes)>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            offset: 0,
            width: 4,
            order: ByteOrder::BigEndian,
            varint: None,
            varint_max_bytes: varint::MAX_LEN,
            reject_non_minimal: false,
            adjustment: 0,
            includes_header: false,
            strip: Strip::Header,
            limit: Limit::Frame(DEFAULT_MAX_FRAME_LENGTH),
            discard: false,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            send_marks: None,
            max_pending_events: DEFAULT_MAX_PENDING_EVENTS,
            memory_budget: None,
            idle_timeout: None,
            heartbeat: None,
        }
    }
}

impl Builder {
    /// Bytes before the length field (default 0). The decoder keeps them in
    /// the frame unless stripped; the encoder takes them from the caller as
    /// the frame's header.
    pub fn length_field_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// A fixed-width length field of `width` bytes: 1, 2, 3, 4 (the default)
    /// or 8. Replaces a varint field chosen earlier.
    pub fn length_field_width(mut self, width: usize) -> Self {
        self.width = width;
        self.varint = None;
        self
    }

    /// Byte order of a fixed-width length field (default big-endian).
    pub fn byte_order(mut self, order: ByteOrder) -> Self {
        self.order = order;
        self
    }

    /// A varint length field in `format`, at most 10 bytes unless bounded by
    /// [`Builder::varint_max_bytes`]. Replaces a fixed width chosen earlier.
    pub fn varint(mut self, format: VarintFormat) -> Self {
        self.varint = Some(format);
        self
    }

    /// Bound on a varint length field's encoded length, 1 to 10 bytes
    /// (default 10, enough for any `u64`).
    pub fn varint_max_bytes(mut self, max_bytes: usize) -> Self {
        self.varint_max_bytes = max_bytes;
        self
    }

    /// Reject varint length fields encoded with more bytes than needed
    /// (default: accept them). Fixed-width fields have one encoding only.
    pub fn reject_non_minimal(mut self, reject: bool) -> Self {
        self.reject_non_minimal = reject;
        self
    }

    /// Added to the length field's value to get the body length (default 0).
    /// Positive when bytes after the length field are not counted by it
    /// (Tarantool 1.5's request id: +4); negative when the value counts bytes
    /// that are not body (Netty's case 3: −2).
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.adjustment = adjustment;
        self
    }

    /// Whether the length field's value counts the header (offset bytes and
    /// the length field itself) as well as the body (default `false`). Unlike
    /// a negative adjustment this follows the real width of a varint field.
    pub fn length_includes_header(mut self, includes: bool) -> Self {
        self.includes_header = includes;
        self
    }

    /// Strip `n` bytes from the front of each decoded frame (0 keeps the
    /// whole frame). A frame shorter than `n` is a decode error.
    pub fn strip(mut self, n: usize) -> Self {
        self.strip = Strip::Bytes(n);
        self
    }

    /// Strip the header (offset bytes and length field) from each decoded
    /// frame, handing over the body only. The default.
    pub fn strip_header(mut self) -> Self {
        self.strip = Strip::Header;
        self
    }

    /// Limit each frame to `max` bytes counting the **whole frame**: offset
    /// bytes, length field and body, before stripping. The default, with
    /// [`DEFAULT_MAX_FRAME_LENGTH`]. Replaces [`Builder::max_payload_length`].
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.limit = Limit::Frame(max);
        self
    }

    /// Limit each frame's **body** (the bytes after the length field, after
    /// adjustment) to `max` bytes, not counting the header. Replaces
    /// [`Builder::max_frame_length`].
    pub fn max_payload_length(mut self, max: usize) -> Self {
        self.limit = Limit::Payload(max);
        self
    }

    /// On a frame over the limit: `false` (the default) fails the stream
    /// with [`DecodeError::FrameTooLong`]; `true` skips the frame's bytes as
    /// they arrive, reports it once as [`Decoded::Discarded`] when its header
    /// is read, and carries on with the next frame.
    pub fn discard_too_long_frames(mut self, discard: bool) -> Self {
        self.discard = discard;
        self
    }

    /// [`Connection`] only: refuse a send that would leave more than `max`
    /// bytes queued (default [`DEFAULT_MAX_QUEUED_BYTES`]).
    pub fn max_queued_bytes(mut self, max: usize) -> Self {
        self.max_queued_bytes = max;
        self
    }

    /// [`Connection`] only: backpressure marks on the send queue. Above
    /// `high` queued bytes
    /// [`Connection::is_backpressured`] turns true, until `poll_transmit`
    /// leaves at most `low`, reported once as
    /// [`Event::Drained`]. [`build`](Self::build)
    /// checks `low < high <= max_queued_bytes`. Default: no marks.
    pub fn send_marks(mut self, high: usize, low: usize) -> Self {
        self.send_marks = Some((high, low));
        self
    }

    /// [`Connection`] only: pause decoding once `max` events wait to be
    /// polled, and take no input (`receive` returns `Ok(0)`) until they
    /// are (default [`DEFAULT_MAX_PENDING_EVENTS`]).
    pub fn max_pending_events(mut self, max: usize) -> Self {
        self.max_pending_events = max;
        self
    }

    /// The most a [`Connection`] may hold in memory, as its
    /// [`memory_usage`](Connection::memory_usage) counts it, with the
    /// receive buffer and the send queue charged for the bytes they hold
    /// (default: no budget). Input that takes it past the budget fails the connection
    /// ([`DecodeError::OverBudget`]); a send that would is refused
    /// ([`SendErrorKind::OverBudget`]) with the payload handed back.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// [`Connection`] only: end the connection with [`Event::IdleTimeout`]
    /// when nothing arrives from the peer for `timeout` (default: never),
    /// after the frames already taken from it
    /// ([`Connection::handle_timeout`]). The initial setting:
    /// [`Connection::set_idle_timeout`] changes it later.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// [`Connection`] only: queue `frame` every `interval` (default: no
    /// heartbeat). The frame is sent verbatim: encode it with an
    /// [`Encoder`] first. The initial setting:
    /// [`Connection::set_heartbeat`] changes it later, from a header and a
    /// body it frames itself, and [`Connection::stop_heartbeat`] stops it.
    pub fn heartbeat(mut self, interval: Duration, frame: impl Into<Bytes>) -> Self {
        self.heartbeat = Some((interval, frame.into()));
        self
    }

    /// Checks the combination and builds the [`Config`].
    pub fn build(self) -> Result<Config, ConfigError> {
        self.check()?;
        Ok(self.assemble())
    }

    /// Every rule a combination must follow.
    fn check(&self) -> Result<(), ConfigError> {
        match self.varint {
            Some(_) if !(1..=varint::MAX_LEN).contains(&self.varint_max_bytes) => {
                return Err(ConfigError::VarintMaxBytes {
                    max_bytes: self.varint_max_bytes,
                })
            }
            None if !matches!(self.width, 1 | 2 | 3 | 4 | 8) => {
                return Err(ConfigError::LengthFieldWidth { width: self.width })
            }
            _ => {}
        }
        // Headers are at most offset + 10 bytes: keep that inside usize.
        if self.offset > usize::MAX / 2 {
            return Err(ConfigError::OffsetTooLarge {
                offset: self.offset,
            });
        }
        let min_header = self.offset + self.field().min_len();
        if let Limit::Frame(max) = self.limit {
            if max < min_header {
                return Err(ConfigError::MaxBelowHeader {
                    max,
                    header: min_header,
                });
            }
            if let Strip::Bytes(strip) = self.strip {
                if strip > max {
                    return Err(ConfigError::StripExceedsMax { strip, max });
                }
            }
        }
        if self.max_queued_bytes == 0 {
            return Err(ConfigError::ZeroQueueLimit);
        }
        if self.max_pending_events == 0 {
            return Err(ConfigError::ZeroEventLimit);
        }
        if self.memory_budget == Some(0) {
            return Err(ConfigError::ZeroMemoryBudget);
        }
        if let Some((high, low)) = self.send_marks {
            let limit = self.max_queued_bytes;
            if !crate::buf::check_marks(high, low, limit) {
                return Err(ConfigError::SendMarks { high, low, limit });
            }
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroDuration {
                what: "the idle timeout",
            });
        }
        if matches!(self.heartbeat, Some((d, _)) if d.is_zero()) {
            return Err(ConfigError::ZeroDuration {
                what: "the heartbeat interval",
            });
        }
        Ok(())
    }

    /// The length field as set.
    fn field(&self) -> LengthField {
        match self.varint {
            Some(format) => LengthField::Varint(
                Varint::new(format)
                    .with_max_bytes(self.varint_max_bytes)
                    .with_reject_non_minimal(self.reject_non_minimal),
            ),
            None => LengthField::Fixed {
                width: self.width,
                order: self.order,
            },
        }
    }

    /// The [`Config`] these settings make, checked or not.
    fn assemble(self) -> Config {
        Config {
            framing: Framing {
                offset: self.offset,
                field: self.field(),
                adjustment: self.adjustment,
                includes_header: self.includes_header,
                strip: self.strip,
                limit: self.limit,
                discard: self.discard,
            },
            max_queued_bytes: self.max_queued_bytes,
            send_marks: self.send_marks,
            max_pending_events: self.max_pending_events,
            memory_budget: self.memory_budget,
            idle_timeout: self.idle_timeout,
            heartbeat: self.heartbeat,
        }
    }
}

#[cfg(test)]
mod tests;

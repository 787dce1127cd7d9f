//! Connection settings.

use super::extension::ExtensionFactory;
use super::http::field::{check_subprotocol, push_extra, FieldError, HANDSHAKE_OWNED};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Settings for a WebSocket connection, with safe defaults.
///
/// Every limit on what the peer controls is here; each is checked before
/// memory is set aside.
///
/// ```
/// use std::time::Duration;
/// use sansproto::ws::Config;
/// let config = Config::default()
///     .with_max_message_size(1 << 20)
///     .with_keepalive(Duration::from_secs(30), Duration::from_secs(10))
///     .with_protocols(["chat.v1"])
///     .unwrap();
/// assert_eq!(config.max_message_size, 1 << 20);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload of one received frame. Default 16 MiB. Larger frames
    /// fail the connection with 1009 as soon as their header arrives.
    pub max_frame_size: usize,
    /// Largest reassembled (and, with compression, decompressed) received
    /// message. Default 64 MiB; 1009 past it. In streaming mode, where
    /// messages are not reassembled, it bounds only what one compressed
    /// frame inflates to (each frame's output is one piece).
    pub max_message_size: usize,
    /// Most bytes queued for sending; a send past it is refused and hands
    /// the payload back. A payload queued as a shared chunk of its own (a
    /// large one, a prepared frame) counts its queue slot (32 bytes) too.
    /// Default 64 MiB.
    pub max_send_queue: usize,
    /// Backpressure: above this many queued bytes
    /// [`Session::is_backpressured`](super::Session::is_backpressured)
    /// turns true, until taking bytes out leaves at most
    /// [`send_low_mark`](Self::send_low_mark), reported once as
    /// [`Event::Drained`](super::Event::Drained). Default `None`: no
    /// marks (only `max_send_queue` refuses sends). Set both with
    /// [`with_send_marks`](Self::with_send_marks).
    pub send_high_mark: Option<usize>,
    /// Backpressure: see [`send_high_mark`](Self::send_high_mark).
    /// Default 0; unused without a high mark.
    pub send_low_mark: usize,
    /// The most this connection may hold in memory, as
    /// [`memory_usage`](super::Session::memory_usage) counts it, with the
    /// receive buffer and the send queue charged for the bytes they hold
    /// (not the room a read is offered or the capacity a queue keeps). Input
    /// that takes it past the budget fails the connection
    /// ([`Error::OverBudget`](super::Error::OverBudget): close 1009 when
    /// it is data arriving, 1008 when it is events not polled); a send
    /// that would is
    /// refused ([`SendErrorKind::OverBudget`](super::SendErrorKind::OverBudget))
    /// with the payload handed back. Default `None`: only the separate
    /// limits apply. Set with [`with_memory_budget`](Self::with_memory_budget).
    pub memory_budget: Option<usize>,
    /// Largest HTTP head of the opening handshake. Default 16 KiB.
    pub max_handshake_size: usize,
    /// Most header fields in the opening handshake. Default 64.
    pub max_headers: usize,
    /// Most events waiting to be polled before input stops being taken:
    /// at it, parsing of bytes already taken pauses and `receive` takes no
    /// bytes (returns `Ok(0)`) until `poll_event` has drained the queue, so
    /// a peer cannot grow the event queue (a ping flood, say) while the
    /// application is not polling. Whole messages read together count as
    /// one event. Default 1024; 0 counts as 1.
    ///
    /// With permessage-deflate, parsing also waits after each inflated
    /// message until it is polled or more input comes, whatever this
    /// bound: `receive` still takes all it is given. An application that
    /// polls as it reads then holds one inflated message at a time, and
    /// inflates the next where the last was freed, still in cache.
    pub max_pending_events: usize,
    /// Answer pings with pongs automatically. Default on.
    pub auto_pong: bool,
    /// Split outgoing messages into frames of at most this many payload
    /// bytes. Default `None`: one frame per message.
    pub fragment_size: Option<usize>,
    /// Deliver data as [`Event::Fragment`](super::Event::Fragment) pieces as
    /// they arrive instead of whole messages. Default off.
    pub stream_frames: bool,
    /// Send a ping after this long without inbound traffic. Default off.
    pub keepalive_interval: Option<Duration>,
    /// With keepalive on: fail the connection when nothing arrives this long
    /// after a keepalive ping. Default 30 s.
    pub pong_timeout: Duration,
    /// Give up on the peer's Close reply after this long. Default 10 s.
    pub close_timeout: Option<Duration>,
    /// Give up on an opening handshake that takes longer. Default 30 s.
    pub handshake_timeout: Option<Duration>,
    /// Subprotocols (RFC 9110 tokens, checked by
    /// [`with_protocols`](Self::with_protocols)).
    protocols: Vec<String>,
    /// Extra header fields (checked by [`with_header`](Self::with_header)).
    headers: Vec<(String, String)>,
    /// Extensions to negotiate, in order of preference.
    pub extensions: Vec<Arc<dyn ExtensionFactory>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_send_queue: 64 << 20,
            send_high_mark: None,
            send_low_mark: 0,
            memory_budget: None,
            max_handshake_size: 16 << 10,
            max_headers: 64,
            max_pending_events: 1024,
            auto_pong: true,
            fragment_size: None,
            stream_frames: false,
            keepalive_interval: None,
            pong_timeout: Duration::from_secs(30),
            close_timeout: Some(Duration::from_secs(10)),
            handshake_timeout: Some(Duration::from_secs(30)),
            protocols: Vec::new(),
            headers: Vec::new(),
            extensions: Vec::new(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("max_send_queue", &self.max_send_queue)
            .field("send_high_mark", &self.send_high_mark)
            .field("send_low_mark", &self.send_low_mark)
            .field("max_handshake_size", &self.max_handshake_size)
            .field("max_headers", &self.max_headers)
            .field("max_pending_events", &self.max_pending_events)
            .field("auto_pong", &self.auto_pong)
            .field("fragment_size", &self.fragment_size)
            .field("stream_frames", &self.stream_frames)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("protocols", &self.protocols)
            // Names only: values may be credentials (`Authorization`).
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field(
                "extensions",
                &self
                    .extensions
                    .iter()
                    .map(|e| e.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why [`Config::validate`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit, size or interval that must be positive is zero.
    #[error("`{name}` must be greater than zero")]
    Zero {
        /// The field's name.
        name: &'static str,
    },
    /// A limit is too small for anything to ever pass it (a handshake head
    /// smaller than its request line and required fields, say).
    #[error("`{name}` is {value} but must be at least {needed}")]
    TooSmall {
        /// The field's name.
        name: &'static str,
        /// The configured value.
        value: usize,
        /// The smallest value that works.
        needed: usize,
    },
    /// The send marks are out of order: the low mark must be below the
    /// high mark, and the high mark at most `max_send_queue`.
    #[error(
        "send marks must satisfy low ({low}) < high ({high}) <= the send queue limit ({limit})"
    )]
    SendMarks {
        /// The high mark.
        high: usize,
        /// The low mark.
        low: usize,
        /// The send queue limit.
        limit: usize,
    },
}

/// The smallest handshake head that can hold a request line and the
/// fields RFC 6455 §4.1 requires.
pub const MIN_HANDSHAKE_SIZE: usize = 128;

impl Config {
    /// The heap this configuration's lists hold (the extension factories
    /// are shared, so only their pointers count).
    pub(crate) fn heap(&self) -> usize {
        use crate::memory::slots;
        slots::<String>(self.protocols.capacity())
            + self.protocols.iter().map(String::capacity).sum::<usize>()
            + slots::<(String, String)>(self.headers.capacity())
            + self
                .headers
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity())
                .sum::<usize>()
            + slots::<usize>(2 * self.extensions.capacity())
    }

    /// Checks the configuration: every limit a connection needs positive,
    /// the handshake limits large enough for a handshake. The connection
    /// constructors take a configuration as it is (a zero event bound
    /// counts as 1, a zero fragment size as 1 byte); call this where a
    /// configuration is assembled (from a file, say) to refuse such values
    /// with a typed error instead.
    ///
    /// ```
    /// use sansproto::ws::{Config, ConfigError};
    /// assert_eq!(Config::default().validate(), Ok(()));
    /// assert_eq!(
    ///     Config::default().with_max_pending_events(0).validate(),
    ///     Err(ConfigError::Zero { name: "max_pending_events" })
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_frame_size", self.max_frame_size),
            ("max_message_size", self.max_message_size),
            ("max_send_queue", self.max_send_queue),
            ("max_headers", self.max_headers),
            ("max_pending_events", self.max_pending_events),
            ("fragment_size", self.fragment_size.unwrap_or(1)),
            ("memory_budget", self.memory_budget.unwrap_or(1)),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero { name });
        }
        let durations = [
            ("keepalive_interval", self.keepalive_interval),
            (
                "pong_timeout",
                self.keepalive_interval.map(|_| self.pong_timeout),
            ),
            ("close_timeout", self.close_timeout),
            ("handshake_timeout", self.handshake_timeout),
        ];
        if let Some((name, _)) = durations
            .iter()
            .find(|(_, d)| d.is_some_and(|d| d.is_zero()))
        {
            return Err(ConfigError::Zero { name });
        }
        if self.max_handshake_size < MIN_HANDSHAKE_SIZE {
            return Err(ConfigError::TooSmall {
                name: "max_handshake_size",
                value: self.max_handshake_size,
                needed: MIN_HANDSHAKE_SIZE,
            });
        }
        if let Some(high) = self.send_high_mark {
            let (low, limit) = (self.send_low_mark, self.max_send_queue);
            if !crate::buf::check_marks(high, low, limit) {
                return Err(ConfigError::SendMarks { high, low, limit });
            }
        }
        Ok(())
    }

    /// Sets [`Config::max_pending_events`].
    pub fn with_max_pending_events(mut self, n: usize) -> Self {
        self.max_pending_events = n;
        self
    }

    /// Sets [`Config::max_frame_size`].
    pub fn with_max_frame_size(mut self, n: usize) -> Self {
        self.max_frame_size = n;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub fn with_max_message_size(mut self, n: usize) -> Self {
        self.max_message_size = n;
        self
    }

    /// Sets [`Config::memory_budget`].
    ///
    /// ```
    /// use sansproto::ws::{Config, Role, SendErrorKind, Session};
    ///
    /// let config = Config::default().with_memory_budget(64 << 10);
    /// let mut s = Session::new(Role::Server, config, None, None, sansproto::default_random());
    /// let refused = s.send(vec![0u8; 100 << 10]).unwrap_err();
    /// assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
    /// assert_eq!(refused.into_payload().len(), 100 << 10);
    /// ```
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Sets [`Config::max_send_queue`].
    pub fn with_max_send_queue(mut self, n: usize) -> Self {
        self.max_send_queue = n;
        self
    }

    /// Sets the backpressure marks, [`Config::send_high_mark`] to `high`
    /// and [`Config::send_low_mark`] to `low`; [`validate`](Self::validate)
    /// checks `low < high <= max_send_queue`.
    ///
    /// ```
    /// use sansproto::ws::{Config, ConfigError};
    /// let config = Config::default().with_send_marks(64 << 10, 16 << 10);
    /// assert_eq!(config.validate(), Ok(()));
    /// assert!(matches!(
    ///     Config::default().with_send_marks(10, 10).validate(),
    ///     Err(ConfigError::SendMarks { .. })
    /// ));
    /// ```
    pub fn with_send_marks(mut self, high: usize, low: usize) -> Self {
        self.send_high_mark = Some(high);
        self.send_low_mark = low;
        self
    }

    /// Sets [`Config::max_handshake_size`] and [`Config::max_headers`].
    pub fn with_handshake_limits(mut self, bytes: usize, headers: usize) -> Self {
        self.max_handshake_size = bytes;
        self.max_headers = headers;
        self
    }

    /// Sets [`Config::auto_pong`].
    pub fn with_auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }

    /// Sets [`Config::fragment_size`] (0 means no fragmentation).
    pub fn with_fragment_size(mut self, n: usize) -> Self {
        self.fragment_size = (n > 0).then_some(n);
        self
    }

    /// Sets [`Config::stream_frames`].
    pub fn with_stream_frames(mut self, on: bool) -> Self {
        self.stream_frames = on;
        self
    }

    /// Turns keepalive on: a ping after `interval` without inbound traffic,
    /// and failure when nothing arrives within `pong_timeout` after it.
    pub fn with_keepalive(mut self, interval: Duration, pong_timeout: Duration) -> Self {
        self.keepalive_interval = Some(interval);
        self.pong_timeout = pong_timeout;
        self
    }

    /// Sets [`Config::close_timeout`].
    pub fn with_close_timeout(mut self, t: Option<Duration>) -> Self {
        self.close_timeout = t;
        self
    }

    /// Sets [`Config::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// Sets the subprotocols: a client offers them in order; a server
    /// picks the first of these that the client offered (unless the
    /// application chooses, see [`Accept`](super::Accept)). Each must be an
    /// RFC 9110 token: `"a, b"` or `"chat v1"` is refused.
    ///
    /// ```
    /// use sansproto::ws::{Config, FieldError};
    /// let config = Config::default().with_protocols(["chat.v2", "chat.v1"]).unwrap();
    /// assert_eq!(config.protocols(), ["chat.v2", "chat.v1"]);
    /// assert_eq!(
    ///     Config::default().with_protocols(["a, b"]).unwrap_err(),
    ///     FieldError::Subprotocol("a, b".into())
    /// );
    /// ```
    pub fn with_protocols<I, S>(mut self, protocols: I) -> Result<Self, FieldError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let protocols: Vec<String> = protocols.into_iter().map(Into::into).collect();
        for p in &protocols {
            check_subprotocol(p)?;
        }
        self.protocols = protocols;
        Ok(self)
    }

    /// Adds a header field to the handshake message this side sends (the
    /// client's request or the server's 101). The name must be a token and
    /// the value free of control characters; the fields the handshake
    /// writes itself (`Host`, `Upgrade`, `Connection`, `Sec-WebSocket-*`)
    /// cannot be added.
    ///
    /// ```
    /// use sansproto::ws::{Config, FieldError};
    /// let config = Config::default().with_header("User-Agent", "demo/1").unwrap();
    /// assert_eq!(config.headers(), [("User-Agent".to_owned(), "demo/1".to_owned())]);
    /// assert!(matches!(
    ///     Config::default().with_header("X", "v\r\n\r\nHTTP/1.1 200 OK"),
    ///     Err(FieldError::Value(_))
    /// ));
    /// assert!(matches!(
    ///     Config::default().with_header("Sec-WebSocket-Key", "x"),
    ///     Err(FieldError::Reserved(_))
    /// ));
    /// ```
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, FieldError> {
        push_extra(&mut self.headers, HANDSHAKE_OWNED, name, value)?;
        Ok(self)
    }

    /// The subprotocols, in order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The extra header fields of the handshake message this side sends.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Adds an extension to negotiate.
    pub fn with_extension(mut self, factory: Arc<dyn ExtensionFactory>) -> Self {
        self.extensions.push(factory);
        self
    }

    /// Negotiates permessage-deflate (RFC 7692) with these settings.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(self, deflate: super::DeflateConfig) -> Self {
        self.with_extension(Arc::new(super::PerMessageDeflate::new(deflate)))
    }
}

//! permessage-deflate (RFC 7692): negotiation and the per-message transform.
//!
//! Turn it on with [`Config::with_deflate`](super::Config::with_deflate):
//!
//! ```
//! use sansproto::ws::{Config, DeflateConfig};
//! // Accept browsers' default offer, but cap memory per connection.
//! let config = Config::default()
//!     .with_deflate(DeflateConfig::default().with_server_no_context_takeover(true));
//! # let _ = config;
//! ```
//!
//! # Memory per connection
//!
//! A compressor keeps its window (`2^w` bytes, twice), hash chains and
//! zlib's hash table and buffers (fixed by zlib's default memory level, not
//! by the window); a decompressor keeps its `2^w`-byte window and about
//! 7 KiB of state. With context takeover both live for the whole connection,
//! and a copy of the last `2^w` bytes received is kept beside the
//! decompressor: a peer may end a message's DEFLATE stream with a final
//! block (RFC 7692 §7.2.3.4), and the next stream starts from that window.
//! Without it (the `*_no_context_takeover` parameters) each is created for a
//! message and dropped at its end, so an idle connection holds none.
//! Measured by the `memory_per_idle_connection` test (heap bytes one
//! connection holds after exchanging messages, both directions compressed;
//! the copy of the window grows to `2^w` bytes as messages arrive):
//!
//! | negotiated | idle connection |
//! |---|---|
//! | full windows (`w = 15`), context takeover | about 435 KiB (450 KiB once 32 KiB came) |
//! | `server_max_window_bits=9; client_max_window_bits=9` | about 295 KiB |
//! | `server_no_context_takeover; client_no_context_takeover` | about 7 KiB |
//!
//! # Broadcast
//!
//! Without server context takeover a message's compressed form depends
//! only on the level, the window bits and the message, so a
//! [`PreparedMessage`](super::PreparedMessage) is compressed once and the
//! result shared by every server connection with the same settings. With
//! context takeover each connection compresses it itself, against its own
//! history: negotiate `server_no_context_takeover` (see
//! [`DeflateConfig::server_no_context_takeover`]) for servers that
//! broadcast, which also keeps idle connections small.
//!
//! # Window bits 8
//!
//! zlib cannot run its compressor with a 256-byte window; with a 512-byte
//! window (`w = 9`) it never emits distances beyond 250 bytes, so its output
//! is valid for a peer that allowed only `w = 8`. Negotiated values of 8 are
//! therefore run as 9, both for compressing and decompressing.

mod codec;
mod negotiation;
mod window;

pub use negotiation::PerMessageDeflate;

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// permessage-deflate settings and negotiation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Compression level, 0–9. Default 6 (zlib's default).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (RSV1 clear), as
    /// [`Session::send_uncompressed`](crate::ws::Session::send_uncompressed)
    /// sends any message. Default 32 bytes.
    ///
    /// With context takeover such a message does not enter the
    /// compressor's window on either side: the peer inflates compressed
    /// messages only, so both windows hold the same history, and the
    /// compressed messages that follow cannot refer back to it. When this
    /// side compresses without context takeover (a server that negotiated
    /// `server_no_context_takeover`, a client `client_no_context_takeover`)
    /// every message starts from an empty window anyway; there, with
    /// [`skip_incompressible`](Self::skip_incompressible), a message whose
    /// compressed form would be no shorter than itself is also sent
    /// uncompressed, whatever its size.
    pub threshold: usize,
    /// When this side compresses without context takeover, send a message
    /// that compression would not shrink uncompressed (RSV1 clear). Default
    /// off: RFC 7692 allows it, but some peers mishandle an uncompressed
    /// message in a compressed session (the Autobahn test suite's own
    /// harness among them). With context takeover it has no effect: the
    /// window already holds the message.
    pub skip_incompressible: bool,
    /// Server: always reset the server's compressor between messages (and
    /// say so). Client: ask the server to do so.
    pub server_no_context_takeover: bool,
    /// Server: require the client to reset its compressor between messages.
    /// Client: offer to, and do so.
    pub client_no_context_takeover: bool,
    /// Largest window (8–15) for the server's compressor. A server uses at
    /// most this; a client asks for it when below 15.
    pub server_max_window_bits: u8,
    /// Largest window (8–15) for the client's compressor. A server asks for
    /// it when below 15 (and declines clients that cannot honour it); a
    /// client uses at most this.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 6,
            threshold: 32,
            skip_incompressible: false,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// Sets [`DeflateConfig::level`] (clamped to 9).
    pub fn with_level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`DeflateConfig::threshold`].
    pub fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`DeflateConfig::skip_incompressible`].
    pub fn with_skip_incompressible(mut self, on: bool) -> Self {
        self.skip_incompressible = on;
        self
    }

    /// Sets [`DeflateConfig::server_no_context_takeover`].
    pub fn with_server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::client_no_context_takeover`].
    pub fn with_client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::server_max_window_bits`] (clamped to 8–15).
    pub fn with_server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// Sets [`DeflateConfig::client_max_window_bits`] (clamped to 8–15).
    pub fn with_client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }
}

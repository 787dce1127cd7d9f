//! The counters every machine's statistics share.

/// Traffic in one direction: what crossed the transport, and what it
/// carried. Each protocol's statistics say what its frames and messages
/// are.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Wire bytes.
    pub bytes: u64,
    /// Frames (WebSocket frames, length-prefixed frames, datagrams).
    pub frames: u64,
    /// Messages (data messages, not control frames).
    pub messages: u64,
}

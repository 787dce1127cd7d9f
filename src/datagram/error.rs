//! Errors, split by who is at fault: the peer ([`PeerError`], reported as an
//! event and never fatal to the endpoint) or the caller ([`SendError`],
//! returned from [`Endpoint::send`](super::Endpoint::send)).

use bytes::Bytes;

use super::segment::HEADER_LEN;

/// What was wrong with a datagram or fragment a peer sent.
///
/// Reported through [`Event::DatagramDropped`](super::Event::DatagramDropped)
/// (nothing was kept) or, when it spoils a partial message already held,
/// through [`Event::MessageDropped`](super::Event::MessageDropped) with
/// [`DropReason::Invalid`]. Other peers are not affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The datagram is larger than the configured MTU.
    #[error("datagram of {len} bytes exceeds the {max}-byte mtu")]
    DatagramTooLarge {
        /// The datagram's length.
        len: usize,
        /// The configured MTU.
        max: usize,
    },
    /// The datagram is shorter than the segment header.
    #[error("datagram of {len} bytes is shorter than the {HEADER_LEN}-byte segment header")]
    Truncated {
        /// The datagram's length.
        len: usize,
    },
    /// The segment header's version byte is not one this crate speaks.
    #[error("unknown segment header version {0}")]
    UnknownVersion(u8),
    /// The header announces a message of zero fragments.
    #[error("fragment count is zero")]
    ZeroFragmentCount,
    /// The header announces more fragments than the configured maximum.
    #[error("fragment count {count} exceeds the limit of {max}")]
    TooManyFragments {
        /// The announced count.
        count: u16,
        /// The configured `max_fragments`.
        max: u16,
    },
    /// The fragment index is not below the fragment count.
    #[error("fragment index {index} is not below the fragment count {count}")]
    IndexOutOfRange {
        /// The fragment index.
        index: u16,
        /// The fragment count.
        count: u16,
    },
    /// A message of several fragments has an empty one.
    #[error("empty fragment {index} in a message of {count} fragments")]
    EmptyFragment {
        /// The fragment index.
        index: u16,
        /// The fragment count.
        count: u16,
    },
    /// The fragments seen so far already make the message larger than the
    /// configured maximum.
    #[error("message of at least {at_least} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// The smallest size the message can have, given its fragments.
        at_least: usize,
        /// The configured `max_message_size`.
        max: usize,
    },
    /// A fragment's count differs from the one announced by earlier fragments
    /// of the same message.
    #[error("fragment count {got} disagrees with {expected} announced earlier")]
    CountMismatch {
        /// The count the partial message was opened with.
        expected: u16,
        /// The count in this fragment.
        got: u16,
    },
    /// A fragment's byte range does not tile with the fragments held: a
    /// non-final fragment of a different length than the others, or a second
    /// copy of a fragment with a different length.
    #[error("fragment {index} of {len} bytes overlaps the fragments held")]
    Overlap {
        /// The fragment index.
        index: u16,
        /// The fragment's payload length.
        len: usize,
    },
    /// The final fragment is longer than the other fragments of its message.
    #[error(
        "final fragment {index} of {len} bytes is longer than the {max}-byte fragments before it"
    )]
    FragmentTooLarge {
        /// The fragment index.
        index: u16,
        /// The fragment's payload length.
        len: usize,
        /// The length of the message's other fragments.
        max: usize,
    },
    /// (Sessions on.) The datagram is shorter than the session header.
    #[error("datagram of {len} bytes is shorter than the 5-byte session header")]
    SessionTruncated {
        /// The datagram's length.
        len: usize,
    },
    /// (Sessions on.) The session header's kind byte is not one this crate
    /// speaks (a peer without sessions, say).
    #[error("unknown session datagram kind {0:#04x}")]
    UnknownKind(u8),
    /// (Sessions on.) A close notice or keepalive of the wrong length
    /// (truncated, or with bytes after it).
    #[error("control datagram of kind {kind:#04x} is {len} bytes, not {expected}")]
    ControlLength {
        /// The kind byte.
        kind: u8,
        /// The datagram's length.
        len: usize,
        /// The length of that kind.
        expected: usize,
    },
    /// (Sessions on.) A close notice names a reason this crate does not
    /// know.
    #[error("unknown close notice reason {0}")]
    UnknownCloseReason(u8),
    /// (Sessions on.) A message or keepalive carries session id 0, which no
    /// session has.
    #[error("session id is zero")]
    ZeroSessionId,
    /// (Sessions on.) The datagram belongs to a session this endpoint
    /// closed; it does not open a new one.
    #[error("datagram of closed session {session_id:#010x}")]
    StaleSession {
        /// The session id it carried.
        session_id: u32,
    },
    /// (Sessions on.) A message carrying a new session id from the address
    /// of an open session. One datagram alone could be forged: the id is
    /// held as the session's candidate, and a second message with it ends
    /// the old session ([`CloseReason::Replaced`](super::CloseReason::Replaced))
    /// and opens a new one (see [`Sessions`](super::Sessions)).
    #[error(
        "new session {session_id:#010x} from the address of an open session, not yet confirmed"
    )]
    UnconfirmedSession {
        /// The session id it carried.
        session_id: u32,
    },
    /// (Sessions on.) A keepalive or close notice that matches no open
    /// session of its sender (keepalives never open one).
    #[error("no session {session_id:#010x} with this peer")]
    UnknownSession {
        /// The session id in its session header.
        session_id: u32,
    },
}

/// Why [`Endpoint::open`](super::Endpoint::open) refused to open a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// [`Config::max_peers`](super::Config::max_peers) peers are open.
    #[error("the peer table is full ({max} peers)")]
    TableFull {
        /// The configured `max_peers`.
        max: usize,
    },
}

/// Why a partial message was discarded
/// ([`Event::MessageDropped`](super::Event::MessageDropped)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not every fragment arrived within the reassembly timeout.
    TimedOut,
    /// A fragment contradicted the ones held; the whole partial message was
    /// dropped with it.
    Invalid(PeerError),
    /// A newer fragment from the same peer needed room under a partial
    /// message or byte limit; this peer's oldest partial message made it.
    Evicted,
    /// The endpoint-wide partial message or byte limit is reached and the
    /// peer's own older partial messages could not make room; the fragment
    /// was refused and whatever was held of its message freed.
    GlobalLimit,
    /// Every partial-message slot of the endpoint was taken when a peer
    /// holding none needed one: the oldest partial message of all made
    /// room, so that peers holding slots cannot keep a newcomer out.
    Displaced,
}

/// Why [`Endpoint::send`](super::Endpoint::send) refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The message is larger than the MTU (without segmentation) or the
    /// configured `max_message_size` (with it).
    #[error("message exceeds the {max}-byte limit")]
    TooLarge {
        /// The configured limit.
        max: usize,
    },
    /// The outgoing queue's datagram or byte limit would be exceeded; drain
    /// it with [`poll_transmit`](super::Endpoint::poll_transmit) and retry.
    #[error("send queue is full")]
    QueueFull,
    /// (Sessions on.) There is no open session with the destination: it
    /// never opened, or it closed. [`Endpoint::open`](super::Endpoint::open)
    /// opens one.
    #[error("no open session with the destination")]
    NoSession,
}

/// A refused [`Endpoint::send`](super::Endpoint::send): the
/// [`SendErrorKind`] and the message, handed back; nothing was queued.
pub type SendError<T = Bytes> = crate::SendError<T, SendErrorKind>;

/// A datagram [`Endpoint::receive`](super::Endpoint::receive) handed back
/// untouched because
/// [`max_pending_events`](super::Config::max_pending_events) events wait to
/// be polled. Poll them, then feed the datagram again (or stop reading the
/// socket until then: the kernel's receive buffer holds, then drops, what
/// comes meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event queue full: poll events, then feed the datagram again")]
pub struct Backlogged<A> {
    /// Who sent it.
    pub from: A,
    /// The datagram, as given.
    pub datagram: Bytes,
}

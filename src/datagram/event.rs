//! What an endpoint reports, and why a peer was closed.

use bytes::Bytes;

use super::error::{DropReason, PeerError};
use super::session_wire::NoticeReason;

/// What an [`Endpoint`](super::Endpoint) reports, from
/// [`Endpoint::poll_event`](super::Endpoint::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<A> {
    /// A new peer entered the table: the first valid datagram from a new
    /// address, a call to [`Endpoint::open`](super::Endpoint::open), or
    /// (sessions on) the second message carrying the same new session id
    /// from the address of an open session, right after the old session's
    /// [`Event::PeerClosed`].
    PeerOpened {
        /// The peer's address.
        peer: A,
    },
    /// The peer table is full; a datagram from this new address was dropped.
    PeerRefused {
        /// The refused address.
        peer: A,
    },
    /// A peer left the table; whatever it had partly sent was freed.
    PeerClosed {
        /// The peer's address.
        peer: A,
        /// Why it was closed.
        reason: CloseReason,
    },
    /// A whole message. Without segmentation, and for a message that fitted
    /// one fragment, `payload` is a slice of the received datagram's own
    /// [`Bytes`] (no copy); a reassembled message is one new buffer.
    Message {
        /// The sender.
        peer: A,
        /// The message.
        payload: Bytes,
    },
    /// A datagram was malformed, broke a limit, or belongs to a session
    /// that is closed, and was dropped whole; nothing else changed.
    DatagramDropped {
        /// The sender.
        peer: A,
        /// What was wrong with it.
        error: PeerError,
    },
    /// A partial message was discarded and its memory freed.
    MessageDropped {
        /// The sender.
        peer: A,
        /// The message id from its segment headers.
        message_id: u32,
        /// Why it was discarded.
        reason: DropReason,
    },
    /// `poll_transmit` took the outgoing queue from above
    /// [`Config::send_high_mark`](super::Config::send_high_mark) to at most
    /// [`Config::send_low_mark`](super::Config::send_low_mark) bytes:
    /// sending may resume. Reported once per crossing, after the events
    /// already queued.
    Drained,
}

/// Why a peer was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Nothing valid arrived from the peer for
    /// [`Config::idle_timeout`](super::Config::idle_timeout).
    IdleTimeout,
    /// The caller called [`Endpoint::close`](super::Endpoint::close).
    Closed,
    /// (Sessions on.) The peer sent a close notice for this session: it
    /// closed its side for this reason.
    ClosedByPeer(NoticeReason),
    /// (Sessions on.) Two messages from the same address carried the same
    /// new session id (the peer restarted, say); the old session ended here
    /// and [`Event::PeerOpened`] follows. One such message is not enough
    /// (see [`Sessions`](super::Sessions#forged-source-addresses)); the
    /// replaced session's id is not remembered as closed.
    Replaced,
}

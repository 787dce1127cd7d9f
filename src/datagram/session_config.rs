//! Session settings: what is sent and remembered, their safe defaults, and
//! validation.

use std::time::Duration;

use super::config::ConfigError;

/// Session settings (see the [module docs](super#session-header) for the
/// wire layout).
///
/// What the endpoint remembers of closed sessions and what it sends to
/// addresses without a validated session are bounded: at most
/// [`max_remembered`](Self::max_remembered) closed sessions, each for
/// [`remember_for`](Self::remember_for), and at most
/// [`notice_limit`](Self::notice_limit) unsolicited datagrams per
/// [`notice_window`](Self::notice_window), the rest counted in
/// [`SessionStats::notices_suppressed`](super::SessionStats::notices_suppressed)
/// and [`keepalives_skipped`](super::SessionStats::keepalives_skipped).
/// See [below](#forged-source-addresses) for what one datagram can make
/// the endpoint do.
///
/// A kicked peer is told, and closes its side:
///
/// ```
/// use bytes::Bytes;
/// use sansproto::datagram::{CloseReason, Config, Endpoint, Event, NoticeReason, Sessions};
/// use std::time::{Duration, Instant};
///
/// let mut sessions = Sessions::default();
/// sessions.keepalive_interval = Some(Duration::from_secs(10));
/// let mut config = Config::default();
/// config.sessions = Some(sessions);
/// let mut client = Endpoint::new(config.clone()).unwrap();
/// let mut server = Endpoint::new(config).unwrap();
/// let now = Instant::now();
///
/// // With sessions on, the client opens its side before sending.
/// client.open("server", now).unwrap();
/// client.send("server", Bytes::from_static(b"hello")).unwrap();
/// let mut datagram = Vec::new();
/// client.poll_transmit(&mut datagram).unwrap();
/// assert_eq!(datagram.len(), 5 + 5, "session header, then the message");
/// server.receive("client", Bytes::from(datagram), now).unwrap();
/// assert_eq!(server.poll_event(), Some(Event::PeerOpened { peer: "client" }));
/// assert!(matches!(server.poll_event(), Some(Event::Message { .. })));
///
/// // The server kicks the client: a 10-byte close notice goes out.
/// assert!(server.close(&"client"));
/// let mut notice = Vec::new();
/// assert_eq!(server.poll_transmit(&mut notice), Some("client"));
/// assert_eq!(notice.len(), 10);
/// client.receive("server", Bytes::from(notice), now).unwrap();
/// assert_eq!(client.poll_event(), Some(Event::PeerOpened { peer: "server" }));
/// assert_eq!(
///     client.poll_event(),
///     Some(Event::PeerClosed {
///         peer: "server",
///         reason: CloseReason::ClosedByPeer(NoticeReason::Kicked),
///     })
/// );
/// ```
///
/// # Forged source addresses
///
/// Nothing on the wire proves that a datagram came from the address it
/// names: a message or keepalive carries only its sender's id, and the
/// receiver's id comes back only in close notices. So the endpoint lets
/// one datagram do only what a forged one could do without harm to the
/// peer really at that address:
///
/// - **Replacing a session.** A message with a new session id from the
///   address of an open session does not end that session. It is dropped
///   ([`PeerError::UnconfirmedSession`](super::PeerError::UnconfirmedSession))
///   and its id kept as the session's candidate: one per session, the
///   latest new id, forgotten [`Config::idle_timeout`](super::Config::idle_timeout)
///   after it came. A second message with the candidate's id ends the old
///   session ([`CloseReason::Replaced`](super::CloseReason::Replaced)) and
///   opens a new one with it, delivering that message. A peer that
///   restarts with a new id and keeps sending therefore has its new
///   session on its second datagram (its first is dropped); if forged ids
///   come between its two, on the first of its datagrams after the old
///   session expires. The replaced session's id is not remembered as
///   closed, so it is one more new id: a sender that forges two messages
///   with one id takes the address over, and the peer really there takes it
///   back with its next two. Forging hurts only the address forged, only
///   while the forger keeps sending, and never shuts the real peer out.
/// - **Sending unasked.** A session's address counts as validated once
///   the caller opened the session ([`Endpoint::open`](super::Endpoint::open):
///   the caller chose the address) or two datagrams of the session came
///   from it. Until then the endpoint sends the session at most one
///   keepalive, and that keepalive and any close notice to it (kicked,
///   expired) count against [`notice_limit`](Self::notice_limit), as
///   refusals and answers to closed sessions' datagrams do. One forged
///   datagram thus draws at most two datagrams to the address it names,
///   and forged datagrams from any number of addresses no more than
///   `notice_limit` per [`notice_window`](Self::notice_window) in all.
///   Two forged datagrams with one id validate a session, which then gets
///   keepalives like any other: one per
///   [`keepalive_interval`](Self::keepalive_interval) for an idle timeout
///   after each datagram of it, then its expiry notice.
/// - **Before the first reply to [`open`](super::Endpoint::open).** A
///   session the caller opened has no peer id until a message or keepalive
///   comes from its address, and the first one sets it: nothing on the wire
///   tells the peer's reply from a forged one. A sender that forges the
///   peer's address in that window (one off the path can, if it knows or
///   guesses both addresses and when the session opens) has its datagram
///   taken as the peer's: a message is delivered, and its id becomes the
///   session's. The peer's first reply is then dropped
///   ([`PeerError::UnconfirmedSession`](super::PeerError::UnconfirmedSession))
///   and its second replaces the session
///   ([`CloseReason::Replaced`](super::CloseReason::Replaced), then
///   [`Event::PeerOpened`](super::Event::PeerOpened)) under a new id of
///   this endpoint's, so the peer in turn drops this endpoint's next
///   datagram and takes the one after. Until the peer's reply replaces it,
///   a forged close notice naming the forged id closes the session
///   ([`CloseReason::ClosedByPeer`](super::CloseReason::ClosedByPeer)), and
///   the peer's next datagram opens a new one. The forger cannot keep the
///   peer out or stop its datagrams beyond those one or two, and once the
///   peer's own first datagram has set the id, the rules above hold. The
///   wire cannot do better: only an echo of this endpoint's id would prove
///   a reply, and messages carry none. An application that must not take
///   a forged first message for the peer's authenticates its messages
///   itself.
///
/// A sender on the path sees both ids and can forge any datagram at any
/// time: session ids tell sessions apart, they do not authenticate.
/// What the application sends is its own: [`Endpoint::send`](super::Endpoint::send)
/// is not limited, so an application that answers every message answers
/// forged ones too.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sessions {
    /// Send close notices: when the caller closes a peer
    /// ([`NoticeReason::Kicked`](super::NoticeReason::Kicked)), when a peer
    /// expires ([`Expired`](super::NoticeReason::Expired)), when a full
    /// table refuses a new address ([`Refused`](super::NoticeReason::Refused)),
    /// and in answer to datagrams of a session closed for one of the first
    /// two reasons. Notices received are understood either way. Default
    /// true.
    pub close_notices: bool,
    /// Send a keepalive to every open peer nothing was sent to for this
    /// long, so that a quiet session stays open on both sides; it must be
    /// shorter than [`Config::idle_timeout`](super::Config::idle_timeout).
    /// Measured from the latest `now` the endpoint was given when the last
    /// datagram was queued. A session whose address is not validated gets
    /// one at most ([see above](#forged-source-addresses)). Default `None`:
    /// no keepalives.
    pub keepalive_interval: Option<Duration>,
    /// Most closed sessions remembered, so that their late datagrams are
    /// dropped instead of opening a new session; the oldest is forgotten
    /// first. 0 remembers none. Default 1024.
    pub max_remembered: usize,
    /// How long a closed session is remembered. Default 60 s.
    pub remember_for: Duration,
    /// Most unsolicited datagrams sent per
    /// [`notice_window`](Self::notice_window): refusals, answers to
    /// datagrams of closed sessions, and the keepalive and close notices of
    /// sessions whose address is not validated
    /// ([see above](#forged-source-addresses)), so that a flood of
    /// datagrams from new, stale or forged addresses cannot make the
    /// endpoint send a flood. 0 sends none. Default 16.
    pub notice_limit: usize,
    /// The window of [`notice_limit`](Self::notice_limit). Default 1 s.
    pub notice_window: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            close_notices: true,
            keepalive_interval: None,
            max_remembered: 1024,
            remember_for: Duration::from_secs(60),
            notice_limit: 16,
            notice_window: Duration::from_secs(1),
        }
    }
}

impl Sessions {
    /// Checks the session settings, and the keepalive interval against
    /// `idle_timeout`.
    pub(crate) fn validate(&self, idle_timeout: Duration) -> Result<(), ConfigError> {
        if self.remember_for.is_zero() {
            return Err(ConfigError::Zero {
                name: "remember_for",
            });
        }
        if self.notice_window.is_zero() {
            return Err(ConfigError::Zero {
                name: "notice_window",
            });
        }
        let Some(interval) = self.keepalive_interval else {
            return Ok(());
        };
        if interval.is_zero() {
            return Err(ConfigError::Zero {
                name: "keepalive_interval",
            });
        }
        if idle_timeout <= interval {
            return Err(ConfigError::TooSmall {
                name: "idle_timeout",
                value: millis(idle_timeout),
                needed: millis(interval).saturating_add(1),
            });
        }
        Ok(())
    }
}

fn millis(duration: Duration) -> usize {
    usize::try_from(duration.as_millis()).unwrap_or(usize::MAX)
}

//! Endpoint configuration: every limit, its safe default, and validation.

use std::time::Duration;

use super::segment::HEADER_LEN;
pub use super::session_config::Sessions;
use super::session_wire::{CLOSE_NOTICE_LEN, SESSION_HEADER_LEN};

/// Largest UDP payload that fits one Ethernet frame over IPv4:
/// 1500 − 20 (IPv4 header) − 8 (UDP header). The default [`Config::mtu`].
pub const MTU_ETHERNET_IPV4: usize = 1472;
/// Largest UDP payload that fits one Ethernet frame over IPv6:
/// 1500 − 40 (IPv6 header) − 8 (UDP header).
pub const MTU_ETHERNET_IPV6: usize = 1452;
/// Largest UDP payload over IPv4: 65535 − 20 − 8.
pub const MTU_MAX_IPV4: usize = 65507;
/// Largest UDP payload over IPv6 (without jumbograms): 65535 − 8.
pub const MTU_MAX_IPV6: usize = 65527;

/// Limits and timeouts of an [`Endpoint`](super::Endpoint).
///
/// Start from [`Config::default`] (or [`Config::segmented`]) and change the
/// fields you need; [`Endpoint::new`](super::Endpoint::new) calls
/// [`Config::validate`] and refuses a configuration that cannot work.
///
/// ```
/// use sansproto::datagram::{Config, MTU_ETHERNET_IPV6};
/// use std::time::Duration;
///
/// let mut config = Config::segmented();
/// config.mtu = MTU_ETHERNET_IPV6;
/// config.idle_timeout = Duration::from_secs(10);
/// if let Some(seg) = config.segmentation.as_mut() {
///     seg.max_message_size = 128 * 1024;
///     seg.max_fragments = 128;
/// }
/// assert!(config.validate().is_ok());
///
/// config.max_peers = 0;
/// assert!(config.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest UDP payload sent or accepted, in bytes (session and segment
    /// headers included when they are on). Default [`MTU_ETHERNET_IPV4`].
    pub mtu: usize,
    /// Most peers held in the peer table at once; datagrams from further
    /// addresses are dropped with [`Event::PeerRefused`](super::Event::PeerRefused).
    /// Default 1024.
    pub max_peers: usize,
    /// A peer that sends nothing valid for this long is closed with
    /// [`CloseReason::IdleTimeout`](super::CloseReason::IdleTimeout). Only
    /// inbound traffic (keepalives included) refreshes it. Default 30 s.
    pub idle_timeout: Duration,
    /// Most datagrams waiting for [`poll_transmit`](super::Endpoint::poll_transmit).
    /// Default 1024.
    pub max_queued_datagrams: usize,
    /// Most bytes (headers included) waiting for `poll_transmit`. Default 2 MiB.
    pub max_queued_bytes: usize,
    /// Backpressure: above this many queued bytes
    /// [`Endpoint::is_backpressured`](super::Endpoint::is_backpressured)
    /// turns true, until `poll_transmit` leaves at most
    /// [`send_low_mark`](Self::send_low_mark), reported once as
    /// [`Event::Drained`](super::Event::Drained). Default `None`: no marks
    /// (only the queue limits refuse sends). [`validate`](Self::validate)
    /// checks `send_low_mark < send_high_mark <= max_queued_bytes`.
    pub send_high_mark: Option<usize>,
    /// Backpressure: see [`send_high_mark`](Self::send_high_mark).
    /// Default 0; unused without a high mark.
    pub send_low_mark: usize,
    /// Most events waiting for [`poll_event`](super::Endpoint::poll_event)
    /// before [`receive`](super::Endpoint::receive) hands datagrams back
    /// instead of taking them (one datagram adds at most a few events).
    /// Default 1024.
    pub max_pending_events: usize,
    /// Segmentation and reassembly; `None` (the default) sends every message
    /// as one datagram with no header. Both peers must agree.
    pub segmentation: Option<Segmentation>,
    /// Sessions: a session header on every datagram, close notices,
    /// keepalives, and dropping datagrams of closed sessions. `None` (the
    /// default) keeps the wire format without them. Both peers must agree.
    pub sessions: Option<Sessions>,
}

/// Segmentation and reassembly limits (see the [module docs](super) for the
/// segment header).
///
/// Every limit bounds what peers can make the endpoint hold:
/// `max_partials_per_peer` and `max_buffered_per_peer` bound one peer,
/// `max_partials` and `max_buffered` the whole endpoint. A fragment that would
/// exceed one first evicts its own peer's oldest partial messages
/// ([`DropReason::Evicted`](super::DropReason::Evicted)); if that cannot make
/// room it is refused ([`DropReason::GlobalLimit`](super::DropReason::GlobalLimit)).
/// A peer at its share of the `max_partials` slots makes room from its own
/// partial messages only.
///
/// One peer's traffic drops another's data in one case only, so that many
/// addresses (spoofed ones, say) holding a slot each cannot keep a newcomer
/// out: when every one of the `max_partials` slots is held and a peer
/// holding none sends the first fragment of a message that fits, the
/// oldest partial message of all, whichever peer's, is dropped
/// ([`DropReason::Displaced`](super::DropReason::Displaced)) to make room.
/// A peer's message can thus be lost to first fragments from enough other
/// addresses to take every slot before it completes; the byte limits
/// (`max_buffered`) are never taken from another peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Segmentation {
    /// Largest message sent or reassembled, in bytes. Default 64 KiB.
    pub max_message_size: usize,
    /// Most fragments one message may be split into; a header announcing more
    /// is refused at once. Default 64.
    pub max_fragments: u16,
    /// Most partial messages held for one peer. Default 4.
    pub max_partials_per_peer: usize,
    /// Most partial messages held in all. Default 256.
    pub max_partials: usize,
    /// Most fragment payload bytes held for one peer. Default 256 KiB.
    pub max_buffered_per_peer: usize,
    /// Most fragment payload bytes held in all. Default 8 MiB.
    pub max_buffered: usize,
    /// A partial message not completed this long after its first fragment
    /// arrived is dropped. Default 5 s.
    pub reassembly_timeout: Duration,
    /// How many recently delivered message ids are remembered per peer, so a
    /// duplicated datagram does not deliver a message twice. 0 turns the
    /// check off. Default 64.
    pub duplicate_window: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mtu: MTU_ETHERNET_IPV4,
            max_peers: 1024,
            idle_timeout: Duration::from_secs(30),
            max_queued_datagrams: 1024,
            max_queued_bytes: 2 * 1024 * 1024,
            send_high_mark: None,
            send_low_mark: 0,
            max_pending_events: 1024,
            segmentation: None,
            sessions: None,
        }
    }
}

impl Default for Segmentation {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_fragments: 64,
            max_partials_per_peer: 4,
            max_partials: 256,
            max_buffered_per_peer: 256 * 1024,
            max_buffered: 8 * 1024 * 1024,
            reassembly_timeout: Duration::from_secs(5),
            duplicate_window: 64,
        }
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `mtu` cannot carry a datagram (or a segment header and one byte), or
    /// exceeds the largest UDP payload.
    #[error("mtu {mtu} is outside {min}..={max}")]
    MtuOutOfRange {
        /// The configured value.
        mtu: usize,
        /// The smallest usable value.
        min: usize,
        /// The largest usable value ([`MTU_MAX_IPV6`]).
        max: usize,
    },
    /// A limit or timeout that must be positive is zero.
    #[error("`{name}` must be greater than zero")]
    Zero {
        /// The field's name.
        name: &'static str,
    },
    /// A limit is too small for another one to ever be reached (for example
    /// a per-peer buffer smaller than the largest message, or an
    /// `idle_timeout` no longer than the keepalive interval: durations are
    /// given in milliseconds).
    #[error("`{name}` is {value} but must be at least {needed}")]
    TooSmall {
        /// The field's name.
        name: &'static str,
        /// The configured value.
        value: usize,
        /// The smallest value that works with the rest of the configuration.
        needed: usize,
    },
    /// The send marks are out of order: the low mark must be below the
    /// high mark, and the high mark at most `max_queued_bytes`.
    #[error("send marks must satisfy low ({low}) < high ({high}) <= max_queued_bytes ({limit})")]
    SendMarks {
        /// The high mark.
        high: usize,
        /// The low mark.
        low: usize,
        /// `max_queued_bytes`.
        limit: usize,
    },
}

impl Config {
    /// The default configuration with segmentation on at its defaults.
    pub fn segmented() -> Self {
        Self {
            segmentation: Some(Segmentation::default()),
            ..Self::default()
        }
    }

    /// Checks that every limit is usable and consistent with the others.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut min_mtu = self.overhead() + 1;
        if self.sessions.is_some() {
            min_mtu = min_mtu.max(CLOSE_NOTICE_LEN);
        }
        if self.mtu < min_mtu || self.mtu > MTU_MAX_IPV6 {
            return Err(ConfigError::MtuOutOfRange {
                mtu: self.mtu,
                min: min_mtu,
                max: MTU_MAX_IPV6,
            });
        }
        nonzero("max_peers", self.max_peers)?;
        nonzero("max_queued_datagrams", self.max_queued_datagrams)?;
        nonzero("max_pending_events", self.max_pending_events)?;
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::Zero {
                name: "idle_timeout",
            });
        }
        if let Some(high) = self.send_high_mark {
            let (low, limit) = (self.send_low_mark, self.max_queued_bytes);
            if !crate::buf::check_marks(high, low, limit) {
                return Err(ConfigError::SendMarks { high, low, limit });
            }
        }
        if let Some(sessions) = &self.sessions {
            sessions.validate(self.idle_timeout)?;
        }
        let Some(seg) = &self.segmentation else {
            return at_least("max_queued_bytes", self.max_queued_bytes, self.mtu);
        };
        nonzero("max_message_size", seg.max_message_size)?;
        nonzero("max_fragments", usize::from(seg.max_fragments))?;
        nonzero("max_partials_per_peer", seg.max_partials_per_peer)?;
        nonzero("max_partials", seg.max_partials)?;
        if seg.reassembly_timeout.is_zero() {
            return Err(ConfigError::Zero {
                name: "reassembly_timeout",
            });
        }
        let overhead = self.overhead();
        let fragments = fragments_for(seg.max_message_size, self.mtu - overhead);
        at_least("max_fragments", usize::from(seg.max_fragments), fragments)?;
        at_least(
            "max_buffered_per_peer",
            seg.max_buffered_per_peer,
            seg.max_message_size,
        )?;
        at_least("max_buffered", seg.max_buffered, seg.max_buffered_per_peer)?;
        at_least("max_queued_datagrams", self.max_queued_datagrams, fragments)?;
        let wire = seg
            .max_message_size
            .saturating_add(fragments.saturating_mul(overhead));
        at_least("max_queued_bytes", self.max_queued_bytes, wire)
    }

    /// The largest message [`Endpoint::send`](super::Endpoint::send) accepts:
    /// without segmentation `mtu` less the session header (when sessions are
    /// on), with it `max_message_size`.
    pub fn max_message_size(&self) -> usize {
        match &self.segmentation {
            Some(seg) => seg.max_message_size,
            None => self.mtu.saturating_sub(self.overhead()),
        }
    }

    /// Header bytes in every message datagram: the session header and the
    /// segment header, each when on.
    pub(crate) fn overhead(&self) -> usize {
        let session = if self.sessions.is_some() {
            SESSION_HEADER_LEN
        } else {
            0
        };
        let segment = if self.segmentation.is_some() {
            HEADER_LEN
        } else {
            0
        };
        session + segment
    }
}

/// How many fragments of at most `fragment_len` bytes carry `len` bytes (an
/// empty message still takes one).
pub(crate) fn fragments_for(len: usize, fragment_len: usize) -> usize {
    if fragment_len == 0 {
        return usize::MAX;
    }
    len.div_ceil(fragment_len).max(1)
}

fn nonzero(name: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero { name });
    }
    Ok(())
}

fn at_least(name: &'static str, value: usize, needed: usize) -> Result<(), ConfigError> {
    if value < needed {
        return Err(ConfigError::TooSmall {
            name,
            value,
            needed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_presets_validate() {
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(Config::segmented().validate(), Ok(()));
        for mtu in [
            MTU_ETHERNET_IPV4,
            MTU_ETHERNET_IPV6,
            MTU_MAX_IPV4,
            MTU_MAX_IPV6,
        ] {
            for mut config in [Config::default(), Config::segmented()] {
                config.mtu = mtu;
                config.max_queued_bytes = 4 * MTU_MAX_IPV6;
                assert_eq!(config.validate(), Ok(()), "mtu {mtu}");
            }
        }
    }

    #[test]
    fn mtu_bounds() {
        let mut config = Config::segmented();
        config.mtu = HEADER_LEN;
        assert_eq!(
            config.validate(),
            Err(ConfigError::MtuOutOfRange {
                mtu: HEADER_LEN,
                min: HEADER_LEN + 1,
                max: MTU_MAX_IPV6
            })
        );
        config.mtu = MTU_MAX_IPV6 + 1;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::MtuOutOfRange { .. })
        ));
        let plain = Config {
            mtu: 0,
            ..Config::default()
        };
        assert!(matches!(
            plain.validate(),
            Err(ConfigError::MtuOutOfRange { min: 1, .. })
        ));
    }

    #[test]
    fn inconsistent_limits_are_named() {
        let mut config = Config::segmented();
        let seg = config.segmentation.as_mut().unwrap();
        seg.max_fragments = 10;
        // 64 KiB over 1463-byte fragments takes 45.
        assert_eq!(
            config.validate(),
            Err(ConfigError::TooSmall {
                name: "max_fragments",
                value: 10,
                needed: 45
            })
        );

        let mut config = Config::segmented();
        config.segmentation.as_mut().unwrap().max_buffered_per_peer = 1000;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooSmall {
                name: "max_buffered_per_peer",
                ..
            })
        ));

        let mut config = Config::segmented();
        config.segmentation.as_mut().unwrap().reassembly_timeout = Duration::ZERO;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Zero {
                name: "reassembly_timeout"
            })
        );

        let mut config = Config::segmented();
        config.max_queued_bytes = 1000;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooSmall {
                name: "max_queued_bytes",
                ..
            })
        ));
    }

    #[test]
    fn sessions_validate_and_count_their_header() {
        let mut config = Config {
            sessions: Some(Sessions::default()),
            ..Config::default()
        };
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.max_message_size(), MTU_ETHERNET_IPV4 - 5);
        config.mtu = CLOSE_NOTICE_LEN - 1;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::MtuOutOfRange { min: 10, .. })
        ));
        let mut seg = Config::segmented();
        seg.sessions = Some(Sessions::default());
        seg.mtu = HEADER_LEN + SESSION_HEADER_LEN;
        assert!(matches!(
            seg.validate(),
            Err(ConfigError::MtuOutOfRange { min: 15, .. })
        ));
        // 64 KiB over 1472 − 14 = 1458-byte fragments takes 45.
        seg.mtu = MTU_ETHERNET_IPV4;
        seg.segmentation.as_mut().unwrap().max_fragments = 44;
        assert!(matches!(
            seg.validate(),
            Err(ConfigError::TooSmall {
                name: "max_fragments",
                needed: 45,
                ..
            })
        ));

        let with = |f: fn(&mut Sessions)| {
            let mut sessions = Sessions::default();
            f(&mut sessions);
            Config {
                sessions: Some(sessions),
                ..Config::default()
            }
            .validate()
        };
        assert_eq!(
            with(|s| s.remember_for = Duration::ZERO),
            Err(ConfigError::Zero {
                name: "remember_for"
            })
        );
        assert_eq!(
            with(|s| s.notice_window = Duration::ZERO),
            Err(ConfigError::Zero {
                name: "notice_window"
            })
        );
        assert_eq!(
            with(|s| s.keepalive_interval = Some(Duration::ZERO)),
            Err(ConfigError::Zero {
                name: "keepalive_interval"
            })
        );
        assert_eq!(
            with(|s| s.keepalive_interval = Some(Duration::from_secs(30))),
            Err(ConfigError::TooSmall {
                name: "idle_timeout",
                value: 30_000,
                needed: 30_001
            })
        );
        assert_eq!(
            with(|s| {
                s.keepalive_interval = Some(Duration::from_secs(10));
                s.max_remembered = 0;
                s.notice_limit = 0;
            }),
            Ok(())
        );
    }

    #[test]
    fn fragment_counts() {
        assert_eq!(fragments_for(0, 10), 1);
        assert_eq!(fragments_for(10, 10), 1);
        assert_eq!(fragments_for(11, 10), 2);
        assert_eq!(fragments_for(5, 0), usize::MAX);
    }
}

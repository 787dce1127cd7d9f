//! The segment header, splitting a message into fragments, and the partial
//! message a receiver rebuilds from them.
//!
//! With segmentation on, every datagram is one fragment:
//!
//! ```text
//!  0         1                   5         7         9
//! +---------+-------------------+---------+---------+------------------+
//! | version | message id        | index   | count   | fragment payload |
//! | 0x01    | u32 big-endian    | u16 BE  | u16 BE  | rest of datagram |
//! +---------+-------------------+---------+---------+------------------+
//! ```
//!
//! A message of `n` bytes travels as `count = max(1, ceil(n / (mtu − 9)))`
//! fragments; every fragment but the last carries exactly `mtu − 9` bytes and
//! the last carries the rest (at least one byte unless the whole message is
//! empty). The datagram's end is the fragment's end: bytes after the header are
//! all payload, so there is no trailing data to misread.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::error::PeerError;

/// Length of the segment header in bytes.
pub const HEADER_LEN: usize = 9;

/// The segment header version this crate writes and accepts.
pub const VERSION: u8 = 1;

/// The header at the front of every datagram when segmentation is on.
///
/// ```
/// use sansproto::datagram::{Header, HEADER_LEN};
///
/// let header = Header { message_id: 5, index: 2, count: 3 };
/// let bytes = header.encode();
/// assert_eq!(bytes, [0x01, 0, 0, 0, 5, 0, 2, 0, 3]);
///
/// let mut datagram = bytes.to_vec();
/// datagram.extend_from_slice(b"payload");
/// assert_eq!(Header::parse(&datagram), Ok(header));
/// assert_eq!(&datagram[HEADER_LEN..], b"payload");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Identifies the message among the sender's; wraps after `u32::MAX`.
    pub message_id: u32,
    /// This fragment's position, `0..count`.
    pub index: u16,
    /// How many fragments the message has, at least 1.
    pub count: u16,
}

impl Header {
    /// The header's wire form.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let [m0, m1, m2, m3] = self.message_id.to_be_bytes();
        let [i0, i1] = self.index.to_be_bytes();
        let [c0, c1] = self.count.to_be_bytes();
        [VERSION, m0, m1, m2, m3, i0, i1, c0, c1]
    }

    /// Parses the header at the front of a datagram. The fragment payload is
    /// everything after the first [`HEADER_LEN`] bytes.
    ///
    /// Checks only what the header says about itself (length, version,
    /// `count ≥ 1`, `index < count`); limits that depend on the configuration
    /// are the endpoint's.
    pub fn parse(datagram: &[u8]) -> Result<Header, PeerError> {
        let fixed: [u8; HEADER_LEN] = datagram
            .get(..HEADER_LEN)
            .and_then(|head| head.try_into().ok())
            .ok_or(PeerError::Truncated {
                len: datagram.len(),
            })?;
        let [version, m0, m1, m2, m3, i0, i1, c0, c1] = fixed;
        if version != VERSION {
            return Err(PeerError::UnknownVersion(version));
        }
        let header = Header {
            message_id: u32::from_be_bytes([m0, m1, m2, m3]),
            index: u16::from_be_bytes([i0, i1]),
            count: u16::from_be_bytes([c0, c1]),
        };
        if header.count == 0 {
            return Err(PeerError::ZeroFragmentCount);
        }
        if header.index >= header.count {
            return Err(PeerError::IndexOutOfRange {
                index: header.index,
                count: header.count,
            });
        }
        Ok(header)
    }

    /// True for the message's final fragment.
    pub fn is_last(&self) -> bool {
        self.index.checked_add(1) == Some(self.count)
    }
}

/// A message being rebuilt from its fragments.
///
/// Storage grows only as fragments arrive: it holds each fragment's payload
/// (a zero-copy slice of its datagram) and never reserves space from the
/// count or sizes a peer announces.
#[derive(Debug)]
pub(crate) struct Partial {
    pub(crate) message_id: u32,
    count: u16,
    /// Payload length of every fragment but the last, once one has arrived.
    fragment_len: Option<usize>,
    /// Payload length of the last fragment, once it has arrived.
    last_len: Option<usize>,
    /// Received fragments, sorted by index.
    fragments: Vec<(u16, Bytes)>,
    /// Payload bytes held (the amount charged against the buffer limits).
    pub(crate) bytes: usize,
    /// When the partial message is dropped if still incomplete.
    pub(crate) deadline: Instant,
    /// Its place in the endpoint-wide order of openings.
    pub(crate) opened: u64,
}

/// What a fragment does to a partial message, decided before anything is
/// stored or charged.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// An exact copy of a fragment already held: ignore it.
    Duplicate,
    /// A new fragment; store it at this position with this layout.
    New {
        position: usize,
        fragment_len: Option<usize>,
        last_len: Option<usize>,
    },
}

impl Partial {
    /// The heap this partial message holds: its fragments and their list.
    pub(crate) fn heap(&self) -> usize {
        crate::memory::slots::<(u16, Bytes)>(self.fragments.capacity())
            + self.fragments.iter().map(|(_, f)| f.len()).sum::<usize>()
    }

    /// An empty partial message for `header`'s message.
    pub(crate) fn new(header: Header, deadline: Instant) -> Self {
        Self {
            message_id: header.message_id,
            count: header.count,
            fragment_len: None,
            last_len: None,
            fragments: Vec::new(),
            bytes: 0,
            deadline,
            opened: 0,
        }
    }

    /// Checks a fragment of `len` payload bytes against the fragments held
    /// and `max_message_size`, without changing anything.
    pub(crate) fn fit(
        &self,
        header: Header,
        len: usize,
        max_message_size: usize,
    ) -> Result<Fit, PeerError> {
        if header.count != self.count {
            return Err(PeerError::CountMismatch {
                expected: self.count,
                got: header.count,
            });
        }
        let overlap = PeerError::Overlap {
            index: header.index,
            len,
        };
        let position = match self.fragments.binary_search_by_key(&header.index, |f| f.0) {
            Ok(held) => {
                let same_len = self.fragments.get(held).map(|f| f.1.len()) == Some(len);
                return if same_len {
                    Ok(Fit::Duplicate)
                } else {
                    Err(overlap)
                };
            }
            Err(position) => position,
        };
        let (mut fragment_len, mut last_len) = (self.fragment_len, self.last_len);
        if header.is_last() {
            last_len = Some(len);
        } else {
            match fragment_len {
                Some(expected) if expected != len => return Err(overlap),
                _ => fragment_len = Some(len),
            }
        }
        if let (Some(max), Some(last)) = (fragment_len, last_len) {
            if last > max {
                return Err(PeerError::FragmentTooLarge {
                    index: self.count.saturating_sub(1),
                    len: last,
                    max,
                });
            }
        }
        // The smallest the message can be: `count − 1` full fragments (each at
        // least as long as the last) and a last one of at least one byte.
        let full = fragment_len.or(last_len).unwrap_or(1);
        let at_least = usize::from(self.count.saturating_sub(1))
            .saturating_mul(full)
            .saturating_add(last_len.unwrap_or(1));
        if at_least > max_message_size {
            return Err(PeerError::MessageTooLarge {
                at_least,
                max: max_message_size,
            });
        }
        Ok(Fit::New {
            position,
            fragment_len,
            last_len,
        })
    }

    /// Stores a fragment that [`Partial::fit`] accepted as new.
    pub(crate) fn insert(&mut self, fit: Fit, index: u16, payload: Bytes) {
        if let Fit::New {
            position,
            fragment_len,
            last_len,
        } = fit
        {
            self.fragment_len = fragment_len;
            self.last_len = last_len;
            self.bytes = self.bytes.saturating_add(payload.len());
            let position = position.min(self.fragments.len());
            self.fragments.insert(position, (index, payload));
        }
    }

    /// True once every fragment is held.
    pub(crate) fn is_complete(&self) -> bool {
        self.fragments.len() == usize::from(self.count)
    }

    /// Joins the fragments into the message: one allocation of exactly the
    /// bytes held.
    pub(crate) fn assemble(self) -> Bytes {
        let mut message = BytesMut::with_capacity(self.bytes);
        for (_, payload) in &self.fragments {
            message.extend_from_slice(payload);
        }
        message.freeze()
    }
}

/// Splits `message` into fragment payloads of at most `fragment_len` bytes
/// (zero-copy slices); an empty message yields one empty fragment.
pub(crate) fn split(message: &Bytes, fragment_len: usize) -> impl Iterator<Item = Bytes> + '_ {
    let step = fragment_len.max(1);
    let count = super::config::fragments_for(message.len(), step);
    (0..count).map(move |i| {
        let start = i.saturating_mul(step).min(message.len());
        let end = start.saturating_add(step).min(message.len());
        message.slice(start..end)
    })
}

/// Parses a segment header and checks it against the configured fragment
/// limit, before any state is looked up.
pub(crate) fn check_header(datagram: &[u8], max_fragments: u16) -> Result<Header, PeerError> {
    let header = Header::parse(datagram)?;
    if header.count > max_fragments {
        return Err(PeerError::TooManyFragments {
            count: header.count,
            max: max_fragments,
        });
    }
    if header.count > 1 && datagram.len() <= HEADER_LEN {
        return Err(PeerError::EmptyFragment {
            index: header.index,
            count: header.count,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(message_id: u32, index: u16, count: u16) -> Header {
        Header {
            message_id,
            index,
            count,
        }
    }

    #[test]
    fn header_round_trip_and_rejections() {
        let h = header(0xDEAD_BEEF, 7, 9);
        assert_eq!(h.encode(), [1, 0xDE, 0xAD, 0xBE, 0xEF, 0, 7, 0, 9]);
        assert_eq!(Header::parse(&h.encode()), Ok(h));
        for len in 0..HEADER_LEN {
            assert_eq!(
                Header::parse(&h.encode()[..len]),
                Err(PeerError::Truncated { len })
            );
        }
        let mut bad = h.encode();
        bad[0] = 2;
        assert_eq!(Header::parse(&bad), Err(PeerError::UnknownVersion(2)));
        assert_eq!(
            Header::parse(&header(1, 0, 0).encode()),
            Err(PeerError::ZeroFragmentCount)
        );
        assert_eq!(
            Header::parse(&header(1, 3, 3).encode()),
            Err(PeerError::IndexOutOfRange { index: 3, count: 3 })
        );
        assert!(header(1, 2, 3).is_last());
        assert!(!header(1, 1, 3).is_last());
    }

    #[test]
    fn split_sizes() {
        let message = Bytes::from(vec![7u8; 25]);
        let parts: Vec<_> = split(&message, 10).map(|b| b.len()).collect();
        assert_eq!(parts, [10, 10, 5]);
        assert_eq!(
            split(&Bytes::new(), 10)
                .map(|b| b.len())
                .collect::<Vec<_>>(),
            [0]
        );
        assert_eq!(split(&message, 25).count(), 1);
    }

    #[test]
    fn partial_tracks_layout() {
        let now = Instant::now();
        let mut p = Partial::new(header(1, 0, 3), now);
        let fit = p.fit(header(1, 2, 3), 4, 100).unwrap();
        p.insert(fit, 2, Bytes::from_static(b"wxyz"));
        // A non-final fragment shorter than the final one cannot tile.
        assert_eq!(
            p.fit(header(1, 0, 3), 3, 100),
            Err(PeerError::FragmentTooLarge {
                index: 2,
                len: 4,
                max: 3
            })
        );
        let fit = p.fit(header(1, 0, 3), 5, 100).unwrap();
        p.insert(fit, 0, Bytes::from_static(b"abcde"));
        assert_eq!(p.fit(header(1, 0, 3), 5, 100), Ok(Fit::Duplicate));
        assert_eq!(
            p.fit(header(1, 0, 3), 6, 100),
            Err(PeerError::Overlap { index: 0, len: 6 })
        );
        assert_eq!(
            p.fit(header(1, 1, 3), 6, 100),
            Err(PeerError::Overlap { index: 1, len: 6 })
        );
        assert_eq!(
            p.fit(header(1, 1, 4), 5, 100),
            Err(PeerError::CountMismatch {
                expected: 3,
                got: 4
            })
        );
        assert_eq!(
            p.fit(header(1, 1, 3), 5, 13),
            Err(PeerError::MessageTooLarge {
                at_least: 14,
                max: 13
            })
        );
        assert!(!p.is_complete());
        let fit = p.fit(header(1, 1, 3), 5, 100).unwrap();
        p.insert(fit, 1, Bytes::from_static(b"fghij"));
        assert!(p.is_complete());
        assert_eq!(p.bytes, 14);
        assert_eq!(&p.assemble()[..], b"abcdefghijwxyz");
    }

    #[test]
    fn first_fragment_size_check_uses_announced_count() {
        let p = Partial::new(header(9, 0, 64), Instant::now());
        // 63 fragments of 1000 bytes plus at least one byte: 63001.
        assert_eq!(
            p.fit(header(9, 0, 64), 1000, 63_000),
            Err(PeerError::MessageTooLarge {
                at_least: 63_001,
                max: 63_000
            })
        );
        assert!(p.fit(header(9, 0, 64), 1000, 63_001).is_ok());
        // A final fragment alone bounds the others from below.
        assert_eq!(
            p.fit(header(9, 63, 64), 1000, 63_999),
            Err(PeerError::MessageTooLarge {
                at_least: 64_000,
                max: 63_999
            })
        );
    }
}

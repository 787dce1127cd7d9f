//! The session header's bytes (sessions on): the kinds, close notice
//! reasons, parsing a received header and writing the header before a
//! queued datagram. The layout is in the [module docs](super#session-header).

use super::error::PeerError;
use super::segment::HEADER_LEN;

/// Length of the session header that starts every datagram when sessions
/// are on: a kind byte and the sender's session id.
pub const SESSION_HEADER_LEN: usize = 5;

/// Length of a close notice: the session header, a reason byte and the
/// receiver's session id.
pub const CLOSE_NOTICE_LEN: usize = 10;

/// Kind byte of a datagram carrying (part of) a message (sessions on).
pub const KIND_DATA: u8 = 0x10;
/// Kind byte of a close notice.
pub const KIND_CLOSE: u8 = 0x11;
/// Kind byte of a keepalive.
pub const KIND_KEEPALIVE: u8 = 0x12;

/// Why a peer closed a session, as its close notice says (sessions on).
///
/// Received, it is the `reason` of
/// [`CloseReason::ClosedByPeer`](super::CloseReason::ClosedByPeer).
///
/// ```
/// use sansproto::datagram::NoticeReason;
///
/// assert_eq!(NoticeReason::Kicked.to_byte(), 1);
/// assert_eq!(NoticeReason::from_byte(2), Some(NoticeReason::Expired));
/// assert_eq!(NoticeReason::from_byte(0), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoticeReason {
    /// The sender's application closed the session
    /// ([`Endpoint::close`](super::Endpoint::close)). Wire value 1.
    Kicked,
    /// The sender heard nothing from the receiver for its idle timeout.
    /// Wire value 2.
    Expired,
    /// The sender's peer table was full; the receiver's datagram was not
    /// taken. Wire value 3.
    Refused,
}

impl NoticeReason {
    /// The reason's byte in a close notice.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Kicked => 1,
            Self::Expired => 2,
            Self::Refused => 3,
        }
    }

    /// The reason a close notice's byte names, if any.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Kicked),
            2 => Some(Self::Expired),
            3 => Some(Self::Refused),
            _ => None,
        }
    }
}

/// A close notice's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Notice {
    /// The sender's own id in the closed session; 0 if it had none.
    pub(crate) sender: u32,
    pub(crate) reason: NoticeReason,
    /// The receiver's id in the closed session; 0 if the sender never
    /// learned it.
    pub(crate) receiver: u32,
}

/// A session header, parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A message datagram: the rest (after the header) is the segment
    /// header and payload, or the payload.
    Data {
        id: u32,
    },
    Keepalive {
        id: u32,
    },
    Close(Notice),
}

/// Parses the session header at the front of a datagram, and the whole of
/// a control datagram (whose length is exact: nothing may trail it).
pub(crate) fn parse(datagram: &[u8]) -> Result<Parsed, PeerError> {
    let len = datagram.len();
    let head: [u8; SESSION_HEADER_LEN] = datagram
        .get(..SESSION_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(PeerError::SessionTruncated { len })?;
    let [kind, i0, i1, i2, i3] = head;
    let id = u32::from_be_bytes([i0, i1, i2, i3]);
    let expected = match kind {
        KIND_DATA => None,
        KIND_KEEPALIVE => Some(SESSION_HEADER_LEN),
        KIND_CLOSE => Some(CLOSE_NOTICE_LEN),
        other => return Err(PeerError::UnknownKind(other)),
    };
    if let Some(expected) = expected.filter(|&e| e != len) {
        return Err(PeerError::ControlLength {
            kind,
            len,
            expected,
        });
    }
    if kind == KIND_CLOSE {
        let [r, y0, y1, y2, y3] = datagram
            .get(SESSION_HEADER_LEN..CLOSE_NOTICE_LEN)
            .and_then(|b| <[u8; 5]>::try_from(b).ok())
            .ok_or(PeerError::SessionTruncated { len })?;
        let reason = NoticeReason::from_byte(r).ok_or(PeerError::UnknownCloseReason(r))?;
        return Ok(Parsed::Close(Notice {
            sender: id,
            reason,
            receiver: u32::from_be_bytes([y0, y1, y2, y3]),
        }));
    }
    if id == 0 {
        return Err(PeerError::ZeroSessionId);
    }
    Ok(if kind == KIND_DATA {
        Parsed::Data { id }
    } else {
        Parsed::Keepalive { id }
    })
}

/// The header bytes written before a queued datagram's payload: nothing,
/// a session header, a segment header, both, or a whole control datagram.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Head {
    bytes: [u8; SESSION_HEADER_LEN + HEADER_LEN],
    len: usize,
}

impl Head {
    /// The head of a message datagram.
    pub(crate) fn data(session: Option<u32>, segment: Option<[u8; HEADER_LEN]>) -> Self {
        let mut head = Self::default();
        if let Some(id) = session {
            head.push(&[KIND_DATA]);
            head.push(&id.to_be_bytes());
        }
        if let Some(segment) = segment {
            head.push(&segment);
        }
        head
    }

    /// A whole keepalive.
    pub(crate) fn keepalive(id: u32) -> Self {
        let mut head = Self::default();
        head.push(&[KIND_KEEPALIVE]);
        head.push(&id.to_be_bytes());
        head
    }

    /// A whole close notice.
    pub(crate) fn close(notice: Notice) -> Self {
        let mut head = Self::default();
        head.push(&[KIND_CLOSE]);
        head.push(&notice.sender.to_be_bytes());
        head.push(&[notice.reason.to_byte()]);
        head.push(&notice.receiver.to_be_bytes());
        head
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(slot) = self.bytes.get_mut(self.len..end) {
            slot.copy_from_slice(bytes);
            self.len = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_datagrams_round_trip() {
        let notice = Notice {
            sender: 0x0102_0304,
            reason: NoticeReason::Expired,
            receiver: 0xA0B0_C0D0,
        };
        let bytes = Head::close(notice).as_slice().to_vec();
        assert_eq!(bytes, [0x11, 1, 2, 3, 4, 2, 0xA0, 0xB0, 0xC0, 0xD0]);
        assert_eq!(parse(&bytes), Ok(Parsed::Close(notice)));
        let keepalive = Head::keepalive(9).as_slice().to_vec();
        assert_eq!(keepalive, [0x12, 0, 0, 0, 9]);
        assert_eq!(parse(&keepalive), Ok(Parsed::Keepalive { id: 9 }));
        let data = Head::data(Some(7), Some([1; HEADER_LEN]));
        assert_eq!(data.as_slice().len(), SESSION_HEADER_LEN + HEADER_LEN);
        assert_eq!(Head::data(None, None).as_slice(), &[] as &[u8]);
    }
}

//! The common case between messages: whole unfragmented frames already
//! buffered, unmasked and checked in place, split off together and handed
//! out one message at a time.

use super::{Queued, Session};
use crate::ws::error::Error;
use crate::ws::mask::apply_mask;
use crate::ws::message::{Message, MessageKind, Text};
use crate::ws::utf8;
use crate::ws::Role;
use bytes::Bytes;

impl Session {
    /// The common case, between messages: whole unfragmented text or
    /// binary frames (see [`simple_frame`]), masked as the role requires
    /// and within the limits, already buffered. They are unmasked and
    /// checked in place, split off together, and queued as one entry that
    /// `poll_event` turns into messages; no per-frame bookkeeping. Returns
    /// false (consuming nothing) when the first frame is anything else,
    /// which the general path then handles, errors included.
    #[inline]
    pub(super) fn whole_messages(&mut self) -> Result<bool, Error> {
        if self.config.stream_frames {
            return Ok(false);
        }
        let server = self.role == Role::Server;
        let max_len = self.config.max_frame_size.min(self.config.max_message_size);
        let buf = self.recv.as_mut_slice();
        let mut end = 0;
        let mut result = Ok(());
        // A large message is split off on its own, so that small ones kept
        // from the same read do not pin it (see `split_to_keep`): after the
        // first frame only small ones join, and none after a large one.
        let mut limit = max_len;
        let mut count = 0;
        while let Some(f) = buf.get(end..).and_then(simple_frame) {
            if f.key.is_some() != server || f.len > limit {
                break;
            }
            let start = end + f.header_len;
            // `simple_frame` saw the whole payload: this always succeeds.
            let Some(payload) = buf.get_mut(start..start + f.len) else {
                break;
            };
            if let Some(key) = f.key {
                apply_mask(payload, key, 0);
            }
            if f.kind == MessageKind::Text && !utf8::is_valid(payload) {
                result = Err(Error::InvalidUtf8);
                break;
            }
            end = start + f.len;
            count += 1;
            limit = max_len.min(crate::buf::joins_after(f.len));
        }
        if end > 0 {
            let rx = &mut self.counters.stats.rx;
            rx.frames += count;
            rx.messages += count;
            let frames = self.recv.split_to_keep(end);
            self.events
                .push_back(Queued::Messages(WholeMessages { frames, pos: 0 }));
        }
        result.map(|()| end > 0)
    }
}

/// A whole unfragmented text or binary frame at the front of a buffer:
/// FIN set, no RSV bits, a 7- or 16-bit length, payload all there.
struct SimpleFrame {
    kind: MessageKind,
    key: Option<[u8; 4]>,
    header_len: usize,
    len: usize,
}

#[inline(always)]
fn simple_frame(buf: &[u8]) -> Option<SimpleFrame> {
    let (kind, b1) = match buf {
        [0x81, b1, ..] => (MessageKind::Text, *b1),
        [0x82, b1, ..] => (MessageKind::Binary, *b1),
        _ => return None,
    };
    let (len, mut header_len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => (usize::from(u16::from_be_bytes([a, b])), 4),
            _ => return None,
        },
        127 => return None,
        n => (usize::from(n), 2),
    };
    let key = if b1 & 0x80 != 0 {
        let Some(&[a, b, c, d]) = buf.get(header_len..header_len + 4) else {
            return None;
        };
        header_len += 4;
        Some([a, b, c, d])
    } else {
        None
    };
    if buf.len() - header_len < len {
        return None;
    }
    Some(SimpleFrame {
        kind,
        key,
        header_len,
        len,
    })
}

/// Whole frames split out of the receive buffer together, already
/// unmasked and validated, handed out as messages one at a time.
#[derive(Debug)]
pub(super) struct WholeMessages {
    /// The frames, headers included, back to back.
    frames: Bytes,
    /// Where the next frame starts.
    pos: usize,
}

impl WholeMessages {
    /// The next message.
    #[inline]
    pub(super) fn next(&mut self) -> Option<Message> {
        let f = simple_frame(self.frames.get(self.pos..)?)?;
        let start = self.pos + f.header_len;
        self.pos = start + f.len;
        Some(message(f.kind, self.frames.slice(start..self.pos)))
    }

    /// The bytes not yet handed out, when `own` says they are not
    /// counted elsewhere.
    pub(super) fn remaining(&self, own: impl Fn(&[u8]) -> bool) -> usize {
        let rest = self.frames.get(self.pos..).unwrap_or_default();
        if own(rest) {
            rest.len()
        } else {
            0
        }
    }

    /// True once every message was handed out.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.frames.len()
    }
}

/// A whole message's payload as the message of its kind (text already
/// validated).
pub(super) fn message(kind: MessageKind, payload: Bytes) -> Message {
    match kind {
        MessageKind::Text => Message::Text(Text::from_validated(payload)),
        MessageKind::Binary => Message::Binary(payload),
    }
}

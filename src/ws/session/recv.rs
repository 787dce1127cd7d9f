//! The receive path: frame headers, payloads, messages, control frames.

use super::whole::message;
use super::{InFrame, InMessage, Queued, Session, State};
use crate::buf::Intake;
use crate::ws::close::{parse_close_payload, ClosePayloadError};
use crate::ws::error::{Error, ProtocolViolation as Violation};
use crate::ws::extension::ExtensionError;
use crate::ws::frame::{FrameHeader, HeaderError, OpCode, MAX_HEADER_LEN};
use crate::ws::mask::{apply_mask, extend_masked};
use crate::ws::message::{Event, MessageKind};
use crate::ws::Role;
use bytes::Bytes;

/// Payload bytes of a large frame that need not be checked as they arrive
/// (binary, or compressed text) are unmasked once this many are buffered,
/// or when the frame is whole, not after every read: one long pass over
/// what the reads left in cache costs less than many short ones between
/// them. Text is still checked, and a streamed piece unmasked, as it
/// arrives.
const UNMASK_AT_ONCE: usize = 256 << 10;

impl Session {
    /// Feeds bytes read from the transport; returns how many were taken:
    /// all of `data`, or none (`Ok(0)`) while
    /// [`Config::max_pending_events`](crate::ws::Config::max_pending_events)
    /// events wait to be polled. Then poll events and offer the same bytes
    /// again: nothing is lost. Parsing of bytes already taken pauses at
    /// that bound too, and resumes once `poll_event` has drained the
    /// queue; until then no more input is taken, so input never piles up
    /// behind it.
    ///
    /// Events are queued for [`poll_event`](Self::poll_event). On a peer
    /// error the matching Close frame is queued and the error is returned,
    /// now and by every later call. When events completed before the bad
    /// bytes are still waiting to be polled, the failure waits behind them
    /// instead (so replies to them go out before the Close frame):
    /// `receive` returns `Ok`, further input is ignored, and the failure
    /// takes effect when `poll_event` reaches it, reporting
    /// [`Event::Closed`] and making [`error`](Self::error) return it. The
    /// peer's Close frame waits behind earlier events the same way.
    pub fn receive(&mut self, data: &[u8]) -> Result<usize, Error> {
        if !data.is_empty() {
            self.catch_up();
            if self.must_poll_first() {
                return Ok(0);
            }
        }
        // Bytes offered after a failure are not taken: not counted.
        self.reads_input()?;
        self.counters.stats.rx.bytes += data.len() as u64;
        self.take_input(data).map(|()| data.len())
    }

    /// True while input is refused until events are polled: the event
    /// bound is reached, or input taken earlier waits unparsed (more would
    /// only pile up behind it).
    pub(super) fn must_poll_first(&self) -> bool {
        matches!(self.state, State::Open | State::CloseSent)
            && (self.events.len() >= self.max_events || self.intake.refuses_input())
    }

    /// Before more input is taken: parses what waited behind a deferral
    /// (see [`Intake::Deferred`]), so that input taken without polling in
    /// between is parsed as it comes, as it would be without one, and
    /// never piles up unparsed.
    pub(super) fn catch_up(&mut self) {
        while self.intake == Intake::Deferred {
            self.resume_input();
        }
    }

    /// Whether input is parsed now: `Ok(false)` when it is ignored (before
    /// the session opens, while a terminal step waits behind unpolled
    /// events, or after the end), the sticky error once failed.
    pub(super) fn reads_input(&self) -> Result<bool, Error> {
        match &self.state {
            State::Open | State::CloseSent => Ok(true),
            State::Failed(e) => Err(e.clone()),
            State::Connecting(_) | State::Ending { .. } | State::Closed => Ok(false),
        }
    }

    /// Takes all of `data` whatever the event queue holds (the bytes a
    /// handshake read past its head, bounded by its limit): see
    /// [`receive`](Self::receive).
    pub(crate) fn take_input(&mut self, data: &[u8]) -> Result<(), Error> {
        if !self.reads_input()? || data.is_empty() {
            return Ok(());
        }
        self.note_activity();
        let taken = self.append(data).and_then(|()| self.within_budget());
        match taken
            .and_then(|()| self.read_frames())
            .and_then(|()| self.parsed_within_budget())
        {
            Ok(()) => Ok(()),
            Err(e) => self.terminal(Queued::Fail(e)),
        }
    }

    /// Parses input that waited while the event queue was full (or
    /// behind a deferral), once `poll_event` has emptied it.
    #[cold]
    pub(super) fn resume_input(&mut self) {
        let eof = self.intake.resume();
        // Parsing may inflate or reassemble what waited: held to the
        // budget as input parsed in `receive` is.
        if let Err(e) = self
            .read_frames()
            .and_then(|()| self.parsed_within_budget())
        {
            let _ = self.terminal(Queued::Fail(e));
        }
        if eof && !self.intake.defer_eof() {
            let _ = self.receive_eof();
        }
        // The close deadline kept for deferred input goes once it is parsed.
        self.arm_timers();
    }

    /// Appends received bytes to the buffer. When everything buffered is
    /// the already-unmasked payload of the frame being received, the part
    /// of `data` that continues that payload is unmasked (and, for text,
    /// checked) as it is copied in: one pass over it instead of two.
    fn append(&mut self, data: &[u8]) -> Result<(), Error> {
        self.recv.compact();
        let check_utf8 = self
            .frame
            .as_ref()
            .is_some_and(|f| self.validates_raw_text(f));
        let rest = match self.frame.as_mut() {
            Some(f) if f.done == self.recv.len() && f.done < f.remaining => {
                let n = (f.remaining - f.done).min(data.len());
                let (payload, rest) = data.split_at(n);
                let start = self.recv.len();
                match f.mask {
                    Some(key) => self
                        .recv
                        .extend_with(n, |buf| extend_masked(buf, payload, key, f.offset + f.done)),
                    None => self.recv.extend(payload),
                }
                f.done += n;
                let added = self.recv.bytes_from(start);
                if check_utf8 && self.utf8.feed(added).is_err() {
                    return Err(Error::InvalidUtf8);
                }
                rest
            }
            _ => data,
        };
        self.recv.extend(rest);
        Ok(())
    }

    pub(super) fn read_frames(&mut self) -> Result<(), Error> {
        loop {
            if self.intake != Intake::Flowing {
                return Ok(());
            }
            if self.events.len() >= self.max_events {
                // Parsing resumes when `poll_event` has drained the queue.
                self.intake.pause();
                return Ok(());
            }
            match self.state {
                State::Open | State::CloseSent => {}
                // A terminal step waits behind unpolled events; the rest
                // of the input is ignored.
                State::Connecting(_) | State::Ending { .. } => return Ok(()),
                // After the closing handshake nothing more is read.
                State::Closed | State::Failed(_) => {
                    self.recv.advance(self.recv.len());
                    return Ok(());
                }
            }
            if self.frame.is_none() && self.message.is_none() && self.whole_messages()? {
                continue;
            }
            let mut f = match self.frame.take() {
                Some(f) => f,
                None => match FrameHeader::parse(self.recv.as_slice()) {
                    Ok(Some((h, len))) => {
                        let f = self.start_frame(&h)?;
                        self.recv.advance(len);
                        f
                    }
                    Ok(None) => return Ok(()),
                    Err(HeaderError::ReservedOpcode(op)) => {
                        return Err(Violation::ReservedOpcode(op).into())
                    }
                    Err(HeaderError::LengthOverflow) => return Err(Violation::LengthMsbSet.into()),
                },
            };
            let avail = self.recv.len().min(f.remaining);
            let check_utf8 = self.validates_raw_text(&f);
            if avail > f.done
                && (check_utf8
                    || self.config.stream_frames
                    || avail == f.remaining
                    || avail - f.done >= UNMASK_AT_ONCE)
            {
                let new = &mut self.recv.as_mut_slice()[f.done..avail];
                if let Some(key) = f.mask {
                    apply_mask(new, key, f.offset + f.done);
                }
                if check_utf8 && self.utf8.feed(new).is_err() {
                    return Err(Error::InvalidUtf8);
                }
                f.done = avail;
            }
            if avail < f.remaining {
                if self.config.stream_frames
                    && avail > 0
                    && !f.opcode.is_control()
                    && !self.is_compressed()
                {
                    let data = self.recv.split_to_keep(avail);
                    f.remaining -= avail;
                    f.offset += avail;
                    f.done = 0;
                    self.stream_piece(data, false);
                }
                self.frame = Some(f);
                return Ok(());
            }
            let payload = self.recv.split_to_keep(f.remaining);
            self.end_frame(f, payload)?;
        }
    }

    fn is_compressed(&self) -> bool {
        self.message.as_ref().is_some_and(|m| m.rsv != 0)
    }

    fn validates_raw_text(&self, f: &InFrame) -> bool {
        !f.opcode.is_control()
            && self
                .message
                .as_ref()
                .is_some_and(|m| m.kind == MessageKind::Text && m.rsv == 0)
    }

    /// Checks a header against the rules and the limits before any of its
    /// payload is buffered, and starts a message on a first frame.
    fn start_frame(&mut self, h: &FrameHeader) -> Result<InFrame, Error> {
        let ext_bits = self.extension.as_ref().map_or(0, |e| e.rsv_bits());
        if h.rsv & !ext_bits != 0 {
            return Err(Violation::UnnegotiatedRsv.into());
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(Violation::UnmaskedClientFrame.into()),
            (Role::Client, true) => return Err(Violation::MaskedServerFrame.into()),
            _ => {}
        }
        if h.opcode.is_control() {
            if h.rsv != 0 {
                return Err(Violation::RsvOnControlFrame.into());
            }
            if !h.fin {
                return Err(Violation::FragmentedControlFrame.into());
            }
            if h.payload_len > 125 {
                return Err(Violation::ControlFrameTooLong.into());
            }
        } else {
            if h.payload_len > self.config.max_frame_size as u64 {
                return Err(Error::FrameTooBig(h.payload_len));
            }
            let kind = match h.opcode {
                OpCode::Text => Some(MessageKind::Text),
                OpCode::Binary => Some(MessageKind::Binary),
                _ => None,
            };
            match (kind, &self.message) {
                (None, None) => return Err(Violation::ContinuationWithoutMessage.into()),
                (None, Some(_)) if h.rsv != 0 => return Err(Violation::RsvOnContinuation.into()),
                (Some(_), Some(_)) => return Err(Violation::MessageInsideFragmentedMessage.into()),
                (Some(kind), None) => {
                    self.utf8.reset();
                    self.message = Some(InMessage {
                        kind,
                        rsv: h.rsv,
                        wire_len: 0,
                        buf: Vec::new(),
                        frames: 0,
                        pieces: 0,
                    });
                }
                (None, Some(_)) => {}
            }
            let stream = self.config.stream_frames;
            let limit = self.config.max_message_size as u64;
            if let Some(m) = self.message.as_mut() {
                let total = (m.wire_len as u64).saturating_add(h.payload_len);
                if !stream && total > limit {
                    return Err(Error::MessageTooBig);
                }
                m.wire_len = usize::try_from(total).unwrap_or(usize::MAX);
            }
        }
        Ok(InFrame {
            fin: h.fin,
            opcode: h.opcode,
            mask: h.mask,
            remaining: usize::try_from(h.payload_len)
                .map_err(|_| Error::FrameTooBig(h.payload_len))?,
            done: 0,
            offset: 0,
        })
    }

    fn end_frame(&mut self, f: InFrame, payload: Bytes) -> Result<(), Error> {
        self.counters.frame_in(f.opcode);
        match f.opcode {
            OpCode::Ping => {
                // Answered after this side's Close too: only the peer's
                // Close ends the duty to answer (RFC 6455 §5.5.2).
                if self.config.auto_pong && matches!(self.state, State::Open | State::CloseSent) {
                    if self.send.has_room(payload.len() + MAX_HEADER_LEN) {
                        self.owed_pong = None;
                        self.write_frame(true, 0, OpCode::Pong, &payload);
                    } else {
                        // The queue is full: this newest ping's pong goes
                        // out with the next `poll_transmit`, past the limit
                        // by one control frame, and answers the older
                        // unanswered pings too (RFC 6455 §5.5.3).
                        self.owed_pong = Some(payload.clone());
                    }
                }
                self.emit(Event::Ping(payload));
                Ok(())
            }
            OpCode::Pong => {
                let matched = match self.pings.iter().position(|p| *p == payload) {
                    Some(i) => {
                        self.pings.drain(..=i);
                        self.counters.pong_matched(&payload);
                        true
                    }
                    None => false,
                };
                self.emit(Event::Pong { payload, matched });
                Ok(())
            }
            OpCode::Close => self.on_close(&payload),
            OpCode::Text | OpCode::Binary | OpCode::Continuation => self.on_data(f, payload),
        }
    }

    fn on_close(&mut self, payload: &[u8]) -> Result<(), Error> {
        let (code, reason) = parse_close_payload(payload).map_err(|e| match e {
            ClosePayloadError::Protocol(v) => Error::Protocol(v),
            ClosePayloadError::InvalidUtf8 => Error::InvalidUtf8,
        })?;
        self.terminal(Queued::PeerClose(code, reason))
    }

    fn on_data(&mut self, f: InFrame, payload: Bytes) -> Result<(), Error> {
        let Some(m) = self.message.as_mut() else {
            return Err(Violation::ContinuationWithoutMessage.into());
        };
        let kind = m.kind;
        m.frames += 1;
        if m.rsv != 0 {
            return self.on_compressed(f, &payload);
        }
        if f.fin && kind == MessageKind::Text && !self.utf8.is_complete() {
            return Err(Error::InvalidUtf8);
        }
        if self.config.stream_frames {
            self.stream_piece(payload, f.fin);
        } else if f.fin && m.frames == 1 {
            self.message = None;
            self.counters.stats.rx.messages += 1;
            self.emit(Event::Message(message(kind, payload)));
        } else {
            m.buf.extend_from_slice(&payload);
            if f.fin {
                let buf = std::mem::take(&mut m.buf);
                self.message = None;
                self.counters.stats.rx.messages += 1;
                self.emit(Event::Message(message(kind, Bytes::from(buf))));
            }
        }
        Ok(())
    }

    /// A frame of a message the negotiated extension transformed.
    fn on_compressed(&mut self, f: InFrame, payload: &[u8]) -> Result<(), Error> {
        let stream = self.config.stream_frames;
        let limit = self.config.max_message_size;
        // Inflated output is held to the budget as it is made, not once
        // the read is parsed: a small frame may inflate to the limit.
        let budget_room = self
            .config
            .memory_budget
            .map(|budget| budget.saturating_sub(self.charged().0));
        let (Some(ext), Some(m)) = (self.extension.as_mut(), self.message.as_mut()) else {
            return Err(Violation::UnnegotiatedRsv.into());
        };
        let start = m.buf.len();
        let max_out = if stream {
            limit
        } else {
            limit.saturating_sub(start)
        };
        let cap = budget_room.map_or(max_out, |room| room.min(max_out));
        match ext.decode(m.rsv, payload, f.fin, &mut m.buf, cap) {
            Ok(()) => {}
            // Past the budget, not the limit: what was inflated (more than
            // the room left) is held now, and `within_budget` says so.
            Err(ExtensionError::TooBig) if cap < max_out => {
                return Err(self.within_budget().err().unwrap_or(Error::OverBudget {
                    held: self.charged().0.saturating_add(1),
                    budget: self.config.memory_budget.unwrap_or(0),
                    unpolled: false,
                }));
            }
            Err(e) => return Err(Error::Extension(e)),
        }
        let seen = &mut self.counters.stats.compression_rx;
        seen.compressed += payload.len() as u64;
        seen.uncompressed += m.buf.len().saturating_sub(start) as u64;
        seen.messages += u64::from(f.fin);
        if m.kind == MessageKind::Text
            && self
                .utf8
                .feed(m.buf.split_at(start.min(m.buf.len())).1)
                .is_err()
        {
            return Err(Error::InvalidUtf8);
        }
        if f.fin && m.kind == MessageKind::Text && !self.utf8.is_complete() {
            return Err(Error::InvalidUtf8);
        }
        if stream {
            let data = Bytes::from(std::mem::take(&mut m.buf));
            self.stream_piece(data, f.fin);
        } else if f.fin {
            let kind = m.kind;
            let mut buf = std::mem::take(&mut m.buf);
            // Inflating grows in steps: give back what the message does not
            // use (a shrink in place, not a copy), so it holds what it
            // weighs, and becomes `Bytes` without an allocation of its own.
            if buf.capacity() > buf.len() {
                buf.shrink_to_fit();
            }
            self.message = None;
            self.counters.stats.rx.messages += 1;
            self.emit(Event::Message(message(kind, Bytes::from(buf))));
            // The rest of the input is parsed once this message has been
            // polled (or before more input is taken): while the
            // application polls as it reads, one inflated message waits at
            // a time, and the next is inflated where the last was freed,
            // still in cache.
            self.intake.defer();
        }
        Ok(())
    }

    /// Streaming mode: hands a piece of the current message to the caller.
    fn stream_piece(&mut self, data: Bytes, last: bool) {
        let Some(m) = self.message.as_mut() else {
            return;
        };
        let first = m.pieces == 0;
        m.pieces += 1;
        let kind = m.kind;
        if last {
            self.message = None;
            self.counters.stats.rx.messages += 1;
        }
        self.emit(Event::Fragment {
            kind,
            data,
            first,
            last,
        });
    }
}

//! What the session holds in memory ([`Session::memory_usage`]) and the
//! budget it is held to.

use super::{Queued, Session, State};
use crate::memory::{slots, MemoryUsage};
use crate::ws::error::{Error, SendErrorKind};
use crate::ws::message::Event;
use bytes::Bytes;
use std::mem::size_of;

impl Session {
    /// The bytes this session holds, by part: the receive buffer and the
    /// events not yet polled, a message being reassembled, the send queue,
    /// the compression state and the session itself. See
    /// [`MemoryUsage`] for what is counted.
    ///
    /// ```
    /// use sansproto::ws::{Config, Event, Message, Role, Session};
    ///
    /// let random = sansproto::default_random;
    /// let mut client = Session::new(Role::Client, Config::default(), None, None, random());
    /// let mut server = Session::new(Role::Server, Config::default(), None, None, random());
    /// client.send(vec![7u8; 10_000]).unwrap();
    /// let mut wire = Vec::new();
    /// client.poll_transmit(&mut wire);
    ///
    /// // The message waits, whole, until it is polled.
    /// server.receive(&wire).unwrap();
    /// assert!(server.memory_usage().events >= 10_000);
    /// let event = server.poll_event();
    /// assert!(matches!(event, Some(Event::Message(Message::Binary(_)))));
    /// ```
    pub fn memory_usage(&self) -> MemoryUsage {
        // Payloads split out of the receive buffer's allocation are
        // counted as events, the rest of it as the receive buffer.
        let (mut own, mut all) = (0, 0);
        for queued in &self.events {
            own += queued_heap(queued, |payload| !self.recv.shares(payload));
            all += queued_heap(queued, |_| true);
        }
        let receive = self.recv.capacity().saturating_sub(all - own);
        let events = slots::<Queued>(self.events.capacity()) + all;
        let reassembly = self.message.as_ref().map_or(0, |m| m.buf.capacity());
        let mut send = self.send.memory() + self.owed_pong.as_ref().map_or(0, Bytes::len);
        if let State::Connecting(waiting) = &self.state {
            send += slots::<super::Admitted>(waiting.capacity()) + self.pending_bytes;
        }
        let compression = self.extension.as_ref().map_or(0, |e| {
            std::mem::size_of_val(&**e).saturating_add(e.memory_usage())
        });
        let state = size_of::<Self>()
            + self.config.heap()
            + self.protocol.as_ref().map_or(0, String::capacity)
            + std::mem::size_of_val(&*self.rng)
            + slots::<Bytes>(self.pings.capacity())
            + self.pings.iter().map(Bytes::len).sum::<usize>();
        MemoryUsage {
            receive,
            events,
            reassembly,
            send,
            compression,
            state,
        }
    }
}

/// The heap an entry of the event queue holds beyond its slot, counting
/// only payloads `own` says are not counted with the receive buffer.
fn queued_heap(queued: &Queued, own: impl Fn(&[u8]) -> bool) -> usize {
    match queued {
        Queued::Event(event) => event_heap(event, own),
        Queued::Messages(batch) => batch.remaining(&own),
        Queued::Fail(_) => 0,
        Queued::PeerClose(_, reason) => reason.capacity(),
    }
}

/// The payload an event carries (received data it keeps alive, when
/// `own` says it is not counted elsewhere), or the size of what it boxes.
pub(crate) fn event_heap(event: &Event, own: impl Fn(&[u8]) -> bool) -> usize {
    let payload = |p: &[u8]| if own(p) { p.len() } else { 0 };
    match event {
        Event::Message(m) => payload(m.as_bytes()),
        Event::Fragment { data, .. } => payload(data),
        Event::Ping(p) => payload(p),
        Event::Pong { payload: p, .. } => payload(p),
        Event::Open(_) => size_of::<super::Opened>(),
        Event::Upgrade(r) => size_of::<crate::ws::UpgradeRequest>() + r.heap(),
        Event::HttpRequest(r) => size_of::<crate::ws::HttpRequest>() + r.heap(),
        Event::Rejected(r) => {
            size_of::<crate::ws::HttpResponse>() + r.headers.heap() + r.body.len()
        }
        _ => 0,
    }
}

impl Session {
    /// Room for `n` more bytes to send: under the send queue's limit and
    /// the memory budget.
    #[inline]
    pub(super) fn send_room(&self, n: usize) -> Result<(), SendErrorKind> {
        self.room(n, 0)
    }

    /// Room to send a data message of `len` payload bytes that the
    /// extension encodes: as [`send_room`](Self::send_room), with the
    /// budget also charged what the encoding keeps
    /// ([`Extension::memory_to_encode`](crate::ws::Extension::memory_to_encode)).
    pub(super) fn data_room(&self, len: usize) -> Result<(), SendErrorKind> {
        let kept = match (&self.extension, self.config.memory_budget) {
            (Some(ext), Some(_)) => ext.memory_to_encode(len),
            _ => 0,
        };
        self.room(len.saturating_add(crate::ws::frame::MAX_HEADER_LEN), kept)
    }

    /// Room for `n` more queued bytes, with `kept` more held beside them.
    #[inline]
    fn room(&self, n: usize, kept: usize) -> Result<(), SendErrorKind> {
        if !self.send.has_room(n) {
            return Err(SendErrorKind::QueueFull);
        }
        match self.config.memory_budget {
            Some(budget) if self.charged().0.saturating_add(n).saturating_add(kept) > budget => {
                Err(SendErrorKind::OverBudget)
            }
            _ => Ok(()),
        }
    }

    /// What the budget is charged: [`memory_usage`](Self::memory_usage)
    /// with the receive buffer and the send queue counted by the bytes they
    /// hold rather than their capacity, so that room offered to a read, or
    /// spare capacity a queue keeps for reuse, fails nothing. Also the
    /// usage itself.
    pub(super) fn charged(&self) -> (usize, MemoryUsage) {
        let usage = self.memory_usage();
        let slack = usage.receive.saturating_sub(self.recv.len())
            + usage.send.saturating_sub(self.buffered_amount());
        (usage.total().saturating_sub(slack), usage)
    }

    /// Once input is parsed: the budget, unless the parse ended what the
    /// session reads (the peer's Close answered, or a failure or Close
    /// queued behind unpolled events), which a second ending must not
    /// overturn.
    pub(super) fn parsed_within_budget(&self) -> Result<(), Error> {
        match self.reads_input() {
            Ok(true) => self.within_budget(),
            _ => Ok(()),
        }
    }

    /// After input was taken (and again once it is parsed): the budget
    /// error when the session now holds more than its budget.
    pub(super) fn within_budget(&self) -> Result<(), Error> {
        let Some(budget) = self.config.memory_budget else {
            return Ok(());
        };
        let (held, usage) = self.charged();
        if held <= budget {
            return Ok(());
        }
        Err(Error::OverBudget {
            held,
            budget,
            unpolled: usage.events > usage.receive.saturating_add(usage.reassembly),
        })
    }
}

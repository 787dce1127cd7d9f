//! What the connection holds in memory ([`Connection::memory_usage`]) and
//! the budget it is held to.

use super::{Connection, Event, SendErrorKind};
use crate::memory::{slots, MemoryUsage};
use crate::prefix::decoder::Out;
use crate::prefix::DecodeError;
use bytes::Bytes;
use std::ops::Range;

impl Connection {
    /// The bytes this connection holds, by part: the receive buffer, the
    /// frames not yet polled, the send queue and the connection itself
    /// (its heartbeat frame included). See [`MemoryUsage`] for what is
    /// counted.
    ///
    /// ```
    /// use sansproto::prefix::{Config, Connection};
    ///
    /// let mut a = Connection::new(Config::default());
    /// let idle = a.memory_usage();
    /// a.send(vec![0u8; 10_000]).unwrap();
    /// assert!(a.memory_usage().send >= 10_004);
    /// assert_eq!(a.memory_usage().total() - idle.total(), a.memory_usage().send);
    /// ```
    pub fn memory_usage(&self) -> MemoryUsage {
        // Frames split out of the receive buffer's allocation are counted
        // as events, the rest of it as the receive buffer.
        let (mut own, mut all) = (0, 0);
        for event in &self.events {
            if let Event::Frame(frame) = event {
                all += frame.len();
                if !self.recv.shares(frame) {
                    own += frame.len();
                }
            }
        }
        let batches = std::iter::once(&self.ready).chain(self.later.iter().map(|(_, b)| b));
        for batch in batches {
            all += batch.len();
            if !self.recv.shares(batch) {
                own += batch.len();
            }
        }
        let events = slots::<Event>(self.events.capacity())
            + slots::<Out<Range<usize>>>(self.found.capacity())
            + slots::<(usize, Bytes)>(self.later.capacity())
            + all;
        MemoryUsage {
            receive: self.recv.capacity().saturating_sub(all - own),
            events,
            send: self.send.memory(),
            state: std::mem::size_of::<Self>() + self.timers.heartbeat_len(),
            ..MemoryUsage::default()
        }
    }

    /// Room for a frame of `len` more bytes under the memory budget.
    pub(super) fn budget_room(&self, len: usize) -> Result<(), SendErrorKind> {
        let Some(budget) = self.budget else {
            return Ok(());
        };
        let held = self.charged();
        if held.saturating_add(len) <= budget {
            return Ok(());
        }
        Err(SendErrorKind::OverBudget {
            held,
            frame: len,
            budget,
        })
    }

    /// After input was taken: the budget error when the connection now
    /// holds more than its budget.
    pub(super) fn within_budget(&self) -> Result<(), DecodeError> {
        let Some(budget) = self.budget else {
            return Ok(());
        };
        let held = self.charged();
        if held <= budget {
            return Ok(());
        }
        Err(DecodeError::OverBudget { held, budget })
    }

    /// What the budget is charged: [`memory_usage`](Self::memory_usage)
    /// with the receive buffer and the send queue counted by the bytes they
    /// hold rather than their capacity, so that room offered to a read, or
    /// spare capacity a queue keeps for reuse, fails nothing.
    fn charged(&self) -> usize {
        let usage = self.memory_usage();
        let slack = usage.receive.saturating_sub(self.recv.len())
            + usage.send.saturating_sub(self.send.len());
        usage.total().saturating_sub(slack)
    }
}

//! What an endpoint holds in memory ([`Endpoint::memory_usage`]), in all
//! and per peer.

use super::{Endpoint, Event, Outgoing};
use crate::memory::{map_slots, slots, MemoryUsage};
use std::fmt::Debug;
use std::hash::Hash;

impl<A: Clone + Eq + Hash + Debug> Endpoint<A> {
    /// The bytes this endpoint holds, by part: messages not yet polled
    /// (`events`), partial messages (`reassembly`), datagrams queued to
    /// send (`send`), and the endpoint itself with its peer table, timers
    /// and remembered sessions (`state`). There is no receive buffer: each
    /// datagram is handed in whole. See [`MemoryUsage`] for what is
    /// counted. The hard limits on what peers can make it hold are
    /// [`Segmentation`](super::Segmentation)'s and the send queue's.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use sansproto::datagram::{Config, Endpoint};
    /// use std::net::SocketAddr;
    /// use std::time::Instant;
    ///
    /// let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    /// let mut endpoint = Endpoint::new(Config::default()).unwrap();
    /// endpoint.receive(peer, Bytes::from(vec![1u8; 1000]), Instant::now()).unwrap();
    /// let usage = endpoint.memory_usage();
    /// assert!(usage.events >= 1000); // the message, until polled
    /// assert!(endpoint.peer_memory_usage(&peer).is_some());
    /// ```
    pub fn memory_usage(&self) -> MemoryUsage {
        let mut reassembly = self.reassembly.heap();
        let mut peers = 0;
        for peer in self.peers.values() {
            let (partials, delivered) = peer.heap();
            reassembly += partials;
            peers += delivered;
        }
        let events = slots::<Event<A>>(self.events.capacity())
            + self.events.iter().map(event_payload).sum::<usize>();
        let send = slots::<Outgoing<A>>(self.outgoing.capacity()) + self.queued_bytes;
        let state = std::mem::size_of::<Self>()
            + map_slots::<A, super::Peer>(self.peers.capacity())
            + peers
            + self.timers.heap()
            + self.sessions.closed.heap();
        MemoryUsage {
            events,
            reassembly,
            send,
            state,
            ..MemoryUsage::default()
        }
    }

    /// What the endpoint holds for `peer`: its partial messages
    /// (`reassembly`), its messages not yet polled (`events`), datagrams
    /// queued to it (`send`) and its entry in the peer table (`state`);
    /// `None` when no such peer is open.
    pub fn peer_memory_usage(&self, peer: &A) -> Option<MemoryUsage> {
        let entry = self.peers.get(peer)?;
        let (reassembly, delivered) = entry.heap();
        let events = self
            .events
            .iter()
            .filter(|e| matches!(e, Event::Message { peer: p, .. } if p == peer))
            .map(event_payload)
            .sum();
        let send = self
            .outgoing
            .iter()
            .filter(|o| &o.to == peer)
            .map(Outgoing::len)
            .sum();
        Some(MemoryUsage {
            events,
            reassembly,
            send,
            state: std::mem::size_of::<(A, super::Peer)>() + delivered,
            ..MemoryUsage::default()
        })
    }
}

/// The received bytes an event keeps alive.
fn event_payload<A>(event: &Event<A>) -> usize {
    match event {
        Event::Message { payload, .. } => payload.len(),
        _ => 0,
    }
}

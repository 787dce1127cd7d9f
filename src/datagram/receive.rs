//! Taking one received datagram: its headers, whether it is valid, and
//! only then the peer it opens or refreshes.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;

use super::reassembly::{self, Check};
use super::segment::{check_header, HEADER_LEN};
use super::session_wire::{self, SESSION_HEADER_LEN};
use super::{Endpoint, Event, PeerError};

impl<A: Clone + Eq + Hash + Debug> Endpoint<A> {
    /// Takes one datagram (the caller checked the event bound): drops it
    /// with an event if it is malformed or over a limit, and otherwise
    /// opens or refreshes its peer and delivers or stores what it carries.
    pub(super) fn take(&mut self, from: A, datagram: Bytes, now: Instant) {
        let now = self.sessions.saw(now);
        let len = datagram.len();
        if len > self.config.mtu {
            let error = PeerError::DatagramTooLarge {
                len,
                max: self.config.mtu,
            };
            self.events
                .push_back(Event::DatagramDropped { peer: from, error });
            return;
        }
        let (session, body) = if self.config.sessions.is_none() {
            (None, datagram)
        } else {
            match session_wire::parse(&datagram) {
                Ok(session_wire::Parsed::Data { id }) => {
                    (Some(id), datagram.slice(SESSION_HEADER_LEN.min(len)..))
                }
                Ok(control) => return self.on_control(from, control, len, now),
                Err(error) => {
                    self.events
                        .push_back(Event::DatagramDropped { peer: from, error });
                    return;
                }
            }
        };
        let max_fragments = self.config.segmentation.as_ref().map(|s| s.max_fragments);
        let header = match max_fragments.map(|max| check_header(&body, max)) {
            None => None,
            Some(Ok(header)) => Some(header),
            Some(Err(error)) => {
                self.events
                    .push_back(Event::DatagramDropped { peer: from, error });
                return;
            }
        };
        // `check_header` saw at least HEADER_LEN bytes; `min` keeps this total.
        let payload = body.slice(HEADER_LEN.min(body.len())..);
        // Whether the fragment fits, decided before the peer is opened or
        // refreshed: only a valid datagram does either. The peer's partial
        // messages count only if the datagram is of its current session.
        let check = match (header, &self.config.segmentation) {
            (Some(header), Some(seg)) => {
                let peer = self
                    .peers
                    .get(&from)
                    .filter(|p| session.is_none() || p.session.and_then(|s| s.remote) == session);
                reassembly::check(seg, peer, header, payload.len(), now)
            }
            _ => Check::Valid,
        };
        match check {
            Check::Invalid(error) => {
                self.events
                    .push_back(Event::DatagramDropped { peer: from, error });
                return;
            }
            // The peer's partial message is dropped below; the peer itself
            // is neither refreshed nor counted as heard from.
            Check::Spoils => {}
            Check::Valid => {
                let admitted = match session {
                    Some(id) => self.admit(&from, id, len, now),
                    None => self.touch_peer(&from, len, now),
                };
                if !admitted {
                    return;
                }
            }
        }
        let (Some(header), Some(seg)) = (header, &self.config.segmentation) else {
            self.events.push_back(Event::Message {
                peer: from,
                payload: body,
            });
            return;
        };
        self.reassembly.receive(
            seg,
            &from,
            &mut self.peers,
            header,
            payload,
            now,
            &mut self.events,
        );
        if let Some(peer) = self.peers.get_mut(&from) {
            self.timers.schedule(&from, peer);
        }
    }

    /// Refreshes the idle timer of `addr`'s peer, opening one if there is
    /// room (sessions off). Returns false (after reporting it) if the table
    /// is full.
    fn touch_peer(&mut self, addr: &A, len: usize, now: Instant) -> bool {
        let expires_at = crate::timer::deadline_after(now, self.config.idle_timeout);
        if !self.peers.contains_key(addr) {
            if self.peers.len() >= self.config.max_peers {
                self.events
                    .push_back(Event::PeerRefused { peer: addr.clone() });
                return false;
            }
            self.insert_peer(addr.clone(), now, None);
        }
        let Some(peer) = self.peers.get_mut(addr) else {
            return false;
        };
        peer.expires_at = peer.expires_at.max(expires_at);
        peer.stats.rx.bytes += len as u64;
        peer.stats.rx.frames += 1;
        true
    }
}

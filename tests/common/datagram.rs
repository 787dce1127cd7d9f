//! Datagram helpers for the tests: tagged messages whose corruption
//! shows, session configurations, and endpoints on `u8` addresses with
//! their events and datagrams drained. The simulated network is the
//! crate's public [`sansproto::testkit::Network`] (feature `testkit`).

use bytes::Bytes;
use sansproto::datagram::{Config, Endpoint, Event, Sessions};

/// A message of `len ≥ 4` bytes that names its sequence number in its first
/// four bytes and whose other bytes follow from it, so any corruption shows.
pub fn tagged_message(seq: u32, len: usize) -> Bytes {
    assert!(len >= 4);
    let mut m = seq.to_le_bytes().to_vec();
    m.extend((4..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seq) as u8));
    Bytes::from(m)
}

/// The sequence number of a message made by [`tagged_message`], if it is
/// intact.
pub fn check_tagged(payload: &[u8]) -> Option<u32> {
    let seq = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
    (tagged_message(seq, payload.len()) == payload).then_some(seq)
}

/// Session settings at their defaults.
pub fn sessions() -> Sessions {
    Sessions::default()
}

/// Session settings at their defaults, changed by `f`.
pub fn sessions_with(f: impl FnOnce(&mut Sessions)) -> Sessions {
    let mut sessions = Sessions::default();
    f(&mut sessions);
    sessions
}

/// The default configuration with `sessions`.
pub fn config(sessions: Sessions) -> Config {
    let mut config = Config::default();
    config.sessions = Some(sessions);
    config
}

/// An endpoint on `u8` addresses with seeded randomness.
pub fn endpoint(config: Config, seed: u64) -> Endpoint<u8> {
    Endpoint::with_random(config, sansproto::seeded_random(seed)).unwrap()
}

/// Every event waiting.
pub fn events(ep: &mut Endpoint<u8>) -> Vec<Event<u8>> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Every datagram waiting, with its destination.
pub fn datagrams(ep: &mut Endpoint<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    std::iter::from_fn(|| {
        let to = ep.poll_transmit(&mut out)?;
        Some((to, std::mem::take(&mut out)))
    })
    .collect()
}

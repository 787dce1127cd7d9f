//! Helpers shared by the integration tests; each harness lives in its own file.
#![allow(dead_code)]

pub mod alloc;
pub mod datagram_net;
pub mod pair;

//! Helpers shared by the integration tests; each harness lives in its own file.

pub mod datagram_net;

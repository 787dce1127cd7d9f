//! Support shared by the integration tests: one module per protocol, and
//! the counting allocator. Each test file uses part of it.
#![allow(dead_code)]

pub mod alloc;
pub mod datagram;
pub mod examples;
pub mod prefix;
pub mod tokio;
pub mod ws;

//! # sansproto
//!
//! Sans-IO protocol state machines: bytes in, events and bytes out. Nothing
//! here touches a socket, a clock or a thread, so the same machine runs under
//! a blocking loop, tokio, a fuzzer or a test that feeds byte vectors.
//!
//! - [`ws`]: WebSocket (RFC 6455), server and client.
//! - [`prefix`]: length-prefixed stream framing.
//! - [`delimited`]: delimiter framing (lines, say), which a stream may
//!   switch to and from between two frames.
//! - [`datagram`]: datagram framing over a peer table.
//! - [`correlate`]: request ids, reply matching and timeouts, beside any
//!   framing.
//!
//! Every stream machine implements [`Driver`]. The driving loop, in ten lines:
//!
//! ```no_run
//! # use std::io::{Read, Write};
//! use sansproto::{ws, Driver};
//! # let mut stream = std::net::TcpStream::connect("127.0.0.1:8080").unwrap();
//! let mut conn = ws::Connection::server(ws::Config::default());
//! let (mut buf, mut out) = (vec![0u8; 65536], Vec::new());
//! while !conn.is_finished() {
//!     let n = stream.read(&mut buf).unwrap();
//!     // Taken whole: every event is polled before the next read.
//!     let _ = if n == 0 { conn.receive_eof() } else { conn.receive(&buf[..n]).map(drop) };
//!     while let Some(ev) = conn.poll_event() {
//!         if let ws::Event::Message(msg) = ev { let _ = conn.send(msg); }
//!     }
//!     conn.poll_transmit(&mut out);
//!     stream.write_all(&out).unwrap();
//!     out.clear();
//! }
//! ```
//!
//! [`blocking::drive`] is the full loop with timers, ready to use.
//!
//! Time enters through `handle_timeout(now)` with an `Instant` the caller
//! reads; randomness (client masking keys, handshake keys) comes from an
//! injectable [`RandomSource`], by default one seeded from the operating
//! system.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod blocking;
pub(crate) mod buf;
pub mod correlate;
pub mod datagram;
pub mod delimited;
pub mod driver;
mod error;
mod memory;
pub mod prefix;
mod random;
mod stats;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
pub(crate) mod timer;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
pub mod ws;

pub use buf::Output;
/// The `bytes` crate this API takes and returns (`Bytes`, `BytesMut`, and
/// `Buf` for [`Output`]).
pub use bytes;
pub use driver::Driver;
pub use error::SendError;
pub use memory::MemoryUsage;
pub use random::{default_random, seeded_random, Random, RandomSource};
pub use stats::Traffic;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

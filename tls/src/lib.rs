//! sansproto over TLS with rustls: a [`Tls`] machine that wraps any
//! [`sansproto::Driver`] in a rustls session (both are sans-IO, so they
//! chain), and the parts of the `wss_server` and `wss_client` examples.
//!
//! ```text
//! cargo run -p sansproto-tls --example wss_server -- --write-cert /tmp/wss.pem &
//! cargo run -p sansproto-tls --example wss_client -- wss://localhost:9443/ /tmp/wss.pem hello
//! ```

mod driver;

pub mod client;
pub mod server;

pub use driver::{Tls, TlsError};

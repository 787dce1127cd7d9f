//! Support for the tests that go through a proxy.

pub mod connect_proxy;

//! Traffic of our own: the echo client and load generator, and the crafted INIT flood.
//! Imports `sys` only.

pub(crate) mod client;
pub(crate) mod flood;

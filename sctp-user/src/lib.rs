//! The sctp-xdp controller as a library: the `sctp-user` binary and the integration tests
//! share it.

pub mod bench;
pub mod capture;
pub mod client;
pub mod controller;
pub mod echo;
pub mod flood;
pub mod flow_account;
pub mod inspect;
pub mod join;
pub mod metrics;
pub mod program;
pub mod report;
pub mod rules;
pub mod sctp_socket;
pub mod top;

//! The sctp-xdp controller as a library: the `sctp-user` binary and the integration tests
//! share it.

pub mod bench;
pub mod capture;
pub mod inspect;
pub mod program;
pub mod report;
pub mod sctp_socket;

//! The sctp-xdp controller as a library: the `sctp-user` binary and the integration tests
//! share it.
//!
//! Layers, one folder each; a module imports only from the layers below it:
//!
//! ```text
//!   cmd                      one module per subcommand (clap Args + run)
//!    |
//!   export   tui   bench     Prometheus/JSON over HTTP, state file | live table | cost
//!    |
//!   observe                  snapshots, replay, flow accounting, join, reports
//!    |        \
//!   rules      echo          config -> compile -> apply, hits | one-to-many echo server
//!    |           |
//!   bpf          |  loadgen  load, attach, maps, events | client, INIT flood
//!    |           |   |
//!   sys ---------+---+       SCTP sockets, AF_PACKET, bpffs, interfaces, privileges, clock
//! ```
#![expect(
    clippy::missing_errors_doc,
    clippy::missing_panics_doc,
    reason = "an application's internals, not a published API: every error carries its own \
              context (anyhow) for the one-line message the operator sees"
)]

// Public: what the binary (cmd) and the integration tests (bpf, observe, rules, sys) use;
// the rest is private, so the dead-code and unreachable_pub lints see it whole.
mod bench;
pub mod bpf;
pub mod cmd;
mod echo;
mod export;
mod loadgen;
pub mod observe;
pub mod rules;
pub mod sys;
mod tui;

//! The sctp-xdp controller as a library: the `sctp-user` binary and the integration tests
//! share it.
//!
//! Rooms, one folder (or file) each; a module imports only from the rooms below it:
//!
//! ```text
//!   cmd                           one module per subcommand (clap Args + run)
//!    |
//!   tui  export  bench            live table | Prometheus, /stats, state file, HTTP | cost
//!    |     |
//!   report |                      the counters as a table, inspect's HTML report
//!    |     |
//!   replay  join                  engines, frame watch, sharding | the echo join
//!    |       |
//!   doc      |                    the JSON documents (DESIGN.md's contracts), typed
//!    |       |
//!   assoc  capture  snapshot      association model | capture files | counters read
//!    |                 |
//!   rules      echo    |          config -> compile -> apply, hits | one-to-many echo server
//!    |           |     |
//!   bpf          |  loadgen       load, attach, maps, events | client, INIT flood
//!    |           |   |
//!   sys ---------+---+            SCTP sockets, AF_PACKET, bpffs, interfaces, privileges, clock
//! ```
#![expect(
    clippy::missing_errors_doc,
    clippy::missing_panics_doc,
    reason = "an application's internals, not a published API: every error carries its own \
              context (anyhow) for the one-line message the operator sees"
)]

// Public: what the binary (cmd) and the integration tests use; the rest is private, so
// the dead-code and unreachable_pub lints see it whole.
pub mod assoc;
mod bench;
pub mod bpf;
pub mod capture;
pub mod cmd;
pub mod doc;
mod echo;
mod export;
mod join;
mod loadgen;
pub mod names;
pub mod replay;
mod report;
pub mod rules;
pub mod snapshot;
pub mod sys;
mod tui;

//! The integration tests, one binary. Each file is a topic; within it, a test's needs are
//! declared once, by the module it sits in:
//!
//! - `host`: anyone can run it (`cargo test`);
//! - `root`: root on this host (BPF, namespaces), not kernel SCTP: ignored by `cargo test`,
//!   run by `cargo xtask test` (filter `::root::`);
//! - `kernel`: the XDP program itself, as root: on this host and again in the VM on each
//!   kernel (filter `::kernel::`);
//! - `vm`: root and kernel SCTP: in the VM on each kernel (filter `::vm::`).

mod associations_live;
mod associations_match_tshark;
mod associations_over_kernel_sctp;
mod attack;
mod capture_formats;
mod captures_match_tshark;
mod echo;
mod fleet;
mod html_report;
mod inspect_engines;
mod jumbo;
mod kernel_agrees_with_host;
mod message_names_match_tshark;
mod messages_live;
mod messages_match_tshark;
mod metrics;
mod operator;
mod real_association;
mod rules;
mod rules_live;
mod verifier_budget;

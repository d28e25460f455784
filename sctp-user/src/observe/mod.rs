//! What the program saw, made into answers: counter snapshots, the capture replay,
//! per-flow accounting, the join with the echo server's messages, and reports.
//! Imports `rules`, `bpf`, `echo` and `sys`.

pub mod assoc;
pub mod capture;
pub mod checksum;
pub mod engine;
pub mod flow_account;
pub mod html;
pub mod join;
pub mod live;
pub mod packet_view;
pub mod replay;
pub mod report;
pub mod sharded;
pub mod snapshot;
pub mod trace;

pub use snapshot::Snapshot;

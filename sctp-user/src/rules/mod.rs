//! Filtering rules in user space: read from flags and a TOML file ([`config`]), checked
//! and compiled into the rule maps' values ([`compile`]), installed in a loaded or a
//! running (pinned) program with an atomic generation flip ([`apply`]), and read back for
//! `rules show` and the metrics ([`hits`]). Imports `bpf` and `sys`.

pub mod apply;
pub mod compile;
pub mod config;
pub mod hits;
pub mod message;

pub use apply::{apply, apply_at};
pub use compile::{compile, Compiled};
pub use config::{RuleArgs, RuleConfig};
pub use hits::{hits, hits_of, learning_left, show_table, RuleHits};

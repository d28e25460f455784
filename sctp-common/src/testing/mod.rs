//! For tests only (feature `testing`): the fixture table and the host twin of the rule
//! maps. Neither is in the release binary.

pub mod fixtures;
mod mem_filter;

pub use mem_filter::MemFilter;

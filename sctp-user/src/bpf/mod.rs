//! The XDP program in the kernel: load, attach, test runs, its maps and its events.
//! Imports `sys` only.

pub mod events;
pub mod features;
pub mod maps;
pub mod pending;
pub mod program;

pub use features::Features;
pub use maps::{MapSource, Pinned};
pub use program::{LoadOptions, XdpSctp, LINEAR_FRAME_MAX};

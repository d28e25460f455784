//! Export for dashboards: Prometheus text and JSON over HTTP, and the state file that
//! keeps user-space totals across restarts. Imports `observe` and below.

pub(crate) mod metrics;

//! The benchmark scenarios; each measures Kumo and its baseline in the
//! same run.

pub mod ingest;
pub mod latency;
pub mod load;
pub mod node;
pub mod state;

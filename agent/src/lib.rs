//! kumo-agent: runs Kumo function instances in sandboxes on one node.
//!
//! The agent dials kumod ([`connection`]), receives invocations, makes sure
//! the function's package is cached and unpacked ([`package_cache`],
//! [`unzip`]), picks or starts an instance ([`pool`], [`instance`]) — a
//! runtime process inside a [`sandbox`] that it serves the Lambda Runtime API
//! ([`runtime_api`]) — and sends back the result with the invocation's log
//! ([`invocation_log`]).

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod connection;
pub mod executor;
pub mod instance;
pub mod invocation_log;
pub mod layer_set;
pub mod node;
pub mod package_cache;
pub mod pool;
pub mod prewarm;
pub mod runtime_api;
pub mod sandbox;
pub mod unzip;

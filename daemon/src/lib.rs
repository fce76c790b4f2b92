//! kumod: Kumo's scheduler daemon. The `kumod` binary (`src/bin/kumod`)
//! loads a [`config::DaemonConfig`] and runs [`server::start`]; everything
//! else is internal to the crate. The folders read as the architecture:
//!
//! - `api`: what clients call — the gRPC control API, the HTTP listener
//!   with Lambda's Invoke API and `/metrics`, authentication and TLS.
//! - `sources`: what starts invocations besides a direct call — trigger
//!   records ([`sources`]'s `registry`), schedules, MinIO webhooks,
//!   API-Gateway-style HTTP routes and SQS queue pollers.
//! - `dispatch`: the invoke front door (`Invoker::invoke`), the async
//!   queue, concurrency limits and agent placement.
//! - `state`: durable stores by record kind, packages, functions,
//!   versions and aliases, logs.
//! - `config`, `metrics` (with the console's per-function `series`),
//!   `aws_profiles` (endpoints and credentials of S3, SQS, SNS), `s3` and
//!   `server` (wiring it all together) sit at the top.

pub(crate) mod api;
pub(crate) mod aws_profiles;
pub mod config;
pub(crate) mod dispatch;
pub(crate) mod metrics;
pub(crate) mod s3;
pub(crate) mod series;
pub mod server;
pub(crate) mod sources;
pub(crate) mod state;

pub use api::{auth, tls};
pub use state::store;

//! kumod: Kumo's scheduler daemon. The `kumod` binary (`src/bin/kumod`)
//! loads a [`config::DaemonConfig`] and runs [`server::start`]; everything
//! else is internal to the crate.
//!
//! - `config`: typed configuration and command-line overrides.
//! - `store`: durable state behind the `Store` trait (sled).
//! - `packages`: content-addressed package blobs, checked on upload.
//! - `functions`: create/update/get/list/delete at `$LATEST`.
//! - `versions`: published versions and aliases; `qualifiers`: what a
//!   qualified call runs.
//! - `triggers`: schedules, bucket notifications and HTTP routes; `s3`: S3
//!   profiles.
//! - `invoke`: the invoke front door every entry point calls
//!   (`Invoker::invoke`), and running one attempt on an agent.
//! - `async_queue`: asynchronous events: durable queue, retries, DLQ.
//! - `concurrency`: cluster, reserved and unreserved concurrency limits.
//! - `agents`: the agent protocol service, registry and dispatch.
//! - `logs`: per-function logs and the live feed.
//! - `control_service`: the client gRPC API; `invoke_api`: Lambda's Invoke
//!   API; `http`: the HTTP routes; `http_listener`: accepting HTTP
//!   connections within limits; `metrics_auth`: who may read `/metrics`.
//! - `server`: wiring it all together.

pub(crate) mod agents;
pub(crate) mod async_queue;
pub mod auth;
pub(crate) mod concurrency;
pub mod config;
pub(crate) mod control_service;
pub(crate) mod functions;
pub(crate) mod http;
pub(crate) mod http_listener;
pub(crate) mod invoke;
pub(crate) mod invoke_api;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod metrics_auth;
pub(crate) mod packages;
pub(crate) mod qualifiers;
pub(crate) mod s3;
pub(crate) mod scrape;
pub mod server;
pub mod store;
pub mod tls;
pub(crate) mod triggers;
pub(crate) mod versions;

//! kumod: Kumo's scheduler daemon.
//!
//! - [`config`] / [`cli`]: typed configuration and flags.
//! - [`store`]: durable state behind the `Store` trait (sled).
//! - [`packages`]: content-addressed package blobs, checked on upload.
//! - [`functions`]: create/update/get/list/delete at `$LATEST`.
//! - [`versions`]: published versions and aliases; [`qualifiers`]: what a
//!   qualified call runs.
//! - [`triggers`]: schedules and bucket notifications; [`s3`]: S3 profiles.
//! - [`invoke`]: the invoke path and synchronous invocation.
//! - [`async_queue`]: asynchronous events: durable queue, retries, DLQ.
//! - [`concurrency`]: cluster, reserved and unreserved concurrency limits.
//! - [`agents`]: the agent protocol service, registry and dispatch.
//! - [`logs`]: per-function logs and the live feed.
//! - [`control_service`]: the client gRPC API.
//! - [`http`]: the HTTP listener.
//! - [`server`]: wiring it all together.

pub mod agents;
pub mod async_queue;
pub mod auth;
pub mod cli;
pub mod concurrency;
pub mod config;
pub mod control_service;
pub mod functions;
pub mod http;
pub mod invoke;
pub mod invoke_api;
pub mod logs;
pub mod metrics;
pub mod packages;
pub mod qualifiers;
pub mod s3;
pub mod scrape;
pub mod server;
pub mod store;
pub mod tls;
pub mod triggers;
pub mod versions;

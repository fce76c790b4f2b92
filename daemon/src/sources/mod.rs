//! Triggers on kumod's side: trigger records and their management
//! ([`registry`]), firing schedules ([`scheduler`]), and the MinIO webhook
//! endpoint ([`webhook`]), and API-Gateway-style HTTP routes
//! ([`http_trigger`]), both reading the route table ([`routes`]) the
//! registry keeps current, and the pollers of SQS queues ([`sqs`]). The formats themselves (schedule expressions,
//! webhook bodies, filters) live in the `kumo-triggers` crate.

pub mod http_trigger;
pub mod registry;
pub mod routes;
pub mod scheduler;
pub mod sns;
pub mod sqs;
pub mod webhook;

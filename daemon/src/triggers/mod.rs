//! Triggers on kumod's side: trigger records and their management
//! ([`registry`]), firing schedules ([`scheduler`]), and the MinIO webhook
//! endpoint ([`webhook`]). The formats themselves (schedule expressions,
//! webhook bodies, filters) live in the `kumo-triggers` crate.

pub mod registry;
pub mod scheduler;
pub mod webhook;

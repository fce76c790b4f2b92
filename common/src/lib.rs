//! What kumod, the agent and the CLI share besides the wire protocols
//! (those, and the domain rules, are in `kumo-proto`).
//!
//! - [`layered_config`]: TOML file + `KUMO_*` environment configuration.
//! - [`client_security`]: bearer tokens and TLS for gRPC clients.
//! - [`process`]: diagnostic logs (tracing) and stop signals.
//! - [`private_state`]: private data directories, umask and fd headroom.
//! - [`sd_notify`]: systemd readiness notifications.

pub mod client_security;
pub mod layered_config;
pub mod private_state;
pub mod process;
pub mod sd_notify;

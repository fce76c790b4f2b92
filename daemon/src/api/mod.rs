//! What clients call: the gRPC control API ([`control`]), kumod's HTTP
//! listener ([`http_listener`]: connections, limits; [`header_case`]: header names as clients
//! spell them; [`http`]: routing) with Lambda's Invoke API ([`lambda`]) and the
//! Prometheus endpoint ([`scrape`], guarded by [`metrics_auth`]) and the web
//! console ([`console`]), and how callers are authenticated
//! ([`auth`], [`tls`]).

pub mod auth;
pub(crate) mod console;
pub(crate) mod control;
pub(crate) mod header_case;
pub(crate) mod http;
pub(crate) mod http_listener;
pub(crate) mod lambda;
pub(crate) mod metrics_auth;
pub(crate) mod scrape;
pub mod tls;

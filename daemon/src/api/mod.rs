//! What clients call: the gRPC control API ([`control`]), kumod's HTTP
//! listener ([`http`]) with Lambda's Invoke API ([`lambda`]) and the
//! Prometheus endpoint ([`scrape`]), and how callers are authenticated
//! ([`auth`], [`tls`]).

pub mod auth;
pub(crate) mod control;
pub(crate) mod http;
pub(crate) mod lambda;
pub(crate) mod scrape;
pub mod tls;

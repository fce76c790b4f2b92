//! Kumo's wire protocols and shared domain rules.
//!
//! - [`control`]: the client-facing gRPC API (`kumo.control.v1`).
//! - [`agent`]: the daemon ⇄ agent protocol (`kumo.agent.v1`).
//! - [`model`]: validation of function configuration and Lambda limits, shared
//!   by the daemon (authoritative) and the CLI (early feedback).
//! - [`process`]: diagnostic logs and stop signals of kumod and the agent.

/// Generated code for `kumo.control.v1`.
pub mod control {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("kumo.control.v1");
}

/// Generated code for `kumo.agent.v1`.
pub mod agent {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("kumo.agent.v1");
}

/// The encoded `FileDescriptorSet` of every Kumo protocol, for gRPC server
/// reflection (so `grpcurl` works without the .proto files).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("kumo_descriptor");

pub mod client_security;
pub mod layered_config;
pub mod model;
pub mod package;
pub mod private_state;
pub mod process;
pub mod sd_notify;

/// Largest gRPC message kumod and agents accept: a 50 MB package plus headroom.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

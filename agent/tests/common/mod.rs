//! Helpers shared by the agent's integration tests.

#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use kumo_agent::runtime_api::{self, PendingInvocation, RuntimeReply};
use serde_json::Value;
use tokio::sync::oneshot;

/// The invoked ARN the tests use.
pub const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:calc";
/// How long a test waits for a reply.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn invocation(request_id: &str, payload: &str) -> PendingInvocation {
    PendingInvocation {
        request_id: request_id.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        timeout: Duration::from_secs(3),
        invoked_function_arn: ARN.into(),
        trace_id: runtime_api::generate_trace_id(),
        client_context: None,
        cognito_identity: None,
    }
}

pub async fn wait_reply(rx: oneshot::Receiver<RuntimeReply>) -> RuntimeReply {
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("no reply from the runtime in time")
        .expect("reply channel closed")
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

pub fn expect_error(reply: RuntimeReply) -> (Value, Option<String>) {
    match reply {
        RuntimeReply::Error { body, error_type } => (json(&body), error_type),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

pub fn expect_init_error(reply: RuntimeReply) -> (Value, Option<String>) {
    match reply {
        RuntimeReply::InitError { body, error_type } => (json(&body), error_type),
        other => panic!("expected an init error, got {other:?}"),
    }
}

/// True when `test` may run; false (after saying why) when it must skip
/// because this is not root. Fails instead when `KUMO_REQUIRE_ROOT_TESTS=1`.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("KUMO_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
        "{test} needs root and KUMO_REQUIRE_ROOT_TESTS=1 is set"
    );
    eprintln!("skipping {test}: sandboxes need root");
    false
}

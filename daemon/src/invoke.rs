//! Synchronous invocation: check the call, build the `Invocation`, dispatch
//! it, store its log, and shape the answer.

use std::time::Duration;

use kumo_proto::agent::{FunctionSpec, Invocation, Outcome};
use kumo_proto::control::{InvocationType, InvokeRequest, InvokeResponse};
use kumo_proto::model::{self, LATEST, MAX_SYNC_PAYLOAD_BYTES};

use crate::agents::{AgentRegistry, DispatchError};
use crate::functions::{FunctionError, Functions};
use crate::logs::Logs;
use crate::store::{FunctionRecord, LogRecord};

/// Bytes of log returned with `log_tail`, as Lambda's `X-Amz-Log-Result`.
const LOG_TAIL_BYTES: usize = 4096;

/// An invocation was refused or failed on the platform.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function or qualifier does not exist, or the store failed.
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The payload is not JSON.
    #[error("Could not parse request body into json: {0}")]
    InvalidJson(String),
    /// The payload is too large.
    #[error("RequestTooLargeException: request payload of {size} bytes exceeds the {limit}-byte limit for synchronous invocation")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A qualifier other than `$LATEST`.
    #[error("Function not found: {arn} (qualifier {qualifier:?} does not exist; only $LATEST is available)")]
    UnknownQualifier {
        /// ARN asked for.
        arn: String,
        /// The qualifier.
        qualifier: String,
    },
    /// Asynchronous invocation is not available in this release.
    #[error("asynchronous (Event) invocation is not available yet")]
    AsyncUnavailable,
    /// No agent could run it.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// The invoke path.
#[derive(Clone)]
pub struct Invoker {
    functions: Functions,
    agents: AgentRegistry,
    logs: Logs,
    grace: Duration,
}

impl Invoker {
    /// An invoker over these parts; `grace` is added to every deadline.
    pub fn new(functions: Functions, agents: AgentRegistry, logs: Logs, grace: Duration) -> Self {
        Self {
            functions,
            agents,
            logs,
            grace,
        }
    }

    /// Runs one invocation.
    pub async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        let (name, inline_qualifier) = model::split_qualified_name(&request.function_name);
        let qualifier = inline_qualifier
            .map(str::to_string)
            .or_else(|| (!request.qualifier.is_empty()).then(|| request.qualifier.clone()));
        let record = self.functions.get_record(name)?;
        if let Some(q) = qualifier.as_deref() {
            if q != LATEST {
                return Err(InvokeError::UnknownQualifier {
                    arn: self.functions.arn(name, Some(q)),
                    qualifier: q.to_string(),
                });
            }
        }
        if request.payload.len() > MAX_SYNC_PAYLOAD_BYTES {
            return Err(InvokeError::TooLarge {
                size: request.payload.len(),
                limit: MAX_SYNC_PAYLOAD_BYTES,
            });
        }
        let payload = if request.payload.iter().all(u8::is_ascii_whitespace) {
            b"{}".to_vec()
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(&request.payload)
                .map_err(|e| InvokeError::InvalidJson(e.to_string()))?;
            request.payload
        };
        match InvocationType::try_from(request.invocation_type)
            .unwrap_or(InvocationType::RequestResponse)
        {
            InvocationType::DryRun => {
                return Ok(InvokeResponse {
                    executed_version: LATEST.into(),
                    ..Default::default()
                })
            }
            InvocationType::Event => return Err(InvokeError::AsyncUnavailable),
            InvocationType::RequestResponse => {}
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let invocation = Invocation {
            invocation_id: 0,
            request_id: request_id.clone(),
            function: Some(self.spec(&record)),
            invoked_function_arn: self.functions.arn(name, qualifier.as_deref()),
            payload,
            client_context: request.client_context,
            cognito_identity: String::new(),
            trace_id: String::new(),
        };
        let deadline =
            Duration::from_secs(u64::from(record.config.timeout_seconds)) + self.grace * 3;
        let result = self.agents.dispatch(invocation, deadline).await?;
        let version = if result.executed_version.is_empty() {
            LATEST.to_string()
        } else {
            result.executed_version.clone()
        };
        if !result.log.is_empty() {
            let stored = self.logs.append(LogRecord {
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
                function: name.to_string(),
                request_id: request_id.clone(),
                version: version.clone(),
                text: result.log.clone(),
            });
            if let Err(err) = stored {
                tracing::error!(%err, %request_id, "storing an invocation log failed");
            }
        }
        let failed = result.outcome != Outcome::Success as i32;
        Ok(InvokeResponse {
            request_id,
            payload: result.payload,
            function_error: if failed {
                "Unhandled".into()
            } else {
                String::new()
            },
            error_type: if failed {
                result.error_type
            } else {
                String::new()
            },
            executed_version: version,
            log_tail: if request.log_tail {
                log_tail(&result.log)
            } else {
                String::new()
            },
        })
    }

    fn spec(&self, record: &FunctionRecord) -> FunctionSpec {
        let c = &record.config;
        FunctionSpec {
            name: c.name.clone(),
            version: LATEST.into(),
            runtime: c.runtime.clone(),
            handler: c.handler.clone(),
            memory_mb: c.memory_mb,
            timeout_seconds: c.timeout_seconds,
            environment: c.environment.clone(),
            network: c.network.clone(),
            ephemeral_storage_mb: c.ephemeral_storage_mb,
            package_digest: record.package_digest.clone(),
            revision: record.revision,
            function_arn: self.functions.arn(&c.name, None),
        }
    }
}

/// The last 4 KB of an invocation's log without its REPORT line.
pub fn log_tail(log: &str) -> String {
    let without_report: String = log
        .lines()
        .filter(|l| !l.starts_with("REPORT RequestId:"))
        .flat_map(|l| [l, "\n"])
        .collect();
    let mut start = without_report.len().saturating_sub(LOG_TAIL_BYTES);
    while !without_report.is_char_boundary(start) {
        start += 1;
    }
    without_report[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_drops_report_and_keeps_the_end() {
        let log = "START RequestId: a Version: $LATEST\nhello\nEND RequestId: a\nREPORT RequestId: a\tDuration: 1.00 ms\t\n";
        assert_eq!(
            log_tail(log),
            "START RequestId: a Version: $LATEST\nhello\nEND RequestId: a\n"
        );
        let long = format!("{}\nEND RequestId: a\n", "x".repeat(10_000));
        assert_eq!(log_tail(&long).len(), 4096);
        assert!(log_tail(&long).ends_with("END RequestId: a\n"));
    }
}

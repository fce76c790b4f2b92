//! The invoke path shared by synchronous calls and the asynchronous queue:
//! check a call ([`Invoker::prepare`]), run one attempt on an agent and
//! store its log ([`Invoker::execute`]), and the synchronous call itself
//! ([`Invoker::invoke_sync`]) with its concurrency check.

use std::time::Duration;

use kumo_proto::agent::{FunctionSpec, Invocation, InvocationResult, Outcome};
use kumo_proto::control::{InvocationType, InvokeRequest, InvokeResponse};
use kumo_proto::model::{self, LATEST, MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES};

use crate::agents::{AgentRegistry, DispatchError};
use crate::concurrency::{ConcurrencyLimiter, Throttle};
use crate::functions::{FunctionError, Functions};
use crate::logs::Logs;
use crate::metrics::{InvocationSample, Metrics};
use crate::qualifiers::{self, Target};
use crate::store::LogRecord;

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
    #[error("RequestTooLargeException: request payload of {size} bytes exceeds the {limit}-byte limit for {kind} invocation")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
        /// "synchronous" or "asynchronous".
        kind: &'static str,
    },
    /// Over a concurrency limit.
    #[error(transparent)]
    Throttled(#[from] Throttle),
    /// No agent could run it.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The event could not be queued durably.
    #[error("could not queue the event durably: {0}")]
    Queue(String),
}

/// A checked call: what it runs, and a JSON payload.
pub struct Prepared {
    /// The resolved version.
    pub target: Target,
    /// The payload (`{}` when the call had none).
    pub payload: Vec<u8>,
}

/// One attempt's result as stored and reported.
pub struct Executed {
    /// What the agent reported.
    pub result: InvocationResult,
    /// The version that ran.
    pub version: String,
}

impl Executed {
    /// True when the function returned normally.
    pub fn succeeded(&self) -> bool {
        self.result.outcome == Outcome::Success as i32
    }
}

/// The invoke path.
#[derive(Clone)]
pub struct Invoker {
    functions: Functions,
    agents: AgentRegistry,
    logs: Logs,
    limiter: ConcurrencyLimiter,
    grace: Duration,
    metrics: Metrics,
}

impl Invoker {
    /// An invoker over these parts; `grace` is added to every deadline.
    pub fn new(
        functions: Functions,
        agents: AgentRegistry,
        logs: Logs,
        limiter: ConcurrencyLimiter,
        grace: Duration,
        metrics: Metrics,
    ) -> Self {
        Self {
            functions,
            agents,
            logs,
            limiter,
            grace,
            metrics,
        }
    }

    /// The metric registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The function registry.
    pub fn functions(&self) -> &Functions {
        &self.functions
    }

    /// The concurrency limiter.
    pub fn limiter(&self) -> &ConcurrencyLimiter {
        &self.limiter
    }

    /// Checks a call: function and qualifier exist, the payload is JSON and
    /// within the limit of its invocation type.
    pub fn prepare(&self, request: &InvokeRequest) -> Result<Prepared, InvokeError> {
        let (name, inline_qualifier) = model::split_qualified_name(&request.function_name);
        let qualifier = inline_qualifier
            .map(str::to_string)
            .or_else(|| (!request.qualifier.is_empty()).then(|| request.qualifier.clone()));
        let target = qualifiers::resolve(&self.functions, name, qualifier.as_deref())?;
        let (limit, kind) = if request.invocation_type == InvocationType::Event as i32 {
            (MAX_ASYNC_PAYLOAD_BYTES, "asynchronous")
        } else {
            (MAX_SYNC_PAYLOAD_BYTES, "synchronous")
        };
        if request.payload.len() > limit {
            return Err(InvokeError::TooLarge {
                size: request.payload.len(),
                limit,
                kind,
            });
        }
        let payload = if request.payload.iter().all(u8::is_ascii_whitespace) {
            b"{}".to_vec()
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(&request.payload)
                .map_err(|e| InvokeError::InvalidJson(e.to_string()))?;
            request.payload.clone()
        };
        Ok(Prepared { target, payload })
    }

    /// A synchronous (or dry-run) call.
    pub async fn invoke_sync(&self, request: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        let prepared = self.prepare(&request)?;
        if request.invocation_type == InvocationType::DryRun as i32 {
            return Ok(InvokeResponse {
                executed_version: LATEST.into(),
                status_code: 204,
                ..Default::default()
            });
        }
        let name = prepared.target.name.clone();
        let _permit = self.limiter.try_acquire(&name).inspect_err(|throttle| {
            self.metrics.throttle(&name, throttle.reason());
        })?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let executed = self
            .execute(
                &prepared.target,
                prepared.payload,
                &request_id,
                request.client_context,
                "RequestResponse",
            )
            .await
            .inspect_err(|err| {
                if matches!(err, DispatchError::NoCapacity { .. }) {
                    self.metrics
                        .throttle(&name, crate::concurrency::ACCOUNT_LIMIT_EXCEEDED);
                }
            })?;
        let failed = !executed.succeeded();
        let result = executed.result;
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
            executed_version: executed.version,
            log_tail: if request.log_tail {
                log_tail(&result.log)
            } else {
                String::new()
            },
            status_code: 200,
        })
    }

    /// Runs one attempt with this request id on an agent and stores its log.
    /// The caller holds the concurrency permit.
    pub async fn execute(
        &self,
        target: &Target,
        payload: Vec<u8>,
        request_id: &str,
        client_context: String,
        invocation_type: &'static str,
    ) -> Result<Executed, DispatchError> {
        let name = &target.name;
        let mut spec = self.spec(target);
        let profile = &target.config.credentials_profile;
        if !profile.is_empty() {
            let credentials = self
                .functions
                .s3()
                .function_environment(profile)
                .map_err(|e| DispatchError::Setup {
                    function: name.clone(),
                    message: e.to_string(),
                })?;
            spec.environment.extend(credentials);
        }
        let invocation = Invocation {
            invocation_id: 0,
            request_id: request_id.to_string(),
            function: Some(spec),
            invoked_function_arn: self.functions.arn(name, target.qualifier.as_deref()),
            payload,
            client_context,
            cognito_identity: String::new(),
            trace_id: String::new(),
        };
        let deadline =
            Duration::from_secs(u64::from(target.config.timeout_seconds)) + self.grace * 3;
        let result = self.agents.dispatch(invocation, deadline).await?;
        let version = if result.executed_version.is_empty() {
            LATEST.to_string()
        } else {
            result.executed_version.clone()
        };
        let version = if version == LATEST {
            target.version.clone()
        } else {
            version
        };
        let failed = result.outcome != Outcome::Success as i32;
        self.metrics.invocation(&InvocationSample {
            function: name,
            version: &version,
            invocation_type,
            outcome: outcome_label(result.outcome),
            error_type: if failed { &result.error_type } else { "" },
            duration_ms: result.duration_ms,
            init_duration_ms: result.init_duration_ms,
        });
        if !result.log.is_empty() {
            let stored = self.logs.append(LogRecord {
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
                function: name.to_string(),
                request_id: request_id.to_string(),
                version: version.clone(),
                text: result.log.clone(),
            });
            if let Err(err) = stored {
                tracing::error!(%err, %request_id, "storing an invocation log failed");
            }
        }
        Ok(Executed { result, version })
    }

    fn spec(&self, target: &Target) -> FunctionSpec {
        let c = &target.config;
        FunctionSpec {
            name: c.name.clone(),
            version: target.version.clone(),
            runtime: c.runtime.clone(),
            handler: c.handler.clone(),
            memory_mb: c.memory_mb,
            timeout_seconds: c.timeout_seconds,
            environment: c.environment.clone(),
            network: c.network.clone(),
            ephemeral_storage_mb: c.ephemeral_storage_mb,
            package_digest: target.package_digest.clone(),
            revision: target.revision,
            function_arn: self.functions.arn(&c.name, None),
        }
    }
}

/// The answer to an accepted asynchronous event.
pub fn accepted(request_id: String) -> InvokeResponse {
    InvokeResponse {
        request_id,
        status_code: 202,
        ..Default::default()
    }
}

/// The metric label of an agent outcome.
fn outcome_label(outcome: i32) -> &'static str {
    match Outcome::try_from(outcome) {
        Ok(Outcome::Success) => "success",
        Ok(Outcome::FunctionError) => "error",
        Ok(Outcome::Timeout) => "timeout",
        Ok(Outcome::RuntimeExit) => "runtime_exit",
        Ok(Outcome::InitError) => "init_error",
        Ok(Outcome::PlatformError) | Err(_) => "platform_error",
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

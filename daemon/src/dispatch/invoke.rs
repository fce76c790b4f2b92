//! The invoke front door. Every entry point (gRPC `Invoke`, Lambda's
//! Invoke API, HTTP triggers, schedules, bucket webhooks) builds an
//! [`InvokeRequest`] and calls [`Invoker::invoke`], which parses the
//! function reference once, checks the call, and either queues it
//! durably (`Event`) or runs it now (`RequestResponse`, `DryRun`).
//! [`Invoker::execute`] runs one attempt on an agent and stores its log;
//! the asynchronous queue calls it for every attempt of an event.

use std::time::Duration;

use bytes::Bytes;
use kumo_proto::agent::{FunctionSpec, Invocation, InvocationResult, Outcome};
pub use kumo_proto::control::InvocationType;
use kumo_proto::control::{self, InvokeResponse};
use kumo_proto::model::{
    FunctionRef, FunctionRefError, LATEST, MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES,
};

use crate::dispatch::agents::{AgentRegistry, DispatchError};
use crate::dispatch::async_queue::{EventQueue, NewEvent};
use crate::dispatch::concurrency::{ConcurrencyLimiter, Throttle};
use crate::metrics::{InvocationSample, Metrics};
use crate::state::functions::{FunctionError, Functions};
use crate::state::logs::Logs;
use crate::state::qualifiers::{self, Target};
use crate::state::store::{EventCompanion, LogRecord};

/// An invocation was refused or failed on the platform.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function reference is not a name, `name:qualifier` or ARN, or
    /// its qualifiers disagree.
    #[error(transparent)]
    BadReference(#[from] FunctionRefError),
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

/// The entry point a call came through (a metrics label and log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The gRPC control API.
    Grpc,
    /// Lambda's Invoke API on the HTTP listener.
    InvokeApi,
    /// An HTTP trigger route.
    HttpTrigger,
    /// A schedule trigger's fire.
    Schedule,
    /// A bucket notification from the MinIO webhook.
    Webhook,
    /// A batch from an SQS queue source.
    Sqs,
    /// A notification from an SNS subscription.
    Sns,
}

impl Source {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Source::Grpc => "grpc",
            Source::InvokeApi => "invoke_api",
            Source::HttpTrigger => "http_trigger",
            Source::Schedule => "schedule",
            Source::Webhook => "webhook",
            Source::Sqs => "sqs",
            Source::Sns => "sns",
        }
    }
}

/// One call, as every entry point hands it to [`Invoker::invoke`].
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// The function as the caller named it: name, `name:qualifier`, or a
    /// full or partial ARN.
    pub function: String,
    /// A qualifier given separately (must agree with one given inline).
    pub qualifier: Option<String>,
    /// The JSON payload (empty means `{}`); moved, never copied, on the way.
    pub payload: Bytes,
    /// `RequestResponse`, `Event` or `DryRun`.
    pub invocation_type: InvocationType,
    /// The client context JSON, or "".
    pub client_context: String,
    /// Return the end of the log with a synchronous answer.
    pub log_tail: bool,
    /// Where the call came from.
    pub source: Source,
    /// For events: a write stored in the same durable transaction as the
    /// event (a schedule's fire, a bucket delivery's key).
    pub companion: EventCompanion,
}

impl InvokeRequest {
    /// A synchronous call of `function` with `payload` from `source`.
    pub fn new(source: Source, function: String, payload: Bytes) -> Self {
        Self {
            function,
            qualifier: None,
            payload,
            invocation_type: InvocationType::RequestResponse,
            client_context: String::new(),
            log_tail: false,
            source,
            companion: EventCompanion::None,
        }
    }

    /// The call of a gRPC `Invoke` request.
    pub fn from_grpc(request: control::InvokeRequest) -> Self {
        Self {
            qualifier: Some(request.qualifier),
            invocation_type: InvocationType::try_from(request.invocation_type)
                .unwrap_or(InvocationType::RequestResponse),
            client_context: request.client_context,
            log_tail: request.log_tail,
            ..Self::new(
                Source::Grpc,
                request.function_name,
                Bytes::from(request.payload),
            )
        }
    }
}

/// What became of an accepted call.
#[derive(Debug)]
pub enum Invoked {
    /// It ran (or, for `DryRun`, would run): the answer.
    Completed(InvokeResponse),
    /// It was queued durably as an event with this id.
    Queued(String),
    /// Its companion was a delivery already queued before: nothing new.
    AlreadyQueued,
}

impl Invoked {
    /// The protocol answer (202 with the event id for a queued event).
    pub fn into_response(self) -> InvokeResponse {
        match self {
            Invoked::Completed(response) => response,
            Invoked::Queued(request_id) => InvokeResponse {
                request_id,
                status_code: 202,
                ..Default::default()
            },
            Invoked::AlreadyQueued => InvokeResponse {
                status_code: 202,
                ..Default::default()
            },
        }
    }
}

/// A checked call: what it runs, and a JSON payload.
struct Prepared {
    target: Target,
    payload: Bytes,
}

/// One attempt's result as stored and reported.
pub struct Executed {
    /// What the agent reported (its `log` is moved into the log store).
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

/// The invoke front door and the attempt runner.
#[derive(Clone)]
pub struct Invoker {
    functions: Functions,
    agents: AgentRegistry,
    logs: Logs,
    limiter: ConcurrencyLimiter,
    queue: EventQueue,
    grace: Duration,
    metrics: Metrics,
}

impl Invoker {
    /// An invoker over these parts: events go to `queue`, attempts to
    /// `agents`; `grace` is added to every deadline.
    pub fn new(
        functions: Functions,
        agents: AgentRegistry,
        logs: Logs,
        limiter: ConcurrencyLimiter,
        queue: EventQueue,
        grace: Duration,
        metrics: Metrics,
    ) -> Self {
        Self {
            functions,
            agents,
            logs,
            limiter,
            queue,
            grace,
            metrics,
        }
    }

    /// The front door: parses the function reference, checks the call,
    /// and queues it (`Event`) or runs it now (`RequestResponse`, `DryRun`).
    pub async fn invoke(&self, request: InvokeRequest) -> Result<Invoked, InvokeError> {
        let InvokeRequest {
            function,
            qualifier,
            payload,
            invocation_type,
            client_context,
            log_tail,
            source,
            companion,
        } = request;
        self.metrics
            .invoke_request(source.label(), type_label(invocation_type));
        let function = FunctionRef::parse(&function, qualifier.as_deref())?;
        let prepared = self.prepare(&function, payload, invocation_type)?;
        match invocation_type {
            InvocationType::Event => {
                let event = NewEvent {
                    function: prepared.target.name,
                    qualifier: prepared.target.qualifier,
                    payload: String::from_utf8(Vec::from(prepared.payload))
                        .map_err(|e| InvokeError::InvalidJson(e.to_string()))?,
                    replay_of: String::new(),
                };
                Ok(match self.queue.submit(event, companion).await? {
                    Some(id) => Invoked::Queued(id),
                    None => Invoked::AlreadyQueued,
                })
            }
            InvocationType::DryRun => Ok(Invoked::Completed(InvokeResponse {
                executed_version: LATEST.into(),
                status_code: 204,
                ..Default::default()
            })),
            InvocationType::RequestResponse => self
                .invoke_sync(prepared, client_context, log_tail)
                .await
                .map(Invoked::Completed),
        }
    }

    /// Checks a call: the function and qualifier exist here, the payload
    /// is JSON and within the limit of its invocation type.
    fn prepare(
        &self,
        function: &FunctionRef,
        payload: Bytes,
        invocation_type: InvocationType,
    ) -> Result<Prepared, InvokeError> {
        self.functions.check_here(function)?;
        let target = qualifiers::resolve(
            &self.functions,
            &function.name,
            function.qualifier.as_deref(),
        )?;
        let (limit, kind) = if invocation_type == InvocationType::Event {
            (MAX_ASYNC_PAYLOAD_BYTES, "asynchronous")
        } else {
            (MAX_SYNC_PAYLOAD_BYTES, "synchronous")
        };
        if payload.len() > limit {
            return Err(InvokeError::TooLarge {
                size: payload.len(),
                limit,
                kind,
            });
        }
        let payload = if payload.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(&payload)
                .map_err(|e| InvokeError::InvalidJson(e.to_string()))?;
            payload
        };
        Ok(Prepared { target, payload })
    }

    /// Runs a checked synchronous call within the concurrency limits.
    async fn invoke_sync(
        &self,
        prepared: Prepared,
        client_context: String,
        log_tail: bool,
    ) -> Result<InvokeResponse, InvokeError> {
        let name = prepared.target.name.clone();
        let _permit = self.limiter.try_acquire(&name).inspect_err(|throttle| {
            self.metrics.throttle(&name, throttle.reason());
        })?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let executed = self
            .execute(
                &prepared.target,
                Vec::from(prepared.payload),
                &request_id,
                client_context,
                "RequestResponse",
                log_tail,
            )
            .await
            .inspect_err(|err| {
                if matches!(err, DispatchError::NoCapacity { .. }) {
                    self.metrics
                        .throttle(&name, crate::dispatch::concurrency::ACCOUNT_LIMIT_EXCEEDED);
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
            log_tail: result.log_tail,
            status_code: 200,
        })
    }

    /// Runs one attempt with this request id on an agent and stores its log
    /// (the part the agent did not send live while it ran); with
    /// `log_tail` the result carries the last 4 KB of the whole log.
    /// The caller holds the concurrency permit.
    pub async fn execute(
        &self,
        target: &Target,
        payload: Vec<u8>,
        request_id: &str,
        client_context: String,
        invocation_type: &'static str,
        log_tail: bool,
    ) -> Result<Executed, DispatchError> {
        let name = &target.name;
        self.metrics.series().concurrency(
            name,
            chrono::Utc::now().timestamp_millis(),
            self.limiter.running(name),
        );
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
            for (key, value) in credentials {
                if key == crate::aws_profiles::GENERIC_ENDPOINT_VARIABLE {
                    spec.environment.entry(key).or_insert(value);
                } else {
                    spec.environment.insert(key, value);
                }
            }
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
            log_tail,
        };
        let deadline =
            Duration::from_secs(u64::from(target.config.timeout_seconds)) + self.grace * 3;
        let mut result = self.agents.dispatch(invocation, deadline).await?;
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
            self.logs.append(LogRecord {
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
                function: name.to_string(),
                request_id: request_id.to_string(),
                version: version.clone(),
                text: std::mem::take(&mut result.log),
            });
        }
        Ok(Executed { result, version })
    }

    /// Appends a platform line to an invocation's log (why an HTTP trigger
    /// answered 502, say), so `kumo logs` shows it with the invocation's
    /// own lines: `<time> <request id> [kumo] <line>`.
    pub fn log_platform_line(&self, function: &str, request_id: &str, version: &str, line: &str) {
        let now = chrono::Utc::now();
        let time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.logs.append(LogRecord {
            timestamp_ms: now.timestamp_millis(),
            function: function.to_string(),
            request_id: request_id.to_string(),
            version: version.to_string(),
            text: format!("{time} {request_id} [kumo] {line}\n"),
        });
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
            egress_allow: c.egress_allow.clone(),
            ephemeral_storage_mb: c.ephemeral_storage_mb,
            package_digest: target.package_digest.clone(),
            revision: target.revision,
            function_arn: self.functions.arn(&c.name, None),
            layer_digests: c.layers.iter().map(|l| l.package_digest.clone()).collect(),
        }
    }
}

/// Lambda's name of an invocation type (a metric label).
pub fn type_label(invocation_type: InvocationType) -> &'static str {
    match invocation_type {
        InvocationType::RequestResponse => "RequestResponse",
        InvocationType::Event => "Event",
        InvocationType::DryRun => "DryRun",
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

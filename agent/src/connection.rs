//! The agent's link to kumod: one long-lived `Attach` stream carrying
//! registrations, invocations, results and heartbeats, re-established with
//! backoff whenever it breaks; and package downloads over `FetchPackage`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use kumo_common::client_security::{self, BearerToken, ClientTls, SecurityError};
use kumo_proto::agent::agent_control_client::AgentControlClient;
use kumo_proto::agent::{
    agent_message, daemon_message, AgentMessage, FetchPackageRequest, Heartbeat, Invocation,
    LogChunk, Register,
};
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::executor::Executor;
use crate::invocation_log::LiveSink;
use crate::package_cache::{FetchError, PackageFetcher};

/// First reconnect delay; doubled after every failed attempt up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Retry delay after kumod refused the agent id (the other agent holding
/// it may be gone by then).
const REFUSED_RETRY: Duration = Duration::from_secs(1);
/// Heartbeat interval used until kumod says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// The connection to kumod could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The URL, TLS files or join token are unusable.
    #[error("connecting to kumod: {0}")]
    Settings(#[from] SecurityError),
}

/// A lazily-connecting channel to kumod and the join token sent on it.
#[derive(Clone)]
pub struct Kumod {
    channel: Channel,
    token: BearerToken,
}

impl Kumod {
    /// A channel to `url` (TLS per `tls` for `https://`) sending `token`.
    pub fn new(url: &str, tls: &ClientTls, token: Option<&str>) -> Result<Self, ConnectionError> {
        let channel = client_security::endpoint(url, tls)?
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .connect_lazy();
        Ok(Self {
            channel,
            token: BearerToken::new(token)?,
        })
    }

    fn client(&self) -> AgentControlClient<InterceptedService<Channel, BearerToken>> {
        AgentControlClient::with_interceptor(self.channel.clone(), self.token.clone())
            .max_decoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES)
    }
}

/// Downloads packages from kumod's `FetchPackage` stream.
#[derive(Clone)]
pub struct GrpcPackageFetcher {
    kumod: Kumod,
}

impl GrpcPackageFetcher {
    /// A fetcher using `kumod`.
    pub fn new(kumod: Kumod) -> Self {
        Self { kumod }
    }
}

impl PackageFetcher for GrpcPackageFetcher {
    fn fetch(&self, digest: &str) -> BoxFuture<'_, Result<Vec<u8>, FetchError>> {
        let digest = digest.to_string();
        Box::pin(async move {
            let failed = |message: String| FetchError {
                digest: digest.clone(),
                message,
            };
            let mut stream = self
                .kumod
                .client()
                .fetch_package(FetchPackageRequest {
                    digest: digest.clone(),
                })
                .await
                .map_err(|status| failed(status.message().to_string()))?
                .into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|status| failed(status.message().to_string()))?;
                if bytes.is_empty() && chunk.total_size > 0 {
                    let expected = usize::try_from(chunk.total_size).unwrap_or(usize::MAX);
                    bytes.reserve(expected.min(kumo_proto::MAX_GRPC_MESSAGE_BYTES));
                }
                bytes.extend_from_slice(&chunk.data);
                if bytes.len() as u64 > kumo_proto::model::MAX_PACKAGE_ZIPPED_BYTES {
                    return Err(failed("package is larger than the 50 MB limit".into()));
                }
            }
            Ok(bytes)
        })
    }
}

/// Identity and capacity this agent announces when it registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Stable node id.
    pub agent_id: String,
    /// Host name of the node.
    pub hostname: String,
    /// Memory (MB) available to instances.
    pub allocatable_memory_mb: u64,
    /// Largest number of instances.
    pub max_instances: u32,
    /// Random per process (see [`new_session_id`]): lets kumod tell this
    /// process reconnecting from another agent using the same id.
    pub session_id: String,
    /// `MAJOR.MINOR` of the configured Python interpreter ("" if unknown).
    pub python_version: String,
    /// Major version of the configured node ("" if unknown).
    pub node_version: String,
}

/// A session id unique to this agent process.
pub fn new_session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

/// Keeps the `Attach` stream to kumod up until `shutdown` resolves, running
/// every invocation it receives on `executor`.
pub async fn serve(
    kumod: Kumod,
    registration: Registration,
    executor: Arc<Executor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = MIN_BACKOFF;
    loop {
        let session = attach_once(&kumod, &registration, executor.clone());
        tokio::select! {
            _ = &mut shutdown => return,
            outcome = session => match outcome {
                SessionEnd::WasRegistered(reason) => {
                    tracing::warn!(%reason, "connection to kumod lost; reconnecting");
                    backoff = MIN_BACKOFF;
                }
                SessionEnd::NeverRegistered(reason) => {
                    tracing::warn!(%reason, retry_in_ms = backoff.as_millis() as u64, "cannot attach to kumod");
                }
                SessionEnd::Refused(reason) => {
                    tracing::error!(%reason, agent_id = %registration.agent_id, retry_in_ms = REFUSED_RETRY.as_millis() as u64,
                        "kumod refused this agent: another agent with the same agent id is attached");
                    backoff = REFUSED_RETRY;
                }
            },
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Why one `Attach` session ended.
enum SessionEnd {
    /// The session had registered; reconnect quickly.
    WasRegistered(String),
    /// Registration never completed; back off.
    NeverRegistered(String),
    /// kumod refused the agent id (another live agent uses it); retry slowly.
    Refused(String),
}

async fn attach_once(
    kumod: &Kumod,
    registration: &Registration,
    executor: Arc<Executor>,
) -> SessionEnd {
    let (outbound, outbound_rx) = mpsc::channel::<AgentMessage>(1024);
    let register = AgentMessage {
        body: Some(agent_message::Body::Register(Register {
            agent_id: registration.agent_id.clone(),
            hostname: registration.hostname.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            allocatable_memory_mb: registration.allocatable_memory_mb,
            max_instances: registration.max_instances,
            session_id: registration.session_id.clone(),
            python_version: registration.python_version.clone(),
            node_version: registration.node_version.clone(),
        })),
    };
    if outbound.send(register).await.is_err() {
        return SessionEnd::NeverRegistered("outbound queue closed".into());
    }
    let request = tokio_stream::wrappers::ReceiverStream::new(outbound_rx);
    let mut inbound = match kumod.client().attach(request).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            return SessionEnd::Refused(status.message().to_string())
        }
        Err(status) => return SessionEnd::NeverRegistered(status.message().to_string()),
    };
    let mut registered = false;
    let mut heartbeat = tokio::time::interval(DEFAULT_HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = inbound.next() => {
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(status)) => return end(registered, status.message().to_string()),
                    None => return end(registered, "kumod closed the stream".into()),
                };
                match message.body {
                    Some(daemon_message::Body::Registered(ack)) => {
                        registered = true;
                        tracing::info!(agent_id = %ack.agent_id, daemon_version = %ack.daemon_version, "attached to kumod");
                        if ack.heartbeat_interval_ms > 0 {
                            heartbeat = tokio::time::interval(Duration::from_millis(ack.heartbeat_interval_ms.into()));
                            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        }
                    }
                    Some(daemon_message::Body::Invoke(invocation)) => {
                        spawn_invocation(executor.clone(), invocation, outbound.clone());
                    }
                    None => tracing::debug!("ignoring an empty message from kumod"),
                }
            }
            _ = heartbeat.tick(), if registered => {
                let stats = executor.stats();
                let beat = AgentMessage {
                    body: Some(agent_message::Body::Heartbeat(Heartbeat {
                        running_invocations: stats.busy,
                        instances: stats.instances,
                        memory_reserved_mb: stats.memory_reserved_mb,
                        warm: executor.warm_instances(),
                    })),
                };
                if outbound.send(beat).await.is_err() {
                    return end(registered, "outbound queue closed".into());
                }
            }
        }
    }
}

fn end(registered: bool, reason: String) -> SessionEnd {
    if registered {
        SessionEnd::WasRegistered(reason)
    } else {
        SessionEnd::NeverRegistered(reason)
    }
}

/// Messages a live log batch leaves free in the outbound queue, so that
/// results and heartbeats always find room.
const OUTBOUND_RESERVED_FOR_RESULTS: usize = 64;

/// Sends a running invocation's log batches to kumod as `LogChunk`s, on the
/// stream its result will take (so they arrive before it). Never waits: a
/// batch that finds the queue (nearly) full or closed is given back.
#[derive(Debug)]
struct LogChunkSender {
    outbound: mpsc::Sender<AgentMessage>,
    invocation_id: u64,
    request_id: String,
}

impl LiveSink for LogChunkSender {
    fn try_send(&self, text: String) -> Result<(), String> {
        if self.outbound.capacity() <= OUTBOUND_RESERVED_FOR_RESULTS {
            return Err(text);
        }
        let message = AgentMessage {
            body: Some(agent_message::Body::LogChunk(LogChunk {
                invocation_id: self.invocation_id,
                request_id: self.request_id.clone(),
                text,
            })),
        };
        self.outbound
            .try_send(message)
            .map_err(|refused| match refused.into_inner().body {
                Some(agent_message::Body::LogChunk(chunk)) => chunk.text,
                _ => String::new(),
            })
    }
}

fn spawn_invocation(
    executor: Arc<Executor>,
    invocation: Invocation,
    outbound: mpsc::Sender<AgentMessage>,
) {
    tokio::spawn(async move {
        let request_id = invocation.request_id.clone();
        let live = Arc::new(LogChunkSender {
            outbound: outbound.clone(),
            invocation_id: invocation.invocation_id,
            request_id: request_id.clone(),
        });
        let result = executor.execute(invocation, Some(live)).await;
        let message = AgentMessage {
            body: Some(agent_message::Body::Result(result)),
        };
        if outbound.send(message).await.is_err() {
            tracing::warn!(%request_id, "connection to kumod closed before the result could be sent");
        }
    });
}

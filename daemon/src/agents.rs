//! Agents: the `AgentControl` gRPC service they dial, the registry of
//! connected agents, and dispatch of invocations to them with results
//! correlated by invocation id.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kumo_proto::agent::agent_control_server::AgentControl;
use kumo_proto::agent::{
    agent_message, daemon_message, AgentMessage, DaemonMessage, FetchPackageRequest, Heartbeat,
    Invocation, InvocationResult, PackageChunk, Register, Registered,
};
use tokio::sync::{mpsc, oneshot, Notify};
use tonic::{Request, Response, Status, Streaming};

use crate::packages::{PackageError, PackageStore};

/// Bytes per `FetchPackage` chunk.
const CHUNK: usize = 1024 * 1024;
/// Heartbeat interval asked of agents.
const HEARTBEAT_MS: u32 = 5_000;

/// An invocation could not be completed by an agent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DispatchError {
    /// No agent is connected.
    #[error("no agent connected to run {function}: start kumo-agent, or kumod --all-in-one")]
    NoAgent {
        /// The function.
        function: String,
    },
    /// Agents are connected but none has the memory free for another
    /// instance of this size.
    #[error("{reason}: no agent has {memory_mb} MB free for {function} ({agents} agent(s) connected, all busy)", reason = crate::concurrency::ACCOUNT_LIMIT_EXCEEDED)]
    NoCapacity {
        /// The function.
        function: String,
        /// Its memory size.
        memory_mb: u64,
        /// Connected agents.
        agents: usize,
    },
    /// The invocation could not be prepared (e.g. its credentials profile
    /// is no longer configured).
    #[error("cannot prepare {function}: {message}")]
    Setup {
        /// The function.
        function: String,
        /// What failed.
        message: String,
    },
    /// The agent went away before answering.
    #[error("agent {agent} disconnected while running request {request_id}; retry the call")]
    AgentLost {
        /// The agent id.
        agent: String,
        /// The request.
        request_id: String,
    },
    /// No result arrived in time.
    #[error("agent {agent} did not answer request {request_id} within {seconds} s")]
    Timeout {
        /// The agent id.
        agent: String,
        /// The request.
        request_id: String,
        /// The deadline.
        seconds: u64,
    },
}

struct ConnectedAgent {
    agent_id: String,
    sender: mpsc::Sender<Result<DaemonMessage, Status>>,
    running: u32,
    /// Memory the agent may give instances (0 = not announced: unlimited).
    allocatable_mb: u64,
    /// Memory of the invocations running on it now.
    running_mb: u64,
    registration: Register,
    last_heartbeat: Heartbeat,
    last_seen: std::time::Instant,
    connected_at: chrono::DateTime<chrono::Utc>,
}

/// What kumod knows of one connected agent.
#[derive(Debug, Clone)]
pub struct AgentSnapshot {
    /// How it registered.
    pub registration: Register,
    /// Invocations kumod sent it that have not finished.
    pub running: u32,
    /// Its last heartbeat.
    pub heartbeat: Heartbeat,
    /// Time since its last message.
    pub last_seen: Duration,
    /// When it attached.
    pub connected_at: chrono::DateTime<chrono::Utc>,
}

impl ConnectedAgent {
    fn fits(&self, memory_mb: u64) -> bool {
        self.allocatable_mb == 0 || self.running_mb + memory_mb <= self.allocatable_mb
    }
}

struct Pending {
    session: u64,
    memory_mb: u64,
    agent_id: String,
    request_id: String,
    reply: oneshot::Sender<Result<InvocationResult, DispatchError>>,
}

#[derive(Default)]
struct State {
    agents: HashMap<u64, ConnectedAgent>,
    pending: HashMap<u64, Pending>,
}

/// Connected agents and in-flight invocations.
#[derive(Clone)]
pub struct AgentRegistry {
    state: Arc<Mutex<State>>,
    next_id: Arc<AtomicU64>,
    joined: Arc<Notify>,
    agent_wait: Duration,
}

impl AgentRegistry {
    /// An empty registry; dispatch waits up to `agent_wait` for a first agent.
    pub fn new(agent_wait: Duration) -> Self {
        Self {
            state: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            joined: Arc::new(Notify::new()),
            agent_wait,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of connected agents.
    pub fn agent_count(&self) -> usize {
        self.lock().agents.len()
    }

    /// Runs `invocation` on the least busy agent with memory free for it
    /// and waits up to `deadline` for its result.
    pub async fn dispatch(
        &self,
        mut invocation: Invocation,
        deadline: Duration,
    ) -> Result<InvocationResult, DispatchError> {
        let function = invocation
            .function
            .as_ref()
            .map(|f| f.name.clone())
            .unwrap_or_default();
        let memory_mb = invocation
            .function
            .as_ref()
            .map_or(0, |f| u64::from(f.memory_mb));
        let invocation_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        invocation.invocation_id = invocation_id;
        let request_id = invocation.request_id.clone();
        let wait_until = tokio::time::Instant::now() + self.agent_wait;
        let (reply, result) = oneshot::channel();
        let mut reply = Some(reply);
        let (agent_id, sender) = loop {
            let notified = self.joined.notified();
            {
                let mut state = self.lock();
                let connected = state.agents.len();
                let chosen = state
                    .agents
                    .iter_mut()
                    .filter(|(_, a)| a.fits(memory_mb))
                    .min_by_key(|(_, a)| a.running)
                    .map(|(session, a)| (*session, a));
                if chosen.is_none() && connected > 0 {
                    return Err(DispatchError::NoCapacity {
                        function,
                        memory_mb,
                        agents: connected,
                    });
                }
                if let Some((session, agent)) = chosen {
                    agent.running += 1;
                    agent.running_mb += memory_mb;
                    let picked = (agent.agent_id.clone(), agent.sender.clone());
                    state.pending.insert(
                        invocation_id,
                        Pending {
                            session,
                            memory_mb,
                            agent_id: picked.0.clone(),
                            request_id: request_id.clone(),
                            reply: reply.take().expect("reply is set until an agent is picked"),
                        },
                    );
                    break picked;
                }
            }
            if tokio::time::timeout_at(wait_until, notified).await.is_err() {
                return Err(DispatchError::NoAgent { function });
            }
        };
        let message = DaemonMessage {
            body: Some(daemon_message::Body::Invoke(invocation)),
        };
        if sender.send(Ok(message)).await.is_err() {
            self.finish(invocation_id);
            return Err(DispatchError::AgentLost {
                agent: agent_id,
                request_id,
            });
        }
        match tokio::time::timeout(deadline, result).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(DispatchError::AgentLost {
                agent: agent_id,
                request_id,
            }),
            Err(_) => {
                self.finish(invocation_id);
                Err(DispatchError::Timeout {
                    agent: agent_id,
                    request_id,
                    seconds: deadline.as_secs(),
                })
            }
        }
    }

    /// Removes a pending invocation, returning its waiter.
    fn finish(&self, invocation_id: u64) -> Option<Pending> {
        let mut state = self.lock();
        let pending = state.pending.remove(&invocation_id)?;
        if let Some(agent) = state.agents.get_mut(&pending.session) {
            agent.running = agent.running.saturating_sub(1);
            agent.running_mb = agent.running_mb.saturating_sub(pending.memory_mb);
        }
        Some(pending)
    }

    /// Every connected agent.
    pub fn snapshot(&self) -> Vec<AgentSnapshot> {
        let state = self.lock();
        let mut agents: Vec<AgentSnapshot> = state
            .agents
            .values()
            .map(|a| AgentSnapshot {
                registration: a.registration.clone(),
                running: a.running,
                heartbeat: a.last_heartbeat,
                last_seen: a.last_seen.elapsed(),
                connected_at: a.connected_at,
            })
            .collect();
        agents.sort_by(|a, b| a.registration.agent_id.cmp(&b.registration.agent_id));
        agents
    }

    fn seen(&self, session: u64, heartbeat: Option<Heartbeat>) {
        if let Some(agent) = self.lock().agents.get_mut(&session) {
            agent.last_seen = std::time::Instant::now();
            if let Some(heartbeat) = heartbeat {
                agent.last_heartbeat = heartbeat;
            }
        }
    }

    fn register(
        &self,
        registration: Register,
        sender: mpsc::Sender<Result<DaemonMessage, Status>>,
    ) -> u64 {
        let session = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().agents.insert(
            session,
            ConnectedAgent {
                agent_id: registration.agent_id.clone(),
                sender,
                running: 0,
                allocatable_mb: registration.allocatable_memory_mb,
                running_mb: 0,
                registration,
                last_heartbeat: Heartbeat::default(),
                last_seen: std::time::Instant::now(),
                connected_at: chrono::Utc::now(),
            },
        );
        self.joined.notify_waiters();
        session
    }

    fn deregister(&self, session: u64) {
        let lost: Vec<Pending> = {
            let mut state = self.lock();
            state.agents.remove(&session);
            let ids: Vec<u64> = state
                .pending
                .iter()
                .filter(|(_, p)| p.session == session)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| state.pending.remove(&id))
                .collect()
        };
        for pending in lost {
            let _ = pending.reply.send(Err(DispatchError::AgentLost {
                agent: pending.agent_id,
                request_id: pending.request_id,
            }));
        }
    }
}

/// The gRPC service agents dial.
pub struct AgentService {
    registry: AgentRegistry,
    packages: PackageStore,
}

impl AgentService {
    /// The service over a registry and the package blobs.
    pub fn new(registry: AgentRegistry, packages: PackageStore) -> Self {
        Self { registry, packages }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl AgentControl for AgentService {
    type AttachStream = BoxStream<DaemonMessage>;
    type FetchPackageStream = BoxStream<PackageChunk>;

    async fn attach(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the stream closed before Register"))?;
        let Some(agent_message::Body::Register(register)) = first.body else {
            return Err(Status::invalid_argument(
                "the first message must be Register",
            ));
        };
        if register.agent_id.is_empty() {
            return Err(Status::invalid_argument("Register needs an agent_id"));
        }
        let (sender, outbound) = mpsc::channel(1024);
        let ack = DaemonMessage {
            body: Some(daemon_message::Body::Registered(Registered {
                agent_id: register.agent_id.clone(),
                daemon_version: env!("CARGO_PKG_VERSION").to_string(),
                heartbeat_interval_ms: HEARTBEAT_MS,
            })),
        };
        sender
            .send(Ok(ack))
            .await
            .map_err(|_| Status::internal("stream closed"))?;
        let session = self.registry.register(register.clone(), sender);
        tracing::info!(agent_id = %register.agent_id, hostname = %register.hostname,
            memory_mb = register.allocatable_memory_mb, "agent attached");
        let registry = self.registry.clone();
        tokio::spawn(async move {
            while let Some(message) = inbound.next().await {
                match message.map(|m| m.body) {
                    Ok(Some(agent_message::Body::Result(result))) => {
                        registry.seen(session, None);
                        if let Some(pending) = registry.finish(result.invocation_id) {
                            let _ = pending.reply.send(Ok(result));
                        }
                    }
                    Ok(Some(agent_message::Body::Heartbeat(heartbeat))) => {
                        registry.seen(session, Some(heartbeat));
                    }
                    Ok(None) => {}
                    Ok(Some(agent_message::Body::Register(_))) => {
                        tracing::warn!(agent_id = %register.agent_id, "ignoring a second Register");
                    }
                    Err(status) => {
                        tracing::warn!(agent_id = %register.agent_id, %status, "agent stream failed");
                        break;
                    }
                }
            }
            registry.deregister(session);
            tracing::info!(agent_id = %register.agent_id, "agent detached");
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(outbound);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn fetch_package(
        &self,
        request: Request<FetchPackageRequest>,
    ) -> Result<Response<Self::FetchPackageStream>, Status> {
        let digest = request.into_inner().digest;
        let packages = self.packages.clone();
        let bytes = tokio::task::spawn_blocking(move || packages.get(&digest))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| match e {
                PackageError::NotFound(_) => Status::not_found(e.to_string()),
                other => Status::internal(other.to_string()),
            })?;
        let total = bytes.len() as u64;
        let chunks: Vec<Result<PackageChunk, Status>> = bytes
            .chunks(CHUNK)
            .map(|c| {
                Ok(PackageChunk {
                    data: c.to_vec(),
                    total_size: total,
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
}

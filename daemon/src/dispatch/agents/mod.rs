//! Agents: the registry of nodes (connected, draining, lost), placement of
//! invocations on them with results correlated by invocation id, drains,
//! and the watchdog that declares silent nodes lost. The gRPC service the
//! agents dial is in [`service`].

mod drains;
mod nodes;
pub mod placement;
mod runtime_versions;
pub mod service;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kumo_proto::agent::{
    daemon_message, DaemonMessage, Heartbeat, Invocation, InvocationResult, LogChunk, Register,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

pub use drains::DrainError;
pub use nodes::NodeState;
pub use service::AgentService;

use crate::state::store::{AgentStore, LogRecord};
use nodes::{Node, Session, WarmKey};
use placement::{NoPlacement, NodeView};

/// Lost nodes are forgotten this long after they were last seen.
const FORGET_LOST_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `[agents]`: heartbeats and lost-node detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// How often agents are asked to heartbeat.
    pub heartbeat_interval_ms: u32,
    /// A node silent this long is declared lost: its invocations fail with a
    /// retryable error (asynchronous events are re-queued) and it gets no
    /// work until it reconnects.
    pub lost_after_ms: u64,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 5_000,
            lost_after_ms: 15_000,
        }
    }
}

/// An invocation could not be completed by an agent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DispatchError {
    /// No agent is connected.
    #[error("no agent connected to run {function}: start kumo-agent, or kumod --all-in-one")]
    NoAgent {
        /// The function.
        function: String,
    },
    /// Agents are known but none takes work (drained, draining or lost).
    #[error("no agent is ready to run {function}: {states} (`kumo agents` lists them; `kumo agent undrain ID` puts a drained one back)")]
    NoReadyAgent {
        /// The function.
        function: String,
        /// The known agents' states, e.g. "all 1 agents are drained".
        states: String,
    },
    /// Agents are connected but none has the memory free for another
    /// instance of this size.
    #[error("{reason}: no agent has {memory_mb} MB free for {function} ({agents} agent(s) connected, all busy or drained)", reason = crate::dispatch::concurrency::ACCOUNT_LIMIT_EXCEEDED)]
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
    #[error("agent {agent} was lost ({reason}) while running request {request_id}; the function may or may not have run: retry the call")]
    AgentLost {
        /// The agent id.
        agent: String,
        /// The request.
        request_id: String,
        /// Why kumod considers it lost.
        reason: String,
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

/// A second agent process registered with an agent id that a live agent
/// is attached with.
#[derive(Debug, thiserror::Error)]
#[error("agent id {agent_id:?} is already attached by another running agent process (from {address}); give every agent its own agent_id, or stop the other one")]
pub struct DuplicateAgent {
    /// The contested id.
    pub agent_id: String,
    /// Peer address of the attached agent.
    pub address: String,
}

/// An operator request about a node could not be served.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No node with this id ever attached (since kumod started).
    #[error("no agent {0} is known; `kumo agents` lists them")]
    Unknown(String),
    /// The drain could not be persisted.
    #[error(transparent)]
    DrainFile(#[from] DrainError),
}

/// What kumod knows of one node.
#[derive(Debug, Clone)]
pub struct AgentSnapshot {
    /// How it registered.
    pub registration: Register,
    /// Peer address of its connection.
    pub address: String,
    /// Where it stands.
    pub state: NodeState,
    /// Invocations kumod sent it that have not finished.
    pub running: u32,
    /// Invocations placed on it since kumod started.
    pub invocations_total: u64,
    /// Its last heartbeat.
    pub heartbeat: Heartbeat,
    /// Time since its last message.
    pub last_seen: Duration,
    /// When it attached.
    pub connected_at: chrono::DateTime<chrono::Utc>,
}

struct Pending {
    session: u64,
    key: WarmKey,
    memory_mb: u64,
    agent_id: String,
    request_id: String,
    reply: oneshot::Sender<Result<InvocationResult, DispatchError>>,
}

#[derive(Default)]
struct State {
    nodes: HashMap<String, Node>,
    pending: HashMap<u64, Pending>,
    /// Drained agent ids, as persisted in the store.
    drains: BTreeSet<String>,
}

impl State {
    /// How the known agents stand when none is ready, e.g. "all 2 agents
    /// are drained" or "1 drained, 1 lost"; `None` when no agent is known.
    fn states_summary(&self) -> Option<String> {
        nodes::describe_states(
            self.nodes
                .iter()
                .map(|(id, node)| node.state(self.drains.contains(id))),
        )
    }

    /// The node `agent_id` if `session` is still its connection.
    fn current(&mut self, agent_id: &str, session: u64) -> Option<&mut Node> {
        self.nodes
            .get_mut(agent_id)
            .filter(|n| n.session.as_ref().is_some_and(|s| s.id == session))
    }

    /// Places an invocation (see [`placement::place`]) and records it as
    /// pending on the chosen node. Returns the node's id, its stream and
    /// where the invocation's result will arrive.
    fn place(
        &mut self,
        invocation_id: u64,
        key: &WarmKey,
        memory_mb: u64,
        request_id: &str,
    ) -> Result<Placed, NoPlacement> {
        let views: Vec<NodeView> = self
            .nodes
            .iter()
            .map(|(id, node)| NodeView {
                id,
                state: node.state(self.drains.contains(id)),
                free_mb: node.free_mb(),
                running: node.running,
                warm: &node.warm,
            })
            .collect();
        let agent_id = placement::place(&views, key, memory_mb)?.to_string();
        let node = self
            .nodes
            .get_mut(&agent_id)
            .expect("placed on a known node");
        let session = node.session.as_ref().expect("ready nodes are connected");
        let (reply, result) = oneshot::channel();
        let placed = (agent_id.clone(), session.sender.clone(), result);
        let session = session.id;
        node.running += 1;
        node.running_mb += memory_mb;
        node.invocations_total += 1;
        if let Some(idle) = node.warm.get_mut(key) {
            *idle = idle.saturating_sub(1);
        }
        self.pending.insert(
            invocation_id,
            Pending {
                session,
                key: key.clone(),
                memory_mb,
                agent_id,
                request_id: request_id.to_string(),
                reply,
            },
        );
        Ok(placed)
    }

    /// Removes a pending invocation and takes it off its node's load.
    fn finish(&mut self, invocation_id: u64) -> Option<Pending> {
        let pending = self.pending.remove(&invocation_id)?;
        if let Some(node) = self.current(&pending.agent_id, pending.session) {
            node.running = node.running.saturating_sub(1);
            node.running_mb = node.running_mb.saturating_sub(pending.memory_mb);
        }
        Some(pending)
    }

    /// Fails and removes every pending invocation of `session`.
    fn fail_session(&mut self, session: u64, reason: &str) {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.session == session)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(pending) = self.pending.remove(&id) {
                let _ = pending.reply.send(Err(DispatchError::AgentLost {
                    agent: pending.agent_id,
                    request_id: pending.request_id,
                    reason: reason.to_string(),
                }));
            }
        }
    }

    /// Marks the node of `session` lost (if that session is still its
    /// current one) and fails its invocations.
    fn lose(&mut self, agent_id: &str, session: u64, reason: &str) {
        if let Some(node) = self.current(agent_id, session) {
            node.session = None;
            node.running = 0;
            node.running_mb = 0;
            node.warm.clear();
            tracing::warn!(%agent_id, %reason, "agent lost");
        }
        self.fail_session(session, reason);
    }
}

/// Pushes messages down a node's stream.
type NodeSender = tokio::sync::mpsc::Sender<Result<DaemonMessage, tonic::Status>>;

/// A placed invocation: the node's id, its stream, and where the result
/// will arrive.
type Placed = (
    String,
    NodeSender,
    oneshot::Receiver<Result<InvocationResult, DispatchError>>,
);

/// Connected agents and in-flight invocations.
#[derive(Clone)]
pub struct AgentRegistry {
    state: Arc<Mutex<State>>,
    /// Where drains are persisted.
    store: Arc<dyn AgentStore>,
    next_id: Arc<AtomicU64>,
    /// Signalled when an agent attaches or an invocation finishes.
    changed: Arc<Notify>,
    agent_wait: Duration,
    config: AgentsConfig,
}

impl AgentRegistry {
    /// An empty registry; dispatch waits up to `agent_wait` for a first
    /// agent. Drains are persisted in `store`; a drain file of an earlier
    /// kumod (`legacy_drain_file`, if present) is imported into it first.
    pub fn new(
        agent_wait: Duration,
        config: AgentsConfig,
        store: Arc<dyn AgentStore>,
        legacy_drain_file: Option<&Path>,
    ) -> Result<Self, DrainError> {
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                drains: drains::load(store.as_ref(), legacy_drain_file)?,
                ..State::default()
            })),
            store,
            next_id: Arc::new(AtomicU64::new(1)),
            changed: Arc::new(Notify::new()),
            agent_wait,
            config,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `invocation` where [`placement::place`] puts it and waits up to
    /// `deadline` for its result.
    pub async fn dispatch(
        &self,
        mut invocation: Invocation,
        deadline: Duration,
    ) -> Result<InvocationResult, DispatchError> {
        let spec = invocation.function.clone().unwrap_or_default();
        let function = spec.name.clone();
        let memory_mb = u64::from(spec.memory_mb);
        let key: WarmKey = (spec.name, spec.version, spec.revision);
        let invocation_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        invocation.invocation_id = invocation_id;
        let request_id = invocation.request_id.clone();
        let wait_until = tokio::time::Instant::now() + self.agent_wait;
        let (agent_id, sender, result) = loop {
            let notified = self.changed.notified();
            let placed = self
                .lock()
                .place(invocation_id, &key, memory_mb, &request_id);
            match placed {
                Ok(placed) => break placed,
                Err(NoPlacement::NoCapacity { ready, .. }) => {
                    return Err(DispatchError::NoCapacity {
                        function,
                        memory_mb,
                        agents: ready,
                    })
                }
                Err(NoPlacement::NoReadyNode) => {}
            }
            if tokio::time::timeout_at(wait_until, notified).await.is_err() {
                return Err(match self.lock().states_summary() {
                    Some(states) => DispatchError::NoReadyAgent { function, states },
                    None => DispatchError::NoAgent { function },
                });
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
                reason: "its stream closed".into(),
            });
        }
        match tokio::time::timeout(deadline, result).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(DispatchError::AgentLost {
                agent: agent_id,
                request_id,
                reason: "its stream closed".into(),
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
        let pending = self.lock().finish(invocation_id);
        self.changed.notify_waiters();
        pending
    }

    /// Every known node, connected or lost, sorted by id.
    pub fn snapshot(&self) -> Vec<AgentSnapshot> {
        let state = self.lock();
        let mut agents: Vec<AgentSnapshot> = state
            .nodes
            .iter()
            .map(|(id, n)| n.snapshot(state.drains.contains(id)))
            .collect();
        agents.sort_by(|a, b| a.registration.agent_id.cmp(&b.registration.agent_id));
        agents
    }

    /// The node `agent_id`, or [`NodeError::Unknown`].
    pub fn node(&self, agent_id: &str) -> Result<AgentSnapshot, NodeError> {
        let state = self.lock();
        state
            .nodes
            .get(agent_id)
            .map(|n| n.snapshot(state.drains.contains(agent_id)))
            .ok_or_else(|| NodeError::Unknown(agent_id.to_string()))
    }

    /// Stops (or with `drained = false` resumes) placements on `agent_id`.
    /// A drain is persisted and applies again when the node reconnects.
    pub fn set_drained(&self, agent_id: &str, drained: bool) -> Result<(), NodeError> {
        {
            let mut state = self.lock();
            if !state.nodes.contains_key(agent_id) {
                return Err(NodeError::Unknown(agent_id.to_string()));
            }
            self.store
                .set_agent_drained(agent_id, drained)
                .map_err(DrainError::from)?;
            if drained {
                state.drains.insert(agent_id.to_string());
            } else {
                state.drains.remove(agent_id);
            }
        }
        tracing::info!(%agent_id, drained, "agent drain changed");
        self.changed.notify_waiters();
        Ok(())
    }

    /// Waits until `agent_id` runs nothing (or `wait` passes) and returns
    /// its state then.
    pub async fn wait_idle(
        &self,
        agent_id: &str,
        wait: Duration,
    ) -> Result<AgentSnapshot, NodeError> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            let node = self.node(agent_id)?;
            if node.running == 0 || tokio::time::timeout_at(until, notified).await.is_err() {
                return self.node(agent_id);
            }
        }
    }

    /// Declares lost every connected node silent for longer than the
    /// configured timeout, and forgets nodes lost for a day.
    fn sweep(&self) {
        let lost_after = Duration::from_millis(self.config.lost_after_ms);
        let mut state = self.lock();
        let silent: Vec<(String, u64)> = state
            .nodes
            .iter()
            .filter(|(_, n)| n.last_seen.elapsed() > lost_after)
            .filter_map(|(id, n)| n.session.as_ref().map(|s| (id.clone(), s.id)))
            .collect();
        for (agent_id, session) in silent {
            let reason = format!("no heartbeat for {} ms", self.config.lost_after_ms);
            state.lose(&agent_id, session, &reason);
        }
        state
            .nodes
            .retain(|_, n| n.session.is_some() || n.last_seen.elapsed() < FORGET_LOST_AFTER);
    }

    /// Runs [`Self::sweep`] until the process ends.
    pub async fn watch(self) {
        let period = Duration::from_millis((self.config.lost_after_ms / 4).clamp(50, 1000));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sweep();
        }
    }

    /// The heartbeat interval asked of agents.
    fn heartbeat_interval_ms(&self) -> u32 {
        self.config.heartbeat_interval_ms
    }

    /// Records a message from `session`'s node: any message proves it is
    /// alive; a heartbeat also refreshes its counters.
    /// A heartbeat from `session`'s node: it is alive; refresh its counters.
    fn heartbeat(&self, agent_id: &str, session: u64, heartbeat: Heartbeat) {
        if let Some(node) = self.lock().current(agent_id, session) {
            node.last_seen = Instant::now();
            node.set_warm(&heartbeat.warm);
            node.heartbeat = heartbeat;
        }
    }

    /// A live log part from `session`'s node, as the log record to store:
    /// `None` when it belongs to no invocation pending there (finished,
    /// timed out, or of another session).
    fn live_log(&self, agent_id: &str, session: u64, chunk: LogChunk) -> Option<LogRecord> {
        let mut state = self.lock();
        let pending = state
            .pending
            .get(&chunk.invocation_id)
            .filter(|p| p.session == session && p.request_id == chunk.request_id)?;
        let (function, version, _) = pending.key.clone();
        if let Some(node) = state.current(agent_id, session) {
            node.last_seen = Instant::now();
        }
        Some(LogRecord {
            timestamp_ms: chrono::Utc::now().timestamp_millis(),
            function,
            request_id: chunk.request_id,
            version,
            text: chunk.text,
        })
    }

    /// A result from `session`'s node: wakes its caller.
    fn result(&self, agent_id: &str, session: u64, result: InvocationResult) {
        let pending = {
            let mut state = self.lock();
            let pending = state.finish(result.invocation_id);
            if let Some(node) = state.current(agent_id, session) {
                node.last_seen = Instant::now();
                if let Some(pending) = &pending {
                    node.warm.insert(pending.key.clone(), result.idle_instances);
                }
            }
            pending
        };
        if let Some(pending) = pending {
            self.changed.notify_waiters();
            let _ = pending.reply.send(Ok(result));
        }
    }

    /// A node attached: a new session replaces an earlier one of the same
    /// agent id when that one is dead (stream closed or silent past the
    /// lost-node timeout) or belongs to the same agent process (same
    /// `session_id`, e.g. after its stream broke); its invocations are
    /// failed as lost. Another live process with the same id is refused.
    fn register(
        &self,
        registration: Register,
        address: String,
        sender: NodeSender,
    ) -> Result<u64, DuplicateAgent> {
        let session = self.next_id.fetch_add(1, Ordering::Relaxed);
        let agent_id = registration.agent_id.clone();
        let lost_after = Duration::from_millis(self.config.lost_after_ms);
        {
            let mut state = self.lock();
            if let Some(node) = state.nodes.get(&agent_id) {
                let alive = node.session.as_ref().is_some_and(|s| !s.sender.is_closed())
                    && node.last_seen.elapsed() < lost_after;
                let (old, new) = (&node.registration.session_id, &registration.session_id);
                if alive && !old.is_empty() && !new.is_empty() && old != new {
                    return Err(DuplicateAgent {
                        agent_id,
                        address: node.address.clone(),
                    });
                }
            }
            let previous = state
                .nodes
                .get(&agent_id)
                .and_then(|n| n.session.as_ref().map(|s| s.id));
            if let Some(previous) = previous {
                state.lose(&agent_id, previous, "it reconnected");
            }
            let invocations_total = state
                .nodes
                .get(&agent_id)
                .map_or(0, |n| n.invocations_total);
            state.nodes.insert(
                agent_id,
                Node {
                    session: Some(Session {
                        id: session,
                        sender,
                    }),
                    registration,
                    address,
                    running: 0,
                    running_mb: 0,
                    warm: HashMap::new(),
                    heartbeat: Heartbeat::default(),
                    last_seen: Instant::now(),
                    connected_at: chrono::Utc::now(),
                    invocations_total,
                },
            );
        }
        self.changed.notify_waiters();
        Ok(session)
    }

    /// `session`'s stream ended.
    fn deregister(&self, agent_id: &str, session: u64) {
        self.lock().lose(agent_id, session, "its connection closed");
        self.changed.notify_waiters();
    }
}

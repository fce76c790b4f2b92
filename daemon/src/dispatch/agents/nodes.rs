//! What kumod knows of each node (connected or lost): its connection,
//! load, warm instances and state. Where an invocation goes is decided in
//! [`super::placement`].

use std::collections::HashMap;
use std::time::Instant;

use kumo_proto::agent::{DaemonMessage, Heartbeat, Register, WarmInstances};
use tokio::sync::mpsc;
use tonic::Status;

/// Identifies the instances that may serve a call: function, version and
/// configuration revision (as the agent's pool keys them).
pub type WarmKey = (String, String, u64);

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Connected and taking work.
    Ready,
    /// Drained by an operator but still finishing invocations.
    Draining,
    /// Drained and idle.
    Drained,
    /// Disconnected, or silent past the heartbeat timeout.
    Lost,
}

impl NodeState {
    /// The name `kumo agents` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Ready => "ready",
            NodeState::Draining => "draining",
            NodeState::Drained => "drained",
            NodeState::Lost => "lost",
        }
    }
}

/// Says how known agents stand when none is ready: "all 2 agents are
/// drained", or "1 drained, 1 lost"; `None` when no agent is connected
/// (none known, or all lost: "no agent connected" says it best).
pub fn describe_states(states: impl Iterator<Item = NodeState>) -> Option<String> {
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for state in states {
        *counts.entry(state.as_str()).or_default() += 1;
    }
    if counts
        .keys()
        .all(|state| *state == NodeState::Lost.as_str())
    {
        return None;
    }
    match counts.len() {
        1 => counts.iter().next().map(|(state, n)| {
            let agents = if *n == 1 { "agent is" } else { "agents are" };
            format!("all {n} {agents} {state}")
        }),
        _ => Some(
            counts
                .iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

/// The live `Attach` stream of a connected node.
pub struct Session {
    /// Unique per connection (a reconnecting agent gets a new one).
    pub id: u64,
    /// Pushes messages down the agent's stream.
    pub sender: mpsc::Sender<Result<DaemonMessage, Status>>,
}

/// One node, keyed by its agent id.
pub struct Node {
    /// The connection, `None` once lost.
    pub session: Option<Session>,
    /// How it last registered.
    pub registration: Register,
    /// Peer address of its connection.
    pub address: String,
    /// Invocations kumod sent it that have not finished.
    pub running: u32,
    /// Memory of those invocations.
    pub running_mb: u64,
    /// Idle warm instances per function version, as last reported.
    pub warm: HashMap<WarmKey, u32>,
    /// Its last heartbeat.
    pub heartbeat: Heartbeat,
    /// When it last sent anything.
    pub last_seen: Instant,
    /// When its current (or last) connection attached.
    pub connected_at: chrono::DateTime<chrono::Utc>,
    /// Invocations placed on it since kumod started.
    pub invocations_total: u64,
}

impl Node {
    /// Its state, given whether an operator drained it.
    pub fn state(&self, drained: bool) -> NodeState {
        match (&self.session, drained) {
            (None, _) => NodeState::Lost,
            (Some(_), false) => NodeState::Ready,
            (Some(_), true) if self.running > 0 => NodeState::Draining,
            (Some(_), true) => NodeState::Drained,
        }
    }

    /// Memory it can still give an invocation (unlimited when it did not
    /// announce a limit).
    pub fn free_mb(&self) -> u64 {
        let allocatable = self.registration.allocatable_memory_mb;
        if allocatable == 0 {
            u64::MAX - self.running_mb
        } else {
            allocatable.saturating_sub(self.running_mb)
        }
    }

    /// What the control API shows of it.
    pub fn snapshot(&self, drained: bool) -> super::AgentSnapshot {
        super::AgentSnapshot {
            registration: self.registration.clone(),
            address: self.address.clone(),
            state: self.state(drained),
            running: self.running,
            invocations_total: self.invocations_total,
            heartbeat: self.heartbeat.clone(),
            last_seen: self.last_seen.elapsed(),
            connected_at: self.connected_at,
        }
    }

    /// Replaces the warm-instance counts with a heartbeat's report.
    pub fn set_warm(&mut self, reported: &[WarmInstances]) {
        self.warm = reported
            .iter()
            .filter(|w| w.idle > 0)
            .map(|w| ((w.function.clone(), w.version.clone(), w.revision), w.idle))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_described_for_the_no_ready_agent_error() {
        assert_eq!(describe_states(std::iter::empty()), None);
        assert_eq!(describe_states([NodeState::Lost].into_iter()), None);
        assert_eq!(
            describe_states([NodeState::Drained].into_iter()).as_deref(),
            Some("all 1 agent is drained")
        );
        assert_eq!(
            describe_states([NodeState::Lost, NodeState::Drained, NodeState::Lost].into_iter())
                .as_deref(),
            Some("1 drained, 2 lost")
        );
    }

    #[test]
    fn states_follow_connection_and_drain() {
        let mut n = Node {
            session: None,
            registration: Register {
                allocatable_memory_mb: 1000,
                ..Default::default()
            },
            address: String::new(),
            running: 1,
            running_mb: 128,
            warm: HashMap::new(),
            heartbeat: Heartbeat::default(),
            last_seen: Instant::now(),
            connected_at: chrono::Utc::now(),
            invocations_total: 0,
        };
        assert_eq!(n.state(false), NodeState::Lost);
        assert_eq!(n.free_mb(), 872);
        let (sender, _receiver) = mpsc::channel(1);
        n.session = Some(Session { id: 1, sender });
        assert_eq!(n.state(false), NodeState::Ready);
        assert_eq!(n.state(true), NodeState::Draining);
        n.running = 0;
        assert_eq!(n.state(true), NodeState::Drained);
    }
}

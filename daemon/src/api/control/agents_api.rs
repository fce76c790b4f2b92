//! Node calls of the control API: list agents, drain and undrain.

use std::time::Duration;

use kumo_proto::control::*;
use tonic::{Request, Response, Status};

use super::ControlService;
use crate::dispatch::agents::{AgentSnapshot, NodeError};

/// Longest a `DrainAgent` call waits for running invocations.
const MAX_DRAIN_WAIT: Duration = Duration::from_secs(3600);

/// One node as the control API shows it.
pub(super) fn agent_status(a: AgentSnapshot) -> AgentStatus {
    AgentStatus {
        agent_id: a.registration.agent_id,
        hostname: a.registration.hostname,
        version: a.registration.version,
        allocatable_memory_mb: a.registration.allocatable_memory_mb,
        max_instances: a.registration.max_instances,
        running_invocations: a.running,
        instances: a.heartbeat.instances,
        memory_reserved_mb: a.heartbeat.memory_reserved_mb,
        last_seen_seconds_ago: a.last_seen.as_secs_f64(),
        connected_at: a
            .connected_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        address: a.address,
        state: a.state.as_str().to_string(),
        invocations_total: a.invocations_total,
    }
}

fn node_status(err: NodeError) -> Status {
    match err {
        NodeError::Unknown(_) => Status::not_found(err.to_string()),
        NodeError::DrainFile(_) => Status::internal(err.to_string()),
    }
}

impl ControlService {
    pub(super) fn list_agents_rpc(&self) -> ListAgentsResponse {
        ListAgentsResponse {
            agents: self
                .agents
                .snapshot()
                .into_iter()
                .map(agent_status)
                .collect(),
        }
    }

    pub(super) async fn drain_agent_rpc(
        &self,
        request: Request<DrainAgentRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        let request = request.into_inner();
        self.agents
            .set_drained(&request.agent_id, true)
            .map_err(node_status)?;
        let wait = Duration::from_secs(request.wait_seconds.into()).min(MAX_DRAIN_WAIT);
        let node = self
            .agents
            .wait_idle(&request.agent_id, wait)
            .await
            .map_err(node_status)?;
        Ok(Response::new(agent_status(node)))
    }

    pub(super) fn undrain_agent_rpc(
        &self,
        request: Request<UndrainAgentRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        let agent_id = request.into_inner().agent_id;
        self.agents
            .set_drained(&agent_id, false)
            .map_err(node_status)?;
        let node = self.agents.node(&agent_id).map_err(node_status)?;
        Ok(Response::new(agent_status(node)))
    }
}

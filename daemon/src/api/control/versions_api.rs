//! Version, alias and status calls of the control API: every version and
//! alias RPC is one [`ControlService::versions_call`].

use kumo_proto::control::*;
use tonic::{Request, Response, Status};

use super::{blocking, blocking_with, version_status, ControlService};
use crate::state::versions::{VersionError, Versions};

impl ControlService {
    /// Runs `work` on the version registry off the async threads and
    /// answers with its result (version errors mapped to statuses).
    pub(super) async fn versions_call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Versions) -> Result<T, VersionError> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let versions = self.versions.clone();
        blocking_with(move || work(&versions), version_status)
            .await
            .map(Response::new)
    }

    pub(super) async fn get_status_rpc(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<StatusInfo>, Status> {
        let functions = self.functions.clone();
        let (function_count, trigger_count) = blocking(move || {
            let store = functions.store();
            Ok((store.list_functions()?.len(), store.list_triggers()?.len()))
        })
        .await?;
        let agents: Vec<AgentStatus> = self
            .agents
            .snapshot()
            .into_iter()
            .map(super::agents_api::agent_status)
            .collect();
        let now = chrono::Utc::now();
        Ok(Response::new(StatusInfo {
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self
                .started
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            uptime_seconds: (now - self.started).num_milliseconds() as f64 / 1000.0,
            running_invocations: agents.iter().map(|a| a.running_invocations).sum(),
            agents,
            functions: function_count as u32,
            triggers: trigger_count as u32,
            concurrency_limit: self.limiter.cluster_limit(),
        }))
    }
}

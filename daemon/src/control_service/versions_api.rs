//! Version, alias and status calls of the control API.

use kumo_proto::control::*;
use tonic::{Request, Response, Status};

use super::{blocking, blocking_with, version_status, ControlService};

/// Runs blocking version work off the async threads.
async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::versions::VersionError> + Send + 'static,
) -> Result<T, Status> {
    blocking_with(work, version_status).await
}

impl ControlService {
    pub(super) async fn publish_version_rpc(
        &self,
        request: Request<PublishVersionRequest>,
    ) -> Result<Response<VersionInfo>, Status> {
        let versions = self.versions.clone();
        let request = request.into_inner();
        Ok(Response::new(
            run(move || versions.publish(&request)).await?,
        ))
    }

    pub(super) async fn list_versions_rpc(
        &self,
        request: Request<ListVersionsRequest>,
    ) -> Result<Response<ListVersionsResponse>, Status> {
        let versions = self.versions.clone();
        let name = request.into_inner().function_name;
        let list = run(move || versions.list(&name)).await?;
        Ok(Response::new(ListVersionsResponse { versions: list }))
    }

    pub(super) async fn delete_version_rpc(
        &self,
        request: Request<DeleteVersionRequest>,
    ) -> Result<Response<DeleteVersionResponse>, Status> {
        let versions = self.versions.clone();
        let request = request.into_inner();
        run(move || versions.delete(&request.function_name, &request.version)).await?;
        Ok(Response::new(DeleteVersionResponse {}))
    }

    pub(super) async fn create_alias_rpc(
        &self,
        request: Request<AliasConfig>,
    ) -> Result<Response<AliasInfo>, Status> {
        let versions = self.versions.clone();
        let config = request.into_inner();
        Ok(Response::new(
            run(move || versions.create_alias(&config)).await?,
        ))
    }

    pub(super) async fn update_alias_rpc(
        &self,
        request: Request<AliasConfig>,
    ) -> Result<Response<AliasInfo>, Status> {
        let versions = self.versions.clone();
        let config = request.into_inner();
        Ok(Response::new(
            run(move || versions.update_alias(&config)).await?,
        ))
    }

    pub(super) async fn get_alias_rpc(
        &self,
        request: Request<GetAliasRequest>,
    ) -> Result<Response<AliasInfo>, Status> {
        let versions = self.versions.clone();
        let request = request.into_inner();
        Ok(Response::new(
            run(move || versions.get_alias(&request.function_name, &request.name)).await?,
        ))
    }

    pub(super) async fn list_aliases_rpc(
        &self,
        request: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        let versions = self.versions.clone();
        let name = request.into_inner().function_name;
        let aliases = run(move || versions.list_aliases(&name)).await?;
        Ok(Response::new(ListAliasesResponse { aliases }))
    }

    pub(super) async fn delete_alias_rpc(
        &self,
        request: Request<DeleteAliasRequest>,
    ) -> Result<Response<DeleteAliasResponse>, Status> {
        let versions = self.versions.clone();
        let request = request.into_inner();
        run(move || versions.delete_alias(&request.function_name, &request.name)).await?;
        Ok(Response::new(DeleteAliasResponse {}))
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
            concurrency_limit: self.invoker.limiter().cluster_limit(),
        }))
    }
}

//! The client-facing gRPC service: maps each operation to its module and
//! each typed error to a precise gRPC status with a one-line message.

use std::pin::Pin;

use futures::Stream;
use kumo_proto::control::control_server::Control;
use kumo_proto::control::*;
use tonic::{Code, Request, Response, Status};

mod agents_api;
mod events_api;
mod layers_api;
mod logs_api;
mod versions_api;

use crate::dispatch::agents::{AgentRegistry, DispatchError};
use crate::dispatch::async_queue::dead_letters::DeadLetterError;
use crate::dispatch::async_queue::EventQueue;
use crate::dispatch::concurrency::ConcurrencyLimiter;
use crate::dispatch::invoke::{self, InvokeError, Invoker};
use crate::s3::{ProfileError, S3Error};
use crate::sources::registry::{TriggerError, Triggers};
use crate::sources::sqs::client::QueueError;
use crate::sources::sqs::settings::SqsSettingsError;
use crate::state::functions::{FunctionError, Functions};
use crate::state::layers::Layers;
use crate::state::logs::Logs;
use crate::state::packages::PackageError;
use crate::state::versions::{VersionError, Versions};

/// What the control API serves.
pub struct ControlParts {
    /// Function management.
    pub functions: Functions,
    /// The invoke front door.
    pub invoker: Invoker,
    /// The cluster's concurrency limit (reported by GetStatus).
    pub limiter: ConcurrencyLimiter,
    /// The asynchronous queue.
    pub queue: EventQueue,
    /// Function logs.
    pub logs: Logs,
    /// Triggers.
    pub triggers: Triggers,
    /// Versions and aliases.
    pub versions: Versions,
    /// Layers.
    pub layers: Layers,
    /// Connected agents.
    pub agents: AgentRegistry,
}

/// The `kumo.control.v1.Control` implementation.
pub struct ControlService {
    functions: Functions,
    invoker: Invoker,
    limiter: ConcurrencyLimiter,
    queue: EventQueue,
    logs: Logs,
    triggers: Triggers,
    versions: Versions,
    layers: Layers,
    agents: AgentRegistry,
    started: chrono::DateTime<chrono::Utc>,
}

impl ControlService {
    /// The service over its parts.
    pub fn new(parts: ControlParts) -> Self {
        Self {
            functions: parts.functions,
            invoker: parts.invoker,
            limiter: parts.limiter,
            queue: parts.queue,
            logs: parts.logs,
            triggers: parts.triggers,
            versions: parts.versions,
            layers: parts.layers,
            agents: parts.agents,
            started: chrono::Utc::now(),
        }
    }

    /// The package: the bytes sent, or the object fetched from S3.
    async fn package_bytes(
        &self,
        zip: Vec<u8>,
        code_s3: Option<S3Location>,
    ) -> Result<Vec<u8>, Status> {
        let Some(location) = code_s3 else {
            return Ok(zip);
        };
        if !zip.is_empty() {
            return Err(Status::invalid_argument(
                "give either the ZIP bytes or an S3 location, not both",
            ));
        }
        self.functions
            .s3()
            .get_package(&location.profile, &location.bucket, &location.key)
            .await
            .map_err(|e| match e {
                S3Error::Profile(ProfileError::UnknownProfile { .. })
                | S3Error::TooLarge { .. } => Status::invalid_argument(e.to_string()),
                other => Status::failed_precondition(other.to_string()),
            })
    }

    /// Adds the queue counters and any runtime version warning to a
    /// function's description.
    fn with_queue(&self, mut info: FunctionInfo) -> Result<FunctionInfo, Status> {
        let (name, runtime) = info
            .config
            .as_ref()
            .map(|c| (c.name.clone(), c.runtime.clone()))
            .unwrap_or_default();
        info.queue = Some(self.queue.stats(&name).map_err(function_status)?);
        info.runtime_warning = self.agents.runtime_warning(&runtime).unwrap_or_default();
        Ok(info)
    }
}

fn trigger_status(err: TriggerError) -> Status {
    match err {
        TriggerError::Function(f) => function_status(f),
        TriggerError::NotFound { .. } => Status::not_found(err.to_string()),
        TriggerError::AlreadyExists { .. } => Status::already_exists(err.to_string()),
        TriggerError::Invalid(_)
        | TriggerError::Schedule(_)
        | TriggerError::Pattern(_)
        | TriggerError::S3(S3Error::Profile(ProfileError::UnknownProfile { .. })) => {
            Status::invalid_argument(err.to_string())
        }
        TriggerError::S3(_) => Status::failed_precondition(err.to_string()),
        TriggerError::Sqs(SqsSettingsError::Invalid(_))
        | TriggerError::Sqs(SqsSettingsError::Queue(
            QueueError::BadReference(_) | QueueError::Profile(ProfileError::UnknownProfile { .. }),
        )) => Status::invalid_argument(err.to_string()),
        TriggerError::Sqs(_) => Status::failed_precondition(err.to_string()),
        TriggerError::Sns(
            crate::sources::sns::SnsError::Invalid(_)
            | crate::sources::sns::SnsError::Profile(ProfileError::UnknownProfile { .. }),
        ) => Status::invalid_argument(err.to_string()),
        TriggerError::Sns(_) => Status::failed_precondition(err.to_string()),
        TriggerError::Store(_) => Status::internal(err.to_string()),
    }
}

fn version_status(err: VersionError) -> Status {
    match err {
        VersionError::Function(f) => function_status(f),
        VersionError::ShaMismatch { .. } => Status::failed_precondition(err.to_string()),
        VersionError::InUse { .. } | VersionError::AliasExists { .. } => {
            Status::failed_precondition(err.to_string())
        }
        VersionError::Invalid(_) => Status::invalid_argument(err.to_string()),
        VersionError::Store(_) => Status::internal(err.to_string()),
    }
}

fn dead_letter_status(err: DeadLetterError) -> Status {
    match err {
        DeadLetterError::Function(f) => function_status(f),
        DeadLetterError::NotFound { .. } => Status::not_found(err.to_string()),
        DeadLetterError::NothingSelected => Status::invalid_argument(err.to_string()),
        DeadLetterError::Store(_) | DeadLetterError::Replay { .. } => {
            Status::internal(err.to_string())
        }
    }
}

fn function_status(err: FunctionError) -> Status {
    let message = err.to_string();
    function_status_ref(&err, message)
}

fn invoke_status(err: InvokeError) -> Status {
    let code = match &err {
        InvokeError::Function(f) => return function_status_ref(f, err.to_string()),
        InvokeError::BadReference(_)
        | InvokeError::InvalidJson(_)
        | InvokeError::TooLarge { .. } => Code::InvalidArgument,
        InvokeError::Throttled(_) | InvokeError::Dispatch(DispatchError::NoCapacity { .. }) => {
            Code::ResourceExhausted
        }
        InvokeError::Dispatch(DispatchError::Timeout { .. }) => Code::DeadlineExceeded,
        InvokeError::Dispatch(_) => Code::Unavailable,
        InvokeError::Queue(_) => Code::Internal,
    };
    Status::new(code, err.to_string())
}

fn function_status_ref(err: &FunctionError, message: String) -> Status {
    let code = match err {
        FunctionError::NotFound { .. } => Code::NotFound,
        FunctionError::AlreadyExists { .. } => Code::AlreadyExists,
        FunctionError::RevisionMismatch { .. } => Code::FailedPrecondition,
        FunctionError::Invalid(_)
        | FunctionError::Reservation(_)
        | FunctionError::UnknownDestination { .. }
        | FunctionError::DestinationNeedsCredentials { .. }
        | FunctionError::UnknownLayer { .. }
        | FunctionError::LayersTooLarge { .. }
        | FunctionError::Credentials(_)
        | FunctionError::Package(PackageError::Invalid(_) | PackageError::EntryPoint(_)) => {
            Code::InvalidArgument
        }
        _ => Code::Internal,
    };
    Status::new(code, message)
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FunctionError> + Send + 'static,
) -> Result<T, Status> {
    blocking_with(work, function_status).await
}

/// Runs blocking store work off the async threads, mapping its error with
/// `to_status`.
async fn blocking_with<T: Send + 'static, E: Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    to_status: fn(E) -> Status,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("task failed: {e}")))?
        .map_err(to_status)
}

type LogStream = Pin<Box<dyn Stream<Item = Result<LogEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    type GetLogsStream = LogStream;

    async fn create_function(
        &self,
        request: Request<CreateFunctionRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let request = request.into_inner();
        let config = request
            .config
            .ok_or_else(|| Status::invalid_argument("CreateFunction needs a config"))?;
        let zip = self.package_bytes(request.zip, request.code_s3).await?;
        let functions = self.functions.clone();
        let info = blocking(move || functions.create(config, &zip)).await?;
        tracing::info!(function = %info.function_arn, "function created");
        let info = self.with_queue(info)?;
        if !info.runtime_warning.is_empty() {
            tracing::warn!(function = %info.function_arn, "{}", info.runtime_warning);
        }
        Ok(Response::new(info))
    }

    async fn update_function_code(
        &self,
        request: Request<UpdateFunctionCodeRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let request = request.into_inner();
        let zip = self.package_bytes(request.zip, request.code_s3).await?;
        let functions = self.functions.clone();
        let info = blocking(move || {
            functions.update_code(&request.name, &zip, &request.expect_revision_id)
        })
        .await?;
        Ok(Response::new(self.with_queue(info)?))
    }

    async fn update_function_configuration(
        &self,
        request: Request<UpdateFunctionConfigurationRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let request = request.into_inner();
        let functions = self.functions.clone();
        let info = blocking(move || functions.update_configuration(request)).await?;
        Ok(Response::new(self.with_queue(info)?))
    }

    async fn get_function(
        &self,
        request: Request<GetFunctionRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let name = request.into_inner().name;
        let functions = self.functions.clone();
        let info = blocking(move || functions.get(&name)).await?;
        Ok(Response::new(self.with_queue(info)?))
    }

    async fn list_functions(
        &self,
        _request: Request<ListFunctionsRequest>,
    ) -> Result<Response<ListFunctionsResponse>, Status> {
        let functions = self.functions.clone();
        let list = blocking(move || functions.list()).await?;
        let list = list
            .into_iter()
            .map(|info| self.with_queue(info))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(ListFunctionsResponse { functions: list }))
    }

    async fn delete_function(
        &self,
        request: Request<DeleteFunctionRequest>,
    ) -> Result<Response<DeleteFunctionResponse>, Status> {
        let name = request.into_inner().name;
        let functions = self.functions.clone();
        blocking(move || functions.delete(&name)).await?;
        Ok(Response::new(DeleteFunctionResponse {}))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        self.invoker
            .invoke(invoke::InvokeRequest::from_grpc(request.into_inner()))
            .await
            .map(|invoked| Response::new(invoked.into_response()))
            .map_err(invoke_status)
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.list_dead_letters_rpc(request).await
    }
    async fn get_dead_letter(
        &self,
        request: Request<GetDeadLetterRequest>,
    ) -> Result<Response<DeadLetter>, Status> {
        self.get_dead_letter_rpc(request).await
    }
    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        self.replay_dead_letters_rpc(request).await
    }
    async fn purge_dead_letters(
        &self,
        request: Request<PurgeDeadLettersRequest>,
    ) -> Result<Response<PurgeDeadLettersResponse>, Status> {
        self.purge_dead_letters_rpc(request).await
    }
    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        self.get_logs_rpc(request).await
    }
    async fn create_trigger(
        &self,
        request: Request<CreateTriggerRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        self.create_trigger_rpc(request).await
    }
    async fn get_trigger(
        &self,
        request: Request<GetTriggerRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        self.get_trigger_rpc(request).await
    }
    async fn list_triggers(
        &self,
        request: Request<ListTriggersRequest>,
    ) -> Result<Response<ListTriggersResponse>, Status> {
        self.list_triggers_rpc(request).await
    }
    async fn set_trigger_enabled(
        &self,
        request: Request<SetTriggerEnabledRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        self.set_trigger_enabled_rpc(request).await
    }
    async fn delete_trigger(
        &self,
        request: Request<DeleteTriggerRequest>,
    ) -> Result<Response<DeleteTriggerResponse>, Status> {
        self.delete_trigger_rpc(request).await
    }
    async fn publish_version(
        &self,
        request: Request<PublishVersionRequest>,
    ) -> Result<Response<VersionInfo>, Status> {
        let request = request.into_inner();
        self.versions_call(move |v| v.publish(&request)).await
    }

    async fn list_versions(
        &self,
        request: Request<ListVersionsRequest>,
    ) -> Result<Response<ListVersionsResponse>, Status> {
        let name = request.into_inner().function_name;
        self.versions_call(move |v| {
            let versions = v.list(&name)?;
            Ok(ListVersionsResponse { versions })
        })
        .await
    }

    async fn delete_version(
        &self,
        request: Request<DeleteVersionRequest>,
    ) -> Result<Response<DeleteVersionResponse>, Status> {
        let r = request.into_inner();
        self.versions_call(move |v| v.delete(&r.function_name, &r.version))
            .await
            .map(|_| Response::new(DeleteVersionResponse {}))
    }

    async fn create_alias(
        &self,
        request: Request<AliasConfig>,
    ) -> Result<Response<AliasInfo>, Status> {
        let config = request.into_inner();
        self.versions_call(move |v| v.create_alias(&config)).await
    }

    async fn update_alias(
        &self,
        request: Request<AliasConfig>,
    ) -> Result<Response<AliasInfo>, Status> {
        let config = request.into_inner();
        self.versions_call(move |v| v.update_alias(&config)).await
    }

    async fn get_alias(
        &self,
        request: Request<GetAliasRequest>,
    ) -> Result<Response<AliasInfo>, Status> {
        let r = request.into_inner();
        self.versions_call(move |v| v.get_alias(&r.function_name, &r.name))
            .await
    }

    async fn list_aliases(
        &self,
        request: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        let name = request.into_inner().function_name;
        self.versions_call(move |v| {
            let aliases = v.list_aliases(&name)?;
            Ok(ListAliasesResponse { aliases })
        })
        .await
    }

    async fn delete_alias(
        &self,
        request: Request<DeleteAliasRequest>,
    ) -> Result<Response<DeleteAliasResponse>, Status> {
        let r = request.into_inner();
        self.versions_call(move |v| v.delete_alias(&r.function_name, &r.name))
            .await
            .map(|_| Response::new(DeleteAliasResponse {}))
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<StatusInfo>, Status> {
        self.get_status_rpc(request).await
    }

    async fn list_agents(
        &self,
        _request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        Ok(Response::new(self.list_agents_rpc()))
    }

    async fn drain_agent(
        &self,
        request: Request<DrainAgentRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        self.drain_agent_rpc(request).await
    }

    async fn publish_layer_version(
        &self,
        request: Request<PublishLayerVersionRequest>,
    ) -> Result<Response<LayerVersionInfo>, Status> {
        self.publish_layer_version_rpc(request).await
    }

    async fn get_layer_version(
        &self,
        request: Request<GetLayerVersionRequest>,
    ) -> Result<Response<LayerVersionInfo>, Status> {
        self.get_layer_version_rpc(request).await
    }

    async fn list_layers(
        &self,
        _request: Request<ListLayersRequest>,
    ) -> Result<Response<ListLayersResponse>, Status> {
        self.list_layers_rpc().await
    }

    async fn list_layer_versions(
        &self,
        request: Request<ListLayerVersionsRequest>,
    ) -> Result<Response<ListLayerVersionsResponse>, Status> {
        self.list_layer_versions_rpc(request).await
    }

    async fn delete_layer_version(
        &self,
        request: Request<DeleteLayerVersionRequest>,
    ) -> Result<Response<DeleteLayerVersionResponse>, Status> {
        self.delete_layer_version_rpc(request).await
    }

    async fn undrain_agent(
        &self,
        request: Request<UndrainAgentRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        self.undrain_agent_rpc(request)
    }
}

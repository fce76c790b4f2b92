//! The client-facing gRPC service: maps each operation to its module and
//! each typed error to a precise gRPC status with a one-line message.

use std::pin::Pin;

use futures::Stream;
use kumo_proto::control::control_server::Control;
use kumo_proto::control::*;
use tonic::{Code, Request, Response, Status};

use crate::agents::DispatchError;
use crate::async_queue::dead_letters::{self, DeadLetterError};
use crate::async_queue::EventQueue;
use crate::functions::{FunctionError, Functions};
use crate::invoke::{InvokeError, Invoker};
use crate::logs::Logs;
use crate::packages::PackageError;
use crate::s3::S3Error;
use crate::triggers::registry::{TriggerError, Triggers};

/// The `kumo.control.v1.Control` implementation.
pub struct ControlService {
    functions: Functions,
    invoker: Invoker,
    queue: EventQueue,
    logs: Logs,
    triggers: Triggers,
}

impl ControlService {
    /// The service over its parts.
    pub fn new(
        functions: Functions,
        invoker: Invoker,
        queue: EventQueue,
        logs: Logs,
        triggers: Triggers,
    ) -> Self {
        Self {
            functions,
            invoker,
            queue,
            logs,
            triggers,
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
            .get_object(
                &location.profile,
                &location.bucket,
                &location.key,
                kumo_proto::model::MAX_PACKAGE_ZIPPED_BYTES,
            )
            .await
            .map_err(|e| match e {
                S3Error::UnknownProfile { .. } | S3Error::TooLarge { .. } => {
                    Status::invalid_argument(e.to_string())
                }
                other => Status::failed_precondition(other.to_string()),
            })
    }

    /// Adds the queue counters to a function's description.
    fn with_queue(&self, mut info: FunctionInfo) -> Result<FunctionInfo, Status> {
        let name = info
            .config
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        info.queue = Some(self.queue.stats(&name).map_err(function_status)?);
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
        | TriggerError::S3(S3Error::UnknownProfile { .. }) => {
            Status::invalid_argument(err.to_string())
        }
        TriggerError::S3(_) => Status::failed_precondition(err.to_string()),
        TriggerError::Store(_) => Status::internal(err.to_string()),
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
        InvokeError::InvalidJson(_) | InvokeError::TooLarge { .. } => Code::InvalidArgument,
        InvokeError::UnknownQualifier { .. } => Code::NotFound,
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
        FunctionError::Invalid(_)
        | FunctionError::Reservation(_)
        | FunctionError::UnknownDestination { .. }
        | FunctionError::Credentials(_)
        | FunctionError::Package(PackageError::Invalid(_)) => Code::InvalidArgument,
        _ => Code::Internal,
    };
    Status::new(code, message)
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FunctionError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("task failed: {e}")))?
        .map_err(function_status)
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
        Ok(Response::new(self.with_queue(info)?))
    }

    async fn update_function_code(
        &self,
        request: Request<UpdateFunctionCodeRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let request = request.into_inner();
        let zip = self.package_bytes(request.zip, request.code_s3).await?;
        let functions = self.functions.clone();
        let info = blocking(move || functions.update_code(&request.name, &zip)).await?;
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
        let request = request.into_inner();
        if request.invocation_type == InvocationType::Event as i32 {
            let request_id = self.queue.accept(request).await.map_err(invoke_status)?;
            return Ok(Response::new(InvokeResponse {
                request_id,
                status_code: 202,
                ..Default::default()
            }));
        }
        self.invoker
            .invoke_sync(request)
            .await
            .map(Response::new)
            .map_err(invoke_status)
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let name = request.into_inner().function_name;
        let letters = self.queue.dead_letters(&name).map_err(dead_letter_status)?;
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: letters.iter().map(dead_letters::to_proto).collect(),
        }))
    }

    async fn get_dead_letter(
        &self,
        request: Request<GetDeadLetterRequest>,
    ) -> Result<Response<DeadLetter>, Status> {
        let request = request.into_inner();
        let letter = self
            .queue
            .dead_letter(&request.function_name, &request.id)
            .map_err(dead_letter_status)?;
        Ok(Response::new(dead_letters::to_proto(&letter)))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let event_ids = self
            .queue
            .replay(&request.function_name, &request.ids, request.all)
            .await
            .map_err(dead_letter_status)?;
        Ok(Response::new(ReplayDeadLettersResponse { event_ids }))
    }

    async fn purge_dead_letters(
        &self,
        request: Request<PurgeDeadLettersRequest>,
    ) -> Result<Response<PurgeDeadLettersResponse>, Status> {
        let name = request.into_inner().function_name;
        let purged = self.queue.purge(&name).await.map_err(dead_letter_status)?;
        Ok(Response::new(PurgeDeadLettersResponse { purged }))
    }

    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        let request = request.into_inner();
        let name = request.function_name.clone();
        let functions = self.functions.clone();
        blocking(move || functions.get_record(&name)).await?;
        // Subscribe before reading history so nothing falls in between.
        let mut live = request.follow.then(|| self.logs.subscribe());
        let request_id = (!request.request_id.is_empty()).then_some(request.request_id.clone());
        let history = self
            .logs
            .history(
                &request.function_name,
                request.since_unix_ms,
                request_id.as_deref(),
            )
            .map_err(|e| Status::internal(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let to_event = |r: &crate::store::LogRecord| LogEvent {
                timestamp_unix_ms: r.timestamp_ms,
                function_name: r.function.clone(),
                request_id: r.request_id.clone(),
                version: r.version.clone(),
                text: r.text.clone(),
            };
            for record in &history {
                if tx.send(Ok(to_event(record))).await.is_err() {
                    return;
                }
            }
            let Some(live) = live.as_mut() else {
                return;
            };
            loop {
                match live.recv().await {
                    Ok(record) => {
                        let wanted = record.function == request.function_name
                            && request_id
                                .as_deref()
                                .is_none_or(|id| id == record.request_id);
                        if wanted && tx.send(Ok(to_event(&record))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        let note = LogEvent {
                            function_name: request.function_name.clone(),
                            text: format!(
                                "[kumo] follower fell behind; {missed} log records skipped\n"
                            ),
                            ..Default::default()
                        };
                        if tx.send(Ok(note)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn create_trigger(
        &self,
        request: Request<CreateTriggerRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        let info = self
            .triggers
            .create(request.into_inner())
            .await
            .map_err(trigger_status)?;
        Ok(Response::new(info))
    }

    async fn get_trigger(
        &self,
        request: Request<GetTriggerRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        let name = request.into_inner().name;
        let info = self.triggers.get(&name).map_err(trigger_status)?;
        Ok(Response::new(info))
    }

    async fn list_triggers(
        &self,
        _request: Request<ListTriggersRequest>,
    ) -> Result<Response<ListTriggersResponse>, Status> {
        let triggers = self.triggers.list().map_err(trigger_status)?;
        Ok(Response::new(ListTriggersResponse { triggers }))
    }

    async fn set_trigger_enabled(
        &self,
        request: Request<SetTriggerEnabledRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        let request = request.into_inner();
        let info = self
            .triggers
            .set_enabled(&request.name, request.enabled)
            .map_err(trigger_status)?;
        Ok(Response::new(info))
    }

    async fn delete_trigger(
        &self,
        request: Request<DeleteTriggerRequest>,
    ) -> Result<Response<DeleteTriggerResponse>, Status> {
        let name = request.into_inner().name;
        self.triggers.delete(&name).await.map_err(trigger_status)?;
        Ok(Response::new(DeleteTriggerResponse {}))
    }
}

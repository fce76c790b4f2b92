//! The client-facing gRPC service: maps each operation to its module and
//! each typed error to a precise gRPC status with a one-line message.

use std::pin::Pin;

use futures::Stream;
use kumo_proto::control::control_server::Control;
use kumo_proto::control::*;
use tonic::{Code, Request, Response, Status};

use crate::agents::DispatchError;
use crate::functions::{FunctionError, Functions};
use crate::invoke::{InvokeError, Invoker};
use crate::logs::Logs;
use crate::packages::PackageError;

/// The `kumo.control.v1.Control` implementation.
pub struct ControlService {
    functions: Functions,
    invoker: Invoker,
    logs: Logs,
}

impl ControlService {
    /// The service over its parts.
    pub fn new(functions: Functions, invoker: Invoker, logs: Logs) -> Self {
        Self {
            functions,
            invoker,
            logs,
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
        InvokeError::AsyncUnavailable => Code::Unimplemented,
        InvokeError::Dispatch(DispatchError::Timeout { .. }) => Code::DeadlineExceeded,
        InvokeError::Dispatch(_) => Code::Unavailable,
    };
    Status::new(code, err.to_string())
}

fn function_status_ref(err: &FunctionError, message: String) -> Status {
    let code = match err {
        FunctionError::NotFound { .. } => Code::NotFound,
        FunctionError::AlreadyExists { .. } => Code::AlreadyExists,
        FunctionError::Invalid(_) | FunctionError::Package(PackageError::Invalid(_)) => {
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
        let functions = self.functions.clone();
        let info = blocking(move || functions.create(config, &request.zip)).await?;
        tracing::info!(function = %info.function_arn, "function created");
        Ok(Response::new(info))
    }

    async fn update_function_code(
        &self,
        request: Request<UpdateFunctionCodeRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let request = request.into_inner();
        let functions = self.functions.clone();
        let info = blocking(move || functions.update_code(&request.name, &request.zip)).await?;
        Ok(Response::new(info))
    }

    async fn update_function_configuration(
        &self,
        request: Request<UpdateFunctionConfigurationRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let request = request.into_inner();
        let functions = self.functions.clone();
        let info = blocking(move || functions.update_configuration(request)).await?;
        Ok(Response::new(info))
    }

    async fn get_function(
        &self,
        request: Request<GetFunctionRequest>,
    ) -> Result<Response<FunctionInfo>, Status> {
        let name = request.into_inner().name;
        let functions = self.functions.clone();
        Ok(Response::new(blocking(move || functions.get(&name)).await?))
    }

    async fn list_functions(
        &self,
        _request: Request<ListFunctionsRequest>,
    ) -> Result<Response<ListFunctionsResponse>, Status> {
        let functions = self.functions.clone();
        let list = blocking(move || functions.list()).await?;
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
            .invoke(request.into_inner())
            .await
            .map(Response::new)
            .map_err(invoke_status)
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
}

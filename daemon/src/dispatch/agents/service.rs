//! The `AgentControl` gRPC service agents dial: `Attach` (registration,
//! invocations down; results, live log parts and heartbeats up) and
//! `FetchPackage`.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use kumo_proto::agent::agent_control_server::AgentControl;
use kumo_proto::agent::{
    agent_message, daemon_message, AgentMessage, DaemonMessage, FetchPackageRequest, PackageChunk,
    Registered,
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::AgentRegistry;
use crate::state::logs::Logs;
use crate::state::packages::{PackageError, PackageStore};

/// Bytes per `FetchPackage` chunk.
const CHUNK: usize = 1024 * 1024;

/// The gRPC service agents dial.
pub struct AgentService {
    registry: AgentRegistry,
    packages: PackageStore,
    logs: Logs,
}

impl AgentService {
    /// The service over a registry, the package blobs and the function
    /// logs (where live log parts go as they arrive).
    pub fn new(registry: AgentRegistry, packages: PackageStore, logs: Logs) -> Self {
        Self {
            registry,
            packages,
            logs,
        }
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
        let address = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
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
                heartbeat_interval_ms: self.registry.heartbeat_interval_ms(),
            })),
        };
        sender
            .send(Ok(ack))
            .await
            .map_err(|_| Status::internal("stream closed"))?;
        let session = match self
            .registry
            .register(register.clone(), address.clone(), sender)
        {
            Ok(session) => session,
            Err(duplicate) => {
                tracing::error!(agent_id = %register.agent_id, %address, attached = %duplicate.address,
                    "refused an agent: {duplicate}");
                return Err(Status::already_exists(duplicate.to_string()));
            }
        };
        tracing::info!(agent_id = %register.agent_id, hostname = %register.hostname, %address,
            memory_mb = register.allocatable_memory_mb, "agent attached");
        let agent_id = register.agent_id.clone();
        let registry = self.registry.clone();
        let logs = self.logs.clone();
        tokio::spawn(async move {
            while let Some(message) = inbound.next().await {
                match message.map(|m| m.body) {
                    Ok(Some(agent_message::Body::Result(result))) => {
                        registry.result(&agent_id, session, result);
                    }
                    Ok(Some(agent_message::Body::LogChunk(chunk))) => {
                        if let Some(record) = registry.live_log(&agent_id, session, chunk) {
                            logs.append(record);
                        }
                    }
                    Ok(Some(agent_message::Body::Heartbeat(heartbeat))) => {
                        registry.heartbeat(&agent_id, session, heartbeat);
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
            registry.deregister(&agent_id, session);
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

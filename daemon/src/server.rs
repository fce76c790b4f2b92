//! Starting kumod: open the store and blob directory, bind the gRPC and
//! HTTP listeners, and serve until shut down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kumo_proto::agent::agent_control_server::AgentControlServer;
use kumo_proto::control::control_server::ControlServer;
use kumo_proto::MAX_GRPC_MESSAGE_BYTES;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::agents::{AgentRegistry, AgentService};
use crate::async_queue::EventQueue;
use crate::concurrency::ConcurrencyLimiter;
use crate::config::DaemonConfig;
use crate::control_service::ControlService;
use crate::functions::{FunctionError, Functions};
use crate::http::HttpState;
use crate::invoke::Invoker;
use crate::logs::Logs;
use crate::packages::{PackageError, PackageStore};
use crate::s3::S3Profiles;
use crate::store::{SledStore, Store, StoreError};
use crate::triggers::registry::Triggers;
use crate::triggers::scheduler;
use crate::triggers::webhook::Webhook;

/// How long shutdown waits for open gRPC streams to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// kumod could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Function records could not be loaded.
    #[error(transparent)]
    Functions(#[from] FunctionError),
    /// The blob directory could not be opened.
    #[error(transparent)]
    Packages(#[from] PackageError),
    /// A listener could not be bound.
    #[error("binding {what} listener on {address}: {source}")]
    Bind {
        /// gRPC or HTTP.
        what: &'static str,
        /// The address.
        address: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// A running kumod.
pub struct DaemonHandle {
    /// Bound gRPC address.
    pub grpc_address: SocketAddr,
    /// Bound HTTP address.
    pub http_address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    queue: EventQueue,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    http: tokio::task::JoinHandle<()>,
    /// The schedule runner and the delivery-memory pruner.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl DaemonHandle {
    /// Stops serving and waits for the gRPC server to finish.
    pub async fn shutdown(mut self) -> Result<(), DaemonError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.http.abort();
        for task in self.background.drain(..) {
            task.abort();
            let _ = task.await;
        }
        self.queue.stop().await;
        // Graceful shutdown waits for open streams (attached agents, log
        // followers); give them a moment, then stop regardless.
        let abort = self.grpc.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.grpc).await {
            Ok(Ok(result)) => result.map_err(DaemonError::from),
            Ok(Err(_)) => Ok(()),
            Err(_) => {
                abort.abort();
                Ok(())
            }
        }
    }
}

/// Opens the state in `config.data_dir` and starts serving.
pub async fn start(config: &DaemonConfig) -> Result<DaemonHandle, DaemonError> {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&config.state_dir())?);
    let packages = PackageStore::open(config.package_dir())?;
    if config.concurrency_limit == 0 {
        return Err(DaemonError::InvalidConfig(
            "concurrency_limit must be at least 1 (default 1000)".into(),
        ));
    }
    let limiter = ConcurrencyLimiter::new(config.concurrency_limit);
    let functions = Functions::new(
        store.clone(),
        packages.clone(),
        config.region.clone(),
        config.account_id.clone(),
        limiter.clone(),
        S3Profiles::new(&config.s3),
    )?;
    let logs = Logs::new(store.clone(), config.max_log_records_per_function);
    let agents = AgentRegistry::new(Duration::from_secs(config.agent_wait_seconds));
    let invoker = Invoker::new(
        functions.clone(),
        agents.clone(),
        logs.clone(),
        limiter,
        Duration::from_secs(config.invoke_grace_seconds),
    );
    let queue =
        EventQueue::start(store.clone(), invoker.clone(), config.async_invoke.clone()).await?;
    let triggers = Triggers::new(
        store.clone(),
        functions.clone(),
        S3Profiles::new(&config.s3),
        config.region.clone(),
        config.account_id.clone(),
    );
    let webhook = Webhook::new(triggers.clone(), queue.clone(), &webhook_token(config)?);
    let background = vec![
        tokio::spawn(scheduler::run(
            triggers.clone(),
            queue.clone(),
            config.triggers.missed_fires,
        )),
        tokio::spawn(prune_deliveries(
            store,
            config.triggers.delivery_retention_hours,
        )),
    ];

    let grpc_listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| DaemonError::Bind {
                what: "gRPC",
                address: config.listen,
                source,
            })?;
    let grpc_address = grpc_listener
        .local_addr()
        .map_err(|source| DaemonError::Bind {
            what: "gRPC",
            address: config.listen,
            source,
        })?;
    let http_listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| DaemonError::Bind {
            what: "HTTP",
            address: config.http_listen,
            source,
        })?;
    let http_address = http_listener
        .local_addr()
        .map_err(|source| DaemonError::Bind {
            what: "HTTP",
            address: config.http_listen,
            source,
        })?;

    let control = ControlServer::new(ControlService::new(
        functions,
        invoker,
        queue.clone(),
        logs,
        triggers,
    ))
    .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let agent = AgentControlServer::new(AgentService::new(agents, packages))
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let (shutdown, stop) = oneshot::channel::<()>();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
    let grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(control)
            .add_service(agent)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop.await;
            }),
    );
    let http = tokio::spawn(crate::http::serve(
        http_listener,
        Arc::new(HttpState { webhook }),
    ));
    tracing::info!(grpc = %grpc_address, http = %http_address, data_dir = %config.data_dir.display(), "kumod serving");
    Ok(DaemonHandle {
        grpc_address,
        http_address,
        shutdown: Some(shutdown),
        queue,
        grpc,
        http,
        background,
    })
}

/// The MinIO webhook token: from its file when one is configured.
fn webhook_token(config: &DaemonConfig) -> Result<String, DaemonError> {
    match &config.triggers.minio_auth_token_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .map_err(|e| {
                DaemonError::InvalidConfig(format!(
                    "triggers.minio_auth_token_file {}: {e}",
                    path.display()
                ))
            }),
        None => Ok(config.triggers.minio_auth_token.clone()),
    }
}

/// Forgets delivered bucket events older than the retention, hourly.
async fn prune_deliveries(store: Arc<dyn Store>, retention_hours: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = chrono::Utc::now().timestamp_millis()
            - i64::try_from(retention_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.prune_deliveries(cutoff)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(pruned)) => tracing::debug!(pruned, "forgot old bucket deliveries"),
            Ok(Err(err)) => tracing::warn!(%err, "pruning bucket deliveries failed"),
            Err(err) => tracing::warn!(%err, "pruning task failed"),
        }
    }
}

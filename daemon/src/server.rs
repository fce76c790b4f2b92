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

use crate::api::control::{ControlParts, ControlService};
use crate::api::http::HttpState;
use crate::api::lambda::InvokeApi;
use crate::api::scrape::Scraper;
use crate::config::DaemonConfig;
use crate::dispatch::agents::{AgentRegistry, AgentService, DrainError};
use crate::dispatch::async_queue::EventQueue;
use crate::dispatch::concurrency::ConcurrencyLimiter;
use crate::dispatch::invoke::Invoker;
use crate::metrics::Metrics;
use crate::s3::S3Profiles;
use crate::sources::registry::Triggers;
use crate::sources::routes::Routes;
use crate::sources::scheduler;
use crate::sources::webhook::Webhook;
use crate::state::functions::{FunctionError, Functions};
use crate::state::layers::Layers;
use crate::state::logs::Logs;
use crate::state::packages::{PackageError, PackageStore};
use crate::state::store::{SledStore, Store, StoreError};
use crate::state::versions::Versions;

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
    /// The gRPC tokens could not be loaded.
    #[error(transparent)]
    Auth(#[from] crate::api::auth::AuthError),
    /// The TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] crate::api::tls::TlsError),
    /// The drained-node list could not be loaded.
    #[error(transparent)]
    DrainFile(#[from] DrainError),
    /// The console's session secret could not be set up.
    #[error(transparent)]
    Console(#[from] crate::api::console::SessionError),
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
    /// A join token accepted for this process's lifetime, for the agent
    /// embedded by `--all-in-one`.
    pub embedded_agent_token: String,
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
        // Wait for the aborted tasks to be dropped: they hold the store (and
        // the log writer, which releases it), and a restart on the same
        // data dir must find it free.
        self.http.abort();
        let _ = (&mut self.http).await;
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

/// Opens the state in `config.data_dir` and starts serving. The soft
/// `RLIMIT_NOFILE` is raised to the hard limit first (the HTTP connection
/// cap is sized from it).
pub async fn start(config: &DaemonConfig) -> Result<DaemonHandle, DaemonError> {
    let fd_limit = kumo_common::private_state::raise_fd_limit();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&config.state_dir())?);
    let packages = PackageStore::open(config.package_dir())?;
    let embedded_agent_token = crate::api::auth::generate_token();
    let tokens = crate::api::auth::Tokens::load(
        &config.auth,
        &config.data_dir,
        config.listen,
        &embedded_agent_token,
    )?;
    let tls = config.tls.server_config()?;
    config.validate().map_err(DaemonError::InvalidConfig)?;
    let limiter = ConcurrencyLimiter::new(config.concurrency_limit);
    let functions = Functions::new(
        store.clone(),
        packages.clone(),
        config.region.clone(),
        config.account_id.clone(),
        limiter.clone(),
        S3Profiles::new(&config.aws, &config.s3),
    )?;
    let logs = Logs::new(store.clone(), config.function_logs.clone());
    let agents = AgentRegistry::new(
        Duration::from_secs(config.agent_wait_seconds),
        config.agents.clone(),
        store.clone(),
        Some(&config.data_dir.join("drained-agents.json")),
    )?;
    let metrics = Metrics::default();
    let queue = EventQueue::open(
        store.clone(),
        functions.clone(),
        limiter.clone(),
        config.async_invoke.clone(),
    )
    .await?;
    let invoker = Invoker::new(
        functions.clone(),
        agents.clone(),
        logs.clone(),
        limiter.clone(),
        queue.clone(),
        Duration::from_secs(config.invoke_grace_seconds),
        metrics.clone(),
    );
    queue.start(invoker.clone());
    let routes = Routes::default();
    let triggers = Triggers::new(
        store.clone(),
        functions.clone(),
        S3Profiles::new(&config.aws, &config.s3),
        config.region.clone(),
        config.account_id.clone(),
        metrics.clone(),
        routes.clone(),
    )?;
    let triggers = triggers.with_sns_public_url(config.sns.public_url.clone());
    let sns = crate::sources::sns::endpoint::SnsEndpoint::new(
        routes.clone(),
        invoker.clone(),
        S3Profiles::new(&config.aws, &config.s3),
    );
    let webhook_counters = triggers.webhook_counters.clone();
    let queue_sources = triggers.queue_stats.clone();
    let webhook = Webhook::new(
        routes.clone(),
        webhook_counters.clone(),
        invoker.clone(),
        &webhook_token(config)?,
        config.webhooks.clone(),
        config.region.clone(),
    );
    let metrics_auth = crate::api::metrics_auth::MetricsAuth::load(
        &config.metrics,
        config.http_listen,
        &config.data_dir,
    )?;
    let management = crate::api::lambda::management::Management::new(
        functions.clone(),
        Versions::new(functions.clone()),
        Layers::new(functions.clone()),
        agents.clone(),
        config.invoke_api.code_s3_profile.clone(),
    );
    let invoke_api = InvokeApi::new(invoker.clone(), management, &config.invoke_api)
        .map_err(|e| DaemonError::InvalidConfig(e.to_string()))?;
    let test_events = crate::state::test_events::TestEvents::new(store.clone(), functions.clone());
    let background = vec![
        tokio::spawn(agents.clone().watch()),
        tokio::spawn(scheduler::run(
            triggers.clone(),
            invoker.clone(),
            config.triggers.missed_fires,
        )),
        tokio::spawn(crate::sources::sqs::run(
            triggers.clone(),
            invoker.clone(),
            queue_sources.clone(),
        )),
        tokio::spawn(prune_hourly(
            store,
            logs.clone(),
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

    let control_service = Arc::new(ControlService::new(ControlParts {
        versions: Versions::new(functions.clone()),
        layers: Layers::new(functions.clone()),
        functions: functions.clone(),
        invoker: invoker.clone(),
        limiter: limiter.clone(),
        queue: queue.clone(),
        logs: logs.clone(),
        triggers,
        agents: agents.clone(),
    }));
    let console = crate::api::console::Console {
        control: control_service.clone(),
        sessions: crate::api::console::Sessions::load(&config.data_dir, tokens.clone())?,
        series: metrics.series().clone(),
        test_events,
        functions: functions.clone(),
        body_timeout: Duration::from_secs(config.http.body_read_timeout_seconds),
    };
    let mut background = background;
    background.push(tokio::spawn(crate::api::console::sample_gauges(
        control_service.clone(),
        console.series.clone(),
        limiter.clone(),
    )));
    let control = ControlServer::from_arc(control_service)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let agent = AgentControlServer::new(AgentService::new(agents.clone(), packages, logs))
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ControlServer<ControlService>>()
        .await;
    health_reporter
        .set_serving::<AgentControlServer<AgentService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kumo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| DaemonError::InvalidConfig(format!("gRPC reflection: {e}")))?;
    let (shutdown, stop) = oneshot::channel::<()>();
    // tonic's own `tcp_nodelay` applies only to listeners it binds itself:
    // set it on every accepted connection here. Without it, Nagle's
    // algorithm holds small frames (an HTTP/2 WINDOW_UPDATE after each ~1 MB
    // an agent sends) behind the peer's 40 ms delayed ACK, which stalled one
    // call in every ~1,000.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
        |accepted| {
            accepted.inspect(|stream| {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%err, "setting TCP_NODELAY on a gRPC connection");
                }
            })
        },
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let grpc = tokio::spawn(
        builder
            .layer(crate::api::auth::AuthLayer::new(tokens))
            .add_service(health)
            .add_service(reflection)
            .add_service(control)
            .add_service(agent)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop.await;
            }),
    );
    let http = tokio::spawn(crate::api::http_listener::serve(
        http_listener,
        Arc::new(HttpState {
            webhook,
            sns,
            scraper: Scraper {
                functions,
                limiter,
                metrics,
                queue: queue.clone(),
                agents: agents.clone(),
                webhook: webhook_counters,
                queue_sources,
            },
            invoke_api,
            routes,
            invoker,
            account_id: config.account_id.clone(),
            body_timeout: Duration::from_secs(config.http.body_read_timeout_seconds),
            metrics_auth,
            console,
        }),
        config.http.clone(),
        fd_limit,
    ));
    tracing::info!(grpc = %grpc_address, http = %http_address, data_dir = %config.data_dir.display(), "kumod serving");
    Ok(DaemonHandle {
        grpc_address,
        http_address,
        embedded_agent_token,
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

/// Hourly: forgets delivered bucket events older than their retention and
/// applies the log retention to every function.
async fn prune_hourly(store: Arc<dyn Store>, logs: Logs, retention_hours: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let sweeper = logs.clone();
        match tokio::task::spawn_blocking(move || sweeper.sweep()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(dropped)) => tracing::debug!(dropped, "log records past their retention dropped"),
            Ok(Err(err)) => tracing::warn!(%err, "applying the log retention failed"),
            Err(err) => tracing::warn!(%err, "log retention task failed"),
        }
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

//! Running one agent node: prepare directories and the runtime bootstrap,
//! build the package cache and executor, and stay attached to kumod until
//! shutdown.

use std::sync::Arc;

use crate::config::AgentConfig;
use crate::connection::{self, GrpcPackageFetcher, Kumod, Registration};
use crate::executor::Executor;
use crate::package_cache::PackageCache;
use crate::sandbox::file_store::FileStore;

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A directory could not be created.
    #[error("creating directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The Python bootstrap could not be installed.
    #[error("installing the python3 bootstrap: {0}")]
    Bootstrap(String),
    /// The kumod URL is unusable.
    #[error(transparent)]
    Connection(#[from] connection::ConnectionError),
    /// The executor could not be built.
    #[error("starting the executor: {0}")]
    Executor(String),
    /// The file store could not be mounted.
    #[error("mounting the file store: {0}")]
    FileStore(String),
    /// The package cache could not be opened.
    #[error("opening the package cache: {0}")]
    Packages(String),
}

/// Runs the agent until `shutdown` resolves, then stops every instance.
pub async fn run(
    mut config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    config.resolve_machine_defaults();
    // The data dir is private (0700) whoever starts the agent; sandboxes
    // see package trees and the runtime through bind mounts, so only the
    // trees themselves need to be readable by instance uids.
    kumo_common::private_state::ensure_private_dir(&config.data_dir).map_err(|e| {
        AgentError::CreateDir {
            path: e.path.display().to_string(),
            source: e.source,
        }
    })?;
    let sandbox_dir = config.sandbox_dir();
    std::fs::create_dir_all(&sandbox_dir).map_err(|source| AgentError::CreateDir {
        path: sandbox_dir.display().to_string(),
        source,
    })?;
    // Before taking any work: clear what a killed predecessor left.
    let leftovers = crate::sandbox::SandboxSettings {
        init_program: Default::default(),
        init_args: Vec::new(),
        cgroup_parent: config.cgroup_parent.clone(),
        state_dir: config.sandbox_dir(),
        outbound: None,
    };
    let swept = tokio::task::spawn_blocking(move || {
        let swept = crate::sandbox::sweep_leftovers(&leftovers);
        // The default /tmp size's template, so no cold start runs mkfs.
        crate::sandbox::prepare_tmp_template(
            &leftovers,
            kumo_proto::model::DEFAULT_EPHEMERAL_STORAGE_MB,
        );
        swept
    })
    .await
    .unwrap_or_default();
    if swept != Default::default() {
        tracing::info!(
            cgroups = swept.cgroups,
            mounts = swept.mounts,
            loop_devices = swept.loop_devices,
            scratch = swept.scratch,
            "removed what a previous agent left behind"
        );
    }
    for failure in &swept.failures {
        tracing::warn!(%failure, "removing what a previous agent left behind");
    }
    // After the sweep (no sandbox of a predecessor uses the old store).
    let (data_dir, size_mb) = (config.data_dir.clone(), config.file_store_mb);
    let store = tokio::task::spawn_blocking(move || FileStore::mount(&data_dir, size_mb))
        .await
        .map_err(|e| AgentError::FileStore(e.to_string()))?
        .map_err(|e| AgentError::FileStore(e.to_string()))?;
    tracing::debug!(path = %store.mount_point().display(), backing = ?store.backing(),
        "file store mounted");
    let result = serve(config, shutdown).await;
    let _ = tokio::task::spawn_blocking(move || store.unmount()).await;
    result
}

/// Installs the runtime client, opens the package cache and serves kumod
/// until `shutdown` (the file store is mounted).
async fn serve(
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    crate::bootstrap::install(&config.runtime_dir())
        .map_err(|e| AgentError::Bootstrap(e.to_string()))?;
    // Once, before any instance starts: cache the compiled runtime client
    // (no cold start pays for it).
    let (dir, python) = (config.runtime_dir(), config.python_path.clone());
    let node = config.node_path.clone();
    let (python_version, node_version) = tokio::task::spawn_blocking(move || {
        crate::bootstrap::precompile_once(&dir, &python);
        (
            crate::bootstrap::python_version(&python),
            crate::bootstrap::node::node_major(&node),
        )
    })
    .await
    .unwrap_or_default();
    let token = config
        .join_token()
        .map_err(connection::ConnectionError::from)?;
    let kumod = Kumod::new(&config.server, &config.client_tls(), token.as_deref())?;
    let fetcher = Arc::new(GrpcPackageFetcher::new(kumod.clone()));
    let packages = PackageCache::new(config.package_dir(), fetcher, Default::default())
        .map_err(|e| AgentError::Packages(e.to_string()))?;
    let executor = Arc::new(
        Executor::new(&config, packages).map_err(|e| AgentError::Executor(e.to_string()))?,
    );
    let registration = Registration {
        agent_id: config.agent_id.clone(),
        hostname: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
        allocatable_memory_mb: config.allocatable_memory_mb,
        max_instances: config.max_instances,
        session_id: connection::new_session_id(),
        python_version,
        node_version,
    };
    tracing::info!(agent_id = %registration.agent_id, server = %config.server,
        allocatable_memory_mb = registration.allocatable_memory_mb, "agent starting");
    // Ready to take work (it attaches, and re-attaches, on its own).
    if let Err(err) = kumo_common::sd_notify::notify("READY=1") {
        tracing::warn!(%err, "telling systemd that the agent is ready failed");
    }
    connection::serve(kumod, registration, executor.clone(), shutdown).await;
    let _ = kumo_common::sd_notify::notify("STOPPING=1");
    executor.shutdown().await;
    Ok(())
}

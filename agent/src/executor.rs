//! Runs one invocation on this node: package → warm or cold instance →
//! invoke → keep or discard the instance. Never fails: every problem
//! becomes an `InvocationResult` the daemon can pass on.

use std::sync::Arc;
use std::time::Duration;

use kumo_proto::agent::{FunctionSpec, Invocation, InvocationResult, Outcome, WarmInstances};

use crate::config::AgentConfig;
use crate::instance::prewarmed::{self, BlankKind};
use crate::instance::{Instance, InstanceError, InstanceSettings};
use crate::invocation_log::LiveSink;
use crate::package_cache::{CodeDirs, PackageCache};
use crate::pool::{Acquired, Pool, PoolKey, PoolLimits, PoolStats, Pooled, Reservation};
use crate::prewarm::Prewarm;
use crate::sandbox::{NetworkMode, INIT_SUBCOMMAND};

/// How often idle instances are checked for expiry.
const REAP_INTERVAL: Duration = Duration::from_secs(1);

/// The executor could not be created.
#[derive(Debug, thiserror::Error)]
#[error("locating the sandbox init program (this executable): {0}")]
pub struct ExecutorError(#[from] std::io::Error);

/// Runs invocations on this node's instances.
pub struct Executor {
    settings: InstanceSettings,
    packages: PackageCache,
    pool: Arc<Pool>,
    agent_id: String,
    reaper: tokio::task::JoinHandle<()>,
    /// Pre-started sandboxes, one supply per kind and network mode whose
    /// count (`prewarm_python_instances`, `prewarm_node_instances`,
    /// `prewarm_python_outbound_instances`) is above 0.
    prewarms: Vec<Arc<Prewarm>>,
}

impl Executor {
    /// An executor whose sandboxes re-execute this very binary as their
    /// init. Must be called inside a tokio runtime (starts the idle reaper).
    pub fn new(config: &AgentConfig, packages: PackageCache) -> Result<Self, ExecutorError> {
        let init_program = std::env::current_exe()?;
        let settings =
            InstanceSettings::from_config(config, init_program, vec![INIT_SUBCOMMAND.into()]);
        let pool = Arc::new(Pool::new(PoolLimits {
            max_instances: config.max_instances,
            allocatable_memory_mb: config.allocatable_memory_mb,
            idle_timeout: Duration::from_secs(config.idle_timeout_seconds),
            uid_base: config.sandbox_uid_base,
            uid_count: config.sandbox_uid_count,
        }));
        let reaper = tokio::spawn(reap_idle(Arc::downgrade(&pool)));
        let prewarms = [
            (
                (BlankKind::Python, NetworkMode::None),
                config.prewarm_python_instances,
            ),
            (
                (BlankKind::Node, NetworkMode::None),
                config.prewarm_node_instances,
            ),
            (
                (BlankKind::Python, NetworkMode::Outbound),
                config.prewarm_python_outbound_instances,
            ),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(serves, count)| {
            Prewarm::start(settings.clone(), pool.clone(), serves, count as usize)
        })
        .collect();
        Ok(Self {
            settings,
            packages,
            pool,
            agent_id: config.agent_id.clone(),
            reaper,
            prewarms,
        })
    }

    /// Instance counters.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Idle warm instances per function version, for heartbeats.
    pub fn warm_instances(&self) -> Vec<WarmInstances> {
        self.pool
            .idle_counts()
            .into_iter()
            .map(|(key, idle)| WarmInstances {
                function: key.name,
                version: key.version,
                revision: key.revision,
                idle,
            })
            .collect()
    }

    /// Runs one invocation to its result, sending its log to `live` while
    /// it runs (the result then carries the rest).
    pub async fn execute(
        &self,
        invocation: Invocation,
        live: Option<Arc<dyn LiveSink>>,
    ) -> InvocationResult {
        let Some(function) = invocation.function.clone() else {
            return platform_error(
                &invocation,
                "Kumo.InvalidInvocation",
                "the invocation has no function".into(),
            );
        };
        let code = match self
            .packages
            .ensure_code(&function.package_digest, &function.layer_digests)
            .await
        {
            Ok(code) => code,
            Err(err) => return platform_error(&invocation, "Kumo.InvalidPackage", err.to_string()),
        };
        let key = PoolKey {
            name: function.name.clone(),
            version: function.version.clone(),
            revision: function.revision,
        };
        let mut pooled = match self.instance_for(&invocation, &function, &key, &code).await {
            Ok(pooled) => pooled,
            Err(result) => return result,
        };
        let mut result = pooled
            .instance
            .invoke_streaming(&invocation, live.clone())
            .await;
        if pooled.instance.exited_before_handover() {
            // A warm runtime exited while idle (e.g. Node's after reporting
            // an uncaught exception) and never took this event: run it on
            // another instance, once.
            if let Some(gone) = self.pool.release(key.clone(), pooled, false) {
                shutdown_all(vec![gone]);
            }
            pooled = match self.instance_for(&invocation, &function, &key, &code).await {
                Ok(pooled) => pooled,
                Err(result) => return result,
            };
            result = pooled.instance.invoke_streaming(&invocation, live).await;
        }
        result.invocation_id = invocation.invocation_id;
        result.request_id = invocation.request_id.clone();
        let reusable = pooled.instance.is_reusable();
        if let Some(after) = self.settings.idle_freeze_after.filter(|_| reusable) {
            pooled.instance.park(after);
        }
        if let Some(gone) = self.pool.release(key.clone(), pooled, reusable) {
            shutdown_all(vec![gone]);
        }
        result.idle_instances = self.pool.idle_count(&key);
        result
    }

    /// A warm instance of `key` (skipping any whose runtime has exited) or
    /// a cold-started one; a failure is the invocation's result.
    async fn instance_for(
        &self,
        invocation: &Invocation,
        function: &FunctionSpec,
        key: &PoolKey,
        code: &CodeDirs,
    ) -> Result<Pooled, InvocationResult> {
        loop {
            let (acquired, evicted) = self.pool.acquire(key, function.memory_mb);
            shutdown_all(evicted);
            return match acquired {
                Ok(Acquired::Warm(dead)) if dead.instance.has_exited() => {
                    if let Some(gone) = self.pool.release(key.clone(), *dead, false) {
                        shutdown_all(vec![gone]);
                    }
                    continue;
                }
                Ok(Acquired::Warm(pooled)) => Ok(*pooled),
                Ok(Acquired::Cold(reservation)) => self
                    .cold_start(function, code.clone(), reservation)
                    .await
                    .map_err(|err| {
                        platform_error(invocation, "Kumo.SandboxError", err.to_string())
                    }),
                Err(capacity) => Err(platform_error(
                    invocation,
                    "TooManyRequestsException",
                    format!("agent {}: {capacity}", self.agent_id),
                )),
            };
        }
    }

    /// Starts an instance in the capacity `reservation` holds: from a
    /// pre-started sandbox when one is ready and the function is eligible
    /// (the instance then runs as the sandbox's uid), otherwise from scratch.
    async fn cold_start(
        &self,
        function: &FunctionSpec,
        code: CodeDirs,
        reservation: Reservation,
    ) -> Result<Pooled, InstanceError> {
        let blank = prewarmed::eligible(function).and_then(|serves| {
            self.prewarms
                .iter()
                .find(|prewarm| prewarm.serves() == serves)
                .and_then(|prewarm| prewarm.take())
        });
        let (started, uid) = match blank {
            Some(blank) => {
                tracing::debug!(function = %function.name, "cold start from a pre-started sandbox");
                let uid = blank.uid;
                self.pool.give_back_uid(reservation.uid);
                let started =
                    Instance::start_from_blank(&self.settings, function, code, blank).await;
                (started, uid)
            }
            None => (
                Instance::start(&self.settings, function, code, reservation.uid).await,
                reservation.uid,
            ),
        };
        match started {
            Ok(instance) => Ok(Pooled { instance, uid }),
            Err(err) => {
                self.pool.cancel(Reservation { uid, ..reservation });
                Err(err)
            }
        }
    }

    /// Stops the reaper and shuts every idle and pre-started instance down.
    pub async fn shutdown(&self) {
        self.reaper.abort();
        for prewarm in &self.prewarms {
            prewarm.shutdown().await;
        }
        for pooled in self.pool.take_all_idle() {
            pooled.instance.shutdown().await;
        }
        crate::sandbox::remove_cgroup_parent(&self.settings.sandbox);
    }
}

fn shutdown_all(instances: Vec<Pooled>) {
    for pooled in instances {
        tokio::spawn(pooled.instance.shutdown());
    }
}

async fn reap_idle(pool: std::sync::Weak<Pool>) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let expired = pool.take_expired();
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "reclaiming idle instances");
        }
        shutdown_all(expired);
    }
}

/// A result for an invocation the platform could not run.
fn platform_error(invocation: &Invocation, error_type: &str, message: String) -> InvocationResult {
    tracing::warn!(request_id = %invocation.request_id, %error_type, %message, "invocation failed on the platform");
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    InvocationResult {
        invocation_id: invocation.invocation_id,
        request_id: invocation.request_id.clone(),
        outcome: Outcome::PlatformError as i32,
        payload: body.to_string().into_bytes(),
        error_type: error_type.to_string(),
        executed_version: invocation
            .function
            .as_ref()
            .map(|f| f.version.clone())
            .unwrap_or_default(),
        ..Default::default()
    }
}

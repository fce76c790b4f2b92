//! Instances started from pre-started ("blank") python3 sandboxes: the
//! sandbox, the interpreter and Kumo's runtime client are up before the
//! call arrives; a cold start only claims one (the package and `/tmp` are
//! mounted, the environment handed over) and imports the handler.
//!
//! Only functions the interpreter would start identically for are eligible:
//! the `python3` runtime, network mode `none` or `outbound`, and no user
//! variable the interpreter or the C library reads at start-up (`PYTHON*`,
//! `LD_*`, `LC_*`, `LANG`, `TZ`). Everything else starts the classic way.
//!
//! A blank is started in one network mode and serves only functions of
//! that mode. An `outbound` blank has its network namespace linked to the
//! bridge already (the ~10 ms of `ip` a classic outbound start pays); the
//! function's egress allow-list is applied to its link at the claim, before
//! the function's code runs.

use std::path::PathBuf;
use std::time::Instant;

use kumo_proto::agent::FunctionSpec;
use kumo_proto::model::{NetworkMode, Runtime};

use super::{environment, lambda, sanitize, Instance, InstanceError, InstanceSettings};
use crate::bootstrap;
use crate::sandbox::{ClaimSpec, Sandbox, SandboxSpec};

/// Memory limit of a blank sandbox until it is claimed (an idle interpreter
/// needs about 10 MB).
pub const BLANK_MEMORY_MB: u32 = 128;

/// Variables set at interpreter start-up that a blank already has.
const STARTUP_VARIABLES: &[&str] = &[
    "PATH",
    "LANG",
    "TZ",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// A pre-started python3 sandbox waiting for a function.
#[derive(Debug)]
pub struct Blank {
    sandbox: Sandbox,
    /// The uid its runtime runs as.
    pub uid: u32,
    /// The network mode it was started in.
    pub network: NetworkMode,
    uuid: String,
}

impl Blank {
    /// Whether its runtime is still waiting (not exited).
    pub fn is_alive(&self) -> bool {
        self.sandbox.exited().is_none()
    }

    /// Marks it idle: frozen `after` that long (the claim thaws it).
    pub fn park(&self, after: std::time::Duration) {
        self.sandbox.park(after);
    }

    /// Stops it and removes its cgroup.
    pub async fn destroy(self) {
        if let Err(err) = self.sandbox.destroy().await {
            tracing::warn!(%err, "destroying a pre-started sandbox");
        }
    }
}

/// The network mode of the blank `function` may start from, if it may
/// start from one.
pub fn eligible(function: &FunctionSpec) -> Option<NetworkMode> {
    let startup_variable = |key: &str| {
        ["PYTHON", "LD_", "LC_"].iter().any(|p| key.starts_with(p)) || key == "LANG" || key == "TZ"
    };
    let network = function.network.parse().ok()?;
    (function.runtime.parse() == Ok(Runtime::Python3)
        && matches!(network, NetworkMode::None | NetworkMode::Outbound)
        && !function.environment.keys().any(|k| startup_variable(k)))
    .then_some(network)
}

/// Starts a blank python3 sandbox in network mode `network` whose runtime
/// runs as `uid`.
pub async fn start_blank(
    settings: &InstanceSettings,
    uid: u32,
    network: NetworkMode,
) -> Result<Blank, InstanceError> {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let python = FunctionSpec {
        runtime: "python3".into(),
        ..Default::default()
    };
    let mut env: Vec<(String, String)> =
        environment::environment(settings, &python, Runtime::Python3, &uuid)
            .into_iter()
            .filter(|(k, _)| STARTUP_VARIABLES.contains(&k.as_str()))
            .collect();
    env.push(("KUMO_PREWARMED".into(), "1".into()));
    let spec = SandboxSpec {
        instance_id: format!("{}-blank", &uuid[..12]),
        argv: bootstrap::python_argv(&settings.python_path),
        env,
        task_dir: PathBuf::new(),
        runtime_dir: Some(settings.runtime_dir.clone()),
        memory_mb: BLANK_MEMORY_MB,
        tmp_size_mb: 0,
        max_processes: settings.max_processes,
        network,
        egress_allow: Vec::new(),
        uid,
        gid: uid,
        hostname: format!("kumo-{}", &uuid[..12]),
        deferred: true,
    };
    let sandbox = Sandbox::start(&settings.sandbox, spec)
        .await
        .map_err(|source| InstanceError::Sandbox {
            function: "(pre-started python3)".into(),
            source,
        })?;
    Ok(Blank {
        sandbox,
        uid,
        network,
        uuid,
    })
}

impl Instance {
    /// Cold-starts an instance of `function` by claiming `blank`; the
    /// instance runs as `blank.uid`.
    pub async fn start_from_blank(
        settings: &InstanceSettings,
        function: &FunctionSpec,
        task_dir: PathBuf,
        blank: Blank,
    ) -> Result<Instance, InstanceError> {
        let label = format!("{}:{}", function.name, function.version);
        let egress_allow =
            crate::sandbox::egress::parse_list(&function.egress_allow).map_err(|e| {
                InstanceError::InvalidSpec {
                    function: label.clone(),
                    reason: e.to_string(),
                }
            })?;
        let Blank { sandbox, uuid, .. } = blank;
        let mut env = environment::environment(settings, function, Runtime::Python3, &uuid);
        // A blank always has a private network (see `eligible`).
        env.push((
            lambda::RUNTIME_API_ENV.into(),
            lambda::RUNTIME_API_ADDRESS.to_string(),
        ));
        let assignment: serde_json::Map<String, serde_json::Value> = env
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let started = Instant::now();
        // Serve the Runtime API first: the runtime calls it right after
        // its assignment.
        let id = format!("{}-{}", &uuid[..12], sanitize(&function.name));
        let mut instance = Self::assemble(settings, function, id, sandbox, started).await?;
        let claimed = instance
            .sandbox
            .claim(ClaimSpec {
                task_dir,
                tmp_size_mb: function.ephemeral_storage_mb,
                blank_memory_mb: BLANK_MEMORY_MB,
                memory_mb: function.memory_mb,
                assignment: serde_json::Value::Object(assignment).to_string(),
                egress_allow,
            })
            .await;
        if let Err(source) = claimed {
            instance.shutdown().await;
            return Err(InstanceError::Sandbox {
                function: label,
                source,
            });
        }
        tracing::debug!(
            function = %function.name,
            claim_ms = started.elapsed().as_secs_f64() * 1e3,
            "claimed a pre-started sandbox"
        );
        Ok(instance)
    }
}

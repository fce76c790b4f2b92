//! Instances started from pre-started ("blank") python3 or Node.js
//! sandboxes: the sandbox, the interpreter and Kumo's runtime client are up
//! before the call arrives; a cold start only claims one (the package and
//! `/tmp` are mounted, the environment handed over) and imports the handler.
//!
//! Only functions the interpreter would start identically for are eligible:
//! a runtime with a Kumo bootstrap, network mode `none` or `outbound`, and
//! no user
//! variable the interpreter or the C library reads at start-up (`PYTHON*`
//! for python3, `NODE_*` and `UV_*` for Node.js, `LD_*`, `LC_*`, `LANG`,
//! `TZ`). Every `nodejsNN.x` shares one kind of blank: the client re-reads
//! `NODE_PATH` from its assignment. V8's heap limit is fixed when `node`
//! starts, so Node.js blanks start with the heap of a
//! [`NODE_BLANK_FUNCTION_MEMORY_MB`] function and serve only functions of
//! that size. Everything else starts the classic way.
//!
//! A blank is started in one network mode and serves only functions of
//! that mode. An `outbound` blank has its network namespace linked to the
//! bridge already (the `ip -batch` a classic outbound start pays); the
//! function's egress allow-list is applied to its link at the claim, before
//! the function's code runs.

use std::path::PathBuf;
use std::time::Instant;

use kumo_proto::agent::FunctionSpec;
use kumo_proto::model::{NetworkMode, NodeMajor, Runtime};

use super::{environment, lambda, sanitize, Instance, InstanceError, InstanceSettings};
use crate::bootstrap;
use crate::package_cache::CodeDirs;
use crate::sandbox::{ClaimSpec, Sandbox, SandboxSpec};

/// Memory limit of a blank sandbox until it is claimed (an idle Python
/// interpreter needs about 10 MB, an idle Node.js about 45 MB).
pub const BLANK_MEMORY_MB: u32 = 128;

/// The memory size (Lambda's default) of the functions a Node.js blank
/// serves: its V8 heap is sized for it at start.
pub const NODE_BLANK_FUNCTION_MEMORY_MB: u32 = 128;

/// Variables set at interpreter start-up that a blank already has.
const STARTUP_VARIABLES: &[&str] = &[
    "PATH",
    "LANG",
    "TZ",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "NODE_PATH",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Which runtime a blank sandbox has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlankKind {
    /// Kumo's Python bootstrap (`python3`).
    Python,
    /// Kumo's Node.js bootstrap (every `nodejsNN.x`).
    Node,
}

impl BlankKind {
    /// The runtime a blank of this kind is started as.
    fn runtime(self) -> Runtime {
        match self {
            BlankKind::Python => Runtime::Python3,
            BlankKind::Node => Runtime::Nodejs(NodeMajor::V20),
        }
    }

    /// Prefixes of the user variables its interpreter reads at start-up.
    fn startup_prefixes(self) -> &'static [&'static str] {
        match self {
            BlankKind::Python => &["PYTHON", "LD_", "LC_"],
            BlankKind::Node => &["NODE_", "UV_", "LD_", "LC_"],
        }
    }

    /// How it is named in logs and errors.
    pub fn label(self) -> &'static str {
        match self {
            BlankKind::Python => "python3",
            BlankKind::Node => "Node.js",
        }
    }
}

/// A pre-started sandbox waiting for a function.
#[derive(Debug)]
pub struct Blank {
    sandbox: Sandbox,
    /// The uid its runtime runs as.
    pub uid: u32,
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

/// The kind and network mode of the blank `function` may start from, if it
/// is eligible.
pub fn eligible(function: &FunctionSpec) -> Option<(BlankKind, NetworkMode)> {
    let kind = match function.runtime.parse() {
        Ok(Runtime::Python3) => BlankKind::Python,
        Ok(Runtime::Nodejs(_)) => BlankKind::Node,
        _ => return None,
    };
    let startup_variable = |key: &str| {
        kind.startup_prefixes().iter().any(|p| key.starts_with(p)) || key == "LANG" || key == "TZ"
    };
    let heap_fits = kind != BlankKind::Node || function.memory_mb == NODE_BLANK_FUNCTION_MEMORY_MB;
    let network = function.network.parse().ok()?;
    (matches!(network, NetworkMode::None | NetworkMode::Outbound)
        && heap_fits
        && !function.environment.keys().any(|k| startup_variable(k)))
    .then_some((kind, network))
}

/// Starts a blank sandbox of `kind` in network mode `network` whose
/// runtime runs as `uid`.
pub async fn start_blank(
    settings: &InstanceSettings,
    (kind, network): (BlankKind, NetworkMode),
    uid: u32,
) -> Result<Blank, InstanceError> {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let runtime = kind.runtime();
    let blank_function = FunctionSpec {
        runtime: runtime.as_str().into(),
        ..Default::default()
    };
    let mut env: Vec<(String, String)> =
        environment::environment(settings, &blank_function, runtime, &uuid)
            .into_iter()
            .filter(|(k, _)| STARTUP_VARIABLES.contains(&k.as_str()))
            .collect();
    env.push(("KUMO_PREWARMED".into(), "1".into()));
    let argv = match kind {
        BlankKind::Python => bootstrap::python_argv(&settings.python_path),
        BlankKind::Node => {
            bootstrap::node::node_argv(&settings.node_path, NODE_BLANK_FUNCTION_MEMORY_MB)
        }
    };
    let spec = SandboxSpec {
        instance_id: format!("{}-blank", &uuid[..12]),
        argv,
        env,
        task_dir: PathBuf::new(),
        opt_dir: None,
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
            function: format!("(pre-started {})", kind.label()),
            source,
        })?;
    Ok(Blank { sandbox, uid, uuid })
}

impl Instance {
    /// Cold-starts an instance of `function` (its package and layers at
    /// `code`) by claiming `blank`; the instance runs as `blank.uid`.
    pub async fn start_from_blank(
        settings: &InstanceSettings,
        function: &FunctionSpec,
        code: CodeDirs,
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
        let runtime: Runtime =
            function
                .runtime
                .parse()
                .map_err(|e| InstanceError::InvalidSpec {
                    function: label.clone(),
                    reason: format!("{e}"),
                })?;
        let mut env = environment::environment(settings, function, runtime, &uuid);
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
                task_dir: code.task,
                opt_dir: code.opt,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn function(runtime: &str, network: &str, variables: &[(&str, &str)]) -> FunctionSpec {
        FunctionSpec {
            runtime: runtime.into(),
            network: network.into(),
            memory_mb: 128,
            environment: variables
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn each_bootstrap_runtime_has_its_kind_and_start_up_variables_opt_out() {
        let none = NetworkMode::None;
        assert_eq!(
            eligible(&function("python3", "none", &[])),
            Some((BlankKind::Python, none))
        );
        for node in ["nodejs18.x", "nodejs20.x", "nodejs22.x"] {
            assert_eq!(
                eligible(&function(node, "none", &[])),
                Some((BlankKind::Node, none))
            );
        }
        assert_eq!(eligible(&function("provided", "none", &[])), None);
        // Blanks serve functions of their own network mode; `host` never.
        assert_eq!(
            eligible(&function("python3", "outbound", &[])),
            Some((BlankKind::Python, NetworkMode::Outbound))
        );
        assert_eq!(eligible(&function("python3", "host", &[])), None);
        // A Node.js blank's heap is sized for 128 MB functions only.
        let bigger = FunctionSpec {
            memory_mb: 256,
            ..function("nodejs20.x", "none", &[])
        };
        assert_eq!(eligible(&bigger), None);
        let python = FunctionSpec {
            memory_mb: 256,
            ..function("python3", "none", &[])
        };
        assert_eq!(eligible(&python), Some((BlankKind::Python, none)));
        for variable in ["NODE_OPTIONS", "UV_THREADPOOL_SIZE", "LD_PRELOAD", "TZ"] {
            let spec = function("nodejs20.x", "none", &[(variable, "x")]);
            assert_eq!(eligible(&spec), None, "{variable}");
        }
        // Another runtime's start-up variables do not matter.
        let python_var = function("nodejs20.x", "none", &[("PYTHONHASHSEED", "1")]);
        assert_eq!(eligible(&python_var), Some((BlankKind::Node, none)));
        let node_var = function("python3", "none", &[("NODE_OPTIONS", "x")]);
        assert_eq!(eligible(&node_var), Some((BlankKind::Python, none)));
    }
}

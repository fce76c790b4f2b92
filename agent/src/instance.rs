//! One function instance: a runtime process in a [`Sandbox`], served the
//! Runtime API ([`RuntimeApi`]), its output captured per invocation
//! ([`OutputCapture`]), reused warm until something goes wrong.
//!
//! Semantics (docs/wire-formats.md §1 and §3): the first invocation waits
//! for the runtime to initialise (reach `/next`) within the init timeout; an
//! init error, a timeout or a runtime exit discards the instance; a function
//! error does not. Output written outside an invocation (during init or
//! between invocations) is reported before the next invocation's `START`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kumo_proto::agent::{FunctionSpec, Invocation, InvocationResult, Outcome};
use kumo_proto::model::{NetworkMode, Runtime};

use crate::bootstrap;
use crate::config::AgentConfig;
use crate::invocation_log::{self, LiveSink, OutputCapture, Report};
use crate::package_cache::CodeDirs;
use crate::runtime_api::{self, PendingInvocation, RuntimeApi};
use crate::sandbox::{Sandbox, SandboxError, SandboxSettings, SandboxSpec};
use ending::{classify, error_json, Circumstances, Ending};

mod ending;
mod environment;
pub mod lambda;
pub mod prewarmed;

/// Agent-wide settings every instance is started with.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    /// How sandboxes are started.
    pub sandbox: SandboxSettings,
    /// Interpreter of the `python3` runtime (path inside the sandbox).
    pub python_path: PathBuf,
    /// `AWS_EXECUTION_ENV` of the `python3` runtime.
    pub python_execution_env: String,
    /// The host's site-packages on the `python3` runtime's `sys.path`
    /// unless the function says otherwise.
    pub python_host_site_packages: bool,
    /// The `node` binary of the `nodejsNN.x` runtimes (path inside the
    /// sandbox).
    pub node_path: PathBuf,
    /// Host directory holding the bootstraps, mounted at `/var/runtime`.
    pub runtime_dir: PathBuf,
    /// `AWS_REGION` reported to functions.
    pub region: String,
    /// How long a cold start may take until the runtime asks for work.
    pub init_timeout: Duration,
    /// Largest number of processes/threads in one instance.
    pub max_processes: u32,
    /// Cap on one invocation's captured output.
    pub max_log_bytes: usize,
    /// Idle instances and blanks are frozen after this delay (`None`: never).
    pub idle_freeze_after: Option<Duration>,
}

impl InstanceSettings {
    /// Settings from the agent configuration; `init_program`/`init_args`
    /// start the sandbox init (normally this binary and
    /// [`crate::sandbox::INIT_SUBCOMMAND`]).
    pub fn from_config(
        config: &AgentConfig,
        init_program: PathBuf,
        init_args: Vec<String>,
    ) -> Self {
        let outbound = config.outbound_network();
        if let Some(network) = &outbound {
            network.sweep_leftovers();
        }
        Self {
            sandbox: SandboxSettings {
                init_program,
                init_args,
                cgroup_parent: config.cgroup_parent.clone(),
                state_dir: config.sandbox_dir(),
                outbound,
            },
            python_path: config.python_path.clone(),
            python_execution_env: config.python_execution_env.clone(),
            node_path: config.node_path.clone(),
            python_host_site_packages: config.python_host_site_packages,
            runtime_dir: config.runtime_dir(),
            region: config.region.clone(),
            init_timeout: Duration::from_secs(config.init_timeout_seconds.max(1)),
            max_processes: config.max_processes,
            max_log_bytes: config.max_log_bytes_per_invocation,
            idle_freeze_after: (config.idle_freeze_ms > 0)
                .then(|| Duration::from_millis(config.idle_freeze_ms)),
        }
    }
}

/// An instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The function specification cannot be run.
    #[error("starting an instance of {function}: {reason}")]
    InvalidSpec {
        /// Function name and version.
        function: String,
        /// What is wrong.
        reason: String,
    },
    /// The sandbox failed to start.
    #[error("starting the sandbox of {function}: {source}")]
    Sandbox {
        /// Function name and version.
        function: String,
        /// The sandbox's error.
        #[source]
        source: SandboxError,
    },
    /// The Runtime API or output capture could not be set up.
    #[error("wiring up the sandbox of {function}: {reason}")]
    Wiring {
        /// Function name and version.
        function: String,
        /// What failed.
        reason: String,
    },
}

/// A running, possibly warm, function instance.
#[derive(Debug)]
pub struct Instance {
    id: String,
    function: FunctionSpec,
    sandbox: Sandbox,
    api: RuntimeApi,
    output: Arc<OutputCapture>,
    started: Instant,
    init_timeout: Duration,
    initialized: bool,
    reusable: bool,
    exited_before_handover: bool,
    last_used: Instant,
}

impl Instance {
    /// Cold-starts an instance of `function` with its package and layers
    /// unpacked at `code`, running as `uid`/`uid`.
    pub async fn start(
        settings: &InstanceSettings,
        function: &FunctionSpec,
        code: CodeDirs,
        uid: u32,
    ) -> Result<Instance, InstanceError> {
        let label = format!("{}:{}", function.name, function.version);
        let invalid = |reason: String| InstanceError::InvalidSpec {
            function: label.clone(),
            reason,
        };
        let runtime: Runtime = function
            .runtime
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        let network: NetworkMode = function
            .network
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{}-{}", &uuid[..12], sanitize(&function.name));
        let argv = match runtime {
            Runtime::Python3 => bootstrap::python_argv(&settings.python_path),
            Runtime::Nodejs(_) => {
                bootstrap::node::node_argv(&settings.node_path, function.memory_mb)
            }
            Runtime::Provided => vec![provided_bootstrap(&code)],
        };
        let spec = SandboxSpec {
            instance_id: id.clone(),
            argv,
            env: environment::environment(settings, function, runtime, &uuid),
            task_dir: code.task,
            opt_dir: code.opt,
            runtime_dir: runtime
                .has_kumo_bootstrap()
                .then(|| settings.runtime_dir.clone()),
            memory_mb: function.memory_mb,
            tmp_size_mb: function.ephemeral_storage_mb,
            max_processes: settings.max_processes,
            network,
            egress_allow: crate::sandbox::egress::parse_list(&function.egress_allow)
                .map_err(|e| invalid(e.to_string()))?,
            uid,
            gid: uid,
            hostname: format!("kumo-{}", &uuid[..12]),
            deferred: false,
        };
        let started = Instant::now();
        let sandbox = Sandbox::start(&settings.sandbox, spec)
            .await
            .map_err(|source| InstanceError::Sandbox {
                function: label.clone(),
                source,
            })?;
        Self::assemble(settings, function, id, sandbox, started).await
    }

    /// Serves the Runtime API on a started sandbox and captures its output.
    async fn assemble(
        settings: &InstanceSettings,
        function: &FunctionSpec,
        id: String,
        mut sandbox: Sandbox,
        started: Instant,
    ) -> Result<Instance, InstanceError> {
        let wiring = |reason: String| InstanceError::Wiring {
            function: format!("{}:{}", function.name, function.version),
            reason,
        };
        let wired = (|| {
            let listener = sandbox
                .take_runtime_api_listener()
                .ok_or_else(|| wiring("the sandbox gave no Runtime API listener".into()))?;
            let pipe = sandbox
                .take_output()
                .ok_or_else(|| wiring("the sandbox gave no output pipe".into()))?;
            let api = RuntimeApi::serve_to(listener, sandbox.endpoint_peer_uid())
                .map_err(|e| wiring(e.to_string()))?;
            let output = Arc::new(
                OutputCapture::start(pipe, settings.max_log_bytes)
                    .map_err(|e| wiring(e.to_string()))?,
            );
            // Output written before the runtime receives an event belongs
            // before that event's START line.
            let marker = output.clone();
            api.on_handover(Box::new(move || marker.mark_start()));
            Ok((api, output))
        })();
        let (api, output) = match wired {
            Ok(parts) => parts,
            Err(e) => {
                if let Err(destroy) = sandbox.destroy().await {
                    tracing::warn!(error = %destroy, instance = %id, "destroying a half-started sandbox");
                }
                return Err(e);
            }
        };
        Ok(Instance {
            id,
            function: function.clone(),
            sandbox,
            api,
            output,
            started,
            init_timeout: settings.init_timeout,
            initialized: false,
            reusable: true,
            exited_before_handover: false,
            last_used: Instant::now(),
        })
    }

    /// Runs one invocation and reports it completely (outcome, payload,
    /// log START…REPORT, durations, memory). Never fails: problems become
    /// the result's outcome, and make the instance non-reusable.
    pub async fn invoke(&mut self, invocation: &Invocation) -> InvocationResult {
        self.invoke_streaming(invocation, None).await
    }

    /// [`invoke`](Self::invoke), sending the log to `live` while the
    /// invocation runs (see [`invocation_log::OutputCapture`]); the result's
    /// log is then what was not sent live.
    pub async fn invoke_streaming(
        &mut self,
        invocation: &Invocation,
        live: Option<Arc<dyn LiveSink>>,
    ) -> InvocationResult {
        let request_id = invocation.request_id.as_str();
        let invoked = Instant::now();
        if !self.reusable {
            return self.platform_error(invocation, "this instance can no longer be used");
        }
        if let Some(sink) = live {
            let start = invocation_log::start_line(request_id, &self.function.version);
            self.output.stream_next(start, sink);
        }
        self.sandbox.unpark();
        let timeout = Duration::from_secs(u64::from(self.function.timeout_seconds.max(1)));
        let mut reply = self.api.deliver(PendingInvocation {
            request_id: invocation.request_id.clone(),
            payload: Bytes::copy_from_slice(&invocation.payload),
            timeout,
            invoked_function_arn: if invocation.invoked_function_arn.is_empty() {
                self.function.function_arn.clone()
            } else {
                invocation.invoked_function_arn.clone()
            },
            trace_id: if invocation.trace_id.is_empty() {
                runtime_api::generate_trace_id()
            } else {
                invocation.trace_id.clone()
            },
            client_context: non_empty(&invocation.client_context),
            cognito_identity: non_empty(&invocation.cognito_identity),
        });

        let was_warm = self.initialized;
        let mut init_duration = None;
        let mut early = None;
        if !self.initialized {
            let init_deadline = tokio::time::Instant::from_std(self.started + self.init_timeout);
            early = tokio::select! {
                biased;
                r = &mut reply => Some(r.map_or(Ending::ReplyLost, Ending::Reply)),
                () = self.api.next_requested() => None,
                exit = self.sandbox.wait_exit() => Some(Ending::Exit(exit)),
                () = tokio::time::sleep_until(init_deadline) => Some(Ending::InitTimeout),
            };
            // A cold start reports its init time, also when init failed.
            init_duration = Some(self.started.elapsed());
            self.initialized = early.is_none() || self.api.has_requested_next();
        }
        // Until the hand-over time is known, now is within microseconds of it.
        let approx_start = if self.initialized {
            Instant::now()
        } else {
            invoked
        };
        let ending = match early {
            Some(ending) => ending,
            None => {
                let deadline = tokio::time::Instant::from_std(approx_start + timeout);
                tokio::select! {
                    biased;
                    r = &mut reply => r.map_or(Ending::ReplyLost, Ending::Reply),
                    exit = self.sandbox.wait_exit() => Ending::Exit(exit),
                    () = tokio::time::sleep_until(deadline) => Ending::Timeout,
                }
            }
        };
        // A reply racing the process exit wins: the runtime posted it first.
        let ending = match ending {
            Ending::Exit(exit) => match reply.try_recv() {
                Ok(r) => Ending::Reply(r),
                Err(_) => Ending::Exit(exit),
            },
            other => other,
        };
        let handed_over = self.api.last_handover().filter(|at| *at >= invoked);
        self.exited_before_handover =
            was_warm && handed_over.is_none() && matches!(ending, Ending::Exit(_));
        let run_start = handed_over.unwrap_or(approx_start);
        let duration = run_start.elapsed();
        if matches!(ending, Ending::Timeout | Ending::InitTimeout) {
            self.sandbox.kill();
        }
        self.last_used = Instant::now();
        self.finish(
            invocation,
            request_id,
            ending,
            duration,
            init_duration,
            timeout,
        )
    }

    fn finish(
        &mut self,
        invocation: &Invocation,
        request_id: &str,
        ending: Ending,
        duration: Duration,
        init_duration: Option<Duration>,
        timeout: Duration,
    ) -> InvocationResult {
        let class = classify(
            ending,
            Circumstances {
                request_id,
                initialized: self.initialized,
                oom_killed: self.sandbox.oom_killed(),
                timeout,
                init_timeout: self.init_timeout,
            },
        );
        self.reusable &= class.reusable;
        let timed_out_line = class
            .timed_out_after
            .map(|seconds| invocation_log::timeout_line(SystemTime::now(), request_id, seconds));
        let captured = self.output.take();
        let max_memory_used_mb = self
            .sandbox
            .max_memory_used_bytes()
            .unwrap_or(0)
            .div_ceil(1024 * 1024);
        let duration_ms = duration.as_secs_f64() * 1000.0;
        let init_duration_ms = init_duration.map(|d| d.as_secs_f64() * 1000.0);
        let log = invocation_log::frame(
            &captured,
            &self.function.version,
            timed_out_line.as_deref(),
            &Report {
                request_id,
                duration_ms,
                memory_size_mb: self.function.memory_mb,
                max_memory_used_mb,
                init_duration_ms,
                status: class.status,
            },
        );
        let log_tail = if invocation.log_tail {
            invocation_log::tail(&log)
        } else {
            String::new()
        };
        InvocationResult {
            invocation_id: invocation.invocation_id,
            request_id: invocation.request_id.clone(),
            outcome: class.outcome as i32,
            payload: class.payload.into(),
            error_type: class.error_type,
            log: invocation_log::unsent(log, captured.streamed),
            log_tail,
            duration_ms,
            init_duration_ms,
            max_memory_used_mb,
            executed_version: self.function.version.clone(),
            idle_instances: 0,
        }
    }

    fn platform_error(&self, invocation: &Invocation, reason: &str) -> InvocationResult {
        let message = format!("RequestId: {} Error: {reason}", invocation.request_id);
        InvocationResult {
            invocation_id: invocation.invocation_id,
            request_id: invocation.request_id.clone(),
            outcome: Outcome::PlatformError as i32,
            payload: error_json("Runtime.Unknown", &message).into(),
            error_type: "Runtime.Unknown".into(),
            executed_version: self.function.version.clone(),
            ..Default::default()
        }
    }

    /// Marks the instance idle: it is frozen `after` that long unless an
    /// invocation comes first (which thaws it).
    pub fn park(&self, after: Duration) {
        self.sandbox.park(after);
    }

    /// Whether the instance's sandbox is frozen now.
    pub fn is_frozen(&self) -> bool {
        self.sandbox.is_frozen()
    }

    /// Whether the last invocation found the (warm) runtime exited before
    /// it took the event: the event never ran and may run elsewhere.
    pub fn exited_before_handover(&self) -> bool {
        self.exited_before_handover
    }

    /// Whether its runtime process has exited.
    pub fn has_exited(&self) -> bool {
        self.sandbox.exited().is_some()
    }

    /// Whether the instance may serve another invocation.
    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Configured memory of the instance in MB.
    pub fn memory_mb(&self) -> u32 {
        self.function.memory_mb
    }

    /// When the instance last finished an invocation (or started).
    pub fn last_used(&self) -> Instant {
        self.last_used
    }

    /// The function version this instance runs.
    pub fn function(&self) -> &FunctionSpec {
        &self.function
    }

    /// Unique id of this instance (also its sandbox's id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops serving, destroys the sandbox and reports any cleanup problem
    /// to the log.
    pub async fn shutdown(self) {
        let Instance {
            id,
            sandbox,
            api,
            output,
            ..
        } = self;
        drop(api);
        drop(output);
        if let Err(e) = sandbox.destroy().await {
            tracing::warn!(error = %e, instance = %id, "destroying sandbox");
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A name fragment safe for cgroup and directory names.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect()
}

/// The `provided` runtime's entry point: the package's `bootstrap`, else a
/// layer's (`/opt/bootstrap`), as on Lambda (kumod checked that one exists).
fn provided_bootstrap(code: &CodeDirs) -> String {
    let bootstrap = kumo_proto::model::PROVIDED_BOOTSTRAP;
    let in_layers = code
        .opt
        .as_ref()
        .is_some_and(|opt| opt.join(bootstrap).exists());
    if in_layers && !code.task.join(bootstrap).exists() {
        format!("/opt/{bootstrap}")
    } else {
        format!("/var/task/{bootstrap}")
    }
}

//! Sandboxes: one runtime process tree per function instance, isolated by
//! namespaces (pid, mount, uts, ipc, and net unless the function uses the
//! host network), limited by a cgroup (memory without swap, CPU weight
//! proportional to memory, process count), with a minimal read-only root,
//! the package read-only at `/var/task`, a private size-limited `/tmp`, a
//! fresh `/proc`, a minimal `/dev`, an unprivileged uid and `no_new_privs`.
//! The runtime holds no capabilities at all (bounding, ambient, permitted,
//! effective and inheritable sets empty, securebits locked) and runs under
//! a seccomp filter that denies what a function never needs: mounts,
//! tracing, kernel modules, keyrings, BPF, new namespaces, host clock and
//! names, and foreign or x32 system calls (see `seccomp`).
//!
//! Layers (see docs/architecture.md):
//!
//! - the synchronous core — every module here except `supervisor`: the
//!   init process (`init`), root filesystem (`rootfs`), capabilities,
//!   seccomp, cgroup, claim, the control channel, typed init errors, the
//!   `Teardown` (`teardown`) all clean-up paths share, and the `syscall`
//!   seam through which rootfs and capability decisions are unit-tested
//!   without root. No tokio here.
//! - the asynchronous supervisor (`supervisor`): spawns the init, runs the
//!   start handshake, watches for the runtime's exit, claims blank sandboxes.
//! - nothing Lambda-specific: what the runtime is served, where and under
//!   which variable it learns the address, is an [`Endpoint`] the instance
//!   layer (`crate::instance`) passes in.
//!
//! `unsafe` code is allowed only in the core modules that make raw system
//! calls, and in the supervisor's one tokio registration; each block says
//! why it is sound.

#[allow(unsafe_code)]
mod capabilities;
mod cgroup;
pub use kumo_proto::egress;
#[allow(unsafe_code)]
mod channel;
#[allow(unsafe_code)]
mod claim;
pub mod file_store;
mod freezer;
#[allow(unsafe_code)]
mod init;
mod init_error;
#[allow(unsafe_code)]
mod net;
pub mod outbound;
mod rootfs;
#[allow(unsafe_code)]
mod seccomp;
mod spec;
mod supervisor;
#[allow(unsafe_code)]
mod sweep;
mod syscall;
mod teardown;
#[allow(unsafe_code)]
mod tmp_disk;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use claim::ClaimSpec;
pub use kumo_proto::model::NetworkMode;
pub use supervisor::Sandbox;
pub use sweep::Swept;

/// Agent-wide sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Executable started as the sandbox init process (normally the running
    /// binary itself, `/proc/self/exe`).
    pub init_program: PathBuf,
    /// Arguments that make `init_program` run [`init_main`] (the hidden
    /// subcommand, [`INIT_SUBCOMMAND`]).
    pub init_args: Vec<String>,
    /// Name of the cgroup under which every instance gets its own cgroup.
    pub cgroup_parent: String,
    /// Directory for per-instance scratch directories (new root mount points).
    pub state_dir: PathBuf,
    /// The bridge and rules of the `outbound` network mode (`None`: the
    /// mode is refused).
    pub outbound: Option<std::sync::Arc<outbound::Outbound>>,
}

/// The hidden subcommand under which kumod/kumo-agent run as sandbox init.
pub const INIT_SUBCOMMAND: &str = "__kumo-sandbox-init";

/// What to run in one sandbox and with which limits.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Unique id, used for the cgroup and scratch directory names.
    pub instance_id: String,
    /// Program and arguments, paths as seen inside the sandbox.
    pub argv: Vec<String>,
    /// The complete environment of the runtime process, except the
    /// [`Endpoint`]'s variable, which the sandbox adds itself.
    pub env: Vec<(String, String)>,
    /// Host directory mounted read-only at `/var/task`.
    pub task_dir: PathBuf,
    /// Host directory mounted read-only at `/opt` (the function's layers),
    /// if any; otherwise `/opt` is an empty directory.
    pub opt_dir: Option<PathBuf>,
    /// Host directory mounted read-only at `/var/runtime`, if any.
    pub runtime_dir: Option<PathBuf>,
    /// Memory limit (no swap) in MB.
    pub memory_mb: u32,
    /// Size of the private `/tmp` in MB.
    pub tmp_size_mb: u32,
    /// Largest number of processes/threads.
    pub max_processes: u32,
    /// Network namespace mode.
    pub network: NetworkMode,
    /// With [`NetworkMode::Outbound`]: the destinations the instance may
    /// reach (empty: anything but the host and the metadata address).
    pub egress_allow: Vec<egress::EgressRule>,
    /// Unprivileged uid and gid the runtime runs as.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Hostname inside the sandbox.
    pub hostname: String,
    /// Start blank, to be claimed later with [`Sandbox::claim`]: `/var/task`
    /// and `/tmp` stay empty (`task_dir` and `tmp_size_mb` are ignored) and
    /// the runtime waits for its assignment on stdin.
    pub deferred: bool,
}

/// How the runtime process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeExit {
    /// Exited with this status code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl std::fmt::Display for RuntimeExit {
    /// Go-style wording as Lambda reports it: `exit status 1`, `signal: killed`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeExit::Exited(code) => write!(f, "exit status {code}"),
            RuntimeExit::Signaled(9) => f.write_str("signal: killed"),
            RuntimeExit::Signaled(sig) => write!(f, "signal: {sig}"),
        }
    }
}

/// A sandbox failed to start or to be cleaned up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A cgroup operation failed.
    #[error("cgroup {op} {path}: {message}")]
    Cgroup {
        /// What was being done.
        op: &'static str,
        /// The cgroup (relative to the hierarchy root).
        path: String,
        /// The underlying error.
        message: String,
    },
    /// A host-side set-up step failed.
    #[error("sandbox {instance}: {step}: {source}")]
    Host {
        /// The instance id.
        instance: String,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Clean-up left something behind (every failure, `; `-separated).
    #[error("sandbox {instance}: clean-up: {failures}")]
    Teardown {
        /// The instance id.
        instance: String,
        /// What failed, each naming the step and path.
        failures: String,
    },
    /// The init process reported a failure (mount, exec, ...).
    #[error("sandbox {instance}: {message}")]
    Init {
        /// The instance id.
        instance: String,
        /// The init's own description, naming the step and path.
        message: String,
    },
}

/// An endpoint the agent serves the runtime over TCP (e.g. an API the
/// runtime polls for work): bound at `address` inside the sandbox's private
/// network namespace, or at an ephemeral port on `address`'s IP with the
/// host network; the address the runtime must use is added to its
/// environment as `env_var`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Environment variable that tells the runtime the address.
    pub env_var: String,
    /// Address inside a private network namespace.
    pub address: SocketAddr,
}

impl RuntimeExit {
    /// Decodes the init's status encoding: ≥ 0 exit code, < 0 signal number.
    fn from_status(status: i32) -> Self {
        if status < 0 {
            RuntimeExit::Signaled(-status)
        } else {
            RuntimeExit::Exited(status)
        }
    }
}

/// Removes the (empty) parent cgroup of all instances, e.g. when the agent
/// stops. Instances still alive keep it in place.
pub fn remove_cgroup_parent(settings: &SandboxSettings) {
    cgroup::remove_parent_if_empty(&settings.cgroup_parent);
}

/// Removes what a killed predecessor with the same settings left behind
/// (cgroups, mounts, loop devices, scratch directories); run at start,
/// before any sandbox exists (blocking).
pub fn sweep_leftovers(settings: &SandboxSettings) -> Swept {
    sweep::sweep(&settings.cgroup_parent, &settings.state_dir)
}

/// Makes the template image of a `size_mb` `/tmp` filesystem ahead of
/// need, so that no cold start of that size pays for `mkfs` (blocking).
pub fn prepare_tmp_template(settings: &SandboxSettings, size_mb: u32) {
    if let Err(err) = tmp_disk::template(&settings.state_dir, size_mb) {
        tracing::warn!(%err, "preparing a /tmp template image");
    }
}

/// Entry point of the hidden init subcommand; never returns. Must be called
/// before any thread (e.g. a tokio runtime) is started.
pub fn init_main() -> ! {
    init::main()
}

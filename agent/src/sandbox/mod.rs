//! Sandboxes: one runtime process tree per function instance, isolated by
//! namespaces (pid, mount, uts, ipc, and net unless the function uses the
//! host network), limited by a cgroup (memory without swap, CPU weight
//! proportional to memory, process count), with a minimal read-only root,
//! the package read-only at `/var/task`, a private size-limited `/tmp`, a
//! fresh `/proc`, a minimal `/dev`, an unprivileged uid and `no_new_privs`.
//!
//! This module is the only place in Kumo allowed `unsafe` code.
#![allow(unsafe_code)]

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub use kumo_proto::model::NetworkMode;

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
    /// The complete environment of the runtime process, except
    /// `AWS_LAMBDA_RUNTIME_API`, which the sandbox adds itself.
    pub env: Vec<(String, String)>,
    /// Host directory mounted read-only at `/var/task`.
    pub task_dir: PathBuf,
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
    /// Unprivileged uid and gid the runtime runs as.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Hostname inside the sandbox.
    pub hostname: String,
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
    /// Placeholder until the sandbox is implemented.
    #[error("sandbox: {0}")]
    Other(String),
}

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {}

impl Sandbox {
    /// Starts a sandbox and its runtime process. Returns once the runtime
    /// process has been exec'd (or with the init's error).
    pub async fn start(_settings: &SandboxSettings, _spec: SandboxSpec) -> Result<Sandbox, SandboxError> {
        todo!("sandbox owner")
    }

    /// The Runtime API listener the agent must serve (bound to 127.0.0.1:9001
    /// inside the sandbox's network namespace, or to an ephemeral loopback
    /// port in host network mode). Non-blocking. Returns it once.
    pub fn take_runtime_api_listener(&mut self) -> Option<TcpListener> {
        todo!("sandbox owner")
    }

    /// Read end of the pipe carrying the runtime's stdout and stderr
    /// (merged, in order). Non-blocking. Returns it once.
    pub fn take_output(&mut self) -> Option<OwnedFd> {
        todo!("sandbox owner")
    }

    /// Waits until the runtime process has ended. Cancel-safe.
    pub async fn wait_exit(&mut self) -> RuntimeExit {
        todo!("sandbox owner")
    }

    /// Kills every process in the sandbox at once (SIGKILL).
    pub fn kill(&self) {
        todo!("sandbox owner")
    }

    /// Peak memory use of the sandbox so far, from its cgroup.
    pub fn max_memory_used_bytes(&self) -> Option<u64> {
        todo!("sandbox owner")
    }

    /// Whether the kernel's OOM killer has killed a process of this sandbox.
    pub fn oom_killed(&self) -> bool {
        todo!("sandbox owner")
    }

    /// Kills the sandbox if still running, reaps it and removes its cgroup
    /// and scratch directory.
    pub async fn destroy(self) -> Result<(), SandboxError> {
        todo!("sandbox owner")
    }
}

/// Entry point of the hidden init subcommand; never returns. Must be called
/// before any thread (e.g. a tokio runtime) is started.
pub fn init_main() -> ! {
    todo!("sandbox owner")
}

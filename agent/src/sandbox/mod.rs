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
//! This module is the only place in Kumo allowed `unsafe` code.
#![allow(unsafe_code)]

mod capabilities;
mod cgroup;
mod channel;
mod claim;
mod init;
mod net;
mod rootfs;
mod seccomp;
mod spec;

use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

pub use claim::ClaimSpec;
pub use kumo_proto::model::NetworkMode;

use cgroup::InstanceCgroup;
use channel::InitMessage;
use spec::InitSpec;

/// Longest time the sandbox set-up (up to the runtime's exec) may take.
const START_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The init process reported a failure (mount, exec, ...).
    #[error("sandbox {instance}: {message}")]
    Init {
        /// The instance id.
        instance: String,
        /// The init's own description, naming the step and path.
        message: String,
    },
}

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    id: String,
    cgroup: Option<InstanceCgroup>,
    root_dir: PathBuf,
    outer_pid: i32,
    pid1: i32,
    listener: Option<TcpListener>,
    output: Option<OwnedFd>,
    exit: watch::Receiver<Option<RuntimeExit>>,
    /// A blank sandbox's way to be claimed: a second handle on the control
    /// channel and where the init's answer arrives.
    claim: Option<(OwnedFd, tokio::sync::oneshot::Receiver<Result<(), String>>)>,
}

impl Sandbox {
    /// Starts a sandbox and its runtime process. Returns once the runtime
    /// process has been exec'd (or with the init's error).
    pub async fn start(
        settings: &SandboxSettings,
        spec: SandboxSpec,
    ) -> Result<Sandbox, SandboxError> {
        let id = spec.instance_id.clone();
        let host_err = |step: &'static str| {
            let id = id.clone();
            move |source: std::io::Error| SandboxError::Host {
                instance: id,
                step,
                source,
            }
        };
        let cgroup = InstanceCgroup::create(
            &settings.cgroup_parent,
            &spec.instance_id,
            spec.memory_mb,
            spec.max_processes,
        )?;
        let mut guard = StartGuard {
            cgroup: Some(cgroup),
            root_dir: None,
            pids: Vec::new(),
        };
        let root_dir = settings.state_dir.join(&spec.instance_id);
        std::fs::create_dir_all(&root_dir).map_err(host_err("creating the root mount point"))?;
        guard.root_dir = Some(root_dir.clone());

        let (mut listener, api_address) = match spec.network {
            NetworkMode::None => (None, "127.0.0.1:9001".to_string()),
            NetworkMode::Host => {
                let l = TcpListener::bind(("127.0.0.1", 0))
                    .map_err(host_err("binding the Runtime API"))?;
                let addr = l
                    .local_addr()
                    .map_err(host_err("reading the Runtime API address"))?;
                (Some(l), addr.to_string())
            }
        };
        let mut env = spec.env.clone();
        env.retain(|(k, _)| k != "AWS_LAMBDA_RUNTIME_API");
        env.push(("AWS_LAMBDA_RUNTIME_API".into(), api_address));
        let init_spec = InitSpec {
            argv: spec.argv.clone(),
            env,
            task_dir: spec.task_dir.clone(),
            runtime_dir: spec.runtime_dir.clone(),
            root_dir: root_dir.clone(),
            tmp_size_mb: spec.tmp_size_mb,
            private_network: spec.network == NetworkMode::None,
            uid: spec.uid,
            gid: spec.gid,
            hostname: spec.hostname.clone(),
            deferred: spec.deferred,
            cgroup_procs: guard
                .cgroup
                .as_ref()
                .map(|c| c.procs_files())
                .unwrap_or_default(),
        };
        let spec_json = serde_json::to_vec(&init_spec).map_err(|e| SandboxError::Init {
            instance: id.clone(),
            message: format!("encoding the spec: {e}"),
        })?;

        let (agent_end, init_end) =
            channel::pair().map_err(|e| host_err("creating the control channel")(e.into()))?;
        let (output_read, output_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| host_err("creating the output pipe")(e.into()))?;
        let stderr = output_write
            .try_clone()
            .map_err(host_err("duplicating the output pipe"))?;
        let mut command = tokio::process::Command::new(&settings.init_program);
        command
            .args(&settings.init_args)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(output_write))
            .stderr(std::process::Stdio::from(stderr))
            .kill_on_drop(false);
        let init_fd = init_end.as_raw_fd();
        // SAFETY: the closure only calls dup2/fcntl, which are
        // async-signal-safe, between fork and exec.
        unsafe {
            command.pre_exec(move || init::install_control_fd(init_fd));
        }
        let child = command
            .spawn()
            .map_err(host_err("spawning the sandbox init"))?;
        drop(init_end);
        drop(command);
        let outer_pid = child.id().map(|p| p as i32).unwrap_or(0);
        guard.pids.push(outer_pid);

        channel::send_raw(agent_end.as_raw_fd(), &spec_json, &[])
            .map_err(|e| host_err("sending the spec")(e.into()))?;
        nix::fcntl::fcntl(
            &agent_end,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| host_err("configuring the control channel")(e.into()))?;
        // SAFETY: `agent_end` is an owned, open socket that the AsyncFd owns
        // from here on, so its descriptor stays valid for the AsyncFd's life.
        let claim_writer = if spec.deferred {
            Some(
                agent_end
                    .try_clone()
                    .map_err(host_err("duplicating the control channel"))?,
            )
        } else {
            None
        };
        let control = unsafe { AsyncFd::register(agent_end) }
            .map_err(|e| host_err("registering the control channel")(e.into_parts().1))?;

        let mut pid1 = 0;
        let handshake = async {
            loop {
                match recv_async(&control).await {
                    Ok(Some(InitMessage::Listener(fd))) => listener = Some(TcpListener::from(fd)),
                    Ok(Some(InitMessage::Pid1(pid))) => pid1 = pid,
                    Ok(Some(InitMessage::Ready)) => return Ok(()),
                    Ok(Some(InitMessage::Error(message))) => return Err(message),
                    Ok(Some(InitMessage::Claimed)) => {
                        return Err("the init reported a claim during start-up".to_string())
                    }
                    Ok(Some(InitMessage::Exit(status))) => {
                        return Err(format!(
                            "the runtime ended during start-up: {}",
                            RuntimeExit::from_status(status)
                        ))
                    }
                    Ok(None) => return Err("the sandbox init exited during set-up".to_string()),
                    Err(e) => return Err(format!("reading the control channel: {e}")),
                }
            }
        };
        let outcome = tokio::time::timeout(START_TIMEOUT, handshake).await;
        if pid1 > 0 {
            guard.pids.push(pid1);
        }
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                guard.cleanup(child).await;
                return Err(SandboxError::Init {
                    instance: id,
                    message,
                });
            }
            Err(_) => {
                guard.cleanup(child).await;
                return Err(SandboxError::Init {
                    instance: id,
                    message: format!("set-up took longer than {START_TIMEOUT:?}"),
                });
            }
        }
        if let Some(l) = &listener {
            l.set_nonblocking(true)
                .map_err(host_err("configuring the Runtime API listener"))?;
        }
        nix::fcntl::fcntl(
            &output_read,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| host_err("configuring the output pipe")(e.into()))?;

        let (exit_tx, exit_rx) = watch::channel(None);
        let (claimed_tx, claimed_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(monitor(control, child, exit_tx, claimed_tx));
        let claim = claim_writer.map(|writer| (writer, claimed_rx));
        let cgroup = guard.cgroup.take();
        guard.root_dir = None;
        guard.pids.clear();
        Ok(Sandbox {
            id,
            cgroup,
            root_dir,
            outer_pid,
            pid1,
            listener,
            output: Some(output_read),
            exit: exit_rx,
            claim,
        })
    }

    /// The instance id this sandbox was started with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The Runtime API listener the agent must serve (bound to 127.0.0.1:9001
    /// inside the sandbox's network namespace, or to an ephemeral loopback
    /// port in host network mode). Non-blocking. Returns it once.
    pub fn take_runtime_api_listener(&mut self) -> Option<TcpListener> {
        self.listener.take()
    }

    /// Read end of the pipe carrying the runtime's stdout and stderr
    /// (merged, in order). Non-blocking. Returns it once.
    pub fn take_output(&mut self) -> Option<OwnedFd> {
        self.output.take()
    }

    /// Waits until the runtime process has ended. Cancel-safe.
    pub async fn wait_exit(&mut self) -> RuntimeExit {
        match self.exit.wait_for(|e| e.is_some()).await {
            Ok(value) => value.unwrap_or(RuntimeExit::Signaled(9)),
            Err(_) => RuntimeExit::Signaled(9),
        }
    }

    /// The runtime's exit, if it has ended.
    pub fn exited(&self) -> Option<RuntimeExit> {
        *self.exit.borrow()
    }

    /// Kills every process in the sandbox at once (SIGKILL).
    pub fn kill(&self) {
        if self.exited().is_some() {
            return;
        }
        for pid in [self.pid1, self.outer_pid] {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Peak memory use of the sandbox so far, from its cgroup.
    pub fn max_memory_used_bytes(&self) -> Option<u64> {
        self.cgroup.as_ref()?.max_memory_used_bytes()
    }

    /// Whether the kernel's OOM killer has killed a process of this sandbox.
    pub fn oom_killed(&self) -> bool {
        self.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0)
    }

    /// Kills the sandbox if still running, reaps it and removes its cgroup
    /// and scratch directory.
    pub async fn destroy(mut self) -> Result<(), SandboxError> {
        self.kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.wait_exit()).await;
        let cgroup = self.cgroup.take();
        let root_dir = self.root_dir.clone();
        let id = self.id.clone();
        tokio::task::spawn_blocking(move || {
            let removed = cgroup.map(InstanceCgroup::remove).unwrap_or(Ok(()));
            let _ = std::fs::remove_dir(&root_dir);
            removed
        })
        .await
        .map_err(|e| SandboxError::Init {
            instance: id,
            message: format!("clean-up task failed: {e}"),
        })?
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(cgroup) = self.cgroup.take() {
            // Dropped without destroy(): kill now, remove the cgroup off-thread.
            self.kill();
            let root_dir = self.root_dir.clone();
            std::thread::spawn(move || {
                let _ = cgroup.remove();
                let _ = std::fs::remove_dir(root_dir);
            });
        }
    }
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

/// Undoes a half-finished start.
struct StartGuard {
    cgroup: Option<InstanceCgroup>,
    root_dir: Option<PathBuf>,
    pids: Vec<i32>,
}

impl StartGuard {
    async fn cleanup(&mut self, mut child: tokio::process::Child) {
        for pid in self.pids.drain(..) {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        let cgroup = self.cgroup.take();
        let root_dir = self.root_dir.take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(c) = cgroup {
                let _ = c.remove();
            }
            if let Some(dir) = root_dir {
                let _ = std::fs::remove_dir(dir);
            }
        })
        .await;
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        for pid in self.pids.drain(..) {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Some(cgroup) = self.cgroup.take() {
            let root_dir = self.root_dir.take();
            std::thread::spawn(move || {
                let _ = cgroup.remove();
                if let Some(dir) = root_dir {
                    let _ = std::fs::remove_dir(dir);
                }
            });
        }
    }
}

async fn recv_async(control: &AsyncFd<OwnedFd>) -> std::io::Result<Option<InitMessage>> {
    loop {
        let mut ready = control.readable().await?;
        match ready
            .try_io(|fd| channel::recv(fd.get_ref().as_raw_fd()).map_err(std::io::Error::from))
        {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// Watches the control channel for the runtime's exit, then reaps the init.
async fn monitor(
    control: AsyncFd<OwnedFd>,
    mut child: tokio::process::Child,
    exit: watch::Sender<Option<RuntimeExit>>,
    claimed: tokio::sync::oneshot::Sender<Result<(), String>>,
) {
    let mut claimed = Some(claimed);
    let status = loop {
        match recv_async(&control).await {
            Ok(Some(InitMessage::Exit(status))) => break RuntimeExit::from_status(status),
            Ok(Some(InitMessage::Claimed)) => {
                if let Some(answer) = claimed.take() {
                    let _ = answer.send(Ok(()));
                }
            }
            Ok(Some(InitMessage::Error(message))) => {
                if let Some(answer) = claimed.take() {
                    let _ = answer.send(Err(message));
                }
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => break RuntimeExit::Signaled(9),
        }
    };
    exit.send_replace(Some(status));
    let _ = child.wait().await;
}

/// Removes the (empty) parent cgroup of all instances, e.g. when the agent
/// stops. Instances still alive keep it in place.
pub fn remove_cgroup_parent(settings: &SandboxSettings) {
    cgroup::remove_parent_if_empty(&settings.cgroup_parent);
}

/// Entry point of the hidden init subcommand; never returns. Must be called
/// before any thread (e.g. a tokio runtime) is started.
pub fn init_main() -> ! {
    init::main()
}

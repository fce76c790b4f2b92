//! The asynchronous side of a sandbox, on the agent's tokio runtime:
//! creating its cgroup and scratch directory, spawning the init, the start
//! handshake over the control channel, watching for the runtime's exit,
//! claiming a blank sandbox, and clean-up through [`Teardown`]. The
//! namespace, mount, capability and cgroup work itself is synchronous and
//! lives in the other `sandbox` modules.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{oneshot, watch};

use super::cgroup::InstanceCgroup;
use super::channel::{self, InitMessage};
use super::freezer::Freezer;
use super::init;
use super::outbound::OutboundLink;
use super::spec::InitSpec;
use super::syscall::Linux;
use super::teardown::Teardown;
use super::tmp_disk::TmpDisk;
use super::{Endpoint, NetworkMode, RuntimeExit, SandboxError, SandboxSettings, SandboxSpec};

/// Longest time the sandbox set-up (up to the runtime's exec) may take.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `destroy` waits for the runtime to be reported dead.
const EXIT_WAIT: Duration = Duration::from_secs(5);

mod claiming;

/// A blank sandbox's way to be claimed: a second handle on the control
/// channel and where the init's answer arrives.
type ClaimChannel = (OwnedFd, oneshot::Receiver<Result<(), String>>);

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    id: String,
    cgroup: Option<InstanceCgroup>,
    freezer: Option<Arc<Freezer>>,
    state_dir: PathBuf,
    uid: u32,
    gid: u32,
    root_dir: PathBuf,
    outer_pid: i32,
    pid1: i32,
    listener: Option<TcpListener>,
    output: Option<OwnedFd>,
    exit: watch::Receiver<Option<RuntimeExit>>,
    claim: Option<ClaimChannel>,
    /// The `outbound` mode's link, released after the processes are gone.
    outbound: Option<OutboundLink>,
    /// Only this uid may use the endpoint (host network mode).
    peer_uid: Option<u32>,
}

/// Registers the (non-blocking) control channel with tokio.
#[allow(unsafe_code)]
fn register_control(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` is an owned, open socket that the AsyncFd owns from here
    // on, so its descriptor stays valid for the AsyncFd's whole life.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

impl Sandbox {
    /// Starts a sandbox and its runtime process, serving the runtime
    /// `endpoint`. Returns once the runtime process has been exec'd (or with
    /// the init's error).
    pub async fn start_serving(
        settings: &SandboxSettings,
        spec: SandboxSpec,
        endpoint: &Endpoint,
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
        let cgroup_procs = cgroup.procs_files();
        let freezer = cgroup.freezer().map(Arc::new);
        // Whatever happens from here on, this undoes it.
        let mut undo = Teardown {
            instance: id.clone(),
            cgroup: Some(cgroup),
            ..Default::default()
        };
        let root_dir = settings.state_dir.join(&spec.instance_id);
        if let Err(e) = std::fs::create_dir_all(&root_dir) {
            undo_now(undo).await;
            return Err(host_err("creating the root mount point")(e));
        }
        undo.root_dir = Some(root_dir.clone());
        // Held until the init has mounted it (the device detaches itself
        // once nothing holds it).
        let tmp_disk = if spec.deferred {
            None
        } else {
            prepare_tmp_disk(&settings.state_dir, &id, spec.tmp_size_mb).await
        };

        let private_network = spec.network != NetworkMode::Host;
        let mut outbound = None;
        if spec.network == NetworkMode::Outbound {
            let attached = match settings.outbound.clone() {
                Some(network) => {
                    let allow = spec.egress_allow.clone();
                    let instance = id.clone();
                    tokio::task::spawn_blocking(move || {
                        let started = std::time::Instant::now();
                        let attached = network.attach(&allow);
                        tracing::debug!(
                            %instance,
                            elapsed_us = started.elapsed().as_micros() as u64,
                            "outbound link set up"
                        );
                        attached.map(|(ns, link)| (ns, link, network))
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                }
                None => Err("the outbound network mode is not configured on this agent".into()),
            };
            match attached {
                Ok(parts) => outbound = Some(parts),
                Err(message) => {
                    undo_now(undo).await;
                    return Err(SandboxError::Init {
                        instance: id,
                        message: format!("setting up the outbound network: {message}"),
                    });
                }
            }
        }
        let (mut listener, api_address) = if private_network {
            (None, endpoint.address.to_string())
        } else {
            let bound = TcpListener::bind(SocketAddr::new(endpoint.address.ip(), 0))
                .and_then(|l| Ok((l.local_addr()?, l)));
            match bound {
                Ok((address, l)) => (Some(l), address.to_string()),
                Err(e) => {
                    undo_now(undo).await;
                    return Err(host_err("binding the endpoint")(e));
                }
            }
        };
        let mut env = spec.env.clone();
        env.retain(|(k, _)| *k != endpoint.env_var);
        env.push((endpoint.env_var.clone(), api_address));
        let init_spec = InitSpec {
            argv: spec.argv.clone(),
            env,
            task_dir: spec.task_dir.clone(),
            opt_dir: spec.opt_dir.clone(),
            runtime_dir: spec.runtime_dir.clone(),
            root_dir: root_dir.clone(),
            tmp_size_mb: spec.tmp_size_mb,
            tmp_device: tmp_disk.as_ref().map(|d| d.device.clone()),
            private_network,
            listen: private_network.then_some(endpoint.address),
            join_network: outbound.is_some(),
            resolv_conf: outbound
                .as_ref()
                .and_then(|(_, _, network)| network.resolv_conf()),
            uid: spec.uid,
            gid: spec.gid,
            hostname: spec.hostname.clone(),
            deferred: spec.deferred,
            cgroup_procs,
        };
        let namespace = outbound.as_ref().map(|(ns, _, _)| ns.as_raw_fd());
        let spawned = spawn_init(settings, &init_spec, spec.deferred, namespace)
            .await
            .map_err(|(step, source)| host_err(step)(source));
        let Spawned {
            child,
            control,
            claim_writer,
            output,
        } = match spawned {
            Ok(spawned) => spawned,
            Err(e) => {
                undo_now(undo).await;
                return Err(e);
            }
        };
        undo.pids.push(child.id().map(|p| p as i32).unwrap_or(0));
        let outer_pid = undo.pids[0];

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
        drop(tmp_disk);
        if pid1 > 0 {
            undo.pids.push(pid1);
        }
        let failed = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(_) => Some(format!("set-up took longer than {START_TIMEOUT:?}")),
        };
        let configured = listener
            .as_ref()
            .map_or(Ok(()), |l| l.set_nonblocking(true))
            .map_err(host_err("configuring the Runtime API listener"));
        if let Some(message) = failed {
            undo.kill();
            let mut child = child;
            let _ = tokio::time::timeout(EXIT_WAIT, child.wait()).await;
            // Killed and reaped: do not signal pids that may be recycled.
            undo.pids.clear();
            undo_now(undo).await;
            return Err(SandboxError::Init {
                instance: id,
                message,
            });
        }
        if let Err(e) = configured {
            undo.run_detached();
            return Err(e);
        }

        let (exit_tx, exit_rx) = watch::channel(None);
        let (claimed_tx, claimed_rx) = oneshot::channel();
        tokio::spawn(monitor(control, child, exit_tx, claimed_tx));
        let claim = claim_writer.map(|writer| (writer, claimed_rx));
        let outbound = outbound.map(|(_, link, _)| link);
        Ok(Sandbox {
            outbound,
            peer_uid: (!private_network).then_some(spec.uid),
            id,
            cgroup: undo.cgroup.take(),
            freezer,
            state_dir: settings.state_dir.clone(),
            uid: spec.uid,
            gid: spec.gid,
            root_dir,
            outer_pid,
            pid1,
            listener,
            output: Some(output),
            exit: exit_rx,
            claim,
        })
    }

    /// The instance id this sandbox was started with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The listener of the endpoint the agent must serve (bound at the
    /// endpoint's address inside the sandbox's network namespace, or to an
    /// ephemeral loopback port in host network mode). Non-blocking. Returns
    /// it once.
    pub fn take_runtime_api_listener(&mut self) -> Option<TcpListener> {
        self.listener.take()
    }

    /// The only uid whose connections the endpoint may serve, when it
    /// listens on the host's network (`None`: a private namespace's
    /// loopback, reachable only from inside the sandbox).
    pub fn endpoint_peer_uid(&self) -> Option<u32> {
        self.peer_uid
    }

    /// The sandbox's address on the outbound bridge, in `outbound` mode.
    pub fn outbound_address(&self) -> Option<std::net::Ipv4Addr> {
        self.outbound.as_ref().map(OutboundLink::address)
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

    /// Kills every process in the sandbox at once (SIGKILL), thawing it if
    /// it is frozen (a v1-frozen process only dies once thawed).
    pub fn kill(&self) {
        if self.exited().is_some() {
            return;
        }
        self.teardown_of(None).kill();
        if let Some(freezer) = &self.freezer {
            if let Err(err) = freezer.thaw_for_kill(&Linux) {
                tracing::warn!(instance = %self.id, %err, "thawing a sandbox to kill it");
            }
        }
    }

    /// Marks the sandbox idle and freezes it once it has been idle for
    /// `after` (checked every `after`, so within twice that) unless it is
    /// used (see [`Sandbox::unpark`]) before. No-op without a freezer.
    pub fn park(&self, after: Duration) {
        let Some(freezer) = self.freezer.clone() else {
            return;
        };
        let mut ticket = freezer.park();
        // One timer per idle spell: a warm instance called back to back
        // re-parks under the timer already waiting instead of spawning one
        // task per invocation.
        if !freezer.start_timer() {
            return;
        }
        let id = self.id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(after).await;
                match freezer.timer_fired(&Linux, ticket) {
                    Ok(Some(newer)) => ticket = newer,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(instance = %id, %err, "freezing an idle sandbox");
                        break;
                    }
                }
            }
        });
    }

    /// Marks the sandbox busy, thawing it if it was frozen. A thaw that
    /// fails is logged (the invocation then times out and the instance is
    /// discarded).
    pub fn unpark(&self) {
        if let Some(freezer) = &self.freezer {
            let started = std::time::Instant::now();
            match freezer.unpark(&Linux) {
                Ok(true) => tracing::debug!(instance = %self.id,
                    thaw_us = started.elapsed().as_micros() as u64, "thawed an idle sandbox"),
                Ok(false) => {}
                Err(err) => tracing::warn!(instance = %self.id, %err, "thawing a sandbox"),
            }
        }
    }

    /// Whether the sandbox is frozen now.
    pub fn is_frozen(&self) -> bool {
        self.freezer.as_ref().is_some_and(|f| f.is_frozen())
    }

    /// The clean-up of this sandbox, taking its cgroup (`None`: processes
    /// only).
    fn teardown_of(&self, cgroup: Option<InstanceCgroup>) -> Teardown {
        Teardown {
            instance: self.id.clone(),
            pids: vec![self.pid1, self.outer_pid],
            root_dir: cgroup.is_some().then(|| self.root_dir.clone()),
            cgroup,
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
        let _ = tokio::time::timeout(EXIT_WAIT, self.wait_exit()).await;
        let cgroup = self.cgroup.take();
        let mut teardown = self.teardown_of(cgroup);
        // Reported dead (or given up on): do not signal recycled pids.
        teardown.pids.clear();
        teardown.root_dir = Some(self.root_dir.clone());
        let id = self.id.clone();
        let link = self.outbound.take();
        tokio::task::spawn_blocking(move || {
            let result = teardown.run();
            drop(link);
            result
        })
        .await
        .map_err(|e| SandboxError::Init {
            instance: id,
            message: format!("clean-up task failed: {e}"),
        })?
    }

    /// Whether this sandbox was started blank and not claimed yet.
    pub fn is_blank(&self) -> bool {
        self.claim.is_some()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(cgroup) = self.cgroup.take() {
            // Dropped without destroy(): kill now, clean up off-thread.
            let mut teardown = self.teardown_of(Some(cgroup));
            if self.exited().is_some() {
                teardown.pids.clear();
            }
            teardown.run_detached();
        }
        if let Some(link) = self.outbound.take() {
            std::thread::spawn(move || drop(link));
        }
    }
}

/// Logs that instance `id` gets a tmpfs `/tmp` because its disk failed
/// (`err` names the step and path).
fn warn_tmpfs_fallback(id: &str, err: &dyn std::fmt::Display) {
    tracing::warn!(instance = %id, %err,
        "no disk-backed /tmp; using a tmpfs of the same size, charged to the function's memory");
}

/// Prepares instance `id`'s disk-backed `/tmp` of `size_mb` (off the async
/// threads: the first of a size runs `mkfs`). Where that is impossible (no
/// loop devices, e.g. in some containers, or a failing step) the sandbox
/// falls back to a tmpfs `/tmp`, with a warning naming the failed step.
async fn prepare_tmp_disk(state_dir: &std::path::Path, id: &str, size_mb: u32) -> Option<TmpDisk> {
    let (dir, owned_id) = (state_dir.to_path_buf(), id.to_string());
    let started = std::time::Instant::now();
    let made = tokio::task::spawn_blocking(move || TmpDisk::create(&dir, &owned_id, size_mb)).await;
    match made {
        Ok(Ok(disk)) => {
            tracing::debug!(instance = %id, size_mb, device = %disk.device.display(),
                prepare_ms = started.elapsed().as_secs_f64() * 1e3, "prepared the /tmp disk");
            Some(disk)
        }
        Ok(Err(err)) => {
            warn_tmpfs_fallback(id, &err);
            None
        }
        Err(err) => {
            warn_tmpfs_fallback(id, &err);
            None
        }
    }
}

/// Runs a half-finished start's clean-up off the async threads (errors are
/// logged by [`Teardown`]; the start's own error is what the caller sees).
async fn undo_now(undo: Teardown) {
    let _logged = tokio::task::spawn_blocking(move || undo.run()).await;
}

/// The spawned init and the agent's ends of its channels.
struct Spawned {
    child: tokio::process::Child,
    control: AsyncFd<OwnedFd>,
    claim_writer: Option<OwnedFd>,
    output: OwnedFd,
}

/// Spawns the init, sends it `spec` and registers the control channel;
/// errors name the step.
async fn spawn_init(
    settings: &SandboxSettings,
    spec: &InitSpec,
    deferred: bool,
    namespace: Option<std::os::fd::RawFd>,
) -> Result<Spawned, (&'static str, std::io::Error)> {
    let step = |step: &'static str| move |e: std::io::Error| (step, e);
    let nix_step = |step: &'static str| move |e: nix::Error| (step, std::io::Error::from(e));
    let spec_json =
        serde_json::to_vec(spec).map_err(|e| ("encoding the spec", std::io::Error::from(e)))?;
    let (agent_end, init_end) =
        channel::pair().map_err(nix_step("creating the control channel"))?;
    let (output_read, output_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(nix_step("creating the output pipe"))?;
    let command = init::command(
        &settings.init_program,
        &settings.init_args,
        &init_end,
        output_write,
    )
    .map_err(step("duplicating the output pipe"))?;
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(false);
    let mut child = command.spawn().map_err(step("spawning the sandbox init"))?;
    drop(init_end);
    drop(command);
    let registered = (|| -> Result<_, (&'static str, std::io::Error)> {
        let fds: Vec<_> = namespace.into_iter().collect();
        channel::send_raw(agent_end.as_raw_fd(), &spec_json, &fds)
            .map_err(nix_step("sending the spec"))?;
        for fd in [&agent_end, &output_read] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .map_err(nix_step("configuring the control channel and output pipe"))?;
        }
        let claim_writer = if deferred {
            Some(
                agent_end
                    .try_clone()
                    .map_err(step("duplicating the control channel"))?,
            )
        } else {
            None
        };
        let control =
            register_control(agent_end).map_err(step("registering the control channel"))?;
        Ok((control, claim_writer))
    })();
    match registered {
        Ok((control, claim_writer)) => Ok(Spawned {
            child,
            control,
            claim_writer,
            output: output_read,
        }),
        Err(e) => {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(EXIT_WAIT, child.wait()).await;
            Err(e)
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
    claimed: oneshot::Sender<Result<(), String>>,
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

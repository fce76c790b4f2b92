//! The sandbox init: the agent binary re-executed with the hidden
//! subcommand, single-threaded, talking to the agent over fd 3.
//!
//! Process tree: outer init (host pid namespace; joins the cgroup, unshares
//! the namespaces, binds the Runtime API listener in the new network
//! namespace) → PID 1 of the new pid namespace (builds the root filesystem,
//! pivots, reaps) → the runtime (drops privileges, execs).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Pid, Uid};

use super::channel::{self, InitMessage};
use super::init_error::InitError;
use super::spec::InitSpec;
use super::syscall::Linux;
use super::{capabilities, claim, rootfs, seccomp};

type Result<T> = std::result::Result<T, InitError>;

/// The control channel's descriptor number in the init process.
pub const CONTROL_FD: RawFd = 3;

/// Runs the init; never returns.
pub fn main() -> ! {
    let code = match outer() {
        Ok(()) => 0,
        Err(error) => {
            report(&error);
            1
        }
    };
    std::process::exit(code)
}

/// Sends `error` to the agent (best effort: the agent may be gone).
fn report(error: &InitError) {
    let _ = channel::send(CONTROL_FD, &InitMessage::Error(error.to_string()));
}

/// Waits for the agent's next JSON message (`what`, e.g. "the sandbox
/// spec") and the descriptors that came with it.
pub fn receive<T: serde::de::DeserializeOwned>(what: &str) -> Result<(T, Vec<OwnedFd>)> {
    let (bytes, fds) = channel::recv_raw(CONTROL_FD)
        .map_err(InitError::call(format!("waiting for {what}")))?
        .ok_or_else(|| {
            InitError::Protocol(format!(
                "the agent closed the control channel before sending {what}"
            ))
        })?;
    let message = serde_json::from_slice(&bytes)
        .map_err(|e| InitError::Protocol(format!("decoding {what}: {e}")))?;
    Ok((message, fds))
}

fn outer() -> Result<()> {
    let (spec, fds): (InitSpec, _) = receive("the sandbox spec")?;
    let pid = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, &pid).map_err(InitError::path("joining cgroup", procs))?;
    }
    // The init processes should never be the OOM killer's choice: the
    // runtime is. Best effort: lowering needs CAP_SYS_RESOURCE, which some
    // hosts (e.g. containers) withhold even from root.
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID;
    if spec.join_network {
        let namespace = fds.first().ok_or_else(|| {
            InitError::Protocol("the spec came without the network namespace".into())
        })?;
        nix::sched::setns(namespace, CloneFlags::CLONE_NEWNET)
            .map_err(InitError::call("setns(CLONE_NEWNET)"))?;
    } else if spec.private_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    drop(fds);
    unshare(flags).map_err(InitError::call(format!("unshare({flags:?})")))?;
    if spec.private_network {
        super::net::bring_up_loopback().map_err(InitError::call("bringing up lo"))?;
    }
    if let Some(address) = spec.listen.filter(|_| spec.private_network) {
        let listener = std::net::TcpListener::bind(address).map_err(InitError::call(format!(
            "binding the listener on {address}"
        )))?;
        let fd = OwnedFd::from(listener);
        channel::send(CONTROL_FD, &InitMessage::Listener(fd))
            .map_err(InitError::call("sending the listener"))?;
    }
    // SAFETY: this process is single-threaded (a fresh exec that started no
    // threads), so the child may run arbitrary code after fork.
    let forked = unsafe { fork() };
    match forked.map_err(InitError::call("fork of the sandbox PID 1"))? {
        ForkResult::Child => {
            let code = match pid1(&spec) {
                Ok(code) => code,
                Err(error) => {
                    report(&error);
                    1
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            let _ = channel::send(CONTROL_FD, &InitMessage::Pid1(child.as_raw()));
            loop {
                match waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    _ => return Ok(()),
                }
            }
        }
    }
}

/// PID 1 of the sandbox: set up the root, start the runtime, reap, report.
fn pid1(spec: &InitSpec) -> Result<i32> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(InitError::call("set_pdeathsig"))?;
    rootfs::build(&Linux, spec)?;
    nix::unistd::sethostname(&spec.hostname)
        .map_err(InitError::call(format!("sethostname {}", spec.hostname)))?;
    let (exec_errors, exec_errors_writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(InitError::call("creating the exec status pipe"))?;
    // A blank sandbox's runtime reads its assignment from stdin.
    let assignment = if spec.deferred {
        Some(
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(InitError::call("creating the assignment pipe"))?,
        )
    } else {
        None
    };
    // SAFETY: still single-threaded (see `outer`).
    let forked = unsafe { fork() };
    let runtime = match forked.map_err(InitError::call("fork of the runtime"))? {
        ForkResult::Child => {
            drop(exec_errors);
            let error = match &assignment {
                Some((reader, _)) => match nix::unistd::dup2_stdin(reader) {
                    Ok(()) => exec_runtime(spec),
                    Err(e) => InitError::call("making the assignment pipe stdin")(e),
                },
                None => exec_runtime(spec),
            };
            let mut writer = std::fs::File::from(exec_errors_writer);
            let _ = std::io::Write::write_all(&mut writer, error.to_string().as_bytes());
            // SAFETY: `_exit` is always safe to call; it ends this child
            // without running the parent's atexit handlers.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(exec_errors_writer);
    let mut error = String::new();
    let _ = std::fs::File::from(exec_errors).read_to_string(&mut error);
    if !error.is_empty() {
        let _ = waitpid(runtime, None);
        // Already the typed error's text, from the runtime child.
        return Err(InitError::Protocol(error));
    }
    channel::send(CONTROL_FD, &InitMessage::Ready)
        .map_err(InitError::call("reporting readiness"))?;
    if let Some((reader, writer)) = assignment {
        drop(reader);
        claim::serve(spec.uid, spec.gid, writer)?;
    }
    Ok(reap_until_exit(runtime))
}

/// Reaps every child (orphans are reparented to PID 1) until the runtime
/// itself ends, then reports its status. Exiting PID 1 kills the rest.
fn reap_until_exit(runtime: Pid) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == runtime => {
                let _ = channel::send(CONTROL_FD, &InitMessage::Exit(code));
                return 0;
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == runtime => {
                let _ = channel::send(CONTROL_FD, &InitMessage::Exit(-(signal as i32)));
                return 0;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 0,
        }
    }
}

/// In the runtime child: drop every capability, change to the instance's
/// uid, set `no_new_privs`, install the seccomp filter and exec. Returns
/// only on failure, with the error to report.
fn exec_runtime(spec: &InitSpec) -> InitError {
    let step = || -> Result<std::convert::Infallible> {
        // Undo the init's protection (best effort, see `outer`).
        let _ = std::fs::write("/proc/self/oom_score_adj", "0");
        // Needs CAP_SETPCAP, so while still root.
        capabilities::restrict_while_root(&Linux)?;
        nix::unistd::setgroups(&[]).map_err(InitError::call("setgroups"))?;
        let gid = Gid::from_raw(spec.gid);
        let uid = Uid::from_raw(spec.uid);
        nix::unistd::setresgid(gid, gid, gid)
            .map_err(InitError::call(format!("setresgid {gid}")))?;
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(InitError::call(format!("setresuid {uid}")))?;
        capabilities::clear_and_verify()?;
        nix::sys::prctl::set_no_new_privs().map_err(InitError::call("no_new_privs"))?;
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
            .map_err(InitError::call("set_pdeathsig"))?;
        nix::unistd::chdir("/var/task").map_err(InitError::path("chdir", "/var/task"))?;
        close_inherited_descriptors();
        let cstring = |s: &str| {
            CString::new(s).map_err(|_| InitError::Protocol(format!("NUL byte in {s:?}")))
        };
        let argv = spec
            .argv
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<Vec<_>>>()?;
        let env = spec
            .env
            .iter()
            .map(|(k, v)| cstring(&format!("{k}={v}")))
            .collect::<Result<Vec<_>>>()?;
        let program = argv
            .first()
            .ok_or_else(|| InitError::Protocol("empty argv".into()))?;
        // Last: nothing from here to execve may need a denied call.
        seccomp::install()?;
        nix::unistd::execve(program, &argv, &env).map_err(|errno| InitError::Exec {
            program: spec.argv[0].clone(),
            errno,
        })
    };
    match step() {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

/// Marks every descriptor above stderr close-on-exec, so the runtime
/// inherits only stdin, stdout and stderr (the control channel and the exec
/// status pipe close at exec).
fn close_inherited_descriptors() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes flags of this process's descriptors.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc != 0 {
        // Older kernels: walk the table.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<RawFd> = dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect();
            for fd in fds {
                // SAFETY: setting FD_CLOEXEC on a descriptor we own.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// The command that starts the sandbox init: `program` with `args`, an
/// empty environment, stdin from /dev/null, stdout and stderr into `output`
/// and `control` as [`CONTROL_FD`].
pub fn command(
    program: &Path,
    args: &[String],
    control: &OwnedFd,
    output: OwnedFd,
) -> std::io::Result<std::process::Command> {
    let stderr = output.try_clone()?;
    let mut command = std::process::Command::new(program);
    // Seen by sandboxed processes as PID 1's command line: no host path.
    std::os::unix::process::CommandExt::arg0(&mut command, "kumo-sandbox-init");
    command
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(output))
        .stderr(std::process::Stdio::from(stderr));
    let control_fd = control.as_raw_fd();
    // SAFETY: the closure only calls dup2/fcntl, which are
    // async-signal-safe, between fork and exec; `control` outlives the
    // command's spawn (the caller keeps it until after spawning).
    unsafe {
        command.pre_exec(move || install_control_fd(control_fd));
    }
    Ok(command)
}

/// Makes `fd` the control channel at [`CONTROL_FD`] in a freshly forked
/// child (called from `pre_exec`: async-signal-safe calls only).
fn install_control_fd(fd: RawFd) -> std::io::Result<()> {
    if fd == CONTROL_FD {
        // SAFETY: clearing FD_CLOEXEC on our own descriptor.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: dup2 onto fd 3 in the child; the duplicate has no FD_CLOEXEC.
    if unsafe { libc::dup2(fd, CONTROL_FD) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

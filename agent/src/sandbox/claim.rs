//! Pre-started ("blank") sandboxes and how a function claims one.
//!
//! A blank sandbox is started like any other (cgroup, namespaces, root
//! filesystem, unprivileged uid, no capabilities, seccomp) and its runtime
//! is exec'd ahead of time, but `/var/task` and `/tmp` stay empty and the
//! runtime waits on its stdin. Claiming it for a function:
//!
//! 1. the agent sets the function's memory limit and CPU share on the
//!    sandbox's cgroup;
//! 2. the agent clones the package directory as a detached, read-only
//!    mount (`open_tree` + `mount_setattr`) and passes it with a [`Claim`]
//!    over the control channel;
//! 3. the sandbox's PID 1 moves that mount onto `/var/task`
//!    (`move_mount`), the function's layers (likewise) onto `/opt`, and the function's disk-backed `/tmp` (prepared and
//!    mounted detached by the agent, see `tmp_disk`) onto `/tmp`, writes the
//!    assignment (the function's environment) to the runtime's stdin and
//!    answers `Claimed`.
//!
//! A blank started in the `outbound` network mode already has its link to
//! the bridge (no allow-list: only Kumo's runtime client runs in it until
//! the claim); the function's allow-list is applied to that link from the
//! host before step 2, so the function's code never runs unrestricted.
//!
//! The runtime never sees any other package: the mount arrives already cut
//! down to the one directory, and the function's code only runs after the
//! assignment.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::channel::{self, InitMessage};
use super::init::{self, CONTROL_FD};
use super::init_error::InitError;
use super::rootfs;
use super::syscall::Linux;

/// `move_mount` flag: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// What the agent sends PID 1 of a blank sandbox (with the package mount).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    /// Size of the function's `/tmp` in MB.
    pub tmp_size_mb: u32,
    /// Whether a second descriptor, the function's disk-backed `/tmp` as a
    /// detached mount, comes with the claim (otherwise: a tmpfs of
    /// `tmp_size_mb`).
    #[serde(default)]
    pub tmp_disk: bool,
    /// Whether a descriptor of the function's layers as a detached mount
    /// comes with the claim (after the package's, before `/tmp`'s).
    #[serde(default)]
    pub opt: bool,
    /// Text written to the runtime's stdin (then closed).
    pub assignment: String,
}

/// A detached, read-only, nosuid, nodev clone of `dir`'s mount, ready to be
/// moved into a sandbox's mount namespace.
pub fn detached_read_only_tree(dir: &Path) -> std::io::Result<OwnedFd> {
    let path = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::other("NUL byte in the package path"))?;
    // SAFETY: open_tree reads the NUL-terminated path and returns a new
    // descriptor (or -1); no memory of ours is retained.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; we own it now.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attributes = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: mount_setattr reads `attributes` (size passed) and the empty
    // path; both outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attributes as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tree)
}

/// Moves the detached mount `tree` onto `target` in this mount namespace.
fn move_mount(tree: &OwnedFd, target: &str) -> Result<(), InitError> {
    let failed = InitError::path("moving a mount onto", target);
    let target_c = CString::new(target)
        .map_err(|_| failed(std::io::Error::other("NUL byte in the target")))?;
    let empty = c"";
    // SAFETY: move_mount reads two NUL-terminated paths that outlive the
    // call; `tree` is an open mount descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(InitError::path("moving a mount onto", target)(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// In PID 1 of a blank sandbox: waits for the claim, mounts the package and
/// `/tmp`, hands the runtime its assignment and reports `Claimed`.
pub fn serve(uid: u32, gid: u32, runtime_stdin: OwnedFd) -> Result<(), InitError> {
    let (claim, fds): (Claim, _) = init::receive("the claim")?;
    let mut fds = fds.into_iter();
    let tree = fds
        .next()
        .ok_or_else(|| InitError::Protocol("the claim came without the package mount".into()))?;
    move_mount(&tree, "/var/task")?;
    drop(tree);
    if claim.opt {
        let opt = fds
            .next()
            .ok_or_else(|| InitError::Protocol("the claim came without its /opt mount".into()))?;
        move_mount(&opt, "/opt")?;
    }
    if claim.tmp_disk {
        let tmp = fds
            .next()
            .ok_or_else(|| InitError::Protocol("the claim came without its /tmp mount".into()))?;
        move_mount(&tmp, "/tmp")?;
    } else {
        rootfs::mount_tmp(&Linux, Path::new("/tmp"), claim.tmp_size_mb, uid, gid)?;
    }
    let mut stdin = std::fs::File::from(runtime_stdin);
    std::io::Write::write_all(&mut stdin, claim.assignment.as_bytes())
        .map_err(InitError::call("handing the runtime its assignment"))?;
    drop(stdin);
    channel::send(CONTROL_FD, &InitMessage::Claimed).map_err(InitError::call("reporting the claim"))
}

/// What a function brings to a blank sandbox it claims.
#[derive(Debug, Clone)]
pub struct ClaimSpec {
    /// Host directory mounted read-only at `/var/task`.
    pub task_dir: std::path::PathBuf,
    /// Host directory mounted read-only at `/opt` (the layers), if any.
    pub opt_dir: Option<std::path::PathBuf>,
    /// Size of `/tmp` in MB.
    pub tmp_size_mb: u32,
    /// The memory size the blank was started with, in MB.
    pub blank_memory_mb: u32,
    /// The function's memory limit in MB.
    pub memory_mb: u32,
    /// Written to the runtime's stdin (the function's environment as JSON
    /// for the python3 runtime client).
    pub assignment: String,
    /// The function's egress allow-list, applied to the blank's outbound
    /// link before the assignment (empty: none; only for a blank started in
    /// the `outbound` mode).
    pub egress_allow: Vec<super::egress::EgressRule>,
}

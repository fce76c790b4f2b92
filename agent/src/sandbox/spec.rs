//! What the agent tells a sandbox's init process: everything it needs to set
//! the sandbox up, sent as JSON over the control channel.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The init process's instructions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    /// Program and arguments, paths as seen inside the sandbox.
    pub argv: Vec<String>,
    /// The complete environment of the runtime process.
    pub env: Vec<(String, String)>,
    /// Host directory mounted read-only at `/var/task`.
    pub task_dir: PathBuf,
    /// Host directory mounted read-only at `/opt` (the function's layers).
    #[serde(default)]
    pub opt_dir: Option<PathBuf>,
    /// Host directory mounted read-only at `/var/runtime`.
    pub runtime_dir: Option<PathBuf>,
    /// Empty directory that becomes the sandbox's root mount point.
    pub root_dir: PathBuf,
    /// Size of `/tmp` in MB.
    pub tmp_size_mb: u32,
    /// Loop device holding the ext4 filesystem mounted at `/tmp` (see
    /// `tmp_disk`); `None`: a size-limited tmpfs instead (hosts without
    /// loop devices).
    #[serde(default)]
    pub tmp_device: Option<PathBuf>,
    /// Whether to create a private network namespace (loopback only).
    pub private_network: bool,
    /// Join the network namespace sent with the spec (the `outbound` mode's,
    /// already linked to the bridge) instead of creating one.
    #[serde(default)]
    pub join_network: bool,
    /// Host file shown as `/etc/resolv.conf` instead of the host's own.
    #[serde(default)]
    pub resolv_conf: Option<PathBuf>,
    /// In a private network namespace: the address the init binds a TCP
    /// listener on and hands to the agent (the endpoint the agent serves the
    /// runtime).
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
    /// Uid of the runtime process.
    pub uid: u32,
    /// Gid of the runtime process.
    pub gid: u32,
    /// Hostname inside the sandbox.
    pub hostname: String,
    /// Start blank: leave `/var/task` and `/tmp` empty, give the runtime a
    /// pipe as stdin, and wait for a claim (see `claim`).
    #[serde(default)]
    pub deferred: bool,
    /// `cgroup.procs` files the init joins before anything else.
    pub cgroup_procs: Vec<PathBuf>,
}

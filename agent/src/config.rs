//! Typed agent configuration: a TOML file plus `KUMO_AGENT_*` environment
//! overrides (nested keys joined by `__`), every field with a default that
//! works on one box.

use std::path::{Path, PathBuf};

use kumo_common::client_security::{read_tokens, ClientTls, SecurityError};
use serde::{Deserialize, Serialize};

use crate::sandbox::file_store;

/// Configuration of one agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// gRPC URL of kumod, e.g. `http://127.0.0.1:7070` (`https://` for TLS).
    pub server: String,
    /// File holding this agent's join token (kumod's `auth.agent_token_files`).
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed kumod's certificate, for `https://`.
    pub tls_ca_file: Option<PathBuf>,
    /// This agent's client certificate (PEM), when kumod requires one.
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key_file: Option<PathBuf>,
    /// Name kumod's certificate must carry (default: the URL's host).
    pub tls_domain: Option<String>,
    /// A join token given in-process (the all-in-one agent); never read
    /// from files or the environment.
    #[serde(skip)]
    pub embedded_join_token: Option<String>,
    /// Stable id of this node; defaults to the hostname.
    pub agent_id: String,
    /// Where the agent keeps its package cache and sandbox scratch space.
    pub data_dir: PathBuf,
    /// Memory (MB) the agent may hand to function instances; 0 = 80% of the
    /// machine's memory.
    pub allocatable_memory_mb: u64,
    /// Largest number of instances (warm or busy) on this node.
    pub max_instances: u32,
    /// Idle warm instances are reclaimed after this many seconds.
    pub idle_timeout_seconds: u64,
    /// How long a cold start (sandbox + runtime initialisation) may take.
    pub init_timeout_seconds: u64,
    /// Interpreter used by the `python3` runtime.
    pub python_path: PathBuf,
    /// Value of `AWS_EXECUTION_ENV` for the `python3` runtime.
    pub python_execution_env: String,
    /// Whether the `python3` runtime's `sys.path` includes the host
    /// interpreter's site-packages (e.g. Debian's `dist-packages`) after the
    /// standard library. Off by default, so a function sees only its package
    /// and the standard library on every node; a function's own
    /// `KUMO_PYTHON_HOST_SITE_PACKAGES` (`1` or `0`) wins over this.
    pub python_host_site_packages: bool,
    /// The `node` binary every `nodejsNN.x` runtime runs (`nodejs18.x`,
    /// `nodejs20.x` and `nodejs22.x` all map to it; `AWS_EXECUTION_ENV`
    /// names the runtime the function asked for).
    pub node_path: PathBuf,
    /// Region reported to functions (`AWS_REGION`).
    pub region: String,
    /// First uid (and gid) handed to sandboxes; each instance gets its own.
    pub sandbox_uid_base: u32,
    /// Number of uids in the sandbox range.
    pub sandbox_uid_count: u32,
    /// Cgroup (relative to each hierarchy's root) under which instances get
    /// their cgroups.
    pub cgroup_parent: String,
    /// Largest number of processes/threads in one instance.
    pub max_processes: u32,
    /// Pre-started python3 sandboxes kept ready for cold starts (0 = off).
    /// A cold start of an eligible function (python3, network `none`, no
    /// start-up variables such as `PYTHON*`) claims one instead of building
    /// a sandbox and starting an interpreter.
    pub prewarm_python_instances: u32,
    /// Pre-started Node.js sandboxes kept ready for cold starts (0 = off),
    /// for eligible `nodejsNN.x` functions: 128 MB (V8's heap is sized at
    /// start), network `none`, no start-up variables such as `NODE_OPTIONS`.
    pub prewarm_node_instances: u32,
    /// Pre-started python3 sandboxes in the `outbound` network mode (their
    /// link to the bridge made ahead, the function's egress allow-list
    /// applied at the claim) kept ready for cold starts of eligible
    /// `outbound` functions (0 = off).
    pub prewarm_python_outbound_instances: u32,
    /// Cap on one invocation's captured log; the rest is replaced by a
    /// truncation marker.
    pub max_log_bytes_per_invocation: usize,
    /// An idle instance (and a pre-started sandbox) is frozen (cgroup
    /// freezer) this many milliseconds after it returned to the pool, so
    /// nothing it left running uses CPU between invocations; the next
    /// invocation thaws it. 0 = never freeze.
    pub idle_freeze_ms: u64,
    /// Subnet of the `outbound` network mode's bridge; the bridge takes the
    /// first address (the instances' gateway), instances the rest.
    pub outbound_subnet: String,
    /// Name of that bridge (also names its nftables table `kumo_<name>`).
    /// Agents sharing a host need distinct bridges and subnets.
    pub outbound_bridge: String,
    /// DNS servers (IPv4) an `outbound` sandbox's `/etc/resolv.conf` names;
    /// empty: the host's `/etc/resolv.conf` (useless if it names a loopback
    /// resolver). DNS to these is allowed even when they are host addresses.
    pub outbound_dns: Vec<String>,
    /// Size (MB) of the agent's file store, the filesystem of its own that
    /// holds the package cache and the runtime client (a sparse image: it
    /// takes disk space only as packages fill it). See
    /// `sandbox::file_store`.
    pub file_store_mb: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            server: "http://127.0.0.1:7070".into(),
            token_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_domain: None,
            embedded_join_token: None,
            agent_id: String::new(),
            data_dir: PathBuf::from("/var/lib/kumo-agent"),
            allocatable_memory_mb: 0,
            max_instances: 1000,
            idle_timeout_seconds: 600,
            init_timeout_seconds: 10,
            python_path: PathBuf::from("/usr/bin/python3"),
            python_execution_env: "AWS_Lambda_python3.11".into(),
            node_path: PathBuf::from("/usr/bin/node"),
            python_host_site_packages: false,
            region: "us-east-1".into(),
            sandbox_uid_base: 100_000,
            sandbox_uid_count: 60_000,
            cgroup_parent: "kumo".into(),
            max_processes: 1024,
            max_log_bytes_per_invocation: 1024 * 1024,
            prewarm_python_instances: 0,
            prewarm_node_instances: 0,
            prewarm_python_outbound_instances: 0,
            idle_freeze_ms: 100,
            outbound_subnet: "10.213.0.0/16".into(),
            outbound_bridge: "kumo0".into(),
            outbound_dns: Vec::new(),
            file_store_mb: 16 * 1024,
        }
    }
}

/// The configuration could not be read (names the file and the problem).
pub type ConfigError = kumo_common::layered_config::LoadError;

impl AgentConfig {
    /// Loads defaults, then the TOML file (if given), then environment
    /// variables with `env_prefix` (e.g. `KUMO_AGENT`, so
    /// `KUMO_AGENT_IDLE_TIMEOUT_SECONDS=60`).
    pub fn load(file: Option<&Path>, env_prefix: &str) -> Result<Self, ConfigError> {
        kumo_common::layered_config::load(file, env_prefix)
    }

    /// Fills in values derived from the machine (agent id, memory).
    pub fn resolve_machine_defaults(&mut self) {
        if self.agent_id.is_empty() {
            self.agent_id = nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "agent".into());
        }
        if self.allocatable_memory_mb == 0 {
            self.allocatable_memory_mb = total_memory_mb().saturating_mul(8) / 10;
        }
    }

    /// The join token: the in-process one, else the first in `token_file`.
    pub fn join_token(&self) -> Result<Option<String>, SecurityError> {
        if let Some(token) = &self.embedded_join_token {
            return Ok(Some(token.clone()));
        }
        match &self.token_file {
            Some(path) => Ok(read_tokens(path)?.into_iter().next()),
            None => Ok(None),
        }
    }

    /// TLS settings for the connection to kumod.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls {
            ca_file: self.tls_ca_file.clone(),
            cert_file: self.tls_cert_file.clone(),
            key_file: self.tls_key_file.clone(),
            domain: self.tls_domain.clone(),
        }
    }

    /// Directory of the unpacked-package cache.
    pub fn package_dir(&self) -> PathBuf {
        self.file_store_dir().join(file_store::PACKAGES)
    }

    /// Mount point of the agent's file store (see `sandbox::file_store`).
    pub fn file_store_dir(&self) -> PathBuf {
        self.data_dir.join(file_store::MOUNT_POINT)
    }

    /// Directory of per-instance sandbox scratch space.
    pub fn sandbox_dir(&self) -> PathBuf {
        self.data_dir.join("sandboxes")
    }

    /// The `outbound` network mode's bridge and rules, or `None` (with a
    /// logged error) when its settings are unusable. Nothing is created on
    /// the host until an outbound instance starts.
    pub fn outbound_network(&self) -> Option<std::sync::Arc<crate::sandbox::outbound::Outbound>> {
        use crate::sandbox::outbound::{Outbound, OutboundSettings};
        let dns: Result<Vec<std::net::Ipv4Addr>, _> =
            self.outbound_dns.iter().map(|s| s.parse()).collect();
        let Ok(dns) = dns else {
            tracing::error!(dns = ?self.outbound_dns, "outbound_dns must list IPv4 addresses; outbound mode disabled");
            return None;
        };
        let settings = OutboundSettings {
            subnet: self.outbound_subnet.clone(),
            bridge: self.outbound_bridge.clone(),
            dns,
            state_dir: self.file_store_dir().join(file_store::NETWORK),
        };
        match Outbound::new(settings) {
            Ok(outbound) => Some(std::sync::Arc::new(outbound)),
            Err(e) => {
                tracing::error!(error = %e, "outbound mode disabled");
                None
            }
        }
    }

    /// Directory where the Python and Node.js bootstraps are written.
    pub fn runtime_dir(&self) -> PathBuf {
        self.file_store_dir().join(file_store::RUNTIME)
    }
}

/// Total memory of this machine in MB, from `/proc/meminfo`.
pub fn total_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_defaults_combine() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "idle_timeout_seconds = 5\nserver = \"http://10.0.0.1:7070\"\n",
        )
        .unwrap();
        let cfg = AgentConfig::load(Some(&file), "KUMO_AGENT_TEST_UNUSED").unwrap();
        assert_eq!(cfg.idle_timeout_seconds, 5);
        assert_eq!(cfg.server, "http://10.0.0.1:7070");
        assert_eq!(cfg.max_processes, 1024);
    }

    #[test]
    fn the_shipped_example_parses() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.toml");
        let cfg = AgentConfig::load(Some(&file), "KUMO_AGENT_TEST_UNUSED").unwrap();
        assert_eq!(
            cfg.token_file.as_deref(),
            Some(Path::new("/var/lib/kumo/agent.token"))
        );
        assert_eq!(cfg.max_processes, AgentConfig::default().max_processes);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, "idle_timout = 5\n").unwrap();
        let err = AgentConfig::load(Some(&file), "KUMO_AGENT_TEST_UNUSED").unwrap_err();
        assert!(err.to_string().contains("agent.toml"), "{err}");
    }
}

//! Several real `kumo-agent` processes, each in its own network namespace
//! with its own address (a veth pair per node, created with `ip`), attached
//! to one plain kumod listening on all addresses: a multi-node cluster on
//! one machine.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Kumo;

/// Runs `ip args…`, panicking with its output on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One node's network namespace, veth pair and addresses.
pub struct NodeNet {
    /// Namespace name (`/run/netns/<name>`).
    pub name: String,
    /// Host end of the veth pair.
    pub host_if: String,
    /// The host's address on this link (the agent dials kumod here).
    pub host_ip: String,
    /// The node's address.
    pub node_ip: String,
}

impl NodeNet {
    /// Creates namespace `index` of this test process: 10.X.index.2/24
    /// inside, 10.X.index.1/24 on the host, default route via the host.
    fn create(index: usize) -> NodeNet {
        let pid = std::process::id();
        let subnet = 64 + pid % 128;
        let name = format!("kumo-t{pid}-{index}");
        let host_if = format!("kh{}n{index}", pid % 100_000);
        let node_if = format!("kn{}n{index}", pid % 100_000);
        let host_ip = format!("10.{subnet}.{index}.1");
        let node_ip = format!("10.{subnet}.{index}.2");
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &node_if,
        ]);
        ip(&["link", "set", &node_if, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut full = vec!["-n", name.as_str()];
            full.extend_from_slice(args);
            ip(&full);
        };
        inside(&["addr", "add", &format!("{node_ip}/24"), "dev", &node_if]);
        inside(&["link", "set", &node_if, "up"]);
        inside(&["link", "set", "lo", "up"]);
        inside(&["route", "add", "default", "via", &host_ip]);
        NodeNet {
            name,
            host_if,
            host_ip,
            node_ip,
        }
    }

    /// Cuts (`false`) or restores the node's link without telling anyone:
    /// packets are silently dropped, as when a host hangs or a cable goes.
    pub fn set_link(&self, up: bool) {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]);
    }
}

impl Drop for NodeNet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// A kumod and `n` agents in their own network namespaces.
pub struct Cluster {
    /// The daemon (CLI helpers, logs, data directory).
    pub kumo: Kumo,
    /// Each node's network.
    pub nets: Vec<NodeNet>,
    agents: Vec<Option<Child>>,
}

impl Cluster {
    /// Starts kumod with `daemon_settings` and `nodes` agents `node-0`…,
    /// and waits until every one is `ready` in `kumo agents`.
    pub fn start(nodes: usize, daemon_settings: &str) -> Cluster {
        let kumo = Kumo::start_daemon_only(daemon_settings, "0.0.0.0");
        let nets = (0..nodes).map(NodeNet::create).collect();
        let mut cluster = Cluster {
            kumo,
            nets,
            agents: (0..nodes).map(|_| None).collect(),
        };
        for index in 0..nodes {
            cluster.start_agent(index);
        }
        cluster.wait_state(|agents| {
            agents.len() == nodes && agents.iter().all(|a| a["state"] == "ready")
        });
        cluster
    }

    /// The node id of agent `index`.
    pub fn node_id(index: usize) -> String {
        format!("node-{index}")
    }

    fn agent_dir(&self, index: usize) -> PathBuf {
        self.kumo.dir.path().join(format!("agent-{index}"))
    }

    /// Starts (again) agent `index` inside its namespace.
    pub fn start_agent(&mut self, index: usize) {
        let token = self.kumo.data_dir().join("agent.token");
        self.start_agent_with_token(index, &token);
    }

    /// Agent `index`'s own log so far.
    pub fn agent_log(&self, index: usize) -> String {
        std::fs::read_to_string(self.kumo.dir.path().join(format!("agent-{index}.log")))
            .unwrap_or_default()
    }

    /// Starts agent `index` joining with the token in `token_file`.
    pub fn start_agent_with_token(&mut self, index: usize, token_file: &std::path::Path) {
        let net = &self.nets[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.kumo.dir.path().join(format!("agent-{index}.log")))
            .expect("agent log");
        let server = format!("http://{}:{}", net.host_ip, self.kumo.grpc_port());
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", net.name))
            .arg(self.kumo.bins().join("kumo-agent"))
            .args(["--server", &server, "--agent-id", &Self::node_id(index)])
            .arg("--data-dir")
            .arg(self.agent_dir(index))
            .arg("--token-file")
            .arg(token_file)
            .env(
                "KUMO_AGENT_CGROUP_PARENT",
                format!(
                    "kumo-e2e-{}-{}-node{index}",
                    std::process::id(),
                    self.kumo.grpc_port()
                ),
            )
            .env("KUMO_AGENT_ALLOCATABLE_MEMORY_MB", "4096")
            .env(
                "KUMO_AGENT_SANDBOX_UID_BASE",
                (200_000 + index * 10_000).to_string(),
            )
            .env("KUMO_AGENT_SANDBOX_UID_COUNT", "10000")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kumo-agent under nsenter");
        self.agents[index] = Some(child);
    }

    /// Kills agent `index` with SIGKILL (its sandboxes die with it).
    pub fn kill9_agent(&mut self, index: usize) {
        if let Some(mut child) = self.agents[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `kumo agents --output json`.
    pub fn agents(&self) -> Vec<serde_json::Value> {
        let run = self.kumo.cli(&["agents", "--output", "json"]);
        assert_eq!(run.code, 0, "{run:?}");
        run.json().as_array().expect("a list").clone()
    }

    /// Node `index` as `kumo agents` shows it.
    pub fn agent(&self, index: usize) -> serde_json::Value {
        let id = Self::node_id(index);
        self.agents()
            .into_iter()
            .find(|a| a["agent_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} is not listed"))
    }

    /// Invocations placed on each node so far.
    pub fn placed(&self) -> Vec<u64> {
        let agents = self.agents();
        (0..self.nets.len())
            .map(|i| {
                let id = Self::node_id(i);
                agents
                    .iter()
                    .find(|a| a["agent_id"] == id.as_str())
                    .and_then(|a| a["invocations_total"].as_u64())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Waits (up to 60 s) until `done` holds for `kumo agents`.
    pub fn wait_state(&self, done: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let agents = self.agents();
            if done(&agents) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster never reached the expected state: {agents:#?}\n{}",
                self.kumo.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.agents.len() {
            self.kill9_agent(index);
        }
    }
}

//! Helpers for the end-to-end tests: start the real `kumod --all-in-one`
//! (real sandboxes, real sled) in a temp dir on free ports, and drive it
//! with the real `kumo` CLI.

pub mod cluster;
mod functions;
pub mod http;
pub mod network;
mod packages;
mod prewarm;
mod process;
pub mod s3;
pub mod sink;
pub mod sqs;

pub use packages::{copy_dir, package_dir, python, zip_dir};
pub use prewarm::LOG_CLAIMS;
pub use process::{spawn_all_in_one, KillOnDrop};

/// kumod configuration with one `[invoke_api]` access key:
/// `AKIDKUMOTEST` / `kumo-test-secret`.
pub const INVOKE_API_KEYS: &str = "[invoke_api]\naccess_keys = [{ access_key_id = \"AKIDKUMOTEST\", secret_access_key = \"kumo-test-secret\" }]\n";

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Checks `[status, code, message]` of a refused Lambda API call (as the
/// tests' Python scripts report them): the status, Lambda's error code and
/// a message containing `words`; `what` names the call in failures.
pub fn assert_refused(
    value: &serde_json::Value,
    what: &str,
    (status, code): (u64, &str),
    words: &str,
) {
    assert_eq!(value[0], status, "{what}: {value}");
    assert_eq!(value[1], code, "{what}: {value}");
    assert!(
        value[2].as_str().unwrap_or_default().contains(words),
        "{what}: {value}"
    );
}

/// True when the test may run; false (after saying why) when it must skip.
/// Panics instead of skipping when `KUMO_REQUIRE_ROOT_TESTS=1`.
pub fn root_or_skip() -> bool {
    // SAFETY-free check: effective uid via /proc.
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_default();
    if euid == "0" {
        return true;
    }
    assert!(
        std::env::var("KUMO_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
        "KUMO_REQUIRE_ROOT_TESTS=1 but the end-to-end tests are not running as root"
    );
    eprintln!("skipping: end-to-end tests need root (namespaces and cgroups)");
    false
}

/// Where `kumod` and `kumo` are: `$KUMO_BIN_DIR`, else next to the test's deps dir.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KUMO_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    for bin in ["kumod", "kumo"] {
        assert!(
            dir.join(bin).exists(),
            "{} is missing: run `cargo build --workspace --bins` first (tests/run-all.sh does)",
            dir.join(bin).display()
        );
    }
    dir
}

/// The handler of `fixtures/division`: divides `x` by `y`.
pub const DIVISION_HANDLER: &str = "lambda_function.myfunc01_handler";

/// Polls `check` every 100 ms until it holds; panics with "timed out
/// waiting for {what}" after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The port at the end of `address` (`host:port`, or a URL ending in one).
pub fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address}"))
}

/// A fixture directory under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Two distinct free loopback ports (both held while the second is chosen,
/// so they cannot be the same).
pub fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let (a, b) = (bind(), bind());
    let port = |l: &std::net::TcpListener| l.local_addr().expect("local address").port();
    (port(&a), port(&b))
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// A running all-in-one kumod with its own data dir and cgroup parent.
pub struct Kumo {
    child: Child,
    /// Its data directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// gRPC endpoint URL.
    pub endpoint: String,
    /// HTTP listener address (`127.0.0.1:port`).
    pub http_address: String,
    bins: PathBuf,
    /// The separate `kumo-agent` of [`Kumo::start_separate`].
    agent: Option<Child>,
    /// `RLIMIT_NOFILE` kumod runs with (via `prlimit`), when limited.
    fd_limit: Option<u64>,
}

impl Kumo {
    /// Starts kumod --all-in-one and waits until it serves and has an agent.
    pub fn start() -> Kumo {
        Self::start_with("")
    }

    /// Like [`Kumo::start`], with extra TOML lines for the `[agent]` table.
    pub fn start_with(agent_settings: &str) -> Kumo {
        Self::start_configured("", agent_settings)
    }

    /// Like [`Kumo::start`], with extra top-level TOML for kumod (keys and
    /// tables such as `[async_invoke]`) and extra lines for `[agent]`.
    pub fn start_configured(daemon_settings: &str, agent_settings: &str) -> Kumo {
        Self::launch(daemon_settings, agent_settings, true, "127.0.0.1")
    }

    /// A plain kumod (no agent) with `daemon_settings`, its gRPC port bound
    /// on `listen_ip` (e.g. `0.0.0.0`, so agents in other network
    /// namespaces can reach it); the CLI still uses loopback.
    pub fn start_daemon_only(daemon_settings: &str, listen_ip: &str) -> Kumo {
        Self::launch(daemon_settings, "", false, listen_ip)
    }

    /// The gRPC port.
    pub fn grpc_port(&self) -> u16 {
        port_of(&self.endpoint)
    }

    /// The HTTP listener's port.
    pub fn http_port(&self) -> u16 {
        port_of(&self.http_address)
    }

    /// The binaries under test.
    pub fn bins(&self) -> &Path {
        &self.bins
    }

    /// Like [`Kumo::start_configured`], with kumod's soft and hard
    /// `RLIMIT_NOFILE` set to `fd_limit` (started under `prlimit`).
    pub fn start_fd_limited(daemon_settings: &str, fd_limit: u64) -> Kumo {
        let ports = free_ports();
        Self::launch_at(
            daemon_settings,
            "",
            true,
            "127.0.0.1",
            Some(fd_limit),
            ports,
        )
    }

    fn launch(
        daemon_settings: &str,
        agent_settings: &str,
        all_in_one: bool,
        listen_ip: &str,
    ) -> Kumo {
        let ports = free_ports();
        Self::launch_at(
            daemon_settings,
            agent_settings,
            all_in_one,
            listen_ip,
            None,
            ports,
        )
    }

    /// Like [`Kumo::start`], on the given gRPC and HTTP ports (e.g. the
    /// defaults 7070 and 7071, for commands copied from the README).
    pub fn start_on_ports(grpc: u16, http: u16) -> Kumo {
        Self::launch_at("", "", true, "127.0.0.1", None, (grpc, http))
    }

    fn launch_at(
        daemon_settings: &str,
        agent_settings: &str,
        all_in_one: bool,
        listen_ip: &str,
        fd_limit: Option<u64>,
        (grpc, http): (u16, u16),
    ) -> Kumo {
        let bins = bin_dir();
        // `{http_port}` in the settings names the HTTP listener's port.
        let daemon_settings = &daemon_settings.replace("{http_port}", &http.to_string());
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("kumod.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{data}\"\nlisten = \"{listen_ip}:{grpc}\"\nhttp_listen = \"127.0.0.1:{http}\"\n{wait}{daemon_settings}\n\n[agent]\ncgroup_parent = \"kumo-e2e-{pid}-{grpc}\"\n{idle}allocatable_memory_mb = 8192\n{agent_settings}\n",
                data = dir.path().join("data").display(),
                pid = std::process::id(),
                wait = if daemon_settings.contains("agent_wait_seconds") { "" } else { "agent_wait_seconds = 10\n" },
                idle = if agent_settings.contains("idle_timeout_seconds") { "" } else { "idle_timeout_seconds = 60\n" },
            ),
        )
        .expect("writing kumod.toml");
        let child = Self::spawn_kumod(&bins, dir.path(), all_in_one, fd_limit);
        let kumo = Kumo {
            child,
            dir,
            endpoint: format!("http://127.0.0.1:{grpc}"),
            http_address: format!("127.0.0.1:{http}"),
            bins,
            agent: None,
            fd_limit,
        };
        kumo.wait_ready();
        kumo
    }

    /// A plain kumod (no embedded agent) with `daemon_settings`, and one
    /// separate `kumo-agent` process attached to it, as on a multi-node
    /// install.
    pub fn start_separate(daemon_settings: &str) -> Kumo {
        let mut kumo = Self::launch(daemon_settings, "", false, "127.0.0.1");
        kumo.start_agent();
        kumo
    }

    /// Starts (again) the separate agent of [`Kumo::start_separate`].
    pub fn start_agent(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("agent log file");
        let port = self.grpc_port();
        let agent = Command::new(self.bins.join("kumo-agent"))
            .args(["--server", &self.endpoint, "--agent-id", "separate-agent"])
            .arg("--data-dir")
            .arg(self.dir.path().join("agent"))
            .env(
                "KUMO_AGENT_CGROUP_PARENT",
                format!("kumo-e2e-{}-{port}-agent", std::process::id()),
            )
            .env("KUMO_AGENT_ALLOCATABLE_MEMORY_MB", "8192")
            .env("KUMO_AGENT_TOKEN_FILE", self.data_dir().join("agent.token"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kumo-agent");
        self.agent = Some(agent);
    }

    /// Kills the separate agent with SIGKILL and waits for it.
    pub fn kill9_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
    }

    fn spawn_kumod(bins: &Path, dir: &Path, all_in_one: bool, fd_limit: Option<u64>) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("kumod.log"))
            .expect("log file");
        let mut command = match fd_limit {
            Some(limit) => {
                let mut prlimit = Command::new("prlimit");
                prlimit
                    .arg(format!("--nofile={limit}:{limit}"))
                    .arg(bins.join("kumod"));
                prlimit
            }
            None => Command::new(bins.join("kumod")),
        };
        if all_in_one {
            command.arg("--all-in-one");
        }
        command
            .arg("--config")
            .arg(dir.join("kumod.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kumod")
    }

    /// Kills kumod with SIGKILL (no clean-up of any kind) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts kumod again on the same data directory, ports and settings.
    pub fn restart(&mut self) {
        self.child = Self::spawn_kumod(
            &self.bins,
            self.dir.path(),
            self.agent.is_none(),
            self.fd_limit,
        );
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let kumo = self;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let run = kumo.cli(&["function", "list"]);
            if run.code == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "kumod never became ready: {run:?}\n{}",
                kumo.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kumod's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The operator token file kumod created in its data directory.
    pub fn token_file(&self) -> PathBuf {
        self.data_dir().join("control.token")
    }

    /// `kumo` with the endpoint and this kumod's operator token.
    fn kumo_command(&self) -> Command {
        let mut command = Command::new(self.bins.join("kumo"));
        command
            .arg("--endpoint")
            .arg(&self.endpoint)
            .env_remove("KUMO_TOKEN")
            .env("KUMO_TOKEN_FILE", self.token_file());
        command
    }

    /// kumod's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kumod.log")).unwrap_or_default()
    }

    /// Starts `kumo --endpoint … args…` without waiting for it.
    pub fn spawn_cli(&self, args: &[&str]) -> Child {
        self.kumo_command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kumo")
    }

    /// Runs `kumo --endpoint … args…`.
    pub fn cli(&self, args: &[&str]) -> Run {
        let output = self
            .kumo_command()
            .args(args)
            .output()
            .expect("running kumo");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Whether kumod is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Kumo {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = Command::new("kill").arg(agent.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(agent.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = agent.kill();
            let _ = agent.wait();
        }
        let pid = self.child.id() as i32;
        // SIGTERM lets the embedded agent tear its sandboxes down.
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // An agent killed with SIGKILL (and not restarted) leaves its file
        // store mounted until the next agent start; detach it so that the
        // temp dir can go.
        let prefix = format!("{}/", self.dir.path().display());
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for mount in mountinfo.lines().filter_map(|l| l.split(' ').nth(4)) {
            if mount.starts_with(&prefix) {
                let _ = Command::new("umount").args(["-l", mount]).status();
            }
        }
        if std::thread::panicking() {
            eprintln!("---- kumod log ----\n{}", self.log());
            let agent_log = std::fs::read_to_string(self.dir.path().join("agent.log"));
            if let Ok(agent_log) = agent_log {
                eprintln!("---- kumo-agent log ----\n{agent_log}");
            }
        }
    }
}

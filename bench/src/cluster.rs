//! The Kumo under test: a release `kumod --all-in-one` started in a temp
//! directory on free ports, and a gRPC client to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kumo_common::client_security::{read_tokens, BearerToken};
use kumo_proto::control::control_client::ControlClient;
use kumo_proto::control::*;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A control-API client sending kumod's operator token.
pub type Client = ControlClient<InterceptedService<Channel, BearerToken>>;

/// A running kumod and a client.
pub struct Cluster {
    child: Child,
    /// Its directory (data, config, log), removed on drop.
    _dir: tempfile::TempDir,
    /// gRPC client.
    pub client: Client,
    /// HTTP listener address.
    pub http: String,
    /// The cgroup parent of its instances.
    pub cgroup_parent: String,
}

/// Where the release binaries are: next to this executable.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding kumo-bench's own path")?;
    let dir = exe
        .parent()
        .context("kumo-bench has no directory")?
        .to_path_buf();
    if !dir.join("kumod").exists() {
        bail!(
            "{} has no kumod: run bench/run.sh (it builds the release binaries)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Two distinct free ports (both held while the second is chosen).
fn free_ports() -> anyhow::Result<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// The MinIO webhook token of every benchmark kumod (the webhook refuses
/// requests without one).
pub const WEBHOOK_TOKEN: &str = "kumo-bench-webhook-token";

/// `[agent]` lines giving the embedded agent an `outbound` bridge of the
/// benchmark's own (removed by [`remove_outbound_network`]).
pub const OUTBOUND_AGENT: &str =
    "outbound_bridge = \"kbench0\"\noutbound_subnet = \"10.231.0.0/24\"\n";

/// Removes the bridge and rules of [`OUTBOUND_AGENT`] (agents leave them in
/// place when they stop, for the next start).
pub fn remove_outbound_network() {
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", "kumo_kbench0"])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("ip")
        .args(["link", "del", "kbench0"])
        .stderr(Stdio::null())
        .status();
}

/// Starts kumod on `data_dir` (a fresh one when None) and waits until it answers.
pub async fn start(extra_toml: &str, data_dir: Option<&Path>) -> anyhow::Result<Cluster> {
    start_with_agent(extra_toml, "", data_dir).await
}

/// Like [`start`], with extra lines for the embedded agent's `[agent]` table.
pub async fn start_with_agent(
    extra_toml: &str,
    agent_toml: &str,
    data_dir: Option<&Path>,
) -> anyhow::Result<Cluster> {
    let dir = tempfile::tempdir()?;
    let (grpc, http) = free_ports()?;
    let data = data_dir.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
    let cgroup_parent = format!("kumo-bench-{}-{grpc}", std::process::id());
    let config = dir.path().join("kumod.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:{grpc}\"\nhttp_listen = \"127.0.0.1:{http}\"\n{extra_toml}\n[triggers]\nminio_auth_token = \"{WEBHOOK_TOKEN}\"\n\n[log]\nlevel = \"warn\"\n\n[agent]\ncgroup_parent = \"{cgroup_parent}\"\nidle_timeout_seconds = 3600\n{agent_toml}\n",
            data.display()
        ),
    )?;
    let log = std::fs::File::create(dir.path().join("kumod.log"))?;
    let child = Command::new(bin_dir()?.join("kumod"))
        .arg("--all-in-one")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting kumod")?;
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let client = loop {
        // kumod creates its operator token file on first start.
        let token = read_tokens(&data.join("control.token"))
            .ok()
            .and_then(|t| t.into_iter().next());
        let connected = match token {
            Some(_) => tonic::transport::Endpoint::from_shared(endpoint.clone())?
                .connect()
                .await
                .ok(),
            None => None,
        };
        if let (Some(channel), Some(token)) = (connected, token) {
            let mut client =
                ControlClient::with_interceptor(channel, BearerToken::new(Some(&token))?)
                    .max_decoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES)
                    .max_encoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES);
            if client
                .get_status(GetStatusRequest {})
                .await
                .is_ok_and(|s| !s.get_ref().agents.is_empty())
            {
                break client;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "kumod did not become ready; see {}",
                dir.path().join("kumod.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Cluster {
        child,
        _dir: dir,
        client,
        http: format!("127.0.0.1:{http}"),
        cgroup_parent,
    })
}

/// A ZIP with one file, `file_name`, holding `source`.
pub fn one_file_package(file_name: &str, source: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip_writer(&mut out);
        zip.start_file(file_name, zip::write::SimpleFileOptions::default())?;
        zip.write_all(source.as_bytes())?;
        zip.finish()?;
    }
    Ok(out.into_inner())
}

fn zip_writer<W: std::io::Write + std::io::Seek>(w: W) -> zip::ZipWriter<W> {
    zip::ZipWriter::new(w)
}

impl Cluster {
    /// Creates a python3 function (`lambda_function.handler`).
    pub async fn create(
        &mut self,
        name: &str,
        source: &str,
        tune: impl FnOnce(&mut FunctionConfig),
    ) -> anyhow::Result<()> {
        let mut config = FunctionConfig {
            name: name.into(),
            runtime: "python3".into(),
            handler: "lambda_function.handler".into(),
            timeout_seconds: Some(30),
            ..Default::default()
        };
        tune(&mut config);
        let zip = one_file_package("lambda_function.py", source)?;
        self.create_from(config, zip).await
    }

    /// Creates a nodejs20.x function (`index.handler` in `index.js`).
    pub async fn create_node(&mut self, name: &str, source: &str) -> anyhow::Result<()> {
        let config = FunctionConfig {
            name: name.into(),
            runtime: "nodejs20.x".into(),
            handler: "index.handler".into(),
            timeout_seconds: Some(30),
            ..Default::default()
        };
        let zip = one_file_package("index.js", source)?;
        self.create_from(config, zip).await
    }

    async fn create_from(&mut self, config: FunctionConfig, zip: Vec<u8>) -> anyhow::Result<()> {
        let name = config.name.clone();
        self.client
            .create_function(CreateFunctionRequest {
                config: Some(config),
                zip,
                code_s3: None,
            })
            .await
            .with_context(|| format!("creating {name}"))?;
        Ok(())
    }

    /// kumod's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Busy (non-idle, non-iowait) jiffies of the whole machine.
pub fn busy_jiffies() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle)
}

//! `--all-in-one`: the agent library running inside kumod, attached over
//! loopback gRPC exactly like a remote agent. Part of the `kumod` binary
//! only; the daemon library never uses the agent crate.

use kumo_daemon::config::DaemonConfig;

#[cfg(feature = "all-in-one")]
pub type AgentTask = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Starts the embedded agent from the `[agent]` section, defaulting its
/// server to this kumod and its data dir to `<data_dir>/agent`.
#[cfg(feature = "all-in-one")]
pub fn start_embedded_agent(
    config: &DaemonConfig,
    grpc: std::net::SocketAddr,
    join_token: String,
) -> anyhow::Result<AgentTask> {
    use anyhow::Context;
    let mut agent: kumo_agent::config::AgentConfig = match &config.agent {
        Some(section) => {
            serde_json::from_value(section.clone()).context("invalid [agent] section")?
        }
        None => Default::default(),
    };
    let section = config.agent.as_ref();
    let given = |key: &str| section.and_then(|s| s.get(key)).is_some();
    if !given("server") {
        let host = if grpc.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            grpc.ip().to_string()
        };
        agent.server = format!("http://{host}:{}", grpc.port());
    }
    agent.embedded_join_token = Some(join_token);
    if !given("data_dir") {
        agent.data_dir = config.data_dir.join("agent");
    }
    if !given("region") {
        agent.region = config.region.clone();
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(err) = kumo_agent::node::run(agent, shutdown).await {
            tracing::error!(%err, "embedded agent stopped");
        }
    });
    Ok((stop, task))
}

#[cfg(not(feature = "all-in-one"))]
pub type AgentTask = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

#[cfg(not(feature = "all-in-one"))]
pub fn start_embedded_agent(
    _: &DaemonConfig,
    _: std::net::SocketAddr,
    _: String,
) -> anyhow::Result<AgentTask> {
    anyhow::bail!("this kumod was built without the all-in-one feature")
}

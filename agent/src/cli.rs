//! Command line of the `kumo-agent` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::config::AgentConfig;

/// kumo-agent: runs Kumo functions in sandboxes on this node for kumod.
#[derive(Debug, Parser)]
#[command(name = "kumo-agent", version)]
pub struct Args {
    /// TOML configuration file (see deploy/agent.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC URL of kumod (overrides `server`).
    #[arg(long)]
    pub server: Option<String>,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Node id (overrides `agent_id`; default: the hostname).
    #[arg(long)]
    pub agent_id: Option<String>,
    /// File holding the join token (overrides `token_file`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Log format of the agent's own logs.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// How the process writes its own diagnostic logs.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber (level from `RUST_LOG`, default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves once SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Entry point of the `kumo-agent` binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_format);
    let mut config = match AgentConfig::load(args.config.as_deref(), "KUMO_AGENT") {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(server) = args.server {
        config.server = server;
    }
    if let Some(file) = args.token_file {
        config.token_file = Some(file);
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(id) = args.agent_id {
        config.agent_id = id;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::node::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

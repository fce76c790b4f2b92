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
    /// Log format of the agent's own logs: text or json.
    #[arg(long, default_value = "text")]
    pub log_format: LogFormat,
}

/// How the agent writes its own diagnostic logs (shared with kumod).
pub use kumo_common::process::LogFormat;

/// Entry point of the `kumo-agent` binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    kumo_common::process::init_tracing(args.log_format, "info");
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
    match runtime.block_on(crate::node::run(
        config,
        kumo_common::process::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

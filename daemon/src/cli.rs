//! Command line of the `kumod` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// kumod: Kumo's scheduler daemon.
#[derive(Debug, Parser)]
#[command(name = "kumod", version)]
pub struct Args {
    /// TOML configuration file (see deploy/kumod.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address (overrides `listen`; default 127.0.0.1:7070).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// HTTP listen address (overrides `http_listen`; default 127.0.0.1:7071).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Also run an agent in this process (one box, one command).
    #[arg(long)]
    pub all_in_one: bool,
    /// Accept gRPC calls without tokens (only allowed on a loopback listen
    /// address; for development).
    #[arg(long)]
    pub insecure_local: bool,
    /// Format of kumod's own logs: text or json.
    #[arg(long, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

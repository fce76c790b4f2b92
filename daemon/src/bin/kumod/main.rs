//! `kumod`: Kumo's scheduler daemon. With `--all-in-one` it also runs an
//! agent in this process, attached over loopback gRPC like any other.

use std::path::PathBuf;
use std::process::ExitCode;

mod all_in_one;

use clap::Parser;
use kumo_common::process;
use kumo_daemon::config::{DaemonConfig, Overrides};

/// kumod: Kumo's scheduler daemon.
#[derive(Debug, Parser)]
#[command(name = "kumod", version)]
struct Args {
    /// TOML configuration file (see deploy/kumod.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also run an agent in this process (one box, one command).
    #[arg(long)]
    all_in_one: bool,
    /// Settings that override the file and the environment.
    #[command(flatten)]
    overrides: Overrides,
}

fn main() -> ExitCode {
    // Sandboxes re-execute this binary as their init; that must happen
    // before any thread exists.
    #[cfg(feature = "all-in-one")]
    if std::env::args().nth(1).as_deref() == Some(kumo_agent::sandbox::INIT_SUBCOMMAND) {
        kumo_agent::sandbox::init_main();
    }
    let args = Args::parse();
    let config = match DaemonConfig::load(args.config.as_deref(), &args.overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    process::init_tracing(config.log.format, &config.log.level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args.all_in_one, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(all_in_one: bool, config: DaemonConfig) -> anyhow::Result<()> {
    let daemon = kumo_daemon::server::start(&config).await?;
    let agent = if all_in_one {
        Some(all_in_one::start_embedded_agent(
            &config,
            daemon.grpc_address,
            daemon.embedded_agent_token.clone(),
        )?)
    } else {
        None
    };
    if let Err(err) = kumo_common::sd_notify::notify("READY=1") {
        tracing::warn!(%err, "telling systemd that kumod is ready failed");
    }
    process::shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = kumo_common::sd_notify::notify("STOPPING=1");
    if let Some((stop, task)) = agent {
        let _ = stop.send(());
        let _ = task.await;
    }
    daemon.shutdown().await?;
    Ok(())
}

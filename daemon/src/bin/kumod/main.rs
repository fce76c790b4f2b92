//! `kumod`: Kumo's scheduler daemon. With `--all-in-one` it also runs an
//! agent in this process, attached over loopback gRPC like any other.

use std::path::PathBuf;
use std::process::ExitCode;

mod all_in_one;

use clap::Parser;
use kumo_common::private_state;
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
    // kumod's state (env secrets, tokens) is private whoever starts it:
    // new files 0600 and directories 0700, existing ones fixed.
    let previous_umask = private_state::private_umask();
    let agent_dir = config.data_dir.join("agent");
    if let Err(err) = private_state::make_tree_private(&config.data_dir, &[agent_dir.as_path()]) {
        eprintln!("error: making the data directory private: {err}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args.all_in_one, config, previous_umask)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", process::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(all_in_one: bool, config: DaemonConfig, previous_umask: u32) -> anyhow::Result<()> {
    let daemon = kumo_daemon::server::start(&config).await?;
    let agent = if all_in_one {
        // Sandboxed functions keep the umask kumod was started with; kumod's
        // own files are created with explicit modes inside 0700 directories.
        private_state::set_umask(previous_umask);
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

//! `kumod`: Kumo's scheduler daemon. With `--all-in-one` it also runs an
//! agent in this process, attached over loopback gRPC like any other.

use std::process::ExitCode;

mod all_in_one;

use clap::Parser;
use kumo_daemon::cli::Args;
use kumo_daemon::config::DaemonConfig;

fn main() -> ExitCode {
    // Sandboxes re-execute this binary as their init; that must happen
    // before any thread exists.
    #[cfg(feature = "all-in-one")]
    if std::env::args().nth(1).as_deref() == Some(kumo_agent::sandbox::INIT_SUBCOMMAND) {
        kumo_agent::sandbox::init_main();
    }
    let args = Args::parse();
    let config = match DaemonConfig::load(&args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, config: DaemonConfig) -> anyhow::Result<()> {
    let daemon = kumo_daemon::server::start(&config).await?;
    let agent = if args.all_in_one {
        Some(all_in_one::start_embedded_agent(
            &config,
            daemon.grpc_address,
            daemon.embedded_agent_token.clone(),
        )?)
    } else {
        None
    };
    if let Err(err) = kumo_proto::sd_notify::notify("READY=1") {
        tracing::warn!(%err, "telling systemd that kumod is ready failed");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = kumo_proto::sd_notify::notify("STOPPING=1");
    if let Some((stop, task)) = agent {
        let _ = stop.send(());
        let _ = task.await;
    }
    daemon.shutdown().await?;
    Ok(())
}

fn init_tracing(config: &DaemonConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

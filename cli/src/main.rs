//! `kumo`: the command-line client of Kumo's gRPC control API.

mod agents;
mod args;
mod commands;
mod connect;
mod dlq;
mod docs;
mod layers;
mod output;
mod package;
mod triggers;
mod upload_progress;
mod versions;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use commands::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Local commands: no connection to kumod.
    match cli.command {
        Command::Completions { shell } => return docs::completions(shell),
        Command::Man => return docs::man_page(),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::FunctionFailed) => ExitCode::from(1),
        Err(CliError::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let mut client = connect::connect(&cli).await?;
    match cli.command {
        Command::Function(command) => commands::function(&mut client, command).await,
        Command::Invoke(args) => commands::invoke(&mut client, args).await,
        Command::Logs(args) => commands::logs(&mut client, args).await,
        Command::Dlq(command) => dlq::run(&mut client, command).await,
        Command::Trigger(command) => triggers::run(&mut client, command).await,
        Command::Version(command) => versions::version(&mut client, command).await,
        Command::Alias(command) => versions::alias(&mut client, command).await,
        Command::Layer(command) => layers::run(&mut client, command).await,
        Command::Status { output } => versions::status(&mut client, output).await,
        Command::Agents { output } => agents::list(&mut client, output).await,
        Command::Agent(command) => agents::run(&mut client, command).await,
        Command::Completions { .. } | Command::Man => unreachable!("handled in main"),
    }
}

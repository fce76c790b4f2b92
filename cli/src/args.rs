//! The `kumo` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use kumo_proto::model::{NetworkMode, Runtime};

mod triggers;
mod versions;
pub use triggers::{TriggerCommand, TriggerCreateArgs};
pub use versions::{AliasCommand, AliasTarget, LayerCommand, VersionCommand};

/// kumo: deploy and invoke functions on a Kumo cluster.
#[derive(Debug, Parser)]
#[command(name = "kumo", version)]
pub struct Cli {
    /// gRPC URL of kumod.
    #[arg(
        long,
        env = "KUMO_ENDPOINT",
        default_value = "http://127.0.0.1:7070",
        global = true,
        help_heading = "Global options"
    )]
    pub endpoint: String,
    /// File holding the operator token (`KUMO_TOKEN` takes precedence;
    /// default: ~/.config/kumo/token, then /var/lib/kumo/control.token).
    #[arg(
        long,
        env = "KUMO_TOKEN_FILE",
        global = true,
        help_heading = "Global options"
    )]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) of kumod's TLS certificate (https:// endpoints).
    #[arg(
        long,
        env = "KUMO_TLS_CA",
        global = true,
        help_heading = "Global options"
    )]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), when kumod requires one.
    #[arg(
        long,
        env = "KUMO_TLS_CERT",
        global = true,
        help_heading = "Global options"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(
        long,
        env = "KUMO_TLS_KEY",
        global = true,
        help_heading = "Global options"
    )]
    pub tls_key: Option<PathBuf>,
    /// Name kumod's certificate must carry (default: the endpoint's host).
    #[arg(
        long,
        env = "KUMO_TLS_DOMAIN",
        global = true,
        help_heading = "Global options"
    )]
    pub tls_domain: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, change, inspect and delete functions.
    #[command(subcommand)]
    Function(FunctionCommand),
    /// Invoke a function synchronously and print its result.
    Invoke(InvokeArgs),
    /// Print a function's logs (START … REPORT per invocation).
    Logs(LogsArgs),
    /// List, show, replay and purge a function's dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Schedules and bucket notifications that invoke functions.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Publish, list and delete immutable versions.
    #[command(subcommand)]
    Version(VersionCommand),
    /// Named pointers at versions (with optional weighted routing).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Shared libraries and runtimes functions mount at /opt.
    #[command(subcommand)]
    Layer(LayerCommand),
    /// The daemon and its agents.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List nodes: id, address, state, instances, memory, version.
    Agents {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Drain or undrain a node.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print kumo's manual page (roff; `kumo man | man -l -`).
    Man,
}

/// Node subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Stop new placements on a node and wait for its running invocations.
    Drain {
        /// Agent id (see `kumo agents`).
        agent_id: String,
        /// Longest wait for running invocations.
        #[arg(long, default_value_t = 900)]
        wait_seconds: u32,
        /// Return at once instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Let a drained node take work again.
    Undrain {
        /// Agent id.
        agent_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// Dead-letter queue subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a function's dead letters (oldest failure first).
    List {
        /// Function name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one dead letter with its payload and error (JSON).
    Show {
        /// Function name.
        name: String,
        /// Dead-letter id (the event's request id).
        id: String,
    },
    /// Queue dead letters again as new asynchronous events.
    Replay {
        /// Function name.
        name: String,
        /// Dead-letter ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Replay every dead letter of the function.
        #[arg(long)]
        all: bool,
    },
    /// Delete every dead letter of a function.
    Purge {
        /// Function name.
        name: String,
    },
}

/// Asynchronous-invocation and concurrency settings of `function create`
/// and `function update`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AsyncSettings {
    /// Reserved (and maximum) concurrency; 0 disables the function.
    #[arg(long, allow_negative_numbers = true)]
    pub concurrency: Option<i32>,
    /// Retries of a failed asynchronous event (0-2, default 2).
    #[arg(long)]
    pub max_retry_attempts: Option<u32>,
    /// Seconds an asynchronous event is tried for (60-21600, default 21600).
    #[arg(long, value_name = "SECONDS")]
    pub max_event_age: Option<u32>,
    /// Where the destination record of a failed event goes: a function, or
    /// an SQS queue / SNS topic ARN (sent with --credentials' profile);
    /// "" removes it.
    #[arg(long, value_name = "FUNCTION|ARN")]
    pub on_failure: Option<String>,
    /// SQS queue or SNS topic ARN that gets the original event of each
    /// event that fails for good, with attributes RequestID, ErrorCode,
    /// ErrorMessage (sent with --credentials' profile); "" removes it.
    #[arg(long, value_name = "ARN")]
    pub dead_letter_target: Option<String>,
    /// Where the destination record of a succeeded event goes (condition
    /// Success): a function, or an SQS queue / SNS topic ARN; "" removes it.
    #[arg(long, value_name = "FUNCTION|ARN")]
    pub on_success: Option<String>,
}

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Output {
    /// Human-readable (a table for lists; `table` is the same).
    #[default]
    #[value(alias = "table")]
    Text,
    /// JSON.
    Json,
}

/// Function subcommands.
#[derive(Debug, Subcommand)]
pub enum FunctionCommand {
    /// Create a function from a directory or a .zip.
    Create(Box<CreateArgs>),
    /// Change a function's code and/or configuration.
    Update(Box<UpdateArgs>),
    /// Show one function.
    Get {
        /// Function name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List functions.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a function.
    Delete {
        /// Function name.
        name: String,
    },
}

/// A runtime identifier Kumo knows, kept as the user spelled it.
fn runtime_identifier(identifier: &str) -> Result<String, kumo_proto::model::ValidationError> {
    identifier.parse::<Runtime>()?;
    Ok(identifier.to_string())
}

/// `function create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Function name.
    pub name: String,
    /// Runtime: python3, nodejs20.x (nodejs18.x, nodejs22.x) or provided,
    /// or Lambda's identifiers (python3.9-python3.13, provided.al2,
    /// provided.al2023); stored as given.
    #[arg(long, value_parser = runtime_identifier)]
    pub runtime: String,
    /// Handler, e.g. lambda_function.lambda_handler (python3) or
    /// index.handler (nodejsNN.x).
    #[arg(long, default_value = "")]
    pub handler: String,
    /// Package: a directory (zipped by the CLI), a .zip file, or
    /// s3://bucket/key.zip (fetched by kumod; needs --s3-profile).
    #[arg(long)]
    pub code: PathBuf,
    /// Free-text description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Memory, timeout, environment, network, /tmp, credentials and
    /// asynchronous settings.
    #[command(flatten)]
    pub settings: FunctionSettings,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// `function update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Function name.
    pub name: String,
    /// New package: a directory, a .zip file, or s3://bucket/key.zip.
    #[arg(long)]
    pub code: Option<PathBuf>,
    /// New runtime (the identifiers `function create` takes).
    #[arg(long, value_parser = runtime_identifier)]
    pub runtime: Option<String>,
    /// New handler.
    #[arg(long)]
    pub handler: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// Remove every environment variable.
    #[arg(long, conflicts_with = "env")]
    pub clear_env: bool,
    /// Remove the egress allow-list.
    #[arg(long, conflicts_with = "egress_allow")]
    pub clear_egress_allow: bool,
    /// Remove every layer.
    #[arg(long, conflicts_with = "layers")]
    pub clear_layers: bool,
    /// Memory, timeout, environment, network, /tmp, credentials and
    /// asynchronous settings (only the given ones change).
    #[command(flatten)]
    pub settings: FunctionSettings,
    /// Remove the reserved concurrency.
    #[arg(long, conflicts_with = "concurrency")]
    pub no_concurrency: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// The configuration flags `function create` and `function update` share;
/// on update, only the given ones change.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FunctionSettings {
    /// kumod's S3 profile to fetch an s3:// package with.
    #[arg(long)]
    pub s3_profile: Option<String>,
    /// kumod's AWS profile whose credentials and endpoints the function
    /// gets (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL_S3/_SQS/_SNS, and the profile's common endpoint as
    /// AWS_ENDPOINT_URL); on update, "" removes them.
    #[arg(long, value_name = "PROFILE")]
    pub credentials: Option<String>,
    /// Memory in MB (128-10240, default 128).
    #[arg(long)]
    pub memory: Option<u32>,
    /// Timeout in seconds (1-900, default 3).
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Environment variable K=V (repeatable); on update, replaces the whole
    /// environment.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Network: none (loopback only, default), outbound (own namespace with
    /// NAT to the outside; recommended for functions that call services) or
    /// host (escape hatch: the host's network).
    #[arg(long)]
    pub network: Option<NetworkMode>,
    /// With --network outbound: allow only this destination, an IPv4
    /// CIDR[:PORT] (repeatable); on update, replaces the whole allow-list.
    #[arg(long = "egress-allow", value_name = "CIDR[:PORT]")]
    pub egress_allow: Vec<String>,
    /// Size of /tmp in MB (512-10240, default 512).
    #[arg(long)]
    pub tmp_size: Option<u32>,
    /// Layer versions (at most 5; NAME:VERSION or ARN), extracted in this
    /// order into /opt, a later layer's files winning; on update, replaces
    /// the whole list.
    #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "LAYER")]
    pub layers: Vec<String>,
    /// Asynchronous invocation and concurrency.
    #[command(flatten)]
    pub async_settings: AsyncSettings,
}

/// `invoke`.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// Function name, optionally name:qualifier.
    pub name: String,
    /// Qualifier (version or alias).
    #[arg(long)]
    pub qualifier: Option<String>,
    /// JSON payload (default {}).
    #[arg(long, conflicts_with = "payload_file")]
    pub payload: Option<String>,
    /// File holding the JSON payload.
    #[arg(long)]
    pub payload_file: Option<PathBuf>,
    /// Print this invocation's log tail on stderr.
    #[arg(long, conflicts_with = "async_")]
    pub log_tail: bool,
    /// Client context handed to the function (JSON, as context.client_context).
    #[arg(long, value_name = "JSON")]
    pub client_context: Option<String>,
    /// Queue the event and print its id at once (Event invocation).
    #[arg(long = "async", id = "async_")]
    pub async_: bool,
    /// Only check the call (function exists, payload valid).
    #[arg(long, conflicts_with = "async_")]
    pub dry_run: bool,
}

/// `logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Function name.
    pub name: String,
    /// Keep printing log lines as they are written (running invocations'
    /// lines too); starts at the end unless --since or --request-id is given.
    #[arg(long)]
    pub follow: bool,
    /// Only logs newer than this: 30s, 10m, 2h, 1d, or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only this invocation's log.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Only invocations that ran this version ($LATEST, 1, 2, …).
    #[arg(long)]
    pub version: Option<String>,
    /// `text`: the lines as printed; `json`: one JSON object per line
    /// (`timestamp_unix_ms`, `function`, `version`, `request_id`, `message`).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

//! The `kumo` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use kumo_proto::model::{NetworkMode, Runtime};

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

/// Layer subcommands.
#[derive(Debug, Subcommand)]
pub enum LayerCommand {
    /// Publish a directory or .zip as the layer's next version (its files
    /// appear under /opt: python/, lib/, bin/, nodejs/node_modules/).
    Publish {
        /// Layer name.
        name: String,
        /// Content: a directory (zipped by the CLI), a .zip file, or
        /// s3://bucket/key.zip (fetched by kumod; needs --s3-profile).
        #[arg(long)]
        code: PathBuf,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Runtime identifiers it is meant for (informational, as on Lambda).
        #[arg(long, num_args = 1.., value_delimiter = ',', value_parser = runtime_identifier)]
        compatible_runtimes: Vec<String>,
        /// License name or URL.
        #[arg(long, default_value = "")]
        license_info: String,
        /// kumod's S3 profile to fetch an s3:// package with.
        #[arg(long)]
        s3_profile: Option<String>,
        /// Output format (text prints the layer version ARN).
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List layers (their newest versions), or one layer's versions.
    List {
        /// Layer name: list its versions.
        name: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a layer version and the functions using it.
    Get {
        /// NAME:VERSION or a layer version ARN.
        layer: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a layer version no function uses.
    Delete {
        /// NAME:VERSION or a layer version ARN.
        layer: String,
    },
}

/// Version subcommands.
#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// Snapshot $LATEST as the next version (or return the last one if nothing changed).
    Publish {
        /// Function name.
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Refuse unless $LATEST's CodeSha256 (base64) is this.
        #[arg(long, value_name = "SHA256")]
        expect_sha256: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List $LATEST and the published versions.
    List {
        /// Function name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a published version no alias or trigger uses.
    Delete {
        /// Function name.
        name: String,
        /// Version number.
        version: String,
    },
}

/// What an alias points at.
#[derive(Debug, clap::Args)]
pub struct AliasTarget {
    /// Function name.
    pub name: String,
    /// Alias name.
    pub alias: String,
    /// Version it points at (a number, or $LATEST).
    #[arg(long)]
    pub version: String,
    /// A second version that gets --weight of the calls.
    #[arg(long, requires = "weight")]
    pub extra_version: Option<String>,
    /// Share of calls (0-1) for --extra-version.
    #[arg(long, requires = "extra_version")]
    pub weight: Option<f64>,
    /// Free text.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Alias subcommands.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create an alias.
    Create(AliasTarget),
    /// Move an alias (takes effect for the next call).
    Update(AliasTarget),
    /// Show an alias.
    Get {
        /// Function name.
        name: String,
        /// Alias name.
        alias: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List a function's aliases.
    List {
        /// Function name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete an alias no trigger uses.
    Delete {
        /// Function name.
        name: String,
        /// Alias name.
        alias: String,
    },
}

/// Trigger subcommands.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Create a schedule (--schedule), bucket (--bucket) or HTTP (--http-path) trigger.
    Create(Box<TriggerCreateArgs>),
    /// List triggers.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a trigger (schedules: with the next 5 fire times).
    Get {
        /// Trigger name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Let a trigger fire again (schedules restart from now).
    Enable {
        /// Trigger name.
        name: String,
    },
    /// Stop a trigger from firing.
    Disable {
        /// Trigger name.
        name: String,
    },
    /// Delete a trigger (and the bucket configuration kumod made for it).
    Delete {
        /// Trigger name.
        name: String,
    },
}

/// `trigger create`.
#[derive(Debug, clap::Args)]
pub struct TriggerCreateArgs {
    /// Trigger name.
    pub name: String,
    /// Function to invoke: NAME or NAME:QUALIFIER.
    #[arg(long)]
    pub function: String,
    /// cron(min hour day-of-month month day-of-week year) or rate(N unit), UTC.
    #[arg(long, conflicts_with_all = ["bucket", "http_path", "sqs_queue"], required_unless_present_any = ["bucket", "http_path", "sqs_queue"])]
    pub schedule: Option<String>,
    /// Constant JSON to send instead of the Scheduled Event.
    #[arg(long, requires = "schedule")]
    pub input: Option<String>,
    /// Bucket whose notifications invoke the function.
    #[arg(long, conflicts_with_all = ["http_path", "sqs_queue"])]
    pub bucket: Option<String>,
    /// HTTP route under /http on kumod's HTTP listener: /hello, /users/{id}, /files/{proxy+}.
    #[arg(long, conflicts_with = "sqs_queue")]
    pub http_path: Option<String>,
    /// SQS queue (URL or ARN) kumod polls, invoking the function with
    /// batches of messages (needs --aws-profile).
    #[arg(long, requires = "aws_profile")]
    pub sqs_queue: Option<String>,
    /// Messages per batch: standard queues 1-10000 (above 10 needs
    /// --batch-window), FIFO 1-10 (default 10).
    #[arg(long, requires = "sqs_queue")]
    pub batch_size: Option<u32>,
    /// Seconds to gather a batch after its first message (0-300, default 0).
    #[arg(long, value_name = "SECONDS", requires = "sqs_queue")]
    pub batch_window: Option<u32>,
    /// Most batches in flight at once (2-1000; default: the function's
    /// reserved concurrency, else 1000).
    #[arg(long, requires = "sqs_queue")]
    pub max_concurrency: Option<u32>,
    /// The function answers {"batchItemFailures":[{"itemIdentifier":ID}]}:
    /// only those messages stay in the queue.
    #[arg(long, requires = "sqs_queue")]
    pub report_batch_item_failures: bool,
    /// EventBridge-style pattern on body / attributes (repeat, at most 5);
    /// a message matching none is deleted without invoking.
    #[arg(long, value_name = "PATTERN_JSON", requires = "sqs_queue")]
    pub filter: Vec<String>,
    /// HTTP methods, comma-separated (default any).
    #[arg(long, value_delimiter = ',', requires = "http_path")]
    pub methods: Vec<String>,
    /// API Gateway payload format: 1.0 or 2.0 (default).
    #[arg(long, requires = "http_path")]
    pub payload_format: Option<String>,
    /// requestContext.stage (default $default; another stage prefixes
    /// requestContext.path / rawPath with /<stage>).
    #[arg(long, requires = "http_path")]
    pub stage: Option<String>,
    /// requestContext.apiId (default kumo).
    #[arg(long, requires = "http_path")]
    pub api_id: Option<String>,
    /// Allowed CORS origins, comma-separated or repeated (https://app.example.com, or *):
    /// preflights are answered without invoking the function.
    #[arg(long, value_delimiter = ',', requires = "http_path")]
    pub cors_origin: Vec<String>,
    /// Methods CORS preflights allow (default: the route's methods and OPTIONS).
    #[arg(long, value_delimiter = ',', requires = "cors_origin")]
    pub cors_methods: Vec<String>,
    /// Request headers CORS preflights allow (default: Content-Type, X-Amz-Date,
    /// Authorization, X-Api-Key, X-Amz-Security-Token).
    #[arg(long, value_delimiter = ',', requires = "cors_origin")]
    pub cors_headers: Vec<String>,
    /// Access-Control-Max-Age of preflight answers, in seconds (at most 86400).
    #[arg(long, requires = "cors_origin")]
    pub cors_max_age: Option<u32>,
    /// Event types, comma-separated (default s3:ObjectCreated:*).
    #[arg(long, value_delimiter = ',', requires = "bucket")]
    pub events: Vec<String>,
    /// Only keys starting with this (decoded key).
    #[arg(long, default_value = "", requires = "bucket")]
    pub prefix: String,
    /// Only keys ending with this (decoded key).
    #[arg(long, default_value = "", requires = "bucket")]
    pub suffix: String,
    /// Event shape: aws (S3's, the default) or minio (MinIO's record verbatim).
    #[arg(long, requires = "bucket")]
    pub event_format: Option<String>,
    /// Also write the bucket's notification configuration (needs --aws-profile).
    #[arg(long, requires_all = ["bucket", "aws_profile"])]
    pub configure_bucket: bool,
    /// kumod's AWS profile: the queue's (--sqs-queue) or the bucket's
    /// (--configure-bucket). --s3-profile is the older spelling.
    #[arg(long, alias = "s3-profile")]
    pub aws_profile: Option<String>,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
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
    /// kumod's S3 profile whose credentials and endpoint the function gets
    /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL_S3); on update, "" removes them.
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

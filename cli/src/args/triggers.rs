//! Arguments of `kumo trigger`.

use clap::Subcommand;

use super::Output;

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
    #[arg(long, conflicts_with_all = ["bucket", "http_path", "sqs_queue", "sns_topic"], required_unless_present_any = ["bucket", "http_path", "sqs_queue", "sns_topic"])]
    pub schedule: Option<String>,
    /// Constant JSON to send instead of the Scheduled Event.
    #[arg(long, requires = "schedule")]
    pub input: Option<String>,
    /// Bucket whose notifications invoke the function.
    #[arg(long, conflicts_with_all = ["http_path", "sqs_queue", "sns_topic"])]
    pub bucket: Option<String>,
    /// HTTP route under /http on kumod's HTTP listener: /hello, /users/{id}, /files/{proxy+}.
    #[arg(long, conflicts_with_all = ["sqs_queue", "sns_topic"])]
    pub http_path: Option<String>,
    /// SQS queue (URL or ARN) kumod polls, invoking the function with
    /// batches of messages (needs --aws-profile).
    #[arg(long, requires = "aws_profile", conflicts_with = "sns_topic")]
    pub sqs_queue: Option<String>,
    /// SNS topic ARN: kumod subscribes its HTTP listener ([sns] public_url)
    /// and invokes the function asynchronously per message (needs
    /// --aws-profile).
    #[arg(long, requires = "aws_profile")]
    pub sns_topic: Option<String>,
    /// SNS filter policy on message attributes (JSON object of attribute
    /// names with arrays of matchers); other messages are dropped.
    #[arg(long, value_name = "POLICY_JSON", requires = "sns_topic")]
    pub filter_policy: Option<String>,
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
    /// kumod's AWS profile: the queue's (--sqs-queue), the topic's (--sns-topic) or the bucket's
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

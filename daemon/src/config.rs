//! Typed kumod configuration: defaults → TOML file (`--config`) →
//! `KUMO_*` environment variables (nested keys joined by `__`) → flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kumo_common::process::LogFormat;
use serde::{Deserialize, Serialize};

pub use crate::api::http_listener::HttpConfig;
pub use crate::api::lambda::{AccessKey, InvokeApiConfig};
pub use crate::api::metrics_auth::MetricsConfig;
pub use crate::aws_profiles::AwsConfig;
pub use crate::dispatch::agents::AgentsConfig;
pub use crate::dispatch::async_queue::AsyncConfig;
pub use crate::s3::S3Config;
pub use crate::sources::scheduler::MissedFires;
pub use crate::sources::webhook::WebhooksConfig;
pub use crate::state::logs::FunctionLogsConfig;

/// kumod's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Where functions, packages and logs are stored.
    pub data_dir: PathBuf,
    /// gRPC control API and agent endpoint.
    pub listen: SocketAddr,
    /// HTTP listener (`/healthz`).
    pub http_listen: SocketAddr,
    /// Region used in ARNs and reported to functions.
    pub region: String,
    /// Account id used in ARNs.
    pub account_id: String,
    /// kumod's own logs.
    pub log: LogConfig,
    /// Seconds a synchronous invoke waits for an agent to be connected.
    pub agent_wait_seconds: u64,
    /// Seconds added to a function's timeout (and the agent's init timeout)
    /// before kumod gives up on a result.
    pub invoke_grace_seconds: u64,
    /// Tokens of the gRPC port.
    pub auth: crate::api::auth::AuthConfig,
    /// TLS of the gRPC port.
    pub tls: crate::api::tls::TlsConfig,
    /// Agent heartbeats and lost-node detection.
    pub agents: crate::dispatch::agents::AgentsConfig,
    /// Retention of function logs.
    pub function_logs: crate::state::logs::FunctionLogsConfig,
    /// Invocations that may run at once in the whole cluster (Lambda's
    /// account concurrency); reservations are carved out of it.
    pub concurrency_limit: u32,
    /// Retry timing of asynchronous events.
    pub async_invoke: crate::dispatch::async_queue::AsyncConfig,
    /// Schedules and bucket notifications.
    pub triggers: TriggersConfig,
    /// AWS service profiles (S3, SQS, SNS endpoints and credentials).
    pub aws: crate::aws_profiles::AwsConfig,
    /// The older spelling of `[aws]`: `[s3.profiles.NAME]`, same keys.
    pub s3: crate::s3::S3Config,
    /// Lambda's Invoke API on the HTTP listener.
    pub invoke_api: crate::api::lambda::InvokeApiConfig,
    /// Limits of the HTTP listener (timeouts, connections, fd reserve).
    pub http: crate::api::http_listener::HttpConfig,
    /// Abuse limits of the MinIO webhook.
    pub webhooks: crate::sources::webhook::WebhooksConfig,
    /// `[sns]`: where SNS reaches kumod (SNS triggers).
    pub sns: crate::sources::sns::SnsConfig,
    /// Access to `/metrics`.
    pub metrics: crate::api::metrics_auth::MetricsConfig,
    /// Settings of the embedded agent of `--all-in-one` (the agent's own
    /// keys; kept opaque here, the daemon library never uses the agent).
    pub agent: Option<serde_json::Value>,
}

/// `[triggers]`: schedules and the MinIO webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggersConfig {
    /// Schedule due times that passed while kumod was down: `skip` or `fire_once`.
    pub missed_fires: crate::sources::scheduler::MissedFires,
    /// Token MinIO must send (its `MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_<ID>`);
    /// empty = no authentication.
    pub minio_auth_token: String,
    /// File holding the token instead (takes precedence when set).
    pub minio_auth_token_file: Option<PathBuf>,
    /// How long a delivered bucket event is remembered to drop redeliveries.
    pub delivery_retention_hours: u64,
}

impl Default for TriggersConfig {
    fn default() -> Self {
        Self {
            missed_fires: crate::sources::scheduler::MissedFires::Skip,
            minio_auth_token: String::new(),
            minio_auth_token_file: None,
            delivery_retention_hours: 24,
        }
    }
}

/// kumod's own diagnostic logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Level filter (`RUST_LOG` takes precedence).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/kumo"),
            listen: ([127, 0, 0, 1], 7070).into(),
            http_listen: ([127, 0, 0, 1], 7071).into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            log: LogConfig::default(),
            agent_wait_seconds: 5,
            invoke_grace_seconds: 5,
            auth: crate::api::auth::AuthConfig::default(),
            tls: crate::api::tls::TlsConfig::default(),
            agents: crate::dispatch::agents::AgentsConfig::default(),
            function_logs: crate::state::logs::FunctionLogsConfig::default(),
            concurrency_limit: 1000,
            async_invoke: crate::dispatch::async_queue::AsyncConfig::default(),
            triggers: TriggersConfig::default(),
            aws: crate::aws_profiles::AwsConfig::default(),
            s3: crate::s3::S3Config::default(),
            invoke_api: crate::api::lambda::InvokeApiConfig::default(),
            http: crate::api::http_listener::HttpConfig::default(),
            webhooks: crate::sources::webhook::WebhooksConfig::default(),
            sns: crate::sources::sns::SnsConfig::default(),
            metrics: crate::api::metrics_auth::MetricsConfig::default(),
            agent: None,
        }
    }
}

/// The configuration could not be loaded (names the file and the problem).
pub type ConfigError = kumo_common::layered_config::LoadError;

/// Settings given on kumod's command line; they win over the file and
/// the environment, and are applied only by [`DaemonConfig::load`].
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address (overrides `listen`; default 127.0.0.1:7070).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// HTTP listen address (overrides `http_listen`; default 127.0.0.1:7071).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Accept gRPC calls without tokens (only allowed on a loopback listen
    /// address; for development).
    #[arg(long)]
    pub insecure_local: bool,
    /// Format of kumod's own logs: text or json.
    #[arg(long)]
    pub log_format: Option<LogFormat>,
}

impl DaemonConfig {
    /// Loads the configuration: defaults, `file`, `KUMO_*` variables, then
    /// the command-line `overrides`; the result is validated.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut config = Self::load_sources(file, "KUMO")?;
        let Overrides {
            data_dir,
            listen,
            http_listen,
            insecure_local,
            log_format,
        } = overrides;
        if let Some(dir) = data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = listen {
            config.listen = *listen;
        }
        if let Some(listen) = http_listen {
            config.http_listen = *listen;
        }
        if *insecure_local {
            config.auth.insecure_local = true;
        }
        if let Some(format) = log_format {
            config.log.format = *format;
        }
        config.validate().map_err(|message| ConfigError {
            path: file.map_or_else(|| "<defaults>".into(), |p| p.display().to_string()),
            message,
        })?;
        Ok(config)
    }

    /// Checks rules serde cannot express; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency_limit == 0 {
            return Err("concurrency_limit must be at least 1 (default 1000)".into());
        }
        crate::aws_profiles::check_no_clash(&self.aws, &self.s3)?;
        self.http.validate()
    }

    /// Defaults, then the file, then environment variables with `prefix`.
    pub fn load_sources(file: Option<&Path>, prefix: &str) -> Result<Self, ConfigError> {
        kumo_common::layered_config::load(file, prefix)
    }

    /// Directory of the sled database.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("state")
    }

    /// Directory of package blobs.
    pub fn package_dir(&self) -> PathBuf {
        self.data_dir.join("packages")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_and_agent_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kumod.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[agent]\nidle_timeout_seconds = 5\n",
        )
        .unwrap();
        let config = DaemonConfig::load_sources(Some(&file), "KUMO_TEST_UNUSED").unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.http_listen.port(), 7071);
        assert_eq!(config.agent.unwrap()["idle_timeout_seconds"], 5);
    }

    #[test]
    fn typos_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kumod.toml");
        std::fs::write(&file, "lissten = \"x\"\n").unwrap();
        let err = DaemonConfig::load_sources(Some(&file), "KUMO_TEST_UNUSED").unwrap_err();
        assert!(err.to_string().contains("kumod.toml"), "{err}");
    }

    #[test]
    fn the_shipped_example_parses_with_the_defaults_it_documents() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kumod.toml");
        let config = DaemonConfig::load_sources(Some(&file), "KUMO_TEST_UNUSED").unwrap();
        let defaults = DaemonConfig::default();
        assert_eq!(config.concurrency_limit, defaults.concurrency_limit);
        assert_eq!(config.async_invoke, defaults.async_invoke);
        assert_eq!(config.triggers.missed_fires, defaults.triggers.missed_fires);
        assert_eq!(config.triggers.delivery_retention_hours, 24);
        assert_eq!(config.function_logs, defaults.function_logs);
        assert!(config.s3.profiles.is_empty());
        assert_eq!(config.http, defaults.http);
        assert_eq!(config.webhooks, defaults.webhooks);
        assert_eq!(config.metrics, defaults.metrics);
    }

    #[test]
    fn s3_profiles_and_trigger_settings_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kumod.toml");
        std::fs::write(
            &file,
            "[triggers]\nmissed_fires = \"fire_once\"\n[s3.profiles.minio]\nendpoint = \"http://m:9000\"\naccess_key_id = \"k\"\nsecret_access_key_file = \"/s\"\n",
        )
        .unwrap();
        let config = DaemonConfig::load_sources(Some(&file), "KUMO_TEST_UNUSED").unwrap();
        assert_eq!(
            config.triggers.missed_fires,
            crate::sources::scheduler::MissedFires::FireOnce
        );
        let profile = &config.s3.profiles["minio"];
        assert!(profile.path_style);
        assert_eq!(profile.webhook_arn(), "arn:minio:sqs::KUMO:webhook");
        std::fs::write(&file, "[triggers]\nmissed_fires = \"later\"\n").unwrap();
        assert!(DaemonConfig::load_sources(Some(&file), "KUMO_TEST_UNUSED").is_err());
    }

    #[test]
    fn overrides_win_and_limits_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kumod.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            log_format: Some(LogFormat::Text),
            ..Default::default()
        };
        let config = DaemonConfig::load(Some(&file), &overrides).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.log.format, LogFormat::Text);
        std::fs::write(&file, "concurrency_limit = 0\n").unwrap();
        let err = DaemonConfig::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("concurrency_limit must be at least 1"),
            "{err}"
        );
        assert!(err.to_string().contains("kumod.toml"), "{err}");
        std::fs::write(&file, "[log]\nformat = \"yaml\"\n").unwrap();
        assert!(DaemonConfig::load(Some(&file), &Overrides::default()).is_err());
    }
}

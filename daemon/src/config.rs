//! Typed kumod configuration: defaults → TOML file (`--config`) →
//! `KUMO_*` environment variables (nested keys joined by `__`) → flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::Args;

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
    pub auth: crate::auth::AuthConfig,
    /// TLS of the gRPC port.
    pub tls: crate::tls::TlsConfig,
    /// Agent heartbeats and lost-node detection.
    pub agents: crate::agents::AgentsConfig,
    /// Retention of function logs.
    pub function_logs: crate::logs::FunctionLogsConfig,
    /// Invocations that may run at once in the whole cluster (Lambda's
    /// account concurrency); reservations are carved out of it.
    pub concurrency_limit: u32,
    /// Retry timing of asynchronous events.
    pub async_invoke: crate::async_queue::AsyncConfig,
    /// Schedules and bucket notifications.
    pub triggers: TriggersConfig,
    /// S3-compatible stores, as named profiles.
    pub s3: crate::s3::S3Config,
    /// Lambda's Invoke API on the HTTP listener.
    pub invoke_api: crate::invoke_api::InvokeApiConfig,
    /// Settings of the embedded agent of `--all-in-one` (the agent's own
    /// keys; kept opaque here, the daemon library never uses the agent).
    pub agent: Option<serde_json::Value>,
}

/// `[triggers]`: schedules and the MinIO webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggersConfig {
    /// Schedule due times that passed while kumod was down: `skip` or `fire_once`.
    pub missed_fires: crate::triggers::scheduler::MissedFires,
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
            missed_fires: crate::triggers::scheduler::MissedFires::Skip,
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
    pub format: String,
    /// Level filter (`RUST_LOG` takes precedence).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
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
            auth: crate::auth::AuthConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            agents: crate::agents::AgentsConfig::default(),
            function_logs: crate::logs::FunctionLogsConfig::default(),
            concurrency_limit: 1000,
            async_invoke: crate::async_queue::AsyncConfig::default(),
            triggers: TriggersConfig::default(),
            s3: crate::s3::S3Config::default(),
            invoke_api: crate::invoke_api::InvokeApiConfig::default(),
            agent: None,
        }
    }
}

/// The configuration could not be loaded (names the file and the problem).
pub type ConfigError = kumo_proto::layered_config::LoadError;

impl DaemonConfig {
    /// Loads the configuration for these command-line arguments.
    pub fn load(args: &Args) -> Result<Self, ConfigError> {
        let mut config = Self::load_sources(args.config.as_deref(), "KUMO")?;
        if let Some(dir) = &args.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if let Some(listen) = args.http_listen {
            config.http_listen = listen;
        }
        if args.insecure_local {
            config.auth.insecure_local = true;
        }
        if let Some(format) = &args.log_format {
            config.log.format = format.clone();
        }
        Ok(config)
    }

    /// Defaults, then the file, then environment variables with `prefix`.
    pub fn load_sources(file: Option<&Path>, prefix: &str) -> Result<Self, ConfigError> {
        kumo_proto::layered_config::load(file, prefix)
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
            crate::triggers::scheduler::MissedFires::FireOnce
        );
        let profile = &config.s3.profiles["minio"];
        assert!(profile.path_style);
        assert_eq!(profile.webhook_arn(), "arn:minio:sqs::KUMO:webhook");
        std::fs::write(&file, "[triggers]\nmissed_fires = \"later\"\n").unwrap();
        assert!(DaemonConfig::load_sources(Some(&file), "KUMO_TEST_UNUSED").is_err());
    }
}

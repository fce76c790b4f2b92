//! Records of functions at `$LATEST`: configuration as stored.

use std::collections::HashMap;

use kumo_proto::control::{FunctionConfig, FunctionLayer};
use serde::{Deserialize, Serialize};

/// Configuration as stored (serde mirror of the protocol's `FunctionConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConfig {
    /// Function name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// A runtime identifier as the user gave it (`python3`, `python3.12`,
    /// `provided.al2023`, …).
    pub runtime: String,
    /// Handler string.
    pub handler: String,
    /// Memory in MB.
    pub memory_mb: u32,
    /// Timeout in seconds.
    pub timeout_seconds: u32,
    /// User environment variables.
    pub environment: HashMap<String, String>,
    /// `none`, `outbound` or `host`.
    pub network: String,
    /// The `outbound` mode's egress allow-list (CIDR[:PORT] entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_allow: Vec<String>,
    /// Tags.
    pub tags: HashMap<String, String>,
    /// `/tmp` size in MB.
    pub ephemeral_storage_mb: u32,
    /// Retries of a failed asynchronous event (0-2).
    #[serde(default = "default_retries")]
    pub max_retry_attempts: u32,
    /// Oldest age of an asynchronous event still attempted, in seconds.
    #[serde(default = "default_event_age")]
    pub max_event_age_seconds: u32,
    /// Reserved concurrency; `None` = unreserved, `Some(0)` = disabled.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// Function invoked with the destination record of a failed event.
    #[serde(default)]
    pub on_failure_destination: String,
    /// S3 profile whose credentials the function gets.
    #[serde(default)]
    pub credentials_profile: String,
    /// SQS queue or SNS topic ARN getting the original event of each
    /// event that fails for good ("" = none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dead_letter_target: String,
    /// Where the record of a succeeded event goes ("" = none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub on_success_destination: String,
    /// Lambda's execution role ARN, kept only to echo it back.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Layer versions, in `/opt` order, resolved to their packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<StoredLayer>,
}

/// A layer version a function uses, resolved when the function's
/// configuration is stored (layer versions are immutable and cannot be
/// deleted while used, so the package stays valid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLayer {
    /// The layer version's full ARN.
    pub arn: String,
    /// Hex SHA-256 of its ZIP.
    pub package_digest: String,
    /// ZIP size in bytes.
    pub code_size: u64,
}

fn default_retries() -> u32 {
    kumo_proto::model::DEFAULT_MAX_RETRY_ATTEMPTS
}

fn default_event_age() -> u32 {
    kumo_proto::model::DEFAULT_MAX_EVENT_AGE_SECONDS
}

impl StoredConfig {
    /// From a normalized protocol config (all optional fields set). Its
    /// layer ARNs are not resolved here: `layers` is left empty for the
    /// caller (`state::functions`) to fill.
    pub fn from_proto(config: &FunctionConfig) -> Self {
        Self {
            name: config.name.clone(),
            description: config.description.clone(),
            runtime: config.runtime.clone(),
            handler: config.handler.clone(),
            memory_mb: config
                .memory_mb
                .unwrap_or(kumo_proto::model::DEFAULT_MEMORY_MB),
            timeout_seconds: config
                .timeout_seconds
                .unwrap_or(kumo_proto::model::DEFAULT_TIMEOUT_SECONDS),
            environment: config.environment.clone(),
            network: config.network.clone(),
            egress_allow: config.egress_allow.clone(),
            tags: config.tags.clone(),
            ephemeral_storage_mb: config
                .ephemeral_storage_mb
                .unwrap_or(kumo_proto::model::DEFAULT_EPHEMERAL_STORAGE_MB),
            max_retry_attempts: config.max_retry_attempts.unwrap_or_else(default_retries),
            max_event_age_seconds: config
                .max_event_age_seconds
                .unwrap_or_else(default_event_age),
            reserved_concurrency: config
                .reserved_concurrency
                .map(|r| u32::try_from(r).unwrap_or(0)),
            on_failure_destination: config.on_failure_destination.clone(),
            credentials_profile: config.credentials_profile.clone(),
            dead_letter_target: config.dead_letter_target.clone(),
            on_success_destination: config.on_success_destination.clone(),
            role: config.role.clone(),
            layers: Vec::new(),
        }
    }

    /// The layers with their sizes, as the protocol reports them.
    pub fn layer_infos(&self) -> Vec<FunctionLayer> {
        self.layers
            .iter()
            .map(|l| FunctionLayer {
                arn: l.arn.clone(),
                code_size: l.code_size,
            })
            .collect()
    }

    /// To the protocol form.
    pub fn to_proto(&self) -> FunctionConfig {
        FunctionConfig {
            name: self.name.clone(),
            description: self.description.clone(),
            runtime: self.runtime.clone(),
            handler: self.handler.clone(),
            memory_mb: Some(self.memory_mb),
            timeout_seconds: Some(self.timeout_seconds),
            environment: self.environment.clone(),
            network: self.network.clone(),
            egress_allow: self.egress_allow.clone(),
            tags: self.tags.clone(),
            ephemeral_storage_mb: Some(self.ephemeral_storage_mb),
            max_retry_attempts: Some(self.max_retry_attempts),
            max_event_age_seconds: Some(self.max_event_age_seconds),
            reserved_concurrency: self
                .reserved_concurrency
                .map(|r| i32::try_from(r).unwrap_or(i32::MAX)),
            on_failure_destination: self.on_failure_destination.clone(),
            credentials_profile: self.credentials_profile.clone(),
            dead_letter_target: self.dead_letter_target.clone(),
            on_success_destination: self.on_success_destination.clone(),
            role: self.role.clone(),
            layers: self.layers.iter().map(|l| l.arn.clone()).collect(),
        }
    }
}

/// A function at `$LATEST`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    /// Its configuration.
    pub config: StoredConfig,
    /// Hex SHA-256 of its package.
    pub package_digest: String,
    /// Base64 SHA-256 of its package.
    pub code_sha256: String,
    /// Package size in bytes.
    pub code_size: u64,
    /// Increases on every change.
    pub revision: u64,
    /// RFC 3339 time of the last change.
    pub last_modified: String,
    /// Highest version number published so far (numbers are never reused).
    #[serde(default)]
    pub published: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records stored before `role` existed (and before Lambda's runtime
    /// identifiers were accepted) still load; a new record keeps the
    /// runtime exactly as the user spelled it.
    #[test]
    fn records_written_before_role_and_lambda_runtime_names_still_load() {
        let old = r#"{"config":{"name":"f","description":"","runtime":"python3","handler":"a.b","memory_mb":128,"timeout_seconds":3,"environment":{},"network":"none","tags":{},"ephemeral_storage_mb":512,"max_retry_attempts":2,"max_event_age_seconds":21600,"reserved_concurrency":null,"on_failure_destination":"","credentials_profile":""},"package_digest":"d","code_sha256":"c","code_size":1,"revision":1,"last_modified":"2026-01-01T00:00:00.000Z","published":0}"#;
        let record: FunctionRecord = serde_json::from_str(old).expect("old function record");
        assert_eq!(record.config.role, "");
        let mut proto = record.config.to_proto();
        assert_eq!(
            proto.runtime.parse::<kumo_proto::model::Runtime>(),
            Ok(kumo_proto::model::Runtime::Python3)
        );
        proto.runtime = "python3.12".into();
        proto.role = "arn:aws:iam::000000000000:role/r".into();
        let new = FunctionRecord {
            config: StoredConfig::from_proto(&proto),
            ..record
        };
        let text = serde_json::to_string(&new).unwrap();
        let again: FunctionRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(again, new);
        assert_eq!(again.config.runtime, "python3.12");
        assert!(
            !serde_json::to_string(&StoredConfig::from_proto(&FunctionConfig::default()))
                .unwrap()
                .contains("role"),
            "an empty role is not written"
        );
    }
}

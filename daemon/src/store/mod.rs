//! kumod's state behind the [`Store`] trait: function records, log
//! records, and the asynchronous queue (events and dead letters). [`SledStore`] is the durable implementation; [`MemoryStore`]
//! serves unit tests.

mod event_records;
mod memory;
mod sled_logs;
mod sled_store;
mod trigger_records;
mod version_records;

use std::collections::HashMap;

use kumo_proto::control::FunctionConfig;
use serde::{Deserialize, Serialize};

pub use event_records::{DeadLetterCondition, DeadLetterRecord, EventRecord};
pub use memory::MemoryStore;
pub use sled_store::SledStore;
pub use trigger_records::{EventCompanion, TriggerRecord, TriggerSource};
pub use version_records::{AliasRecord, VersionRecord};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[error("store: {op} {key}: {message}")]
pub struct StoreError {
    /// What was being done.
    pub op: &'static str,
    /// The record.
    pub key: String,
    /// The engine's error.
    pub message: String,
}

/// Durable state of kumod.
pub trait Store: Send + Sync + 'static {
    /// Writes a function record durably (flushed before returning).
    fn put_function(&self, record: &FunctionRecord) -> Result<(), StoreError>;
    /// Reads a function record.
    fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError>;
    /// Every function record, by name.
    fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError>;
    /// Deletes a function record durably; false when it did not exist.
    fn delete_function(&self, name: &str) -> Result<bool, StoreError>;
    /// Appends one invocation's log.
    fn append_log(&self, record: &LogRecord) -> Result<(), StoreError>;
    /// A function's log records at or after `since_ms`, oldest first.
    fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError>;
    /// A function's log records of one request (every attempt), oldest first.
    fn logs_for_request(
        &self,
        function: &str,
        request_id: &str,
    ) -> Result<Vec<LogRecord>, StoreError>;
    /// Drops a function's oldest records beyond the retention; returns how many.
    fn trim_logs(&self, function: &str, retention: &LogRetention) -> Result<usize, StoreError>;
    /// Drops every log record of a function.
    fn delete_logs(&self, function: &str) -> Result<(), StoreError>;
    /// Writes an event; with `durable` it is on disk before this returns.
    fn put_event(&self, event: &EventRecord, durable: bool) -> Result<(), StoreError>;
    /// Reads an event.
    fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;
    /// Removes an event (not flushed: a crash may run it once more).
    fn delete_event(&self, id: &str) -> Result<(), StoreError>;
    /// Every queued event.
    fn list_events(&self) -> Result<Vec<EventRecord>, StoreError>;
    /// Writes a dead letter durably.
    fn put_dead_letter(&self, letter: &DeadLetterRecord) -> Result<(), StoreError>;
    /// Reads one dead letter of a function.
    fn get_dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<DeadLetterRecord>, StoreError>;
    /// A function's dead letters, oldest failure first.
    fn list_dead_letters(&self, function: &str) -> Result<Vec<DeadLetterRecord>, StoreError>;
    /// Number of dead letters of a function.
    fn count_dead_letters(&self, function: &str) -> Result<u64, StoreError>;
    /// Removes a dead letter durably; false when it did not exist.
    fn delete_dead_letter(&self, function: &str, id: &str) -> Result<bool, StoreError>;
    /// Writes a new event and its companion in one transaction, durably.
    /// Returns false (and writes nothing) when the companion is a
    /// delivery already seen.
    fn put_event_with(
        &self,
        event: &EventRecord,
        companion: &EventCompanion,
    ) -> Result<bool, StoreError>;
    /// Forgets deliveries first seen before `before_ms`; returns how many.
    fn prune_deliveries(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// Writes a trigger durably.
    fn put_trigger(&self, trigger: &TriggerRecord) -> Result<(), StoreError>;
    /// Reads a trigger.
    fn get_trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError>;
    /// Every trigger, by name.
    fn list_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError>;
    /// Deletes a trigger durably; false when it did not exist.
    fn delete_trigger(&self, name: &str) -> Result<bool, StoreError>;
    /// Writes a published version durably.
    fn put_version(&self, version: &VersionRecord) -> Result<(), StoreError>;
    /// Reads one published version.
    fn get_version(
        &self,
        function: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// A function's published versions, oldest first.
    fn list_versions(&self, function: &str) -> Result<Vec<VersionRecord>, StoreError>;
    /// Deletes a published version durably; false when it did not exist.
    fn delete_version(&self, function: &str, version: u64) -> Result<bool, StoreError>;
    /// Writes an alias durably.
    fn put_alias(&self, alias: &AliasRecord) -> Result<(), StoreError>;
    /// Reads one alias.
    fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>, StoreError>;
    /// A function's aliases, by name.
    fn list_aliases(&self, function: &str) -> Result<Vec<AliasRecord>, StoreError>;
    /// Deletes an alias durably; false when it did not exist.
    fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError>;
}

/// Configuration as stored (serde mirror of the protocol's `FunctionConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConfig {
    /// Function name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `python3` or `provided`.
    pub runtime: String,
    /// Handler string.
    pub handler: String,
    /// Memory in MB.
    pub memory_mb: u32,
    /// Timeout in seconds.
    pub timeout_seconds: u32,
    /// User environment variables.
    pub environment: HashMap<String, String>,
    /// `none` or `host`.
    pub network: String,
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
}

fn default_retries() -> u32 {
    kumo_proto::model::DEFAULT_MAX_RETRY_ATTEMPTS
}

fn default_event_age() -> u32 {
    kumo_proto::model::DEFAULT_MAX_EVENT_AGE_SECONDS
}

impl StoredConfig {
    /// From a normalized protocol config (all optional fields set).
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
        }
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
            tags: self.tags.clone(),
            ephemeral_storage_mb: Some(self.ephemeral_storage_mb),
            max_retry_attempts: Some(self.max_retry_attempts),
            max_event_age_seconds: Some(self.max_event_age_seconds),
            reserved_concurrency: self
                .reserved_concurrency
                .map(|r| i32::try_from(r).unwrap_or(i32::MAX)),
            on_failure_destination: self.on_failure_destination.clone(),
            credentials_profile: self.credentials_profile.clone(),
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

/// How much of a function's log is kept: records beyond any limit go,
/// oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    /// Most records.
    pub max_records: usize,
    /// Most bytes of log text.
    pub max_bytes: u64,
    /// Records older than this (ms since the epoch) go.
    pub oldest_kept_ms: i64,
}

impl LogRetention {
    /// Nothing is kept.
    pub const NONE: LogRetention = LogRetention {
        max_records: 0,
        max_bytes: 0,
        oldest_kept_ms: i64::MAX,
    };

    /// How many of `entries` (timestamp, bytes; oldest first) to drop.
    pub fn oldest_to_drop(&self, entries: &[(i64, u64)]) -> usize {
        let too_old = entries
            .iter()
            .take_while(|(ts, _)| *ts < self.oldest_kept_ms)
            .count();
        let too_many = entries.len().saturating_sub(self.max_records);
        let mut total: u64 = entries.iter().map(|(_, b)| b).sum();
        let mut too_big = 0;
        for (_, bytes) in entries {
            if total <= self.max_bytes {
                break;
            }
            total -= bytes;
            too_big += 1;
        }
        too_old.max(too_many).max(too_big)
    }
}

/// One invocation's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Function name.
    pub function: String,
    /// Lambda request id.
    pub request_id: String,
    /// Executed version.
    pub version: String,
    /// START … REPORT text.
    pub text: String,
}

//! kumod's state behind the [`Store`] trait: function records and log
//! records. [`SledStore`] is the durable implementation; [`MemoryStore`]
//! serves unit tests.

mod memory;
mod sled_store;

use std::collections::HashMap;

use kumo_proto::control::FunctionConfig;
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use sled_store::SledStore;

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
    /// Drops the oldest records of a function beyond `keep`.
    fn trim_logs(&self, function: &str, keep: usize) -> Result<(), StoreError>;
    /// Drops every log record of a function.
    fn delete_logs(&self, function: &str) -> Result<(), StoreError>;
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

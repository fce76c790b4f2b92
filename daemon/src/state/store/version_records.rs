//! Records of published versions and aliases.

use serde::{Deserialize, Serialize};

use super::StoredConfig;

/// An immutable snapshot of `$LATEST`'s code and configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Function name.
    pub function: String,
    /// 1, 2, …
    pub version: u64,
    /// Free text given at publish time.
    pub description: String,
    /// The configuration as published.
    pub config: StoredConfig,
    /// Hex SHA-256 of the package.
    pub package_digest: String,
    /// Base64 SHA-256 of the package.
    pub code_sha256: String,
    /// Package size.
    pub code_size: u64,
    /// `$LATEST`'s revision when published (instances are keyed by it).
    pub revision: u64,
    /// RFC 3339 time of publishing.
    pub created: String,
}

/// A named pointer at a version, optionally splitting traffic with a
/// second version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// Function name.
    pub function: String,
    /// Alias name (not all digits).
    pub name: String,
    /// "1", "2", … or "$LATEST".
    pub version: String,
    /// A second published version and the share of calls it gets (0-1).
    pub extra: Option<(String, f64)>,
    /// Free text.
    pub description: String,
    /// Increases with every change.
    pub revision: u64,
}

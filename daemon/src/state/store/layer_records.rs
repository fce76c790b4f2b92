//! Records of published layer versions (docs/wire-formats.md §13).

use serde::{Deserialize, Serialize};

/// One immutable layer version: a content-addressed package and what was
/// said about it at publish time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerVersionRecord {
    /// Layer name.
    pub layer: String,
    /// 1, 2, … (never reused, even after a delete).
    pub version: u64,
    /// Free text.
    pub description: String,
    /// Runtime identifiers the publisher listed (informational).
    pub compatible_runtimes: Vec<String>,
    /// Free text (a license name or URL).
    #[serde(default)]
    pub license_info: String,
    /// Hex SHA-256 of the ZIP (its blob name).
    pub package_digest: String,
    /// Base64 SHA-256 of the ZIP, Lambda's `CodeSha256`.
    pub code_sha256: String,
    /// ZIP size in bytes.
    pub code_size: u64,
    /// Bytes once unpacked.
    pub unzipped_size: u64,
    /// Whether the layer holds an executable `bootstrap` at its root (a
    /// `provided` function may take its entry point from `/opt`).
    #[serde(default)]
    pub has_bootstrap: bool,
    /// RFC 3339 time of publishing.
    pub created: String,
}

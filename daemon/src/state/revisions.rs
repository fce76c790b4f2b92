//! Lambda's `RevisionId`: derived from a function's change counter, so it
//! changes with every update, and checked when a caller sends one (the
//! management API's optimistic concurrency, docs/wire-formats.md §12).

use super::functions::{FunctionError, Functions};
use super::store::FunctionRecord;

/// Lambda's `RevisionId` of a function or version: UUID-shaped, derived
/// from the name, revision counter and change time, so it changes with
/// every update and differs after a delete and re-create.
pub fn revision_id(name: &str, revision: u64, last_modified: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{name}\n{revision}\n{last_modified}"));
    let hex = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Functions {
    /// Fails with RevisionMismatch unless `given` is empty or `record`'s
    /// RevisionId (call with [`Functions::lock_writes`] held to make the
    /// check and a change atomic).
    pub(crate) fn check_record_revision(
        &self,
        record: &FunctionRecord,
        given: &str,
    ) -> Result<(), FunctionError> {
        let current = revision_id(&record.config.name, record.revision, &record.last_modified);
        if given.is_empty() || given == current {
            return Ok(());
        }
        Err(FunctionError::RevisionMismatch {
            arn: self.arn(&record.config.name, None),
            given: given.to_string(),
            current,
        })
    }
}

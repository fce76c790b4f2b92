//! Drained nodes are kept in the store ([`AgentStore`]) so a drain survives
//! a kumod restart (an operator taking a node out for maintenance must not
//! get work sent to it after a restart). Earlier kumod versions kept them in
//! `<data_dir>/drained-agents.json`: [`load`] imports such a file into the
//! store once and renames it to `drained-agents.json.imported`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::state::store::{AgentStore, StoreError};

/// The drain list could not be read, imported or written.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The legacy drain file could not be read, parsed or renamed.
    #[error("{operation} the drained-node list {path}: {message}")]
    File {
        /// What was being done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The store failed.
    #[error("the drained-node list: {0}")]
    Store(#[from] StoreError),
}

/// The drained node ids in `store`, after importing `legacy_file` (when
/// given and present) into it.
pub fn load(
    store: &dyn AgentStore,
    legacy_file: Option<&Path>,
) -> Result<BTreeSet<String>, DrainError> {
    if let Some(path) = legacy_file {
        import_legacy_file(store, path)?;
    }
    Ok(store.drained_agents()?)
}

/// Marks every id of the JSON list at `path` drained in `store`, then
/// renames the file so it is imported only once. An absent file imports
/// nothing. A crash before the rename imports it again, which is harmless.
fn import_legacy_file(store: &dyn AgentStore, path: &Path) -> Result<(), DrainError> {
    let failed = |operation, message: String| DrainError::File {
        operation,
        path: path.to_path_buf(),
        message,
    };
    let ids: BTreeSet<String> = match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| failed("parsing", e.to_string()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed("reading", e.to_string())),
    };
    for id in &ids {
        store.set_agent_drained(id, true)?;
    }
    let mut imported = path.as_os_str().to_owned();
    imported.push(".imported");
    std::fs::rename(path, &imported).map_err(|e| failed("renaming", e.to_string()))?;
    tracing::info!(path = %path.display(), drained = ids.len(), "imported the drained-node list into the store");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::SledStore;

    /// Opens the sled state in `dir`, waiting for an earlier handle's
    /// background flusher to let go of the database lock.
    fn reopen(dir: &Path) -> SledStore {
        for _ in 0..100 {
            if let Ok(store) = SledStore::open(dir) {
                return store;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        SledStore::open(dir).unwrap()
    }

    #[test]
    fn a_legacy_drain_file_is_imported_once_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("drained-agents.json");
        std::fs::write(&file, r#"["node-a", "node-c"]"#).unwrap();
        {
            let store = reopen(&dir.path().join("state"));
            let drained = load(&store, Some(&file)).unwrap();
            assert_eq!(
                drained.into_iter().collect::<Vec<_>>(),
                ["node-a", "node-c"]
            );
            store.set_agent_drained("node-c", false).unwrap();
        }
        assert!(!file.exists(), "the file is renamed once imported");
        assert!(dir.path().join("drained-agents.json.imported").exists());
        let store = reopen(&dir.path().join("state"));
        let reloaded = load(&store, Some(&file)).unwrap();
        assert!(reloaded.contains("node-a"), "the import survives a restart");
        assert!(!reloaded.contains("node-c"), "and is not imported again");
        std::fs::write(&file, "{not json").unwrap();
        let err = load(&store, Some(&file)).unwrap_err();
        assert!(err.to_string().contains("drained-agents.json"), "{err}");
    }
}

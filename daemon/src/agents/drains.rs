//! The set of drained nodes, kept in a small JSON file in the data
//! directory so a drain survives a kumod restart (an operator taking a node
//! out for maintenance must not get work sent to it after a restart).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The drain list could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{operation} the drained-node list {path}: {message}")]
pub struct DrainFileError {
    /// What was being done.
    pub operation: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// Drained node ids, optionally persisted.
#[derive(Debug, Default)]
pub struct Drains {
    ids: BTreeSet<String>,
    file: Option<PathBuf>,
}

impl Drains {
    /// Loads the list from `file` (an absent file is an empty list); `None`
    /// keeps it in memory only.
    pub fn load(file: Option<PathBuf>) -> Result<Self, DrainFileError> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let ids = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| DrainFileError {
                operation: "parsing",
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => {
                return Err(DrainFileError {
                    operation: "reading",
                    path,
                    message: e.to_string(),
                })
            }
        };
        Ok(Self {
            ids,
            file: Some(path),
        })
    }

    /// True when `agent_id` is drained.
    pub fn contains(&self, agent_id: &str) -> bool {
        self.ids.contains(agent_id)
    }

    /// Marks `agent_id` drained (`true`) or not, persisting the change
    /// before it takes effect.
    pub fn set(&mut self, agent_id: &str, drained: bool) -> Result<(), DrainFileError> {
        let mut next = self.ids.clone();
        if drained {
            next.insert(agent_id.to_string());
        } else {
            next.remove(agent_id);
        }
        if let Some(path) = &self.file {
            let failed = |operation, e: std::io::Error| DrainFileError {
                operation,
                path: path.clone(),
                message: e.to_string(),
            };
            let temporary = path.with_extension("json.tmp");
            let body = serde_json::to_vec_pretty(&next).unwrap_or_default();
            std::fs::write(&temporary, body).map_err(|e| failed("writing", e))?;
            std::fs::rename(&temporary, path).map_err(|e| failed("replacing", e))?;
        }
        self.ids = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_survive_a_reload_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("drained-agents.json");
        let mut drains = Drains::load(Some(file.clone())).unwrap();
        drains.set("node-a", true).unwrap();
        drains.set("node-b", true).unwrap();
        drains.set("node-b", false).unwrap();
        let reloaded = Drains::load(Some(file.clone())).unwrap();
        assert!(reloaded.contains("node-a"));
        assert!(!reloaded.contains("node-b"));
        std::fs::write(&file, "{not json").unwrap();
        let err = Drains::load(Some(file)).unwrap_err();
        assert!(err.to_string().contains("drained-agents.json"), "{err}");
    }
}

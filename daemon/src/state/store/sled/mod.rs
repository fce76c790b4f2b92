//! The sled implementation of the store traits: one tree per kind of
//! record, flushed before a durable write returns. Each kind's trait is
//! implemented in its own module.

mod agents;
mod flush;
mod functions;
mod layers;
mod logs;
mod queue;
mod test_events;
mod triggers;

use std::path::Path;
use std::sync::atomic::AtomicU64;

use serde::de::DeserializeOwned;

use super::StoreError;

/// State in a sled database.
pub struct SledStore {
    db: sled::Db,
    functions: sled::Tree,
    logs: sled::Tree,
    log_index: sled::Tree,
    events: sled::Tree,
    dead_letters: sled::Tree,
    triggers: sled::Tree,
    deliveries: sled::Tree,
    versions: sled::Tree,
    aliases: sled::Tree,
    drained_agents: sled::Tree,
    layer_versions: sled::Tree,
    layer_counters: sled::Tree,
    test_events: sled::Tree,
    sequence: AtomicU64,
    log_counters: logs::LogCounters,
    flushes: flush::FlushGate,
}

fn err(op: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError {
        op,
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// Key of the mark kumod writes into a new database (sled's recovery can
/// silently drop damaged data; a missing mark in an existing file shows it).
const FORMAT_KEY: &[u8] = b"kumo-store-format";
const FORMAT_VALUE: &[u8] = b"1";

/// Checks (or, in a new database, writes) the format mark. `Err(Ok(_))`:
/// the file existed but sled recovered none of it. A database written
/// before the mark existed has used ids (`first_id > 0`) and gets the mark.
fn check_format_mark(
    db: &sled::Db,
    existed: bool,
    first_id: u64,
) -> Result<(), Result<String, sled::Error>> {
    if db.get(FORMAT_KEY).map_err(Err)?.is_some() {
        return Ok(());
    }
    if existed && first_id == 0 {
        return Err(Ok(
            "the database file exists but sled recovered none of kumod's records from it (its format mark is missing)".into(),
        ));
    }
    db.insert(FORMAT_KEY, FORMAT_VALUE).map_err(Err)?;
    db.flush().map_err(Err)?;
    Ok(())
}

/// Why opening failed: damaged data, or anything else (lock held, I/O).
enum OpenError {
    Corrupt(String),
    Other(StoreError),
}

/// The prefix of one function's records in per-function trees: name, NUL.
fn function_prefix(function: &str) -> Vec<u8> {
    let mut prefix = function.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

/// Keys of per-function records (dead letters, aliases): function, NUL, id.
fn function_key(function: &str, id: &str) -> Vec<u8> {
    let mut key = function_prefix(function);
    key.extend_from_slice(id.as_bytes());
    key
}

fn decode<T: DeserializeOwned>(op: &'static str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| err(op, key, e))
}

impl SledStore {
    /// Opens (creating) the database in `dir`. A damaged database (sled
    /// reports corruption, or panics reading it) is an error naming the
    /// file and the way to recover, never a panic.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let file = dir.join("db").display().to_string();
        let damaged = |cause: String| {
            StoreError {
            op: "open",
            key: file.clone(),
            message: format!(
                "{cause}. The state store is damaged: stop kumod, move {} aside, restore it from your latest backup (docs/operations.md, \"Backups\"), then start kumod again",
                dir.display()
            ),
        }
        };
        let dir_owned = dir.to_path_buf();
        match std::panic::catch_unwind(move || Self::open_unchecked(&dir_owned)) {
            Ok(Ok(store)) => Ok(store),
            Ok(Err(OpenError::Corrupt(cause))) => Err(damaged(cause)),
            Ok(Err(OpenError::Other(err))) => Err(err),
            Err(panic) => {
                let cause = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "reading it panicked".into());
                Err(damaged(format!("sled failed reading it ({cause})")))
            }
        }
    }

    fn open_unchecked(dir: &Path) -> Result<Self, OpenError> {
        let path = dir.display().to_string();
        let classify = |op: &'static str, key: &str, e: sled::Error| match e {
            sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) => {
                OpenError::Corrupt(format!("sled: {e}"))
            }
            other => OpenError::Other(err(op, key, other)),
        };
        let existed = std::fs::metadata(dir.join("db")).is_ok_and(|m| m.len() > 0);
        let db = sled::open(dir).map_err(|e| classify("open", &path, e))?;
        let tree = |name: &'static str| {
            db.open_tree(name)
                .map_err(|e| classify("open tree", name, e))
        };
        let first_id = db
            .generate_id()
            .map_err(|e| classify("generate id", &path, e))?;
        check_format_mark(&db, existed, first_id).map_err(|e| match e {
            Ok(message) => OpenError::Corrupt(message),
            Err(e) => classify("format mark", &path, e),
        })?;
        let sequence = AtomicU64::new(first_id);
        Ok(Self {
            functions: tree("functions")?,
            logs: tree("logs")?,
            log_index: tree("log_index")?,
            events: tree("events")?,
            dead_letters: tree("dead_letters")?,
            triggers: tree("triggers")?,
            deliveries: tree("deliveries")?,
            versions: tree("versions")?,
            aliases: tree("aliases")?,
            drained_agents: tree("drained_agents")?,
            layer_versions: tree("layer_versions")?,
            layer_counters: tree("layer_counters")?,
            test_events: tree("test_events")?,
            db,
            sequence,
            log_counters: logs::LogCounters::default(),
            flushes: flush::FlushGate::default(),
        })
    }

    fn flush(&self, key: &str) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| err("flush", key, e))?;
        Ok(())
    }

    /// Encodes `value`, writes it under `key` and flushes; `label` names
    /// the record in errors.
    fn put_json<T: serde::Serialize>(
        &self,
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
        label: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| err("encode", label, e))?;
        tree.insert(key.as_ref(), bytes)
            .map_err(|e| err("insert", label, e))?;
        self.flush(label)
    }

    /// Reads and decodes one record.
    fn get_json<T: DeserializeOwned>(
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
        label: &str,
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| err("get", label, e))? {
            Some(bytes) => decode("decode", label, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes every record under `prefix`, in key order.
    fn scan_json<T: DeserializeOwned>(
        tree: &sled::Tree,
        prefix: impl AsRef<[u8]>,
        label: &str,
    ) -> Result<Vec<T>, StoreError> {
        tree.scan_prefix(prefix)
            .values()
            .map(|item| {
                let bytes = item.map_err(|e| err("scan", label, e))?;
                decode("decode", label, &bytes)
            })
            .collect()
    }

    /// Removes one record and flushes; false when it did not exist.
    fn remove_flushed(
        &self,
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
        label: &str,
    ) -> Result<bool, StoreError> {
        let existed = tree
            .remove(key)
            .map_err(|e| err("remove", label, e))?
            .is_some();
        self.flush(label)?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_conformance_tests!(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SledStore::open(dir.path()).expect("open sled");
        (store, dir)
    });
}

//! The sled implementation of [`Store`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{FunctionRecord, LogRecord, Store, StoreError};

/// State in a sled database.
pub struct SledStore {
    db: sled::Db,
    functions: sled::Tree,
    logs: sled::Tree,
    sequence: AtomicU64,
}

fn err(op: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError {
        op,
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// Log keys: name, NUL, timestamp (big-endian), sequence (big-endian), so a
/// prefix scan returns one function's records in time order.
fn log_key(function: &str, timestamp_ms: i64, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(function.len() + 17);
    key.extend_from_slice(function.as_bytes());
    key.push(0);
    key.extend_from_slice(&(timestamp_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn log_prefix(function: &str) -> Vec<u8> {
    let mut prefix = function.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

impl SledStore {
    /// Opens (creating) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let db = sled::open(dir).map_err(|e| err("open", &path, e))?;
        let functions = db
            .open_tree("functions")
            .map_err(|e| err("open tree", "functions", e))?;
        let logs = db
            .open_tree("logs")
            .map_err(|e| err("open tree", "logs", e))?;
        let sequence = AtomicU64::new(db.generate_id().map_err(|e| err("generate id", &path, e))?);
        Ok(Self {
            db,
            functions,
            logs,
            sequence,
        })
    }
}

impl Store for SledStore {
    fn put_function(&self, record: &FunctionRecord) -> Result<(), StoreError> {
        let name = &record.config.name;
        let bytes = serde_json::to_vec(record).map_err(|e| err("encode", name, e))?;
        self.functions
            .insert(name.as_bytes(), bytes)
            .map_err(|e| err("insert", name, e))?;
        self.db.flush().map_err(|e| err("flush", name, e))?;
        Ok(())
    }

    fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        match self
            .functions
            .get(name.as_bytes())
            .map_err(|e| err("get", name, e))?
        {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| err("decode", name, e)),
            None => Ok(None),
        }
    }

    fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        self.functions
            .iter()
            .map(|item| {
                let (key, bytes) = item.map_err(|e| err("scan", "functions", e))?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| err("decode", &String::from_utf8_lossy(&key), e))
            })
            .collect()
    }

    fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        let existed = self
            .functions
            .remove(name.as_bytes())
            .map_err(|e| err("remove", name, e))?
            .is_some();
        self.db.flush().map_err(|e| err("flush", name, e))?;
        Ok(existed)
    }

    fn append_log(&self, record: &LogRecord) -> Result<(), StoreError> {
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let key = log_key(&record.function, record.timestamp_ms, seq);
        let bytes =
            serde_json::to_vec(record).map_err(|e| err("encode log", &record.request_id, e))?;
        self.logs
            .insert(key, bytes)
            .map_err(|e| err("insert log", &record.request_id, e))?;
        Ok(())
    }

    fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
        let start = log_key(function, since_ms, 0);
        let mut end = log_prefix(function);
        end.extend_from_slice(&[0xff; 16]);
        self.logs
            .range(start..=end)
            .map(|item| {
                let (_, bytes) = item.map_err(|e| err("scan logs", function, e))?;
                serde_json::from_slice(&bytes).map_err(|e| err("decode log", function, e))
            })
            .collect()
    }

    fn trim_logs(&self, function: &str, keep: usize) -> Result<(), StoreError> {
        let keys: Vec<sled::IVec> = self
            .logs
            .scan_prefix(log_prefix(function))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| err("scan logs", function, e))?;
        if keys.len() > keep {
            for key in &keys[..keys.len() - keep] {
                self.logs
                    .remove(key)
                    .map_err(|e| err("trim logs", function, e))?;
            }
        }
        Ok(())
    }

    fn delete_logs(&self, function: &str) -> Result<(), StoreError> {
        self.trim_logs(function, 0)
    }
}

//! An in-memory [`Store`] for unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{FunctionRecord, LogRecord, Store, StoreError};

/// State in memory; lost on drop.
#[derive(Default)]
pub struct MemoryStore {
    functions: Mutex<BTreeMap<String, FunctionRecord>>,
    logs: Mutex<Vec<LogRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn put_function(&self, record: &FunctionRecord) -> Result<(), StoreError> {
        let mut functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        functions.insert(record.config.name.clone(), record.clone());
        Ok(())
    }

    fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        let functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(functions.get(name).cloned())
    }

    fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        let functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(functions.values().cloned().collect())
    }

    fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        let mut functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(functions.remove(name).is_some())
    }

    fn append_log(&self, record: &LogRecord) -> Result<(), StoreError> {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.clone());
        Ok(())
    }

    fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(logs
            .iter()
            .filter(|r| r.function == function && r.timestamp_ms >= since_ms)
            .cloned()
            .collect())
    }

    fn trim_logs(&self, function: &str, keep: usize) -> Result<(), StoreError> {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let count = logs.iter().filter(|r| r.function == function).count();
        let mut to_drop = count.saturating_sub(keep);
        logs.retain(|r| {
            if r.function == function && to_drop > 0 {
                to_drop -= 1;
                false
            } else {
                true
            }
        });
        Ok(())
    }

    fn delete_logs(&self, function: &str) -> Result<(), StoreError> {
        self.trim_logs(function, 0)
    }
}

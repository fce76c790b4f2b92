//! [`LogStore`] in sled: records keyed by function and time, an index by
//! request id, and per-function counters so that applying the retention
//! costs O(1) plus the records it drops.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use super::{err, function_prefix, SledStore};
use crate::state::store::{LogRecord, LogRetention, LogStore, StoreError};

/// Records and bytes of log text stored per function. A function's counts
/// are taken from its records the first time its retention is applied
/// after opening (one scan per function and process), then kept up to date
/// by appends and trims, which hold the lock while they write so the counts
/// never miss a record.
#[derive(Default)]
pub(super) struct LogCounters(Mutex<HashMap<String, Counts>>);

impl LogCounters {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Counts>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One function's counts.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    records: usize,
    bytes: u64,
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

/// The timestamp in a log key of `function`.
fn key_timestamp(function: &str, key: &[u8]) -> i64 {
    key.get(function.len() + 1..function.len() + 9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, |b| u64::from_be_bytes(b) as i64)
}

/// Index keys: name, NUL, request id, NUL, then the log key.
fn index_prefix(function: &str, request_id: &str) -> Vec<u8> {
    let mut key = function_prefix(function);
    key.extend_from_slice(request_id.as_bytes());
    key.push(0);
    key
}

fn decode(function: &str, bytes: &[u8]) -> Result<LogRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| err("decode log", function, e))
}

/// The bytes a stored record counts for: its log text, as the limit is
/// described to users (the whole value if it cannot be decoded).
fn counted_bytes(decoded: &Result<LogRecord, StoreError>, stored: &[u8]) -> u64 {
    decoded.as_ref().map_or(stored.len(), |r| r.text.len()) as u64
}

impl SledStore {
    /// Counts a function's stored records (the one full scan per function).
    fn count_logs(&self, function: &str) -> Result<Counts, StoreError> {
        let mut counts = Counts::default();
        for item in self.logs.scan_prefix(function_prefix(function)).values() {
            let bytes = item.map_err(|e| err("scan logs", function, e))?;
            counts.records += 1;
            counts.bytes += counted_bytes(&decode(function, &bytes), &bytes);
        }
        Ok(counts)
    }
}

impl LogStore for SledStore {
    fn append_log(&self, record: &LogRecord) -> Result<(), StoreError> {
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let key = log_key(&record.function, record.timestamp_ms, seq);
        let bytes =
            serde_json::to_vec(record).map_err(|e| err("encode log", &record.request_id, e))?;
        let mut index = index_prefix(&record.function, &record.request_id);
        index.extend_from_slice(&key);
        let mut counters = self.log_counters.lock();
        self.logs
            .insert(key, bytes)
            .map_err(|e| err("insert log", &record.request_id, e))?;
        self.log_index
            .insert(index, &[][..])
            .map_err(|e| err("index log", &record.request_id, e))?;
        if let Some(counts) = counters.get_mut(&record.function) {
            counts.records += 1;
            counts.bytes += record.text.len() as u64;
        }
        Ok(())
    }

    fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
        let start = log_key(function, since_ms, 0);
        let mut end = function_prefix(function);
        end.extend_from_slice(&[0xff; 16]);
        self.logs
            .range(start..=end)
            .map(|item| {
                let (_, bytes) = item.map_err(|e| err("scan logs", function, e))?;
                decode(function, &bytes)
            })
            .collect()
    }

    fn logs_for_request(
        &self,
        function: &str,
        request_id: &str,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let prefix = index_prefix(function, request_id);
        let mut records = Vec::new();
        for item in self.log_index.scan_prefix(&prefix).keys() {
            let key = item.map_err(|e| err("scan log index", request_id, e))?;
            let log_key = &key[prefix.len()..];
            if let Some(bytes) = self
                .logs
                .get(log_key)
                .map_err(|e| err("get log", request_id, e))?
            {
                records.push(decode(function, &bytes)?);
            }
        }
        Ok(records)
    }

    /// Drops oldest records while the counters or the oldest record's time
    /// break the retention: only dropped records are read and decoded.
    fn trim_logs(&self, function: &str, retention: &LogRetention) -> Result<usize, StoreError> {
        let mut counters = self.log_counters.lock();
        let mut counts = match counters.get(function) {
            Some(counts) => *counts,
            None => self.count_logs(function)?,
        };
        let mut dropped = 0;
        for item in self.logs.scan_prefix(function_prefix(function)) {
            let (key, bytes) = item.map_err(|e| err("scan logs", function, e))?;
            let timestamp = key_timestamp(function, &key);
            if !retention.must_drop(counts.records, counts.bytes, timestamp) {
                break;
            }
            let record = decode(function, &bytes);
            if let Ok(record) = &record {
                let mut index = index_prefix(function, &record.request_id);
                index.extend_from_slice(&key);
                self.log_index
                    .remove(index)
                    .map_err(|e| err("trim log index", function, e))?;
            }
            self.logs
                .remove(&key)
                .map_err(|e| err("trim logs", function, e))?;
            counts.records = counts.records.saturating_sub(1);
            counts.bytes = counts.bytes.saturating_sub(counted_bytes(&record, &bytes));
            dropped += 1;
        }
        counters.insert(function.to_string(), counts);
        Ok(dropped)
    }

    fn delete_logs(&self, function: &str) -> Result<(), StoreError> {
        let mut counters = self.log_counters.lock();
        for tree in [&self.logs, &self.log_index] {
            for key in tree.scan_prefix(function_prefix(function)).keys() {
                let key = key.map_err(|e| err("scan logs", function, e))?;
                tree.remove(key)
                    .map_err(|e| err("delete logs", function, e))?;
            }
        }
        counters.remove(function);
        Ok(())
    }

    fn logged_functions(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let mut from = Vec::new();
        // One seek per function: from a name's first key, skip past every
        // key starting with name + NUL.
        while let Some(item) = self.logs.range(from.as_slice()..).next() {
            let (key, _) = item.map_err(|e| err("scan", "logs", e))?;
            let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
            names.push(String::from_utf8_lossy(&key[..end]).into_owned());
            from = key[..end].to_vec();
            from.push(1);
        }
        Ok(names)
    }
}

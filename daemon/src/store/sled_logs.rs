//! Function logs in sled: records keyed by function and time, an index by
//! request id, and trimming to the retention limits.

use std::sync::atomic::Ordering;

use super::sled_store::{err, log_prefix, SledStore};
use super::{LogRecord, LogRetention, StoreError};

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

/// Index keys: name, NUL, request id, NUL, then the log key.
fn index_prefix(function: &str, request_id: &str) -> Vec<u8> {
    let mut key = log_prefix(function);
    key.extend_from_slice(request_id.as_bytes());
    key.push(0);
    key
}

fn decode(function: &str, bytes: &[u8]) -> Result<LogRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| err("decode log", function, e))
}

impl SledStore {
    pub(super) fn append_log_indexed(&self, record: &LogRecord) -> Result<(), StoreError> {
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let key = log_key(&record.function, record.timestamp_ms, seq);
        let bytes =
            serde_json::to_vec(record).map_err(|e| err("encode log", &record.request_id, e))?;
        let mut index = index_prefix(&record.function, &record.request_id);
        index.extend_from_slice(&key);
        self.logs
            .insert(key, bytes)
            .map_err(|e| err("insert log", &record.request_id, e))?;
        self.log_index
            .insert(index, &[][..])
            .map_err(|e| err("index log", &record.request_id, e))?;
        Ok(())
    }

    pub(super) fn logs_since(
        &self,
        function: &str,
        since_ms: i64,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let start = log_key(function, since_ms, 0);
        let mut end = log_prefix(function);
        end.extend_from_slice(&[0xff; 16]);
        self.logs
            .range(start..=end)
            .map(|item| {
                let (_, bytes) = item.map_err(|e| err("scan logs", function, e))?;
                decode(function, &bytes)
            })
            .collect()
    }

    pub(super) fn logs_of_request(
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

    pub(super) fn trim_logs_indexed(
        &self,
        function: &str,
        retention: &LogRetention,
    ) -> Result<usize, StoreError> {
        let mut entries = Vec::new();
        let mut keys = Vec::new();
        for item in self.logs.scan_prefix(log_prefix(function)) {
            let (key, bytes) = item.map_err(|e| err("scan logs", function, e))?;
            let timestamp = key
                .get(function.len() + 1..function.len() + 9)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, |b| u64::from_be_bytes(b) as i64);
            // Count the log text, as the limit is described to users.
            let text_len = decode(function, &bytes).map_or(bytes.len(), |r| r.text.len());
            entries.push((timestamp, text_len as u64));
            keys.push((key, bytes));
        }
        let drop = retention.oldest_to_drop(&entries);
        for (key, bytes) in keys.iter().take(drop) {
            if let Ok(record) = decode(function, bytes) {
                let mut index = index_prefix(function, &record.request_id);
                index.extend_from_slice(key);
                self.log_index
                    .remove(index)
                    .map_err(|e| err("trim log index", function, e))?;
            }
            self.logs
                .remove(key)
                .map_err(|e| err("trim logs", function, e))?;
        }
        Ok(drop)
    }
}

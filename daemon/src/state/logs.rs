//! Function logs: every invocation's START…REPORT text stored per function
//! (by the log writer thread, off the caller's path), indexed by request
//! id, kept within a retention (records, bytes and age per function; oldest
//! dropped first), and fanned out live to followers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::state::log_writer::LogWriter;
use crate::state::store::{LogRecord, LogRetention, LogStore, StoreError};

/// How many appends of a function between trims of its records.
const TRIM_EVERY: u64 = 64;

/// `[function_logs]` in kumod.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionLogsConfig {
    /// Most invocation records kept per function.
    pub max_records_per_function: usize,
    /// Most bytes of log text kept per function.
    pub max_bytes_per_function: u64,
    /// Records older than this are dropped (0 = no age limit).
    pub max_age_hours: u64,
}

impl Default for FunctionLogsConfig {
    fn default() -> Self {
        Self {
            max_records_per_function: 10_000,
            max_bytes_per_function: 64 * 1024 * 1024,
            max_age_hours: 7 * 24,
        }
    }
}

impl FunctionLogsConfig {
    /// The retention as of `now_ms`.
    pub fn retention(&self, now_ms: i64) -> LogRetention {
        let age_ms =
            i64::try_from(self.max_age_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
        LogRetention {
            max_records: self.max_records_per_function,
            max_bytes: self.max_bytes_per_function,
            oldest_kept_ms: if self.max_age_hours == 0 {
                i64::MIN
            } else {
                now_ms.saturating_sub(age_ms)
            },
        }
    }
}

/// Which records a reader wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only at or after this time (ms since the epoch).
    pub since_ms: i64,
    /// Only this request's records.
    pub request_id: Option<String>,
    /// Only this executed version.
    pub version: Option<String>,
}

impl LogFilter {
    /// True when `record` passes.
    pub fn matches(&self, record: &LogRecord) -> bool {
        record.timestamp_ms >= self.since_ms
            && self
                .request_id
                .as_deref()
                .is_none_or(|id| id == record.request_id)
            && self.version.as_deref().is_none_or(|v| v == record.version)
    }
}

/// The log store and live feed.
#[derive(Clone)]
pub struct Logs {
    store: Arc<dyn LogStore>,
    feed: broadcast::Sender<Arc<LogRecord>>,
    config: FunctionLogsConfig,
    writer: Arc<LogWriter>,
}

impl Logs {
    /// Logs over `store` with this retention; starts the writer thread,
    /// which also applies a function's retention every [`TRIM_EVERY`] of
    /// its records.
    pub fn new(store: Arc<dyn LogStore>, config: FunctionLogsConfig) -> Self {
        let (feed, _) = broadcast::channel(1024);
        let since_trim: Mutex<HashMap<String, u64>> = Mutex::default();
        let (trim_store, trim_config) = (store.clone(), config.clone());
        let writer = LogWriter::start(store.clone(), move |written| {
            let mut since_trim = since_trim.lock().unwrap_or_else(|p| p.into_inner());
            for (function, count) in written {
                let pending = since_trim.entry(function.clone()).or_default();
                *pending += count;
                if *pending < TRIM_EVERY {
                    continue;
                }
                *pending = 0;
                let retention = trim_config.retention(chrono::Utc::now().timestamp_millis());
                if let Err(err) = trim_store.trim_logs(function, &retention) {
                    tracing::warn!(%err, %function, "applying the log retention failed");
                }
            }
        });
        Self {
            store,
            feed,
            config,
            writer: Arc::new(writer),
        }
    }

    /// Queues one invocation's log for the store (the writer thread logs
    /// a failure to store it) and publishes it to followers at once. Never
    /// waits on the store.
    pub fn append(&self, record: LogRecord) {
        let record = Arc::new(record);
        let _ = self.feed.send(record.clone());
        self.writer.append(record);
    }

    /// Applies the retention to one function's records now (after every
    /// record queued so far is written).
    pub fn trim(&self, function: &str) -> Result<usize, StoreError> {
        self.writer.catch_up();
        let retention = self.config.retention(chrono::Utc::now().timestamp_millis());
        self.store.trim_logs(function, &retention)
    }

    /// Applies the retention to every function with records (for the age
    /// limit of functions that no longer log).
    pub fn sweep(&self) -> Result<usize, StoreError> {
        let mut dropped = 0;
        for function in self.store.logged_functions()? {
            dropped += self.trim(&function)?;
        }
        Ok(dropped)
    }

    /// Stored records of a function that pass `filter`, oldest first.
    pub fn history(
        &self,
        function: &str,
        filter: &LogFilter,
    ) -> Result<Vec<LogRecord>, StoreError> {
        self.writer.catch_up();
        let mut records = match &filter.request_id {
            Some(id) => self.store.logs_for_request(function, id)?,
            None => self.store.logs(function, filter.since_ms)?,
        };
        records.retain(|r| filter.matches(r));
        Ok(records)
    }

    /// A receiver of every record appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.feed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::{MemoryStore, SledStore, Store};

    /// A store whose appends wait until the test opens its gate (as sled's
    /// do while it rolls its write buffer).
    struct GatedStore {
        inner: MemoryStore,
        open: (std::sync::Mutex<bool>, std::sync::Condvar),
    }

    impl GatedStore {
        fn set_open(&self, open: bool) {
            *self.open.0.lock().unwrap() = open;
            self.open.1.notify_all();
        }
    }

    impl LogStore for GatedStore {
        fn append_log(&self, record: &LogRecord) -> Result<(), StoreError> {
            let mut open = self.open.0.lock().unwrap();
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            self.inner.append_log(record)
        }
        fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
            self.inner.logs(function, since_ms)
        }
        fn logs_for_request(&self, f: &str, id: &str) -> Result<Vec<LogRecord>, StoreError> {
            self.inner.logs_for_request(f, id)
        }
        fn trim_logs(&self, f: &str, r: &LogRetention) -> Result<usize, StoreError> {
            self.inner.trim_logs(f, r)
        }
        fn delete_logs(&self, function: &str) -> Result<(), StoreError> {
            self.inner.delete_logs(function)
        }
        fn logged_functions(&self) -> Result<Vec<String>, StoreError> {
            self.inner.logged_functions()
        }
    }

    #[test]
    fn appends_never_wait_for_the_store_and_readers_see_every_queued_record() {
        let store = Arc::new(GatedStore {
            inner: MemoryStore::new(),
            open: Default::default(),
        });
        let logs = Logs::new(store.clone(), FunctionLogsConfig::default());
        let mut live = logs.subscribe();
        // The store holds every append; the callers do not wait for it.
        let now = chrono::Utc::now().timestamp_millis();
        for i in 0..300 {
            logs.append(record("f", now + i, &format!("r{i}"), 10));
        }
        assert_eq!(
            live.try_recv().unwrap().request_id,
            "r0",
            "followers see it at once"
        );
        assert!(
            store.inner.logs("f", 0).unwrap().is_empty(),
            "nothing stored yet"
        );
        let reader = {
            let logs = logs.clone();
            std::thread::spawn(move || logs.history("f", &LogFilter::default()).unwrap())
        };
        store.set_open(true);
        let seen = reader.join().unwrap();
        let ids: Vec<String> = seen.iter().map(|r| r.request_id.clone()).collect();
        assert_eq!(ids, (0..300).map(|i| format!("r{i}")).collect::<Vec<_>>());
    }

    fn record(function: &str, ts: i64, id: &str, text_len: usize) -> LogRecord {
        LogRecord {
            timestamp_ms: ts,
            function: function.into(),
            request_id: id.into(),
            version: "$LATEST".into(),
            text: "x".repeat(text_len),
        }
    }

    #[test]
    fn retention_drops_oldest_by_count_bytes_and_age() {
        let r = LogRetention {
            max_records: 3,
            max_bytes: 100,
            oldest_kept_ms: 10,
        };
        assert_eq!(r.oldest_to_drop(&[(5, 1), (11, 1), (12, 1)]), 1, "age");
        assert_eq!(
            r.oldest_to_drop(&[(20, 1), (21, 1), (22, 1), (23, 1), (24, 1)]),
            2,
            "count"
        );
        assert_eq!(
            r.oldest_to_drop(&[(20, 60), (21, 30), (22, 30)]),
            1,
            "bytes"
        );
        assert_eq!(r.oldest_to_drop(&[(20, 200)]), 1, "one huge record");
        assert_eq!(r.oldest_to_drop(&[]), 0);
    }

    #[test]
    fn sled_keeps_new_records_drops_old_ones_and_indexes_by_request() {
        let dir = tempfile::tempdir().unwrap();
        for store in [
            Arc::new(SledStore::open(dir.path()).unwrap()) as Arc<dyn Store>,
            Arc::new(MemoryStore::new()),
        ] {
            let logs = Logs::new(
                store.clone(),
                FunctionLogsConfig {
                    max_records_per_function: 1000,
                    max_bytes_per_function: 1000,
                    max_age_hours: 1,
                },
            );
            let now = chrono::Utc::now().timestamp_millis();
            store
                .append_log(&record("f", now - 7_200_000, "ancient", 10))
                .unwrap();
            for i in 0..20 {
                logs.append(record("f", now + i, &format!("r{i}"), 100));
            }
            store.append_log(&record("g", now, "r1", 10)).unwrap();
            logs.trim("f").unwrap();
            let kept = logs.history("f", &LogFilter::default()).unwrap();
            let ids: Vec<&str> = kept.iter().map(|r| r.request_id.as_str()).collect();
            assert_eq!(ids, (10..20).map(|i| format!("r{i}")).collect::<Vec<_>>());
            let one = LogFilter {
                request_id: Some("r15".into()),
                ..Default::default()
            };
            assert_eq!(logs.history("f", &one).unwrap().len(), 1);
            let gone = LogFilter {
                request_id: Some("r1".into()),
                ..Default::default()
            };
            assert!(
                logs.history("f", &gone).unwrap().is_empty(),
                "trimmed records leave the index"
            );
            assert_eq!(
                logs.history("g", &gone).unwrap().len(),
                1,
                "other functions untouched"
            );
            let v1 = LogFilter {
                version: Some("1".into()),
                ..Default::default()
            };
            assert!(logs.history("f", &v1).unwrap().is_empty());
        }
    }
}

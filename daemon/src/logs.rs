//! Function logs: every invocation's START…REPORT text stored per function
//! (oldest dropped beyond a cap) and fanned out live to followers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::store::{LogRecord, Store, StoreError};

/// How many appends between trims of a function's records.
const TRIM_EVERY: u64 = 64;

/// The log store and live feed.
#[derive(Clone)]
pub struct Logs {
    store: Arc<dyn Store>,
    feed: broadcast::Sender<Arc<LogRecord>>,
    keep_per_function: usize,
    appends: Arc<AtomicU64>,
}

impl Logs {
    /// Logs over `store`, keeping at most `keep_per_function` records each.
    pub fn new(store: Arc<dyn Store>, keep_per_function: usize) -> Self {
        let (feed, _) = broadcast::channel(1024);
        Self {
            store,
            feed,
            keep_per_function,
            appends: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Stores one invocation's log and publishes it to followers.
    pub fn append(&self, record: LogRecord) -> Result<(), StoreError> {
        self.store.append_log(&record)?;
        if self.appends.fetch_add(1, Ordering::Relaxed) % TRIM_EVERY == TRIM_EVERY - 1 {
            self.store
                .trim_logs(&record.function, self.keep_per_function)?;
        }
        let _ = self.feed.send(Arc::new(record));
        Ok(())
    }

    /// Stored records of a function since `since_ms`, optionally of one request.
    pub fn history(
        &self,
        function: &str,
        since_ms: i64,
        request_id: Option<&str>,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let mut records = self.store.logs(function, since_ms)?;
        if let Some(id) = request_id {
            records.retain(|r| r.request_id == id);
        }
        Ok(records)
    }

    /// A receiver of every record appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.feed.subscribe()
    }
}

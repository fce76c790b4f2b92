//! Records of function logs and the retention that bounds them.

use serde::{Deserialize, Serialize};

/// How much of a function's log is kept: records beyond any limit go,
/// oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    /// Most records.
    pub max_records: usize,
    /// Most bytes of log text.
    pub max_bytes: u64,
    /// Records older than this (ms since the epoch) go.
    pub oldest_kept_ms: i64,
}

impl LogRetention {
    /// Nothing is kept.
    pub const NONE: LogRetention = LogRetention {
        max_records: 0,
        max_bytes: 0,
        oldest_kept_ms: i64::MAX,
    };

    /// How many of `entries` (timestamp, bytes; oldest first) to drop.
    pub fn oldest_to_drop(&self, entries: &[(i64, u64)]) -> usize {
        let too_old = entries
            .iter()
            .take_while(|(ts, _)| *ts < self.oldest_kept_ms)
            .count();
        let too_many = entries.len().saturating_sub(self.max_records);
        let mut total: u64 = entries.iter().map(|(_, b)| b).sum();
        let mut too_big = 0;
        for (_, bytes) in entries {
            if total <= self.max_bytes {
                break;
            }
            total -= bytes;
            too_big += 1;
        }
        too_old.max(too_many).max(too_big)
    }
}

/// One invocation's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Function name.
    pub function: String,
    /// Lambda request id.
    pub request_id: String,
    /// Executed version.
    pub version: String,
    /// START … REPORT text.
    pub text: String,
}

impl LogRetention {
    /// True when a function holding `records` records with `bytes` bytes of
    /// text in all, the oldest written at `oldest_ms`, must drop its oldest
    /// record. Dropping oldest records while this holds drops as many as
    /// [`LogRetention::oldest_to_drop`] counts, looking only at counters and
    /// the oldest record's time.
    pub fn must_drop(&self, records: usize, bytes: u64, oldest_ms: i64) -> bool {
        records > 0
            && (records > self.max_records
                || bytes > self.max_bytes
                || oldest_ms < self.oldest_kept_ms)
    }
}

//! What a queue source has done since kumod started: batches in flight,
//! messages processed, failed, filtered out, throttles, the last error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The counters of one queue source.
#[derive(Default)]
pub struct SourceCounters {
    in_flight: AtomicU64,
    processed: AtomicU64,
    failed: AtomicU64,
    filtered: AtomicU64,
    throttled: AtomicU64,
    last_error: Mutex<String>,
}

/// A snapshot of [`SourceCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Batches being invoked now.
    pub in_flight: u64,
    /// Messages the function handled (deleted).
    pub processed: u64,
    /// Messages left in the queue after a failure.
    pub failed: u64,
    /// Messages deleted without invoking (no filter matched).
    pub filtered: u64,
    /// Batches throttled.
    pub throttled: u64,
    /// The last error, if any.
    pub last_error: String,
}

/// A batch in flight; counted down on drop.
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SourceCounters {
    /// Counts a batch in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// `n` messages handled.
    pub fn processed(&self, n: usize) {
        self.processed.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` messages left after a failure.
    pub fn failed(&self, n: usize) {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` messages filtered out.
    pub fn filtered(&self, n: usize) {
        self.filtered.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A batch throttled.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the last error.
    pub fn error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = message;
    }

    /// The counters now.
    pub fn snapshot(&self) -> SourceStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SourceStats {
            in_flight: get(&self.in_flight),
            processed: get(&self.processed),
            failed: get(&self.failed),
            filtered: get(&self.filtered),
            throttled: get(&self.throttled),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

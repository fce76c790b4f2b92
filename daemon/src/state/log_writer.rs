//! The one thread that writes function log records to the store, so no
//! caller waits on the store for a log: an invoke answers, and an agent's
//! stream moves on, as soon as the record is queued. sled can hold an
//! insert for tens of milliseconds while it rolls its write buffer; that
//! wait now falls on this thread. Records are written in the order they
//! were queued, in batches; readers that must see every record queued so
//! far (history, trims) wait for the writer to reach it first.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::state::store::{LogRecord, LogStore};

/// Records waiting at most (a full queue makes appends wait: backpressure).
const QUEUE_CAPACITY: usize = 65_536;
/// Most records written per wake-up before progress is published.
const BATCH: usize = 512;
/// Longest a reader waits for the writer before reading anyway.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

/// How far the writer is.
#[derive(Debug, Default)]
struct Progress {
    /// Records handed to the writer.
    queued: u64,
    /// Records it has written (or failed to write, logged).
    written: u64,
}

/// The sending side, shared by every clone of `Logs`. Dropping it (with
/// the last `Logs`) lets the thread write what is queued and waits for it
/// to end, so the store is released when kumod's parts are.
pub(crate) struct LogWriter {
    queue: Option<SyncSender<Arc<LogRecord>>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogWriter {
    /// Starts the writer thread over `store`; `after_batch` runs on it
    /// after each batch with the number of records written per function
    /// (the retention hook).
    pub(crate) fn start(
        store: Arc<dyn LogStore>,
        after_batch: impl Fn(&HashMap<String, u64>) + Send + 'static,
    ) -> Self {
        let (queue, records) = sync_channel(QUEUE_CAPACITY);
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let shared = progress.clone();
        let spawned = std::thread::Builder::new()
            .name("kumo-log-writer".into())
            .spawn(move || write_loop(store, records, shared, after_batch));
        let thread = match spawned {
            Ok(thread) => thread,
            // Without the thread every append would wait forever; fail
            // loudly at start-up instead (kumod cannot run without it).
            Err(err) => panic!("starting the log writer thread: {err}"),
        };
        Self {
            queue: Some(queue),
            progress,
            thread: Some(thread),
        }
    }

    /// Queues a record (waits only while the queue is full).
    pub(crate) fn append(&self, record: Arc<LogRecord>) {
        let Some(queue) = &self.queue else {
            return;
        };
        lock(&self.progress.0).queued += 1;
        let record = match queue.try_send(record) {
            Ok(()) => return,
            Err(TrySendError::Full(record)) => record,
            Err(TrySendError::Disconnected(record)) => {
                tracing::error!(request_id = %record.request_id, "the log writer is gone; a log record is lost");
                self.mark_written(1);
                return;
            }
        };
        tracing::warn!("the log writer is behind by {QUEUE_CAPACITY} records; waiting for it");
        if queue.send(record).is_err() {
            self.mark_written(1);
        }
    }

    fn mark_written(&self, count: u64) {
        lock(&self.progress.0).written += count;
        self.progress.1.notify_all();
    }

    /// Waits until every record queued before this call is written (or
    /// [`CATCH_UP_LIMIT`] passed, logged).
    pub(crate) fn catch_up(&self) {
        let (progress, written) = &*self.progress;
        let mut state = lock(progress);
        let target = state.queued;
        let deadline = std::time::Instant::now() + CATCH_UP_LIMIT;
        while state.written < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    behind = target - state.written,
                    "the log writer did not catch up in time; reading without its latest records"
                );
                return;
            }
            state = written
                .wait_timeout(state, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the log writer thread panicked");
            }
        }
    }
}

fn write_loop(
    store: Arc<dyn LogStore>,
    records: Receiver<Arc<LogRecord>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    after_batch: impl Fn(&HashMap<String, u64>),
) {
    let mut per_function: HashMap<String, u64> = HashMap::new();
    while let Ok(first) = records.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match records.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        per_function.clear();
        for record in &batch {
            if let Err(err) = store.append_log(record) {
                tracing::error!(%err, request_id = %record.request_id, function = %record.function, "storing a log record failed");
            }
            *per_function.entry(record.function.clone()).or_default() += 1;
        }
        {
            let (state, written) = &*progress;
            lock(state).written += batch.len() as u64;
            written.notify_all();
        }
        after_batch(&per_function);
    }
}

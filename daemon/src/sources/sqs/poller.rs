//! The pollers of one queue source (docs/wire-formats.md §9). Each worker
//! long-polls for a batch (size, window, 6 MB cap), deletes the messages
//! no filter matches, invokes the function synchronously through the
//! invoke front door, and deletes what succeeded; failed messages are
//! left for the queue's visibility timeout and redrive policy. A worker
//! that fills a batch asks for another worker, up to the trigger's
//! `--max-concurrency` and the function's reserved concurrency; an idle
//! one leaves. Throttles back off without deleting anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kumo_proto::model::MAX_SYNC_PAYLOAD_BYTES;
use kumo_triggers::event_pattern::EventPattern;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::broker::{Broker, Received};
use super::counters::SourceCounters;
use super::event;
use crate::dispatch::invoke::{InvokeError, InvokeRequest, Invoked, Invoker, Source};
use crate::state::functions::Functions;
use crate::state::store::{SqsSettings, TriggerRecord};

/// Longest long poll SQS allows.
const LONG_POLL: Duration = Duration::from_secs(20);
/// Room left in the 6 MB payload for `{"Records":[]}` and separators.
const ENVELOPE_BYTES: usize = 64;
/// Most batches in flight when neither the trigger nor the function says.
const DEFAULT_MAX_CONCURRENCY: u32 = 1000;
/// Workers a source starts with.
const INITIAL_WORKERS: usize = 2;
/// Longest back-off after throttles or errors.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a source's workers share.
pub struct Poller<B> {
    /// The trigger (function, qualifier, name).
    pub trigger: TriggerRecord,
    /// Its queue settings.
    pub settings: SqsSettings,
    /// Parsed filters (empty: every message goes to the function).
    pub filters: Vec<EventPattern>,
    /// The queue.
    pub broker: B,
    /// The invoke front door.
    pub invoker: Invoker,
    /// For the function's reserved concurrency.
    pub functions: Functions,
    /// `awsRegion` of the records.
    pub region: String,
    /// Counters shown by `kumo trigger get` and `/metrics`.
    pub counters: Arc<SourceCounters>,
    active: AtomicUsize,
}

impl<B: Broker> Poller<B> {
    /// A poller for `trigger` over `broker` (filters already validated).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        trigger: TriggerRecord,
        settings: SqsSettings,
        broker: B,
        invoker: Invoker,
        functions: Functions,
        region: String,
        counters: Arc<SourceCounters>,
    ) -> Self {
        let filters = settings
            .filters
            .iter()
            .filter_map(|f| EventPattern::parse(f).ok())
            .collect();
        Self {
            trigger,
            settings,
            filters,
            broker,
            invoker,
            functions,
            region,
            counters,
            active: AtomicUsize::new(0),
        }
    }

    /// Most workers now: `--max-concurrency`, never past the function's
    /// reserved concurrency; at least one (a throttled one backs off).
    fn cap(&self) -> usize {
        let mut cap = self
            .settings
            .max_concurrency
            .unwrap_or(DEFAULT_MAX_CONCURRENCY);
        if let Ok(record) = self.functions.get_record(&self.trigger.function) {
            if let Some(reserved) = record.config.reserved_concurrency {
                cap = cap.min(reserved);
            }
        }
        cap.max(1) as usize
    }

    /// Runs the workers until the task is dropped (which aborts them;
    /// messages of an unfinished batch come back after the visibility
    /// timeout).
    pub async fn run(self: Arc<Self>) {
        let (more, mut wanted) = mpsc::channel::<()>(8);
        let mut workers = JoinSet::new();
        for _ in 0..INITIAL_WORKERS.min(self.cap()) {
            self.spawn(&mut workers, more.clone());
        }
        loop {
            tokio::select! {
                Some(()) = wanted.recv() => {
                    if workers.len() < self.cap() {
                        self.spawn(&mut workers, more.clone());
                    }
                }
                Some(_) = workers.join_next() => {
                    if workers.is_empty() {
                        self.spawn(&mut workers, more.clone());
                    }
                }
            }
        }
    }

    fn spawn(self: &Arc<Self>, workers: &mut JoinSet<()>, more: mpsc::Sender<()>) {
        self.active.fetch_add(1, Ordering::SeqCst);
        let poller = self.clone();
        workers.spawn(async move {
            poller.work(more).await;
            poller.active.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// One worker: batches until it finds the queue empty while others
    /// poll too, or the source has more workers than it may.
    async fn work(&self, more: mpsc::Sender<()>) {
        let mut carried: Vec<Received> = Vec::new();
        let mut backoff = Duration::from_secs(1);
        loop {
            let started = Instant::now();
            let Some(batch) = self.collect(&mut carried).await else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            };
            if batch.is_empty() {
                if self.active.load(Ordering::SeqCst) > 1 {
                    return;
                }
                // A server that answers at once instead of long polling.
                if started.elapsed() < Duration::from_secs(1) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
            let full = batch.len() >= self.settings.batch_size as usize || !carried.is_empty();
            if full {
                let _ = more.try_send(());
            }
            match self.process(batch).await {
                Handled::Done => backoff = Duration::from_secs(1),
                Handled::BackOff => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    if self.active.load(Ordering::SeqCst) > self.cap() {
                        return;
                    }
                }
            }
            if self.active.load(Ordering::SeqCst) > self.cap() {
                return;
            }
        }
    }

    /// A batch: up to `batch_size` messages, waiting up to the window
    /// after the first, within 6 MB (a message that does not fit is
    /// carried to the next batch). None: the queue could not be read.
    async fn collect(&self, carried: &mut Vec<Received>) -> Option<Vec<(Received, Value)>> {
        let size = self.settings.batch_size.max(1) as usize;
        let window = Duration::from_secs(u64::from(self.settings.batch_window_seconds));
        let limit = MAX_SYNC_PAYLOAD_BYTES - ENVELOPE_BYTES;
        let mut batch: Vec<(Received, Value)> = Vec::new();
        let mut bytes = 0usize;
        let mut first_at: Option<Instant> = None;
        let mut incoming: Vec<Received> = std::mem::take(carried);
        loop {
            let mut full = false;
            for message in incoming.drain(..) {
                if full || batch.len() >= size {
                    carried.push(message);
                    continue;
                }
                let record = event::record(&message, &self.settings.queue_arn, &self.region);
                let len = serde_json::to_vec(&record).map_or(0, |v| v.len()) + 1;
                if bytes + len > limit && !batch.is_empty() {
                    full = true;
                    carried.push(message);
                    continue;
                }
                bytes += len;
                first_at.get_or_insert_with(Instant::now);
                batch.push((message, record));
            }
            if full || batch.len() >= size {
                return Some(batch);
            }
            let wait = match first_at {
                None => LONG_POLL,
                Some(first) => {
                    let left = window.saturating_sub(first.elapsed());
                    if left.is_zero() {
                        return Some(batch);
                    }
                    left
                }
            };
            let max = (size - batch.len()).min(10) as u32;
            match self.broker.receive(max, wait).await {
                Ok(got) if got.is_empty() && first_at.is_none() => return Some(batch),
                Ok(got) => incoming = got,
                Err(err) => {
                    tracing::warn!(%err, trigger = %self.trigger.name, "receiving from the queue failed");
                    self.counters.error(err.to_string());
                    if batch.is_empty() {
                        return None;
                    }
                    return Some(batch);
                }
            }
        }
    }

    /// Filters, invokes and deletes one batch.
    async fn process(&self, batch: Vec<(Received, Value)>) -> Handled {
        let (matched, unmatched): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(_, record)| {
            self.filters.is_empty() || {
                let view = event::filter_view(record);
                self.filters.iter().any(|f| f.matches(&view))
            }
        });
        if !unmatched.is_empty() {
            let receipts: Vec<String> = unmatched.iter().map(|(m, _)| m.receipt.clone()).collect();
            self.delete(&receipts).await;
            self.counters.filtered(unmatched.len());
        }
        if matched.is_empty() {
            return Handled::Done;
        }
        let records: Vec<Value> = matched.iter().map(|(_, r)| r.clone()).collect();
        let messages: Vec<Received> = matched.into_iter().map(|(m, _)| m).collect();
        let request = InvokeRequest {
            qualifier: self.trigger.qualifier.clone(),
            ..InvokeRequest::new(
                Source::Sqs,
                self.trigger.function.clone(),
                Bytes::from(event::event(&records)),
            )
        };
        let _in_flight = self.counters.in_flight();
        let outcome = self.invoker.invoke(request).await;
        let response = match outcome {
            Ok(Invoked::Completed(response)) => response,
            Ok(Invoked::Queued(_) | Invoked::AlreadyQueued) => {
                self.failed(&messages, "the invocation was queued instead of run".into());
                return Handled::BackOff;
            }
            Err(InvokeError::Throttled(throttle)) => {
                self.counters.throttled();
                self.counters.error(throttle.to_string());
                tracing::debug!(%throttle, trigger = %self.trigger.name, "batch throttled; left in the queue");
                return Handled::BackOff;
            }
            Err(err) => {
                self.failed(&messages, err.to_string());
                return Handled::BackOff;
            }
        };
        if !response.function_error.is_empty() {
            let reason = format!("function error {}", response.error_type);
            self.failed(&messages, reason);
            return Handled::Done;
        }
        let failed_ids = if self.settings.report_batch_item_failures {
            match event::failed_items(&response.payload, &messages) {
                Ok(ids) => ids,
                Err(reason) => {
                    self.failed(&messages, format!("batchItemFailures: {reason}"));
                    return Handled::Done;
                }
            }
        } else {
            Vec::new()
        };
        let kept = event::kept(&messages, &failed_ids, self.settings.fifo);
        let done: Vec<String> = messages
            .iter()
            .filter(|m| !kept.contains(&m.id))
            .map(|m| m.receipt.clone())
            .collect();
        self.delete(&done).await;
        self.counters.processed(done.len());
        if !kept.is_empty() {
            self.counters.failed(kept.len());
        }
        Handled::Done
    }

    fn failed(&self, messages: &[Received], reason: String) {
        tracing::info!(trigger = %self.trigger.name, messages = messages.len(), %reason,
            "batch failed; its messages stay in the queue");
        self.counters.failed(messages.len());
        self.counters.error(reason);
    }

    async fn delete(&self, receipts: &[String]) {
        if receipts.is_empty() {
            return;
        }
        match self.broker.delete(receipts).await {
            Ok(0) => {}
            Ok(refused) => {
                tracing::warn!(trigger = %self.trigger.name, refused, "the queue refused to delete some handled messages");
                self.counters
                    .error(format!("DeleteMessageBatch refused {refused} entries"));
            }
            Err(err) => {
                tracing::warn!(%err, trigger = %self.trigger.name, "deleting handled messages failed");
                self.counters.error(err.to_string());
            }
        }
    }
}

/// How a batch ended for the worker.
enum Handled {
    /// Go on.
    Done,
    /// Throttled or failed on the platform: wait before the next batch.
    BackOff,
}

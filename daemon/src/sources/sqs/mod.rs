//! Queue event sources (docs/wire-formats.md §9): kumod polls each enabled
//! SQS trigger's queue and invokes its function with batches. The
//! supervisor here ([`run`]) starts a [`poller::Poller`] per trigger and
//! restarts or stops it when the trigger changes. The broker side is the
//! [`broker::Broker`] trait; SQS ([`client`]) is its one implementation,
//! so another broker is one more module.

pub mod broker;
pub mod client;
pub mod counters;
pub mod event;
pub mod poller;
pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use self::client::SqsQueue;
use self::counters::{SourceCounters, SourceStats};
use self::poller::Poller;
use super::registry::Triggers;
use crate::dispatch::invoke::Invoker;
use crate::state::store::{TriggerRecord, TriggerSource};

/// How often the supervisor looks at the triggers without being woken.
const RESCAN: Duration = Duration::from_secs(10);

/// The counters of every queue source, by trigger name.
#[derive(Clone, Default)]
pub struct QueueStats {
    by_trigger: Arc<Mutex<HashMap<String, Arc<SourceCounters>>>>,
}

impl QueueStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SourceCounters>>> {
        self.by_trigger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counters of `trigger`, created when first asked for.
    pub fn counters(&self, trigger: &str) -> Arc<SourceCounters> {
        self.lock().entry(trigger.to_string()).or_default().clone()
    }

    /// A snapshot of one trigger's counters, if it has any.
    pub fn get(&self, trigger: &str) -> Option<SourceStats> {
        self.lock().get(trigger).map(|c| c.snapshot())
    }

    /// Every trigger's counters, by name.
    pub fn all(&self) -> Vec<(String, SourceStats)> {
        let mut all: Vec<_> = self
            .lock()
            .iter()
            .map(|(name, c)| (name.clone(), c.snapshot()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn forget(&self, trigger: &str) {
        self.lock().remove(trigger);
    }
}

/// A running source: the record it was started from and its task.
struct Running {
    record: TriggerRecord,
    task: JoinHandle<()>,
}

/// Runs the pollers of the enabled SQS triggers until the task is dropped.
pub async fn run(triggers: Triggers, invoker: Invoker, stats: QueueStats) {
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let changed = triggers.sources_changed.notified();
        match triggers.store.list_triggers() {
            Ok(records) => reconcile(&triggers, &invoker, &stats, &mut running, records),
            Err(err) => tracing::error!(%err, "reading triggers for the queue sources failed"),
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(RESCAN) => {}
        }
    }
}

/// The same source (counters and timestamps aside).
fn same_source(a: &TriggerRecord, b: &TriggerRecord) -> bool {
    a.function == b.function && a.qualifier == b.qualifier && a.source == b.source
}

fn reconcile(
    triggers: &Triggers,
    invoker: &Invoker,
    stats: &QueueStats,
    running: &mut HashMap<String, Running>,
    records: Vec<TriggerRecord>,
) {
    let wanted: HashMap<String, TriggerRecord> = records
        .into_iter()
        .filter(|r| r.enabled && matches!(r.source, TriggerSource::Sqs(_)))
        .map(|r| (r.name.clone(), r))
        .collect();
    running.retain(|name, source| {
        let keep = wanted
            .get(name)
            .is_some_and(|r| same_source(r, &source.record))
            && !source.task.is_finished();
        if !keep {
            source.task.abort();
            if !wanted.contains_key(name) {
                stats.forget(name);
            }
            tracing::info!(trigger = %name, "queue source stopped");
        }
        keep
    });
    for (name, record) in wanted {
        if running.contains_key(&name) {
            continue;
        }
        let TriggerSource::Sqs(settings) = &record.source else {
            continue;
        };
        let counters = stats.counters(&name);
        let client = match client::client(triggers.profiles(), &settings.profile) {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(%err, trigger = %name, "queue source cannot start");
                counters.error(err.to_string());
                continue;
            }
        };
        let poller = Arc::new(Poller::new(
            record.clone(),
            settings.clone(),
            SqsQueue::new(client, settings.queue_url.clone()),
            invoker.clone(),
            triggers.functions.clone(),
            triggers.region.clone(),
            counters,
        ));
        tracing::info!(trigger = %name, queue = %settings.queue_arn, "queue source started");
        let task = tokio::spawn(poller.run());
        running.insert(name, Running { record, task });
    }
}

//! An in-memory store of every kind of record, for unit tests (feature
//! `test-support`). It is the reference the conformance suite holds sled
//! and later backends to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use super::{
    AgentStore, AliasRecord, DeadLetterRecord, EventCompanion, EventRecord, FunctionRecord,
    FunctionStore, LayerStore, LayerVersionRecord, LogRecord, LogRetention, LogStore, QueueStore,
    StoreError, TestEventRecord, TestEventStore, TriggerRecord, TriggerStore, VersionRecord,
};

/// State in memory; lost on drop.
#[derive(Default)]
pub struct MemoryStore {
    functions: Mutex<BTreeMap<String, FunctionRecord>>,
    logs: Mutex<Vec<LogRecord>>,
    events: Mutex<BTreeMap<String, EventRecord>>,
    dead_letters: Mutex<BTreeMap<(String, String), DeadLetterRecord>>,
    triggers: Mutex<BTreeMap<String, TriggerRecord>>,
    deliveries: Mutex<BTreeMap<String, i64>>,
    versions: Mutex<BTreeMap<(String, u64), VersionRecord>>,
    aliases: Mutex<BTreeMap<(String, String), AliasRecord>>,
    drained_agents: Mutex<BTreeSet<String>>,
    layer_versions: Mutex<BTreeMap<(String, u64), LayerVersionRecord>>,
    layer_counters: Mutex<BTreeMap<String, u64>>,
    test_events: Mutex<BTreeMap<(String, String), TestEventRecord>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl FunctionStore for MemoryStore {
    fn put_function(&self, record: &FunctionRecord) -> Result<(), StoreError> {
        let mut functions = lock(&self.functions);
        functions.insert(record.config.name.clone(), record.clone());
        Ok(())
    }

    fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        let functions = lock(&self.functions);
        Ok(functions.get(name).cloned())
    }

    fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        let functions = lock(&self.functions);
        Ok(functions.values().cloned().collect())
    }

    fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        let mut functions = lock(&self.functions);
        Ok(functions.remove(name).is_some())
    }

    fn put_version(&self, version: &VersionRecord) -> Result<(), StoreError> {
        lock(&self.versions).insert((version.function.clone(), version.version), version.clone());
        Ok(())
    }

    fn get_version(
        &self,
        function: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        Ok(lock(&self.versions)
            .get(&(function.to_string(), version))
            .cloned())
    }

    fn list_versions(&self, function: &str) -> Result<Vec<VersionRecord>, StoreError> {
        Ok(lock(&self.versions)
            .values()
            .filter(|v| v.function == function)
            .cloned()
            .collect())
    }

    fn delete_version(&self, function: &str, version: u64) -> Result<bool, StoreError> {
        Ok(lock(&self.versions)
            .remove(&(function.to_string(), version))
            .is_some())
    }

    fn put_alias(&self, alias: &AliasRecord) -> Result<(), StoreError> {
        lock(&self.aliases).insert((alias.function.clone(), alias.name.clone()), alias.clone());
        Ok(())
    }

    fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>, StoreError> {
        Ok(lock(&self.aliases)
            .get(&(function.to_string(), name.to_string()))
            .cloned())
    }

    fn list_aliases(&self, function: &str) -> Result<Vec<AliasRecord>, StoreError> {
        Ok(lock(&self.aliases)
            .values()
            .filter(|a| a.function == function)
            .cloned()
            .collect())
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.aliases)
            .remove(&(function.to_string(), name.to_string()))
            .is_some())
    }
}

impl TriggerStore for MemoryStore {
    fn put_trigger(&self, trigger: &TriggerRecord) -> Result<(), StoreError> {
        lock(&self.triggers).insert(trigger.name.clone(), trigger.clone());
        Ok(())
    }

    fn get_trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        Ok(lock(&self.triggers).get(name).cloned())
    }

    fn list_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        Ok(lock(&self.triggers).values().cloned().collect())
    }

    fn delete_trigger(&self, name: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.triggers).remove(name).is_some())
    }

    fn prune_deliveries(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut deliveries = lock(&self.deliveries);
        let before = deliveries.len();
        deliveries.retain(|_, seen| *seen >= before_ms);
        Ok(before - deliveries.len())
    }
}

impl QueueStore for MemoryStore {
    fn put_event(&self, event: &EventRecord, _durable: bool) -> Result<(), StoreError> {
        lock(&self.events).insert(event.id.clone(), event.clone());
        Ok(())
    }

    fn put_event_with(
        &self,
        event: &EventRecord,
        companion: &EventCompanion,
    ) -> Result<bool, StoreError> {
        match companion {
            EventCompanion::None => {}
            EventCompanion::Fired(trigger) => {
                lock(&self.triggers).insert(trigger.name.clone(), trigger.as_ref().clone());
            }
            EventCompanion::Delivery { key, seen_ms } => {
                let mut deliveries = lock(&self.deliveries);
                if deliveries.contains_key(key) {
                    return Ok(false);
                }
                deliveries.insert(key.clone(), *seen_ms);
            }
        }
        lock(&self.events).insert(event.id.clone(), event.clone());
        Ok(true)
    }

    fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(lock(&self.events).get(id).cloned())
    }

    fn delete_event(&self, id: &str) -> Result<(), StoreError> {
        lock(&self.events).remove(id);
        Ok(())
    }

    fn list_events(&self) -> Result<Vec<EventRecord>, StoreError> {
        Ok(lock(&self.events).values().cloned().collect())
    }

    fn put_dead_letter(&self, letter: &DeadLetterRecord) -> Result<(), StoreError> {
        lock(&self.dead_letters)
            .insert((letter.function.clone(), letter.id.clone()), letter.clone());
        Ok(())
    }

    fn get_dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<DeadLetterRecord>, StoreError> {
        Ok(lock(&self.dead_letters)
            .get(&(function.to_string(), id.to_string()))
            .cloned())
    }

    fn list_dead_letters(&self, function: &str) -> Result<Vec<DeadLetterRecord>, StoreError> {
        let mut letters: Vec<DeadLetterRecord> = lock(&self.dead_letters)
            .values()
            .filter(|l| l.function == function)
            .cloned()
            .collect();
        letters.sort_by_key(|l| l.failed_ms);
        Ok(letters)
    }

    fn count_dead_letters(&self, function: &str) -> Result<u64, StoreError> {
        Ok(lock(&self.dead_letters)
            .values()
            .filter(|l| l.function == function)
            .count() as u64)
    }

    fn delete_dead_letter(&self, function: &str, id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.dead_letters)
            .remove(&(function.to_string(), id.to_string()))
            .is_some())
    }
}

impl LogStore for MemoryStore {
    /// Keeps records in time order (appends of one time in append order),
    /// as a backend keyed by time returns them.
    fn append_log(&self, record: &LogRecord) -> Result<(), StoreError> {
        let mut logs = lock(&self.logs);
        let at = logs.partition_point(|r| r.timestamp_ms <= record.timestamp_ms);
        logs.insert(at, record.clone());
        Ok(())
    }

    fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
        let logs = lock(&self.logs);
        Ok(logs
            .iter()
            .filter(|r| r.function == function && r.timestamp_ms >= since_ms)
            .cloned()
            .collect())
    }

    fn logs_for_request(
        &self,
        function: &str,
        request_id: &str,
    ) -> Result<Vec<LogRecord>, StoreError> {
        Ok(lock(&self.logs)
            .iter()
            .filter(|r| r.function == function && r.request_id == request_id)
            .cloned()
            .collect())
    }

    fn trim_logs(&self, function: &str, retention: &LogRetention) -> Result<usize, StoreError> {
        let mut logs = lock(&self.logs);
        let entries: Vec<(i64, u64)> = logs
            .iter()
            .filter(|r| r.function == function)
            .map(|r| (r.timestamp_ms, r.text.len() as u64))
            .collect();
        let drop = retention.oldest_to_drop(&entries);
        let mut to_drop = drop;
        logs.retain(|r| {
            if r.function == function && to_drop > 0 {
                to_drop -= 1;
                false
            } else {
                true
            }
        });
        Ok(drop)
    }

    fn delete_logs(&self, function: &str) -> Result<(), StoreError> {
        self.trim_logs(function, &LogRetention::NONE).map(|_| ())
    }

    fn logged_functions(&self) -> Result<Vec<String>, StoreError> {
        let names: BTreeSet<String> = lock(&self.logs)
            .iter()
            .map(|r| r.function.clone())
            .collect();
        Ok(names.into_iter().collect())
    }
}

impl AgentStore for MemoryStore {
    fn drained_agents(&self) -> Result<BTreeSet<String>, StoreError> {
        Ok(lock(&self.drained_agents).clone())
    }

    fn set_agent_drained(&self, agent_id: &str, drained: bool) -> Result<(), StoreError> {
        let mut agents = lock(&self.drained_agents);
        if drained {
            agents.insert(agent_id.to_string());
        } else {
            agents.remove(agent_id);
        }
        Ok(())
    }
}

impl LayerStore for MemoryStore {
    fn next_layer_version(&self, layer: &str) -> Result<u64, StoreError> {
        let mut counters = lock(&self.layer_counters);
        let next = counters.get(layer).copied().unwrap_or(0) + 1;
        counters.insert(layer.to_string(), next);
        Ok(next)
    }

    fn put_layer_version(&self, record: &LayerVersionRecord) -> Result<(), StoreError> {
        lock(&self.layer_versions).insert((record.layer.clone(), record.version), record.clone());
        Ok(())
    }

    fn get_layer_version(
        &self,
        layer: &str,
        version: u64,
    ) -> Result<Option<LayerVersionRecord>, StoreError> {
        Ok(lock(&self.layer_versions)
            .get(&(layer.to_string(), version))
            .cloned())
    }

    fn list_layer_versions(&self, layer: &str) -> Result<Vec<LayerVersionRecord>, StoreError> {
        Ok(lock(&self.layer_versions)
            .values()
            .filter(|r| r.layer == layer)
            .cloned()
            .collect())
    }

    fn list_layers(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = lock(&self.layer_versions)
            .keys()
            .map(|(layer, _)| layer.clone())
            .collect();
        names.dedup();
        Ok(names)
    }

    fn delete_layer_version(&self, layer: &str, version: u64) -> Result<bool, StoreError> {
        Ok(lock(&self.layer_versions)
            .remove(&(layer.to_string(), version))
            .is_some())
    }
}

impl TestEventStore for MemoryStore {
    fn put_test_event(&self, record: &TestEventRecord) -> Result<(), StoreError> {
        lock(&self.test_events).insert(
            (record.function.clone(), record.name.clone()),
            record.clone(),
        );
        Ok(())
    }

    fn list_test_events(&self, function: &str) -> Result<Vec<TestEventRecord>, StoreError> {
        Ok(lock(&self.test_events)
            .values()
            .filter(|r| r.function == function)
            .cloned()
            .collect())
    }

    fn delete_test_event(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.test_events)
            .remove(&(function.to_string(), name.to_string()))
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_conformance_tests!(|| (MemoryStore::new(), ()));
}

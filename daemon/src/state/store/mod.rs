//! kumod's state, one trait per kind of record: [`FunctionStore`]
//! (functions, published versions, aliases), [`TriggerStore`] (triggers
//! with their due times, webhook delivery keys), [`QueueStore`]
//! (asynchronous events and dead letters), [`LogStore`] (function logs),
//! [`AgentStore`] (drained nodes), [`LayerStore`] (published layer
//! versions) and [`TestEventStore`] (the console's saved test events).
//! [`Store`] is all of them together.
//!
//! [`SledStore`] is the durable implementation; `MemoryStore` (feature
//! `test-support`) serves unit tests. Every backend must pass the
//! conformance suite in `conformance` (the `store_conformance_tests!` macro
//! instantiates it for a backend).

mod event_records;
mod function_records;
mod layer_records;
mod log_records;
mod sled;
mod test_event_records;
mod trigger_records;
mod version_records;

#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
#[cfg(any(test, feature = "test-support"))]
mod memory;

use std::collections::BTreeSet;

pub use event_records::{DeadLetterCondition, DeadLetterRecord, EventRecord};
pub use function_records::{FunctionRecord, StoredConfig, StoredLayer};
pub use layer_records::LayerVersionRecord;
pub use log_records::{LogRecord, LogRetention};
#[cfg(any(test, feature = "test-support"))]
pub use memory::MemoryStore;
pub use sled::SledStore;
pub use test_event_records::TestEventRecord;
pub use trigger_records::{EventCompanion, SnsSettings, SqsSettings, TriggerRecord, TriggerSource};
pub use version_records::{AliasRecord, VersionRecord};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[error("store: {op} {key}: {message}")]
pub struct StoreError {
    /// What was being done.
    pub op: &'static str,
    /// The record.
    pub key: String,
    /// The engine's error.
    pub message: String,
}

/// Functions at `$LATEST`, their published versions and their aliases.
/// Every write is durable (flushed) before it returns.
pub trait FunctionStore: Send + Sync + 'static {
    /// Writes a function record durably (flushed before returning).
    fn put_function(&self, record: &FunctionRecord) -> Result<(), StoreError>;
    /// Reads a function record.
    fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError>;
    /// Every function record, by name.
    fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError>;
    /// Deletes a function record durably; false when it did not exist.
    fn delete_function(&self, name: &str) -> Result<bool, StoreError>;
    /// Writes a published version durably.
    fn put_version(&self, version: &VersionRecord) -> Result<(), StoreError>;
    /// Reads one published version.
    fn get_version(
        &self,
        function: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// A function's published versions, oldest first.
    fn list_versions(&self, function: &str) -> Result<Vec<VersionRecord>, StoreError>;
    /// Deletes a published version durably; false when it did not exist.
    fn delete_version(&self, function: &str, version: u64) -> Result<bool, StoreError>;
    /// Writes an alias durably.
    fn put_alias(&self, alias: &AliasRecord) -> Result<(), StoreError>;
    /// Reads one alias.
    fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>, StoreError>;
    /// A function's aliases, by name.
    fn list_aliases(&self, function: &str) -> Result<Vec<AliasRecord>, StoreError>;
    /// Deletes an alias durably; false when it did not exist.
    fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError>;
}

/// Triggers (a schedule's record carries its last due time) and the keys
/// of bucket deliveries already queued.
pub trait TriggerStore: Send + Sync + 'static {
    /// Writes a trigger durably.
    fn put_trigger(&self, trigger: &TriggerRecord) -> Result<(), StoreError>;
    /// Reads a trigger.
    fn get_trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError>;
    /// Every trigger, by name.
    fn list_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError>;
    /// Deletes a trigger durably; false when it did not exist.
    fn delete_trigger(&self, name: &str) -> Result<bool, StoreError>;
    /// Forgets deliveries first seen before `before_ms`; returns how many.
    fn prune_deliveries(&self, before_ms: i64) -> Result<usize, StoreError>;
}

/// The asynchronous queue: accepted events and dead letters.
pub trait QueueStore: Send + Sync + 'static {
    /// Writes an event; with `durable` it is on disk before this returns.
    fn put_event(&self, event: &EventRecord, durable: bool) -> Result<(), StoreError>;
    /// Writes a new event and its companion (a fired trigger's record, or
    /// a delivery key) in one transaction, durably. Returns false (and
    /// writes nothing) when the companion is a delivery already seen.
    fn put_event_with(
        &self,
        event: &EventRecord,
        companion: &EventCompanion,
    ) -> Result<bool, StoreError>;
    /// Reads an event.
    fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;
    /// Removes an event (not flushed: a crash may run it once more).
    fn delete_event(&self, id: &str) -> Result<(), StoreError>;
    /// Every queued event.
    fn list_events(&self) -> Result<Vec<EventRecord>, StoreError>;
    /// Writes a dead letter durably.
    fn put_dead_letter(&self, letter: &DeadLetterRecord) -> Result<(), StoreError>;
    /// Reads one dead letter of a function.
    fn get_dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<DeadLetterRecord>, StoreError>;
    /// A function's dead letters, oldest failure first.
    fn list_dead_letters(&self, function: &str) -> Result<Vec<DeadLetterRecord>, StoreError>;
    /// Number of dead letters of a function.
    fn count_dead_letters(&self, function: &str) -> Result<u64, StoreError>;
    /// Removes a dead letter durably; false when it did not exist.
    fn delete_dead_letter(&self, function: &str, id: &str) -> Result<bool, StoreError>;
}

/// Function logs: one record per invocation, kept within a retention.
pub trait LogStore: Send + Sync + 'static {
    /// Appends one invocation's log (not flushed).
    fn append_log(&self, record: &LogRecord) -> Result<(), StoreError>;
    /// A function's log records at or after `since_ms`, oldest first.
    fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError>;
    /// A function's log records of one request (every attempt), oldest first.
    fn logs_for_request(
        &self,
        function: &str,
        request_id: &str,
    ) -> Result<Vec<LogRecord>, StoreError>;
    /// Drops a function's oldest records beyond the retention; returns how
    /// many. Costs O(1) plus the records dropped, not the records kept.
    fn trim_logs(&self, function: &str, retention: &LogRetention) -> Result<usize, StoreError>;
    /// Drops every log record of a function.
    fn delete_logs(&self, function: &str) -> Result<(), StoreError>;
    /// Every function that has log records, by name.
    fn logged_functions(&self) -> Result<Vec<String>, StoreError>;
}

/// Nodes an operator drained: they get no work, across kumod restarts.
pub trait AgentStore: Send + Sync + 'static {
    /// Every drained agent id.
    fn drained_agents(&self) -> Result<BTreeSet<String>, StoreError>;
    /// Marks `agent_id` drained (`true`) or not, durably.
    fn set_agent_drained(&self, agent_id: &str, drained: bool) -> Result<(), StoreError>;
}

/// Published layer versions. Every write is durable before it returns.
pub trait LayerStore: Send + Sync + 'static {
    /// Allocates the next version number of `layer` durably (numbers are
    /// never handed out twice, even after deletes).
    fn next_layer_version(&self, layer: &str) -> Result<u64, StoreError>;
    /// Writes a layer version durably.
    fn put_layer_version(&self, record: &LayerVersionRecord) -> Result<(), StoreError>;
    /// Reads one layer version.
    fn get_layer_version(
        &self,
        layer: &str,
        version: u64,
    ) -> Result<Option<LayerVersionRecord>, StoreError>;
    /// A layer's versions, oldest first.
    fn list_layer_versions(&self, layer: &str) -> Result<Vec<LayerVersionRecord>, StoreError>;
    /// Every layer with at least one version, by name.
    fn list_layers(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes a layer version durably; false when it did not exist.
    fn delete_layer_version(&self, layer: &str, version: u64) -> Result<bool, StoreError>;
}

/// Saved test events, per function and name.
pub trait TestEventStore: Send + Sync + 'static {
    /// Saves (or replaces) a test event.
    fn put_test_event(&self, record: &TestEventRecord) -> Result<(), StoreError>;
    /// A function's test events, by name.
    fn list_test_events(&self, function: &str) -> Result<Vec<TestEventRecord>, StoreError>;
    /// Removes one; false when it did not exist.
    fn delete_test_event(&self, function: &str, name: &str) -> Result<bool, StoreError>;
}

/// Durable state of kumod: every kind of record. Consumers that need one
/// kind take that kind's trait instead.
pub trait Store:
    FunctionStore + TriggerStore + QueueStore + LogStore + AgentStore + LayerStore + TestEventStore
{
}

impl<
        T: FunctionStore
            + TriggerStore
            + QueueStore
            + LogStore
            + AgentStore
            + LayerStore
            + TestEventStore,
    > Store for T
{
}

//! The sled implementation of [`Store`].

use std::path::Path;
use std::sync::atomic::AtomicU64;

use serde::de::DeserializeOwned;
use sled::transaction::TransactionError;
use sled::Transactional;

use super::{
    AliasRecord, DeadLetterRecord, EventCompanion, EventRecord, FunctionRecord, LogRecord,
    LogRetention, Store, StoreError, TriggerRecord, VersionRecord,
};

/// State in a sled database.
pub struct SledStore {
    db: sled::Db,
    functions: sled::Tree,
    pub(super) logs: sled::Tree,
    pub(super) log_index: sled::Tree,
    events: sled::Tree,
    dead_letters: sled::Tree,
    triggers: sled::Tree,
    deliveries: sled::Tree,
    versions: sled::Tree,
    aliases: sled::Tree,
    pub(super) sequence: AtomicU64,
    flushes: FlushGate,
}

/// Group commit: callers that need their writes on disk share flushes. A
/// caller waits for a flush that started after its write; whoever finds
/// none running starts one for everybody waiting.
#[derive(Default)]
struct FlushGate {
    state: std::sync::Mutex<FlushState>,
    done: std::sync::Condvar,
}

#[derive(Default)]
struct FlushState {
    /// Tickets handed out (one per caller).
    issued: u64,
    /// Every ticket up to this one is on disk.
    flushed: u64,
    /// A flush is in progress.
    running: bool,
}

pub(super) fn err(op: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError {
        op,
        key: key.to_string(),
        message: e.to_string(),
    }
}

pub(super) fn log_prefix(function: &str) -> Vec<u8> {
    let mut prefix = function.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

impl SledStore {
    /// Opens (creating) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let db = sled::open(dir).map_err(|e| err("open", &path, e))?;
        let functions = db
            .open_tree("functions")
            .map_err(|e| err("open tree", "functions", e))?;
        let logs = db
            .open_tree("logs")
            .map_err(|e| err("open tree", "logs", e))?;
        let log_index = db
            .open_tree("log_index")
            .map_err(|e| err("open tree", "log_index", e))?;
        let events = db
            .open_tree("events")
            .map_err(|e| err("open tree", "events", e))?;
        let dead_letters = db
            .open_tree("dead_letters")
            .map_err(|e| err("open tree", "dead_letters", e))?;
        let triggers = db
            .open_tree("triggers")
            .map_err(|e| err("open tree", "triggers", e))?;
        let deliveries = db
            .open_tree("deliveries")
            .map_err(|e| err("open tree", "deliveries", e))?;
        let versions = db
            .open_tree("versions")
            .map_err(|e| err("open tree", "versions", e))?;
        let aliases = db
            .open_tree("aliases")
            .map_err(|e| err("open tree", "aliases", e))?;
        let sequence = AtomicU64::new(db.generate_id().map_err(|e| err("generate id", &path, e))?);
        Ok(Self {
            versions,
            aliases,
            db,
            functions,
            logs,
            log_index,
            events,
            dead_letters,
            triggers,
            deliveries,
            sequence,
            flushes: FlushGate::default(),
        })
    }

    fn flush(&self, key: &str) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| err("flush", key, e))?;
        Ok(())
    }

    /// Returns once everything written before the call is on disk, sharing
    /// one flush among concurrent callers.
    fn flush_shared(&self, key: &str) -> Result<(), StoreError> {
        let gate = &self.flushes;
        fn lock(m: &std::sync::Mutex<FlushState>) -> std::sync::MutexGuard<'_, FlushState> {
            m.lock().unwrap_or_else(|p| p.into_inner())
        }
        let mut state = lock(&gate.state);
        state.issued += 1;
        let ticket = state.issued;
        loop {
            if state.flushed >= ticket {
                return Ok(());
            }
            if state.running {
                state = gate.done.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.running = true;
            let target = state.issued;
            drop(state);
            let result = self.flush(key);
            state = lock(&gate.state);
            state.running = false;
            if result.is_ok() {
                state.flushed = state.flushed.max(target);
            }
            gate.done.notify_all();
            result?;
        }
    }

    /// Queues a bucket event unless its delivery key was seen (false), with
    /// no sled transaction: those take sled's global write lock, which waits
    /// out every flush in progress, so concurrent posts could not share
    /// flushes. Order makes it atomic instead: the event is written before
    /// its key and sled recovers a prefix of its log, so a key that survives
    /// a crash has its event. Of two racing copies of one delivery, the one
    /// that loses the key's compare-and-swap takes its event out again (a
    /// crash before that runs the event twice: at least once). Not flushed.
    fn put_delivery(
        &self,
        id: &str,
        bytes: Vec<u8>,
        key: &str,
        seen_ms: i64,
    ) -> Result<bool, StoreError> {
        if self
            .deliveries
            .contains_key(key)
            .map_err(|e| err("check delivery", key, e))?
        {
            return Ok(false);
        }
        self.events
            .insert(id.as_bytes(), bytes)
            .map_err(|e| err("insert event", id, e))?;
        let seen = seen_ms.to_be_bytes();
        let claimed = self
            .deliveries
            .compare_and_swap(key, None::<&[u8]>, Some(&seen[..]))
            .map_err(|e| err("record delivery", key, e))?;
        if claimed.is_err() {
            self.events
                .remove(id.as_bytes())
                .map_err(|e| err("remove duplicate event", id, e))?;
        }
        Ok(claimed.is_ok())
    }

    fn put_json<T: serde::Serialize>(
        &self,
        tree: &sled::Tree,
        key: Vec<u8>,
        label: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| err("encode", label, e))?;
        tree.insert(key, bytes)
            .map_err(|e| err("insert", label, e))?;
        self.flush(label)
    }

    /// Reads and decodes one record; `ops` name the read and the decode in
    /// errors.
    fn get_json<T: DeserializeOwned>(
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
        label: &str,
        ops: [&'static str; 2],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| err(ops[0], label, e))? {
            Some(bytes) => decode(ops[1], label, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn scan_json<T: DeserializeOwned>(
        tree: &sled::Tree,
        prefix: Vec<u8>,
        label: &str,
    ) -> Result<Vec<T>, StoreError> {
        tree.scan_prefix(prefix)
            .values()
            .map(|item| {
                let bytes = item.map_err(|e| err("scan", label, e))?;
                decode("decode", label, &bytes)
            })
            .collect()
    }

    fn remove_flushed(
        &self,
        tree: &sled::Tree,
        key: Vec<u8>,
        label: &str,
    ) -> Result<bool, StoreError> {
        let existed = tree
            .remove(key)
            .map_err(|e| err("remove", label, e))?
            .is_some();
        self.flush(label)?;
        Ok(existed)
    }
}

/// Version keys: function, NUL, version (big-endian), so a scan is in order.
fn version_key(function: &str, version: u64) -> Vec<u8> {
    let mut key = log_prefix(function);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Keys of per-function records (dead letters, aliases): function, NUL, id.
fn dead_letter_key(function: &str, id: &str) -> Vec<u8> {
    let mut key = log_prefix(function);
    key.extend_from_slice(id.as_bytes());
    key
}

fn decode<T: DeserializeOwned>(op: &'static str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| err(op, key, e))
}

impl Store for SledStore {
    fn put_function(&self, record: &FunctionRecord) -> Result<(), StoreError> {
        let name = &record.config.name;
        let bytes = serde_json::to_vec(record).map_err(|e| err("encode", name, e))?;
        self.functions
            .insert(name.as_bytes(), bytes)
            .map_err(|e| err("insert", name, e))?;
        self.db.flush().map_err(|e| err("flush", name, e))?;
        Ok(())
    }

    fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        Self::get_json(&self.functions, name, name, ["get", "decode"])
    }

    fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        self.functions
            .iter()
            .map(|item| {
                let (key, bytes) = item.map_err(|e| err("scan", "functions", e))?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| err("decode", &String::from_utf8_lossy(&key), e))
            })
            .collect()
    }

    fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        let existed = self
            .functions
            .remove(name.as_bytes())
            .map_err(|e| err("remove", name, e))?
            .is_some();
        self.db.flush().map_err(|e| err("flush", name, e))?;
        Ok(existed)
    }

    fn append_log(&self, record: &LogRecord) -> Result<(), StoreError> {
        self.append_log_indexed(record)
    }

    fn logs(&self, function: &str, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
        self.logs_since(function, since_ms)
    }

    fn logs_for_request(
        &self,
        function: &str,
        request_id: &str,
    ) -> Result<Vec<LogRecord>, StoreError> {
        self.logs_of_request(function, request_id)
    }

    fn trim_logs(&self, function: &str, retention: &LogRetention) -> Result<usize, StoreError> {
        self.trim_logs_indexed(function, retention)
    }

    fn delete_logs(&self, function: &str) -> Result<(), StoreError> {
        self.trim_logs_indexed(function, &LogRetention::NONE)
            .map(|_| ())
    }

    fn put_event(&self, event: &EventRecord, durable: bool) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(event).map_err(|e| err("encode event", &event.id, e))?;
        self.events
            .insert(event.id.as_bytes(), bytes)
            .map_err(|e| err("insert event", &event.id, e))?;
        if durable {
            self.flush(&event.id)?;
        }
        Ok(())
    }

    fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        Self::get_json(&self.events, id, id, ["get event", "decode event"])
    }

    fn delete_event(&self, id: &str) -> Result<(), StoreError> {
        self.events
            .remove(id.as_bytes())
            .map_err(|e| err("remove event", id, e))?;
        Ok(())
    }

    fn list_events(&self) -> Result<Vec<EventRecord>, StoreError> {
        self.events
            .iter()
            .map(|item| {
                let (key, bytes) = item.map_err(|e| err("scan", "events", e))?;
                decode("decode event", &String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    fn put_dead_letter(&self, letter: &DeadLetterRecord) -> Result<(), StoreError> {
        let bytes =
            serde_json::to_vec(letter).map_err(|e| err("encode dead letter", &letter.id, e))?;
        self.dead_letters
            .insert(dead_letter_key(&letter.function, &letter.id), bytes)
            .map_err(|e| err("insert dead letter", &letter.id, e))?;
        self.flush(&letter.id)
    }

    fn get_dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<DeadLetterRecord>, StoreError> {
        let key = dead_letter_key(function, id);
        Self::get_json(
            &self.dead_letters,
            key,
            id,
            ["get dead letter", "decode dead letter"],
        )
    }

    fn list_dead_letters(&self, function: &str) -> Result<Vec<DeadLetterRecord>, StoreError> {
        let mut letters: Vec<DeadLetterRecord> = self
            .dead_letters
            .scan_prefix(log_prefix(function))
            .values()
            .map(|item| {
                let bytes = item.map_err(|e| err("scan dead letters", function, e))?;
                decode("decode dead letter", function, &bytes)
            })
            .collect::<Result<_, _>>()?;
        letters.sort_by_key(|l| l.failed_ms);
        Ok(letters)
    }

    fn count_dead_letters(&self, function: &str) -> Result<u64, StoreError> {
        Ok(self.dead_letters.scan_prefix(log_prefix(function)).count() as u64)
    }

    fn delete_dead_letter(&self, function: &str, id: &str) -> Result<bool, StoreError> {
        let existed = self
            .dead_letters
            .remove(dead_letter_key(function, id))
            .map_err(|e| err("remove dead letter", id, e))?
            .is_some();
        self.flush(id)?;
        Ok(existed)
    }

    fn put_event_with(
        &self,
        event: &EventRecord,
        companion: &EventCompanion,
    ) -> Result<bool, StoreError> {
        let event_bytes =
            serde_json::to_vec(event).map_err(|e| err("encode event", &event.id, e))?;
        let written = match companion {
            EventCompanion::None => {
                self.events
                    .insert(event.id.as_bytes(), event_bytes)
                    .map_err(|e| err("insert event", &event.id, e))?;
                true
            }
            EventCompanion::Fired(trigger) => {
                let trigger_bytes = serde_json::to_vec(trigger.as_ref())
                    .map_err(|e| err("encode trigger", &trigger.name, e))?;
                let result: Result<(), TransactionError<()>> = (&self.events, &self.triggers)
                    .transaction(|(events, triggers)| {
                        events.insert(event.id.as_bytes(), event_bytes.as_slice())?;
                        triggers.insert(trigger.name.as_bytes(), trigger_bytes.as_slice())?;
                        Ok(())
                    });
                result.map_err(|e| err("fire trigger", &trigger.name, format!("{e:?}")))?;
                true
            }
            EventCompanion::Delivery { key, seen_ms } => {
                self.put_delivery(&event.id, event_bytes, key, *seen_ms)?
            }
        };
        // A duplicate waits for the flush too: the first delivery may still
        // be on its way to disk, and the caller's 200 must mean it is there.
        self.flush_shared(&event.id)?;
        Ok(written)
    }

    fn prune_deliveries(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for item in self.deliveries.iter() {
            let (key, seen) = item.map_err(|e| err("scan", "deliveries", e))?;
            let seen_ms = <[u8; 8]>::try_from(seen.as_ref())
                .map(i64::from_be_bytes)
                .unwrap_or(0);
            if seen_ms < before_ms {
                self.deliveries
                    .remove(&key)
                    .map_err(|e| err("prune", "deliveries", e))?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    fn put_trigger(&self, trigger: &TriggerRecord) -> Result<(), StoreError> {
        let bytes =
            serde_json::to_vec(trigger).map_err(|e| err("encode trigger", &trigger.name, e))?;
        self.triggers
            .insert(trigger.name.as_bytes(), bytes)
            .map_err(|e| err("insert trigger", &trigger.name, e))?;
        self.flush(&trigger.name)
    }

    fn get_trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        Self::get_json(
            &self.triggers,
            name,
            name,
            ["get trigger", "decode trigger"],
        )
    }

    fn list_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        self.triggers
            .iter()
            .map(|item| {
                let (key, bytes) = item.map_err(|e| err("scan", "triggers", e))?;
                decode("decode trigger", &String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    fn delete_trigger(&self, name: &str) -> Result<bool, StoreError> {
        let existed = self
            .triggers
            .remove(name.as_bytes())
            .map_err(|e| err("remove trigger", name, e))?
            .is_some();
        self.flush(name)?;
        Ok(existed)
    }

    fn put_version(&self, version: &VersionRecord) -> Result<(), StoreError> {
        let key = version_key(&version.function, version.version);
        self.put_json(&self.versions, key, &version.function, version)
    }

    fn get_version(
        &self,
        function: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let key = version_key(function, version);
        Self::get_json(&self.versions, key, function, ["get", "decode"])
    }

    fn list_versions(&self, function: &str) -> Result<Vec<VersionRecord>, StoreError> {
        Self::scan_json(&self.versions, log_prefix(function), function)
    }

    fn delete_version(&self, function: &str, version: u64) -> Result<bool, StoreError> {
        self.remove_flushed(&self.versions, version_key(function, version), function)
    }

    fn put_alias(&self, alias: &AliasRecord) -> Result<(), StoreError> {
        let key = dead_letter_key(&alias.function, &alias.name);
        self.put_json(&self.aliases, key, &alias.name, alias)
    }

    fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>, StoreError> {
        let key = dead_letter_key(function, name);
        Self::get_json(&self.aliases, key, name, ["get", "decode"])
    }

    fn list_aliases(&self, function: &str) -> Result<Vec<AliasRecord>, StoreError> {
        Self::scan_json(&self.aliases, log_prefix(function), function)
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        self.remove_flushed(&self.aliases, dead_letter_key(function, name), name)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn event(id: String) -> EventRecord {
        EventRecord {
            id,
            function: "f".into(),
            qualifier: None,
            payload: "{}".into(),
            accepted_ms: 0,
            not_before_ms: 0,
            attempts: 0,
            backoffs: 0,
            dispatched: false,
            last_error_type: String::new(),
            last_error_message: String::new(),
            last_response: String::new(),
            replay_of: String::new(),
        }
    }

    #[test]
    fn concurrent_durable_writes_share_flushes_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let written = store
                            .put_event_with(&event(format!("{t}-{i}")), &EventCompanion::None)
                            .unwrap();
                        assert!(written);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.list_events().unwrap().len(), 400);
        let state = store.flushes.state.lock().unwrap();
        assert_eq!(state.flushed, state.issued, "every ticket was flushed");
        assert!(!state.running);
    }

    #[test]
    fn racing_copies_of_a_delivery_queue_one_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let copy = |t: usize, store: Arc<SledStore>| {
            let queued = (0..20).filter(|i| {
                let key = format!("trigger\u{0}key-{i}");
                let delivery = EventCompanion::Delivery { key, seen_ms: 1 };
                store
                    .put_event_with(&event(format!("{t}-{i}")), &delivery)
                    .unwrap()
            });
            queued.count()
        };
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || copy(t, store))
            })
            .collect();
        let queued: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(queued, 20, "each delivery is queued by exactly one copy");
        assert_eq!(store.list_events().unwrap().len(), 20);
        assert_eq!(store.prune_deliveries(2).unwrap(), 20);
    }
}

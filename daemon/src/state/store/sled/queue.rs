//! [`QueueStore`] in sled: events by id, dead letters by function and id,
//! and the one write that spans kinds (an event with its companion).

use sled::transaction::TransactionError;
use sled::Transactional;

use super::{err, function_key, function_prefix, SledStore};
use crate::state::store::{DeadLetterRecord, EventCompanion, EventRecord, QueueStore, StoreError};

impl SledStore {
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
}

impl QueueStore for SledStore {
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

    fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        Self::get_json(&self.events, id, id)
    }

    fn delete_event(&self, id: &str) -> Result<(), StoreError> {
        self.events
            .remove(id.as_bytes())
            .map_err(|e| err("remove event", id, e))?;
        Ok(())
    }

    fn list_events(&self) -> Result<Vec<EventRecord>, StoreError> {
        Self::scan_json(&self.events, b"", "events")
    }

    fn put_dead_letter(&self, letter: &DeadLetterRecord) -> Result<(), StoreError> {
        let key = function_key(&letter.function, &letter.id);
        self.put_json(&self.dead_letters, key, &letter.id, letter)
    }

    fn get_dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<DeadLetterRecord>, StoreError> {
        Self::get_json(&self.dead_letters, function_key(function, id), id)
    }

    fn list_dead_letters(&self, function: &str) -> Result<Vec<DeadLetterRecord>, StoreError> {
        let mut letters: Vec<DeadLetterRecord> =
            Self::scan_json(&self.dead_letters, function_prefix(function), function)?;
        letters.sort_by_key(|l| l.failed_ms);
        Ok(letters)
    }

    fn count_dead_letters(&self, function: &str) -> Result<u64, StoreError> {
        Ok(self
            .dead_letters
            .scan_prefix(function_prefix(function))
            .count() as u64)
    }

    fn delete_dead_letter(&self, function: &str, id: &str) -> Result<bool, StoreError> {
        self.remove_flushed(&self.dead_letters, function_key(function, id), id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::store::conformance::event;

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
                            .put_event_with(&event(&format!("{t}-{i}")), &EventCompanion::None)
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
}

//! [`TriggerStore`] in sled: triggers by name, and delivery keys with the
//! time they were first seen (big-endian ms).

use super::{err, SledStore};
use crate::state::store::{StoreError, TriggerRecord, TriggerStore};

impl TriggerStore for SledStore {
    fn put_trigger(&self, trigger: &TriggerRecord) -> Result<(), StoreError> {
        self.put_json(
            &self.triggers,
            trigger.name.as_bytes(),
            &trigger.name,
            trigger,
        )
    }

    fn get_trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        Self::get_json(&self.triggers, name, name)
    }

    fn list_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        Self::scan_json(&self.triggers, b"", "triggers")
    }

    fn delete_trigger(&self, name: &str) -> Result<bool, StoreError> {
        self.remove_flushed(&self.triggers, name.as_bytes(), name)
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
}

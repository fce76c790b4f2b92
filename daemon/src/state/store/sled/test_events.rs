//! [`TestEventStore`] in sled: one key per function and event name.

use super::{function_key, function_prefix, SledStore};
use crate::state::store::{StoreError, TestEventRecord, TestEventStore};

impl TestEventStore for SledStore {
    fn put_test_event(&self, record: &TestEventRecord) -> Result<(), StoreError> {
        let label = format!("{}/{}", record.function, record.name);
        self.put_json(
            &self.test_events,
            function_key(&record.function, &record.name),
            &label,
            record,
        )
    }

    fn list_test_events(&self, function: &str) -> Result<Vec<TestEventRecord>, StoreError> {
        Self::scan_json(&self.test_events, function_prefix(function), function)
    }

    fn delete_test_event(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        let label = format!("{function}/{name}");
        self.remove_flushed(&self.test_events, function_key(function, name), &label)
    }
}

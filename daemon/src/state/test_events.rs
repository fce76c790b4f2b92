//! Saved test events of the web console: up to [`MAX_PER_FUNCTION`] named
//! JSON events per function, checked before they are stored and removed
//! with their function.

use std::sync::Arc;

use crate::state::functions::{FunctionError, Functions};
use crate::state::store::{Store, StoreError, TestEventRecord};

/// Most saved events per function (as Lambda's console allows).
pub const MAX_PER_FUNCTION: usize = 10;
/// Largest saved event, in bytes (Lambda's synchronous payload limit).
pub const MAX_EVENT_BYTES: usize = kumo_proto::model::MAX_SYNC_PAYLOAD_BYTES;

/// A test event could not be saved, read or deleted.
#[derive(Debug, thiserror::Error)]
pub enum TestEventError {
    /// The function is unknown (or could not be read).
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The name is not 1-25 letters, digits, '-' or '_'.
    #[error(
        "saving test event {name:?} of {function}: a name is 1-25 letters, digits, '-' or '_'"
    )]
    BadName {
        /// The function.
        function: String,
        /// The refused name.
        name: String,
    },
    /// The event is not JSON or too large.
    #[error("saving test event {name} of {function}: {reason}")]
    BadEvent {
        /// The function.
        function: String,
        /// The event's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The function already has the most events allowed.
    #[error("saving test event {name} of {function}: a function keeps at most {MAX_PER_FUNCTION} test events; delete one first")]
    TooMany {
        /// The function.
        function: String,
        /// The event's name.
        name: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The saved test events.
#[derive(Clone)]
pub struct TestEvents {
    store: Arc<dyn Store>,
    functions: Functions,
}

fn valid_name(name: &str) -> bool {
    (1..=25).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl TestEvents {
    /// Test events in `store`, for `functions`' functions.
    pub fn new(store: Arc<dyn Store>, functions: Functions) -> Self {
        Self { store, functions }
    }

    /// Saves `event` (JSON text) as `name` for `function`, replacing one of
    /// the same name.
    pub fn save(&self, function: &str, name: &str, event: &str) -> Result<(), TestEventError> {
        self.functions.get_record(function)?;
        if !valid_name(name) {
            return Err(TestEventError::BadName {
                function: function.into(),
                name: name.into(),
            });
        }
        let bad = |reason: String| TestEventError::BadEvent {
            function: function.into(),
            name: name.into(),
            reason,
        };
        if event.len() > MAX_EVENT_BYTES {
            return Err(bad(format!(
                "the event is larger than {MAX_EVENT_BYTES} bytes"
            )));
        }
        serde_json::from_str::<serde_json::Value>(event)
            .map_err(|e| bad(format!("the event is not JSON: {e}")))?;
        let existing = self.store.list_test_events(function)?;
        if existing.len() >= MAX_PER_FUNCTION && !existing.iter().any(|r| r.name == name) {
            return Err(TestEventError::TooMany {
                function: function.into(),
                name: name.into(),
            });
        }
        self.store.put_test_event(&TestEventRecord {
            function: function.into(),
            name: name.into(),
            event: event.into(),
            saved: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })?;
        Ok(())
    }

    /// `function`'s saved events, by name.
    pub fn list(&self, function: &str) -> Result<Vec<TestEventRecord>, TestEventError> {
        self.functions.get_record(function)?;
        Ok(self.store.list_test_events(function)?)
    }

    /// Deletes one; false when there was none of that name.
    pub fn delete(&self, function: &str, name: &str) -> Result<bool, TestEventError> {
        Ok(self.store.delete_test_event(function, name)?)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::dispatch::concurrency::ConcurrencyLimiter;
    use crate::state::packages::PackageStore;
    use crate::state::store::MemoryStore;

    fn create(functions: &Functions, name: &str) {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file(
            "lambda_function.py",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(b"def handler(e, c):\n    return 1\n")
            .unwrap();
        zip.finish().unwrap();
        let config = kumo_proto::control::FunctionConfig {
            name: name.into(),
            runtime: "python3".into(),
            handler: "lambda_function.handler".into(),
            ..Default::default()
        };
        functions.create(config, &out.into_inner()).unwrap();
    }

    #[test]
    fn saved_events_are_checked_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let functions = Functions::new(
            store.clone(),
            PackageStore::open(dir.path().to_path_buf()).unwrap(),
            "eu-west-1".into(),
            "123456789012".into(),
            ConcurrencyLimiter::new(10),
            crate::s3::S3Profiles::default(),
        )
        .unwrap();
        let events = TestEvents::new(store, functions.clone());
        assert!(matches!(
            events.save("missing", "a", "{}"),
            Err(TestEventError::Function(FunctionError::NotFound { .. }))
        ));
        create(&functions, "f");
        assert!(matches!(
            events.save("f", "bad name", "{}"),
            Err(TestEventError::BadName { .. })
        ));
        assert!(matches!(
            events.save("f", "", "{}"),
            Err(TestEventError::BadName { .. })
        ));
        let not_json = events.save("f", "x", "{nope").unwrap_err();
        assert!(not_json.to_string().contains("not JSON"), "{not_json}");
        for i in 0..MAX_PER_FUNCTION {
            events.save("f", &format!("e{i}"), "{}").unwrap();
        }
        assert!(matches!(
            events.save("f", "one-more", "{}"),
            Err(TestEventError::TooMany { .. })
        ));
        events.save("f", "e0", "{\"replaced\":true}").unwrap();
        assert_eq!(events.list("f").unwrap()[0].event, "{\"replaced\":true}");
        assert!(events.delete("f", "e0").unwrap());
        functions.delete("f").unwrap();
        create(&functions, "f");
        assert!(
            events.list("f").unwrap().is_empty(),
            "a deleted function's events go with it"
        );
    }
}

//! The conformance suite every store backend must pass: one check per
//! behaviour, each over a fresh, empty store. A backend instantiates the
//! whole suite with [`crate::store_conformance_tests`]:
//!
//! ```ignore
//! #[cfg(test)]
//! mod tests {
//!     crate::store_conformance_tests!(|| (MyStore::open_empty(), guard));
//! }
//! ```
//!
//! The closure returns the store and anything that must live as long as it
//! (a temporary directory, a server); it is called once per check.

use super::{
    AliasRecord, DeadLetterCondition, DeadLetterRecord, EventCompanion, EventRecord,
    FunctionRecord, LayerVersionRecord, LogRecord, LogRetention, Store, StoredConfig, StoredLayer,
    TestEventRecord, TriggerRecord, TriggerSource, VersionRecord,
};

/// Generates one `#[test]` per check of [`crate::state::store::conformance`] for
/// the backend the closure `$open` opens (`|| (store, guard)`).
#[macro_export]
macro_rules! store_conformance_tests {
    ($open:expr) => {
        $crate::store_conformance_tests!(@each $open;
            functions_round_trip,
            versions_and_aliases_are_per_function_and_ordered,
            triggers_round_trip,
            delivery_keys_deduplicate_and_prune,
            racing_copies_of_a_delivery_queue_one_event,
            a_fired_trigger_is_written_with_its_event,
            events_round_trip,
            dead_letters_are_per_function_oldest_first,
            logs_read_by_time_and_by_request,
            log_retention_drops_oldest_by_records_bytes_and_age,
            log_retention_counts_records_appended_after_a_trim,
            deleted_logs_are_gone_and_logged_functions_are_listed,
            drained_agents_round_trip,
            layer_versions_are_per_layer_ordered_and_never_renumbered,
            test_events_are_per_function_by_name,
        );
    };
    (@each $open:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let opened = ($open)();
                $crate::state::store::conformance::$check(&opened.0);
            }
        )*
    };
}

fn config(name: &str) -> StoredConfig {
    StoredConfig {
        name: name.into(),
        description: String::new(),
        runtime: "python3".into(),
        handler: "app.handler".into(),
        memory_mb: 128,
        timeout_seconds: 3,
        environment: Default::default(),
        network: "none".into(),
        egress_allow: Vec::new(),
        tags: Default::default(),
        ephemeral_storage_mb: 512,
        max_retry_attempts: 2,
        max_event_age_seconds: 60,
        reserved_concurrency: None,
        on_failure_destination: String::new(),
        credentials_profile: String::new(),
        dead_letter_target: String::new(),
        on_success_destination: String::new(),
        role: String::new(),
        layers: vec![StoredLayer {
            arn: "arn:aws:lambda:us-east-1:000000000000:layer:libs:1".into(),
            package_digest: "e".repeat(64),
            code_size: 7,
        }],
    }
}

fn function(name: &str, revision: u64) -> FunctionRecord {
    FunctionRecord {
        config: config(name),
        package_digest: "ab".into(),
        code_sha256: "q83v".into(),
        code_size: 3,
        revision,
        last_modified: "2026-01-01T00:00:00Z".into(),
        published: 0,
    }
}

fn version(function: &str, version: u64) -> VersionRecord {
    VersionRecord {
        function: function.into(),
        version,
        description: format!("v{version}"),
        config: config(function),
        package_digest: "ab".into(),
        code_sha256: "q83v".into(),
        code_size: 3,
        revision: version,
        created: "2026-01-01T00:00:00Z".into(),
    }
}

fn alias(function: &str, name: &str, version: &str) -> AliasRecord {
    AliasRecord {
        function: function.into(),
        name: name.into(),
        version: version.into(),
        extra: None,
        description: String::new(),
        revision: 1,
    }
}

fn trigger(name: &str, fired: u64) -> TriggerRecord {
    TriggerRecord {
        name: name.into(),
        function: "f".into(),
        qualifier: None,
        enabled: true,
        created_ms: 1,
        source: TriggerSource::Schedule {
            expression: "rate(1 minute)".into(),
            input: None,
            last_due_ms: Some(fired as i64),
        },
        fired,
    }
}

/// A fresh event of function `f` (also for backend-specific tests).
pub fn event(id: &str) -> EventRecord {
    EventRecord {
        id: id.into(),
        function: "f".into(),
        payload: "{}".into(),
        ..EventRecord::default()
    }
}

fn letter(function: &str, id: &str, failed_ms: i64) -> DeadLetterRecord {
    DeadLetterRecord {
        id: id.into(),
        function: function.into(),
        qualifier: None,
        payload: "{}".into(),
        condition: DeadLetterCondition::RetriesExhausted,
        error_type: "Error".into(),
        error_message: "failed".into(),
        attempts: 3,
        accepted_ms: 0,
        failed_ms,
        response: String::new(),
    }
}

fn log(function: &str, timestamp_ms: i64, request_id: &str, text_len: usize) -> LogRecord {
    LogRecord {
        timestamp_ms,
        function: function.into(),
        request_id: request_id.into(),
        version: "$LATEST".into(),
        text: "x".repeat(text_len),
    }
}

fn request_ids(records: &[LogRecord]) -> Vec<&str> {
    records.iter().map(|r| r.request_id.as_str()).collect()
}

/// Functions are written, read, listed by name, replaced and deleted.
pub fn functions_round_trip(store: &dyn Store) {
    assert_eq!(store.get_function("f").unwrap(), None);
    store.put_function(&function("g", 1)).unwrap();
    store.put_function(&function("f", 1)).unwrap();
    store.put_function(&function("f", 2)).unwrap();
    assert_eq!(store.get_function("f").unwrap(), Some(function("f", 2)));
    let names: Vec<String> = (store.list_functions().unwrap().into_iter())
        .map(|r| r.config.name)
        .collect();
    assert_eq!(names, ["f", "g"]);
    assert!(store.delete_function("f").unwrap());
    assert!(!store.delete_function("f").unwrap());
    assert_eq!(store.get_function("f").unwrap(), None);
}

/// Versions list oldest first (10 after 2), aliases by name, each only
/// under its own function.
pub fn versions_and_aliases_are_per_function_and_ordered(store: &dyn Store) {
    for (f, v) in [("f", 10), ("f", 2), ("fg", 1), ("g", 1)] {
        store.put_version(&version(f, v)).unwrap();
    }
    let numbers: Vec<u64> = (store.list_versions("f").unwrap().iter())
        .map(|v| v.version)
        .collect();
    assert_eq!(numbers, [2, 10]);
    assert_eq!(store.get_version("f", 2).unwrap(), Some(version("f", 2)));
    assert_eq!(store.get_version("f", 3).unwrap(), None);
    assert!(store.delete_version("f", 2).unwrap());
    assert!(!store.delete_version("f", 2).unwrap());
    assert_eq!(store.list_versions("g").unwrap(), [version("g", 1)]);

    store.put_alias(&alias("f", "prod", "10")).unwrap();
    store.put_alias(&alias("f", "beta", "$LATEST")).unwrap();
    store.put_alias(&alias("g", "prod", "1")).unwrap();
    let names: Vec<String> = (store.list_aliases("f").unwrap().into_iter())
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["beta", "prod"]);
    assert_eq!(
        store.get_alias("g", "prod").unwrap(),
        Some(alias("g", "prod", "1"))
    );
    assert!(store.delete_alias("f", "prod").unwrap());
    assert!(!store.delete_alias("f", "prod").unwrap());
    assert_eq!(store.get_alias("f", "prod").unwrap(), None);
    assert_eq!(store.list_aliases("g").unwrap().len(), 1);
}

/// Triggers are written, read, listed by name and deleted.
pub fn triggers_round_trip(store: &dyn Store) {
    store.put_trigger(&trigger("b", 0)).unwrap();
    store.put_trigger(&trigger("a", 0)).unwrap();
    store.put_trigger(&trigger("a", 5)).unwrap();
    assert_eq!(store.get_trigger("a").unwrap(), Some(trigger("a", 5)));
    let names: Vec<String> = (store.list_triggers().unwrap().into_iter())
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(store.delete_trigger("a").unwrap());
    assert!(!store.delete_trigger("a").unwrap());
    assert_eq!(store.get_trigger("a").unwrap(), None);
}

/// A delivery key queues its event once; pruning forgets keys seen before
/// the cutoff, after which the delivery is queued again.
pub fn delivery_keys_deduplicate_and_prune(store: &dyn Store) {
    let delivery = |key: &str, seen_ms| EventCompanion::Delivery {
        key: key.into(),
        seen_ms,
    };
    assert!(store
        .put_event_with(&event("e1"), &delivery("k1", 10))
        .unwrap());
    assert!(!store
        .put_event_with(&event("e2"), &delivery("k1", 11))
        .unwrap());
    assert!(store
        .put_event_with(&event("e3"), &delivery("k2", 20))
        .unwrap());
    assert_eq!(
        store.get_event("e2").unwrap(),
        None,
        "a duplicate writes nothing"
    );
    assert_eq!(store.list_events().unwrap().len(), 2);
    assert_eq!(store.prune_deliveries(15).unwrap(), 1);
    assert!(store
        .put_event_with(&event("e4"), &delivery("k1", 30))
        .unwrap());
    assert!(!store
        .put_event_with(&event("e5"), &delivery("k2", 30))
        .unwrap());
}

/// Of concurrent copies of each delivery, exactly one queues its event.
pub fn racing_copies_of_a_delivery_queue_one_event(store: &dyn Store) {
    let copy = |t: usize| {
        let queued = (0..20).filter(|i| {
            let key = format!("trigger\u{0}key-{i}");
            let delivery = EventCompanion::Delivery { key, seen_ms: 1 };
            store
                .put_event_with(&event(&format!("{t}-{i}")), &delivery)
                .unwrap()
        });
        queued.count()
    };
    let queued: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8).map(|t| scope.spawn(move || copy(t))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(queued, 20, "each delivery is queued by exactly one copy");
    assert_eq!(store.list_events().unwrap().len(), 20);
    assert_eq!(store.prune_deliveries(2).unwrap(), 20);
}

/// A schedule's new record lands with the event it fired.
pub fn a_fired_trigger_is_written_with_its_event(store: &dyn Store) {
    store.put_trigger(&trigger("t", 0)).unwrap();
    let fired = EventCompanion::Fired(Box::new(trigger("t", 1)));
    assert!(store.put_event_with(&event("e"), &fired).unwrap());
    assert!(store
        .put_event_with(&event("n"), &EventCompanion::None)
        .unwrap());
    assert_eq!(store.get_trigger("t").unwrap(), Some(trigger("t", 1)));
    assert_eq!(store.list_events().unwrap(), [event("e"), event("n")]);
}

/// Events are written, replaced, read, listed and deleted.
pub fn events_round_trip(store: &dyn Store) {
    store.put_event(&event("b"), true).unwrap();
    store.put_event(&event("a"), false).unwrap();
    let mut retried = event("a");
    retried.attempts = 1;
    store.put_event(&retried, true).unwrap();
    assert_eq!(store.get_event("a").unwrap(), Some(retried.clone()));
    assert_eq!(store.list_events().unwrap(), [retried, event("b")]);
    store.delete_event("a").unwrap();
    store.delete_event("a").unwrap();
    assert_eq!(store.get_event("a").unwrap(), None);
}

/// Dead letters list oldest failure first, count and delete per function.
pub fn dead_letters_are_per_function_oldest_first(store: &dyn Store) {
    store.put_dead_letter(&letter("f", "a", 30)).unwrap();
    store.put_dead_letter(&letter("f", "b", 10)).unwrap();
    store.put_dead_letter(&letter("fg", "c", 20)).unwrap();
    let ids: Vec<String> = (store.list_dead_letters("f").unwrap().into_iter())
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(store.count_dead_letters("f").unwrap(), 2);
    assert_eq!(store.count_dead_letters("g").unwrap(), 0);
    assert_eq!(
        store.get_dead_letter("fg", "c").unwrap(),
        Some(letter("fg", "c", 20))
    );
    assert_eq!(store.get_dead_letter("f", "c").unwrap(), None);
    assert!(store.delete_dead_letter("f", "a").unwrap());
    assert!(!store.delete_dead_letter("f", "a").unwrap());
    assert_eq!(store.count_dead_letters("f").unwrap(), 1);
}

/// Logs come back oldest first from a time on, or by request id (every
/// attempt), each only under its own function.
pub fn logs_read_by_time_and_by_request(store: &dyn Store) {
    store.append_log(&log("f", 30, "r2", 1)).unwrap();
    store.append_log(&log("f", 10, "r1", 1)).unwrap();
    store.append_log(&log("f", 20, "r2", 1)).unwrap();
    store.append_log(&log("fg", 20, "r1", 1)).unwrap();
    assert_eq!(
        request_ids(&store.logs("f", 0).unwrap()),
        ["r1", "r2", "r2"]
    );
    assert_eq!(request_ids(&store.logs("f", 20).unwrap()), ["r2", "r2"]);
    let attempts = store.logs_for_request("f", "r2").unwrap();
    let times: Vec<i64> = attempts.iter().map(|r| r.timestamp_ms).collect();
    assert_eq!(times, [20, 30]);
    assert_eq!(store.logs_for_request("fg", "r1").unwrap().len(), 1);
    assert!(store.logs_for_request("f", "r3").unwrap().is_empty());
}

/// Trimming drops the oldest records past each limit (as many as
/// [`LogRetention::oldest_to_drop`] counts) and their index entries.
pub fn log_retention_drops_oldest_by_records_bytes_and_age(store: &dyn Store) {
    for i in 0..10 {
        store
            .append_log(&log("f", 100 + i, &format!("r{i}"), 10))
            .unwrap();
    }
    store.append_log(&log("g", 1, "g0", 10)).unwrap();
    let keep_all = LogRetention {
        max_records: 10,
        max_bytes: 100,
        oldest_kept_ms: 100,
    };
    assert_eq!(store.trim_logs("f", &keep_all).unwrap(), 0);
    let by_age = LogRetention {
        oldest_kept_ms: 102,
        ..keep_all
    };
    assert_eq!(store.trim_logs("f", &by_age).unwrap(), 2);
    let by_records = LogRetention {
        max_records: 6,
        ..keep_all
    };
    assert_eq!(store.trim_logs("f", &by_records).unwrap(), 2);
    let by_bytes = LogRetention {
        max_bytes: 45,
        ..keep_all
    };
    assert_eq!(store.trim_logs("f", &by_bytes).unwrap(), 2);
    assert_eq!(
        request_ids(&store.logs("f", 0).unwrap()),
        ["r6", "r7", "r8", "r9"]
    );
    assert!(store.logs_for_request("f", "r5").unwrap().is_empty());
    assert_eq!(
        store.logs("g", 0).unwrap().len(),
        1,
        "other functions untouched"
    );
}

/// Records appended after a trim count towards the next one.
pub fn log_retention_counts_records_appended_after_a_trim(store: &dyn Store) {
    let retention = LogRetention {
        max_records: 3,
        max_bytes: 1000,
        oldest_kept_ms: 0,
    };
    for round in 0..4 {
        for i in 0..3 {
            let at = round * 10 + i;
            store
                .append_log(&log("f", at, &format!("r{at}"), 5))
                .unwrap();
        }
        let dropped = store.trim_logs("f", &retention).unwrap();
        assert_eq!(dropped, if round == 0 { 0 } else { 3 }, "round {round}");
    }
    assert_eq!(
        request_ids(&store.logs("f", 0).unwrap()),
        ["r30", "r31", "r32"]
    );
    assert_eq!(store.trim_logs("f", &LogRetention::NONE).unwrap(), 3);
    assert!(store.logs("f", 0).unwrap().is_empty());
    store.append_log(&log("f", 50, "r50", 5)).unwrap();
    assert_eq!(store.trim_logs("f", &retention).unwrap(), 0);
    assert_eq!(store.logs("f", 0).unwrap().len(), 1);
}

/// Deleting a function's logs removes its records and index entries only;
/// the functions with records are listed by name.
pub fn deleted_logs_are_gone_and_logged_functions_are_listed(store: &dyn Store) {
    assert!(store.logged_functions().unwrap().is_empty());
    for f in ["f", "fg", "a"] {
        store.append_log(&log(f, 1, "r", 1)).unwrap();
        store.append_log(&log(f, 2, "s", 1)).unwrap();
    }
    assert_eq!(store.logged_functions().unwrap(), ["a", "f", "fg"]);
    store.delete_logs("f").unwrap();
    assert!(store.logs("f", 0).unwrap().is_empty());
    assert!(store.logs_for_request("f", "r").unwrap().is_empty());
    assert_eq!(store.logs("fg", 0).unwrap().len(), 2);
    assert_eq!(store.logged_functions().unwrap(), ["a", "fg"]);
    store.append_log(&log("f", 3, "t", 1)).unwrap();
    let keep_one = LogRetention {
        max_records: 1,
        max_bytes: 100,
        oldest_kept_ms: 0,
    };
    assert_eq!(store.trim_logs("f", &keep_one).unwrap(), 0);
}

/// Drained agents are set, listed and cleared.
pub fn drained_agents_round_trip(store: &dyn Store) {
    assert!(store.drained_agents().unwrap().is_empty());
    store.set_agent_drained("node-b", true).unwrap();
    store.set_agent_drained("node-a", true).unwrap();
    store.set_agent_drained("node-a", true).unwrap();
    store.set_agent_drained("node-c", false).unwrap();
    let drained: Vec<String> = store.drained_agents().unwrap().into_iter().collect();
    assert_eq!(drained, ["node-a", "node-b"]);
    store.set_agent_drained("node-b", false).unwrap();
    let drained: Vec<String> = store.drained_agents().unwrap().into_iter().collect();
    assert_eq!(drained, ["node-a"]);
}

fn layer_version(layer: &str, version: u64) -> LayerVersionRecord {
    LayerVersionRecord {
        layer: layer.into(),
        version,
        description: format!("{layer} v{version}"),
        compatible_runtimes: vec!["python3.11".into()],
        license_info: String::new(),
        package_digest: "d".repeat(64),
        code_sha256: "c".into(),
        code_size: 10,
        unzipped_size: 20,
        has_bootstrap: false,
        created: "2026-12-07T00:00:00.000Z".into(),
    }
}

/// Layer versions: numbers allocated per layer and never handed out twice
/// (not even after the newest is deleted), records listed per layer
/// oldest first (a name that is another's prefix stays apart), layers by
/// name.
pub fn layer_versions_are_per_layer_ordered_and_never_renumbered(store: &dyn Store) {
    assert!(store.list_layers().unwrap().is_empty());
    for layer in ["libs", "lib", "libs"] {
        let version = store.next_layer_version(layer).unwrap();
        store
            .put_layer_version(&layer_version(layer, version))
            .unwrap();
    }
    assert_eq!(store.next_layer_version("libs").unwrap(), 3);
    assert_eq!(store.list_layers().unwrap(), ["lib", "libs"]);
    let versions: Vec<u64> = store
        .list_layer_versions("libs")
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(
        store.get_layer_version("libs", 2).unwrap(),
        Some(layer_version("libs", 2))
    );
    assert!(store.delete_layer_version("libs", 2).unwrap());
    assert!(!store.delete_layer_version("libs", 2).unwrap());
    assert_eq!(store.get_layer_version("libs", 2).unwrap(), None);
    assert_eq!(store.next_layer_version("libs").unwrap(), 4);
    assert!(store.delete_layer_version("lib", 1).unwrap());
    assert_eq!(store.list_layers().unwrap(), ["libs"]);
    assert_eq!(store.next_layer_version("lib").unwrap(), 2);
}

fn test_event(function: &str, name: &str, event: &str) -> TestEventRecord {
    TestEventRecord {
        function: function.into(),
        name: name.into(),
        event: event.into(),
        saved: "2024-01-01T00:00:00Z".into(),
    }
}

/// Test events are kept per function, listed by name, replaced by a save
/// under the same name, and deleted one by one.
pub fn test_events_are_per_function_by_name(store: &dyn Store) {
    assert!(store.list_test_events("f").unwrap().is_empty());
    store.put_test_event(&test_event("f", "s3", "{}")).unwrap();
    store
        .put_test_event(&test_event("f", "api", "[1]"))
        .unwrap();
    store
        .put_test_event(&test_event("f2", "other", "2"))
        .unwrap();
    // "f" is a prefix of "f2": its events must not leak into f's list.
    store
        .put_test_event(&test_event("f", "s3", "{\"a\":1}"))
        .unwrap();
    let listed = store.list_test_events("f").unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["api", "s3"]);
    assert_eq!(listed[1].event, "{\"a\":1}");
    assert!(store.delete_test_event("f", "s3").unwrap());
    assert!(!store.delete_test_event("f", "s3").unwrap());
    assert_eq!(store.list_test_events("f").unwrap().len(), 1);
    assert_eq!(store.list_test_events("f2").unwrap()[0].name, "other");
}

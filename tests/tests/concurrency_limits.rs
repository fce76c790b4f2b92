//! Concurrency limits end to end: reserved concurrency caps synchronous
//! calls (surplus refused with the throttling reason) and paces
//! asynchronous events (they wait, all run); 0 disables a function.
//! Overlap is measured from the handlers' own timestamps.

use std::time::Duration;

use kumo_tests::sink::Sink;
use kumo_tests::{root_or_skip, Kumo};
use serde_json::Value;

/// Most handlers running at the same moment, from their start/end times.
fn max_overlap(records: &[Value]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for r in records {
        edges.push((r["start"].as_f64().unwrap(), 1));
        edges.push((r["end"].as_f64().unwrap(), -1));
    }
    // Ends sort before starts at the same instant.
    edges.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn reserved_concurrency_refuses_surplus_sync_calls_and_paces_async_events() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let sink = Sink::start();
    kumo.create_reporter("pair", &sink, &["--concurrency", "2"]);
    let children: Vec<_> = (0..10)
        .map(|i| {
            let payload = format!(r#"{{"tag":"sync-{i}","sleep":1}}"#);
            kumo.spawn_cli(&["invoke", "pair", "--payload", &payload])
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => ok += 1,
            _ => {
                assert!(
                    stderr.contains("ReservedFunctionConcurrentInvocationLimitExceeded"),
                    "a refused call must name the reason: {stderr}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(ok + refused, 10);
    assert!(ok >= 2 && refused >= 1, "ok {ok}, refused {refused}");
    let runs: Vec<Value> = sink
        .records()
        .into_iter()
        .filter(|r| r["tag"].as_str().is_some_and(|t| t.starts_with("sync-")))
        .collect();
    assert_eq!(runs.len(), ok);
    assert!(max_overlap(&runs) <= 2, "more than 2 ran at once: {runs:?}");

    kumo.create_reporter("single", &sink, &["--concurrency", "1"]);
    let ids: Vec<String> = (0..10)
        .map(|i| {
            let run = kumo.cli(&[
                "invoke",
                "single",
                "--async",
                "--payload",
                &format!(r#"{{"tag":"async-{i}","sleep":0.3}}"#),
            ]);
            assert_eq!(run.code, 0, "{run:?}");
            run.json()["RequestId"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        sink.wait_for(Duration::from_secs(60), |records| ids
            .iter()
            .all(|id| records.iter().any(|r| r["id"] == id.as_str()))),
        "not every async event ran"
    );
    let runs: Vec<Value> = sink
        .records()
        .into_iter()
        .filter(|r| r["tag"].as_str().is_some_and(|t| t.starts_with("async-")))
        .collect();
    assert_eq!(runs.len(), 10, "{runs:?}");
    assert_eq!(max_overlap(&runs), 1, "async events overlapped: {runs:?}");
}

#[test]
fn zero_concurrency_disables_a_function() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let sink = Sink::start();
    kumo.create_reporter("off", &sink, &["--concurrency", "0"]);
    let run = kumo.invoke("off", "{}");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("ReservedFunctionConcurrentInvocationLimitExceeded"),
        "{run:?}"
    );
    assert!(run.stderr.contains("disabled"), "{run:?}");
    let accepted = kumo.cli(&["invoke", "off", "--async", "--payload", r#"{"tag":"off"}"#]);
    assert_eq!(accepted.code, 0, "{accepted:?}");
    let id = accepted.json()["RequestId"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let letter = loop {
        let list = kumo.cli(&["dlq", "list", "off", "--output", "json"]).json();
        if let Some(first) = list.as_array().and_then(|l| l.first()).cloned() {
            break first;
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(letter["id"], id.as_str());
    assert_eq!(letter["condition"], "ZeroReservedConcurrency");
    assert_eq!(letter["attempts"], 0);
    assert!(sink.records().is_empty(), "a disabled function ran");
    // Removing the reservation enables it again.
    let update = kumo.cli(&["function", "update", "off", "--no-concurrency"]);
    assert_eq!(update.code, 0, "{update:?}");
    let run = kumo.invoke("off", r#"{"tag":"on"}"#);
    assert_eq!(run.code, 0, "{run:?}");
}

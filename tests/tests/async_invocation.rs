//! Asynchronous invocation end to end: durable accept, retries with one
//! request id, the dead-letter queue and its CLI, on-failure destinations,
//! and maximum event age. Handlers report each attempt to a TCP sink.

use std::time::Duration;

use kumo_tests::sink::Sink;
use kumo_tests::{root_or_skip, wait_until, Kumo, Run};

/// Retry delays of one second, so retries happen within the test.
const FAST_RETRIES: &str =
    "[async_invoke]\nretry_delays_seconds = [1, 1]\nbackoff_initial_ms = 200\n";

fn send_async(kumo: &Kumo, name: &str, payload: &str) -> String {
    let run = kumo.cli(&["invoke", name, "--async", "--payload", payload]);
    assert_eq!(run.code, 0, "async invoke failed: {run:?}");
    let answer = run.json();
    assert_eq!(answer["StatusCode"], 202, "{answer}");
    answer["RequestId"].as_str().unwrap().to_string()
}

fn function_queue(kumo: &Kumo, name: &str) -> serde_json::Value {
    kumo.function(name)["queue"].clone()
}

fn dead_letters(kumo: &Kumo, name: &str) -> Vec<serde_json::Value> {
    let run: Run = kumo.cli(&["dlq", "list", name, "--output", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.json().as_array().unwrap().clone()
}

#[test]
fn retries_keep_one_request_id_and_exhausted_events_reach_the_dlq() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(FAST_RETRIES, "");
    let sink = Sink::start();
    kumo.create_reporter("flaky", &sink, &[]);

    // Fails twice, then succeeds: three runs, one request id.
    let id = send_async(&kumo, "flaky", r#"{"tag":"twice","fail_times":2}"#);
    assert!(
        sink.wait_for(Duration::from_secs(30), |r| r.len() >= 3),
        "{:?}",
        sink.records()
    );
    std::thread::sleep(Duration::from_secs(3));
    let runs = sink.matching("tag", "twice");
    assert_eq!(runs.len(), 3, "expected exactly 3 attempts: {runs:?}");
    assert!(runs.iter().all(|r| r["id"] == id.as_str()), "{runs:?}");
    wait_until("the queue to drain", Duration::from_secs(10), || {
        function_queue(&kumo, "flaky")["queued"] == 0
            && function_queue(&kumo, "flaky")["in_flight"] == 0
    });
    assert!(dead_letters(&kumo, "flaky").is_empty());

    // Always fails: 1 + 2 retries, then the DLQ with its error.
    let doomed = send_async(&kumo, "flaky", r#"{"tag":"always","fail_times":99}"#);
    wait_until("the dead letter", Duration::from_secs(30), || {
        !dead_letters(&kumo, "flaky").is_empty()
    });
    assert_eq!(sink.matching("tag", "always").len(), 3);
    let letters = dead_letters(&kumo, "flaky");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["id"], doomed.as_str());
    assert_eq!(letter["condition"], "RetriesExhausted");
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["error_type"], "ValueError");
    assert_eq!(letter["error_message"], "failing attempt 3 on purpose");
    assert_eq!(letter["payload"]["tag"], "always");
    assert_eq!(letter["response"]["errorType"], "ValueError");
    let shown = kumo.cli(&["dlq", "show", "flaky", &doomed]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert_eq!(shown.json()["payload"]["fail_times"], 99);
    assert_eq!(function_queue(&kumo, "flaky")["dead_letters"], 1);

    // Replay runs it again (under a new id), and it fails its way back.
    let replay = kumo.cli(&["dlq", "replay", "flaky", &doomed]);
    assert_eq!(replay.code, 0, "{replay:?}");
    let new_id = replay.json()["replayed"][0].as_str().unwrap().to_string();
    assert_ne!(new_id, doomed);
    wait_until(
        "the replayed event to run 3 times",
        Duration::from_secs(30),
        || sink.matching("id", &new_id).len() == 3,
    );
    wait_until(
        "the replay to be dead-lettered",
        Duration::from_secs(10),
        || {
            dead_letters(&kumo, "flaky")
                .iter()
                .any(|l| l["id"] == new_id.as_str())
        },
    );
    assert!(dead_letters(&kumo, "flaky")
        .iter()
        .all(|l| l["id"] != doomed.as_str()));
    let purge = kumo.cli(&["dlq", "purge", "flaky"]);
    assert_eq!(purge.json()["purged"], 1, "{purge:?}");
    assert!(dead_letters(&kumo, "flaky").is_empty());
}

#[test]
fn no_retries_age_limits_and_the_on_failure_destination() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(
        "[async_invoke]\nretry_delays_seconds = [120]\nbackoff_initial_ms = 200\n",
        "",
    );
    let sink = Sink::start();
    kumo.create_reporter("catcher", &sink, &[]);
    kumo.create_reporter(
        "once",
        &sink,
        &["--max-retry-attempts", "0", "--on-failure", "catcher"],
    );
    // The retry would come 120 s later, after the 60 s maximum age.
    kumo.create_reporter("short-lived", &sink, &["--max-event-age", "60"]);

    let id = send_async(&kumo, "once", r#"{"tag":"once","fail_times":5}"#);
    wait_until("the dead letter", Duration::from_secs(20), || {
        !dead_letters(&kumo, "once").is_empty()
    });
    assert_eq!(
        sink.matching("tag", "once").len(),
        1,
        "max_retry_attempts=0 runs once"
    );
    let letter = &dead_letters(&kumo, "once")[0];
    assert_eq!(letter["condition"], "RetriesExhausted");
    assert_eq!(letter["attempts"], 1);

    // The destination got Lambda's destination record.
    assert!(sink.wait_for(Duration::from_secs(20), |records| records
        .iter()
        .any(|r| r["event"]["requestContext"]["requestId"] == id.as_str())));
    let record = sink
        .records()
        .into_iter()
        .find(|r| r["event"]["requestContext"]["requestId"] == id.as_str())
        .unwrap()["event"]
        .clone();
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert!(record["requestContext"]["functionArn"]
        .as_str()
        .unwrap()
        .ends_with(":function:once"));
    assert_eq!(record["requestPayload"]["tag"], "once");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorType"], "ValueError");

    let aged = send_async(&kumo, "short-lived", r#"{"tag":"aged","fail_times":5}"#);
    wait_until("the aged event", Duration::from_secs(20), || {
        !dead_letters(&kumo, "short-lived").is_empty()
    });
    let letter = &dead_letters(&kumo, "short-lived")[0];
    assert_eq!(letter["id"], aged.as_str());
    assert_eq!(letter["condition"], "EventAgeExceeded");
    assert_eq!(sink.matching("tag", "aged").len(), 1);
}

/// An event that waits for a concurrency slot longer than its maximum age
/// is dead-lettered with EventAgeExceeded without running.
#[test]
fn an_event_waiting_past_its_maximum_age_is_dead_lettered() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(FAST_RETRIES, "");
    let sink = Sink::start();
    kumo.create_reporter(
        "slow",
        &sink,
        &[
            "--concurrency",
            "1",
            "--max-event-age",
            "60",
            "--timeout",
            "90",
        ],
    );
    // A synchronous call holds the only slot for 70 s.
    let mut holder = kumo.spawn_cli(&[
        "invoke",
        "slow",
        "--payload",
        r#"{"tag":"holder","sleep":70}"#,
    ]);
    std::thread::sleep(Duration::from_secs(2));
    let waiting = send_async(&kumo, "slow", r#"{"tag":"waiting"}"#);
    assert_eq!(function_queue(&kumo, "slow")["queued"], 1);
    wait_until(
        "the waiting event to expire",
        Duration::from_secs(90),
        || !dead_letters(&kumo, "slow").is_empty(),
    );
    let letter = &dead_letters(&kumo, "slow")[0];
    assert_eq!(letter["id"], waiting.as_str());
    assert_eq!(letter["condition"], "EventAgeExceeded");
    assert_eq!(letter["attempts"], 0);
    assert!(sink.matching("tag", "waiting").is_empty());
    let _ = holder.kill();
    let _ = holder.wait();
}

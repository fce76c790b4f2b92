//! At-least-once delivery across crashes: 2,000 accepted asynchronous
//! events, kumod (or the agent) killed with SIGKILL while they are being
//! processed, restarted — every accepted event id must still run. The
//! duplicates (events that ran twice) are counted and reported.

use std::collections::HashSet;
use std::time::Duration;

use kumo_tests::sink::Sink;
use kumo_tests::{root_or_skip, Kumo};

const EVENTS: usize = 2_000;
/// Senders running at once.
const PARALLEL_SENDERS: usize = 16;

/// Creates a slow-ish reporter (20 ms per event, 4 at a time) so the crash
/// lands while events are still queued or running.
fn create_bulk(kumo: &Kumo, sink: &Sink) {
    kumo.create_reporter("bulk", sink, &["--concurrency", "4"]);
}

/// Sends `EVENTS` events through the CLI, returns the accepted ids.
fn send_all(kumo: &Kumo) -> Vec<String> {
    let mut ids = Vec::with_capacity(EVENTS);
    for batch in (0..EVENTS).collect::<Vec<_>>().chunks(PARALLEL_SENDERS) {
        let children: Vec<_> = batch
            .iter()
            .map(|i| {
                let payload = format!(r#"{{"tag":"bulk-{i}","sleep":0.02}}"#);
                kumo.spawn_cli(&["invoke", "bulk", "--async", "--payload", &payload])
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "accept failed: {out:?}");
            let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            ids.push(answer["RequestId"].as_str().unwrap().to_string());
        }
    }
    ids
}

/// Waits until every accepted id reached the sink; returns the duplicates.
fn check_all_ran(kumo: &Kumo, sink: &Sink, ids: &[String], what: &str) -> usize {
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(wanted.len(), EVENTS, "event ids must be unique");
    let counts = match sink.wait_all_ran(ids, Duration::from_secs(300)) {
        Ok(counts) => counts,
        Err(missing) => panic!("{what}: {missing} accepted events never ran"),
    };
    let duplicates: usize = wanted.iter().map(|id| counts[*id] - 1).sum();
    let queue = kumo.function("bulk")["queue"].clone();
    eprintln!(
        "{what}: all {EVENTS} accepted events ran; {duplicates} ran more than once; kumod counted {} redeliveries",
        queue["redeliveries"]
    );
    duplicates
}

/// Waits until some but not all events ran, so the crash lands mid-stream.
fn wait_mid_stream(sink: &Sink) -> usize {
    assert!(sink.wait_for(Duration::from_secs(120), |r| r.len() >= 200));
    let seen = sink.counts_by_id().len();
    assert!(
        seen < EVENTS,
        "every event had run before the crash; the test proves nothing"
    );
    seen
}

#[test]
fn kumod_killed_mid_stream_loses_no_accepted_event() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start_configured("[async_invoke]\nbackoff_initial_ms = 200\n", "");
    let sink = Sink::start();
    create_bulk(&kumo, &sink);
    let ids = send_all(&kumo);
    let seen = wait_mid_stream(&sink);
    kumo.kill9();
    eprintln!("kumod killed with SIGKILL after {seen} of {EVENTS} events ran");
    kumo.restart();
    check_all_ran(&kumo, &sink, &ids, "kumod SIGKILL");
}

#[test]
fn agent_killed_mid_stream_gets_its_events_redispatched() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start_separate(
        "agent_wait_seconds = 1\n[async_invoke]\nbackoff_initial_ms = 200\nbackoff_max_ms = 2000\n",
    );
    let sink = Sink::start();
    create_bulk(&kumo, &sink);
    let ids = send_all(&kumo);
    let seen = wait_mid_stream(&sink);
    kumo.kill9_agent();
    eprintln!("kumo-agent killed with SIGKILL after {seen} of {EVENTS} events ran");
    std::thread::sleep(Duration::from_secs(1));
    kumo.start_agent();
    check_all_ran(&kumo, &sink, &ids, "kumo-agent SIGKILL");
}

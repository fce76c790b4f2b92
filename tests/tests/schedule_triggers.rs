//! Schedule triggers end to end: `rate(1 minute)` sends the Scheduled
//! Event, a `cron()` with `--input` sends the constant input, a disabled
//! trigger stays silent, and a kumod killed right after a fire and
//! restarted does not fire the same due time again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kumo_tests::sink::Sink;
use kumo_tests::{root_or_skip, Kumo};
use serde_json::Value;

fn rfc3339(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Runs per trigger, from the payloads: rule ARN (Scheduled Events) or tag.
fn runs_by_source(sink: &Sink) -> HashMap<String, Vec<Value>> {
    let mut by: HashMap<String, Vec<Value>> = HashMap::new();
    for record in sink.records() {
        let event = record["event"].clone();
        let source = event["resources"][0]
            .as_str()
            .or(event["tag"].as_str())
            .unwrap_or("?")
            .to_string();
        by.entry(source).or_default().push(record);
    }
    by
}

#[test]
fn schedules_fire_once_per_due_time_across_a_restart() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start();
    let sink = Sink::start();
    kumo.create_reporter("tick", &sink, &[]);
    let every_minute = kumo.create_trigger(&[
        "every-minute",
        "--function",
        "tick",
        "--schedule",
        "rate(1 minute)",
    ]);
    kumo.create_trigger(&[
        "silent",
        "--function",
        "tick",
        "--schedule",
        "rate(1 minute)",
        "--disabled",
    ]);
    kumo.create_trigger(&[
        "on-the-minute",
        "--function",
        "tick",
        "--schedule",
        "cron(* * * * ? *)",
        "--input",
        r#"{"tag":"cron-input"}"#,
    ]);

    // `trigger get` shows the next 5 fires, a minute apart, from creation.
    let next: Vec<_> = every_minute["next_fires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| rfc3339(t.as_str().unwrap()))
        .collect();
    assert_eq!(next.len(), 5, "{every_minute}");
    let created = rfc3339(every_minute["created_at"].as_str().unwrap());
    assert!(
        (next[0] - created).num_seconds() >= 59 && (next[0] - created).num_seconds() <= 60,
        "{every_minute}"
    );
    assert!(
        next.windows(2).all(|w| (w[1] - w[0]).num_seconds() == 60),
        "{next:?}"
    );

    let rule = "arn:aws:events:us-east-1:000000000000:rule/every-minute";
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(runs_by_source(&sink).contains_key(rule)
        && runs_by_source(&sink).contains_key("cron-input"))
    {
        assert!(
            Instant::now() < deadline,
            "schedules did not fire: {:?}\n{}",
            sink.records(),
            kumo.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Kill kumod right after the fires and restart it.
    kumo.kill9();
    kumo.restart();
    std::thread::sleep(Duration::from_secs(5));

    // One fire per due time: one event (one request id, one Scheduled
    // Event id). The kill may make that one event run twice (at-least-once
    // delivery of an event whose completion was not yet on disk); that is a
    // redelivery, not a second fire.
    let runs = runs_by_source(&sink);
    let scheduled = &runs[rule];
    let fires: std::collections::HashSet<(&str, &str)> = scheduled
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["event"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fires.len(),
        1,
        "fired twice for one due time: {scheduled:?}"
    );
    eprintln!(
        "rate(1 minute): 1 fire, delivered {} time(s) across the SIGKILL",
        scheduled.len()
    );
    let event = &scheduled[0]["event"];
    assert_eq!(event["version"], "0");
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");
    assert_eq!(event["account"], "000000000000");
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["detail"], serde_json::json!({}));
    let time = event["time"].as_str().unwrap();
    assert_eq!(time.len(), 20, "UTC without milliseconds: {time}");
    assert_eq!(rfc3339(time), next[0].with_nanosecond_zero(), "{event}");
    // One fire (one request id) per due minute; the wait may cross into the
    // next minute, which is a new due time.
    let mut per_minute: HashMap<i64, std::collections::HashSet<&str>> = HashMap::new();
    for run in &runs["cron-input"] {
        let minute = run["start"].as_f64().unwrap() as i64 / 60;
        per_minute
            .entry(minute)
            .or_default()
            .insert(run["id"].as_str().unwrap());
    }
    assert!(per_minute.values().all(|ids| ids.len() == 1), "{runs:?}");
    assert!(
        !runs.keys().any(|k| k.ends_with("rule/silent")),
        "a disabled trigger fired: {runs:?}"
    );

    // How late the cron fire ran, from the handler's own clock.
    let started = runs["cron-input"][0]["start"].as_f64().unwrap();
    let lateness = started % 60.0;
    eprintln!("cron(* * * * ? *) fire ran {lateness:.3} s after its due minute");
    assert!(lateness < 10.0, "fired {lateness} s late");

    let info = kumo
        .cli(&["trigger", "get", "every-minute", "--output", "json"])
        .json();
    assert_eq!(info["fired"], 1, "{info}");
    assert_eq!(
        rfc3339(info["last_fired_at"].as_str().unwrap()),
        next[0].with_nanosecond_zero()
    );
}

trait Truncate {
    fn with_nanosecond_zero(self) -> Self;
}

impl Truncate for chrono::DateTime<chrono::Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

#[test]
fn invalid_schedules_are_refused_clearly() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let sink = Sink::start();
    kumo.create_reporter("tick", &sink, &[]);
    for (expression, needle) in [
        (
            "cron(* * * * * *)",
            "exactly one of day-of-month and day-of-week",
        ),
        ("rate(1 hours)", "singular"),
        ("rate(0 minutes)", "rate"),
        ("cron(60 * * * ? *)", "0-59"),
        ("cron(0 24 * * ? *)", "0-23"),
        ("cron(0 0 32 * ? *)", "1-31"),
        ("cron(0 0 1 * ? 2200)", "2199"),
        ("every 5 minutes", "invalid schedule expression"),
    ] {
        let run = kumo.cli(&[
            "trigger",
            "create",
            "bad",
            "--function",
            "tick",
            "--schedule",
            expression,
        ]);
        assert_eq!(run.code, 2, "{expression}: {run:?}");
        assert!(
            run.stderr.contains(needle),
            "{expression}: expected {needle:?} in {}",
            run.stderr
        );
    }
    let run = kumo.cli(&[
        "trigger",
        "create",
        "bad",
        "--function",
        "tick",
        "--schedule",
        "rate(5 minutes)",
        "--input",
        "{not json",
    ]);
    assert!(run.stderr.contains("not JSON"), "{run:?}");
    assert!(kumo
        .cli(&["trigger", "list", "--output", "json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

//! SQS event sources end to end against moto's SQS (docs/wire-formats.md
//! §9): kumod polls real queues with aws-sdk-sqs and invokes real
//! functions in sandboxes; boto3 sends and inspects messages. Covers
//! batch size and window, deletion on success, a raising function,
//! `batchItemFailures` (listed ids, unknown ids), filters, non-JSON
//! bodies, FIFO order per group under concurrency, `--max-concurrency`
//! (from the handlers' own timestamps), SIGKILL of kumod mid-batch,
//! throttles, 6 MB batches, and the refusals at create time (unknown
//! queue, wrong credentials, a function timeout over the visibility
//! timeout). Helpers: `kumo_tests::sqs`.

use std::collections::HashMap;
use std::time::Duration;

use kumo_tests::root_or_skip;
use kumo_tests::s3::S3Server;
use kumo_tests::sink::Sink;
use kumo_tests::sqs::*;
use serde_json::{json, Value};

#[test]
fn batches_deletes_failures_and_filters() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = kumo_with_profile(&s3, work.path());
    let sink = Sink::start();
    let vis = json!({"VisibilityTimeout": "6"});

    // Batches of up to 20 gathered over a 2 s window; non-JSON bodies
    // arrive as strings; success deletes everything.
    let q_batch = create_queue(&s3, &unique("batch"), vis.clone());
    create_handler(&kumo, "batcher", &sink, &[]);
    let mut sent = bodies("b", 24);
    sent.push("plain text, not JSON".into());
    let created = trigger(
        &kumo,
        "batches",
        "batcher",
        &q_batch,
        &["--batch-size", "20", "--batch-window", "2", "--disabled"],
    );
    assert_eq!(created["batch_size"], 20, "{created}");
    assert_eq!(created["queue_arn"], q_batch.arn.as_str(), "{created}");
    // All 25 wait before polling starts: more than one receive's 10 are
    // there for a batch to gather.
    send(
        &s3,
        &q_batch,
        Value::Array(sent.iter().map(|b| json!({"body": b})).collect()),
    );
    let run = kumo.cli(&["trigger", "enable", "batches"]);
    assert_eq!(run.code, 0, "{run:?}");

    // A raising function leaves its whole batch; it runs again.
    let q_raise = create_queue(&s3, &unique("raise"), vis.clone());
    create_handler(&kumo, "raiser", &sink, &[]);
    trigger(&kumo, "raises", "raiser", &q_raise, &["--batch-size", "10"]);
    let raise_bodies = [r#"{"a":1}"#, r#"{"raise":true}"#, r#"{"a":2}"#];
    send(
        &s3,
        &q_raise,
        Value::Array(raise_bodies.iter().map(|b| json!({"body": b})).collect()),
    );

    // batchItemFailures leaves exactly the listed message.
    let q_partial = create_queue(&s3, &unique("partial"), vis.clone());
    create_handler(&kumo, "partial", &sink, &["MODE=partial"]);
    trigger(
        &kumo,
        "partials",
        "partial",
        &q_partial,
        &["--report-batch-item-failures"],
    );
    let partial_bodies = [r#"{"a":1}"#, r#"{"fail":true}"#, r#"{"a":2}"#, r#"{"a":3}"#];
    send(
        &s3,
        &q_partial,
        Value::Array(partial_bodies.iter().map(|b| json!({"body": b})).collect()),
    );

    // An identifier that is not in the batch fails the whole batch.
    let q_unknown = create_queue(&s3, &unique("unknown"), vis.clone());
    create_handler(&kumo, "unknown", &sink, &["MODE=unknown"]);
    trigger(
        &kumo,
        "unknowns",
        "unknown",
        &q_unknown,
        &["--report-batch-item-failures"],
    );
    let unknown_bodies = [r#"{"u":1}"#, r#"{"u":2}"#];
    send(
        &s3,
        &q_unknown,
        Value::Array(unknown_bodies.iter().map(|b| json!({"body": b})).collect()),
    );

    // Filters: matching messages run, the others are deleted unseen.
    let q_filter = create_queue(&s3, &unique("filter"), vis);
    create_handler(&kumo, "filtered", &sink, &[]);
    trigger(
        &kumo,
        "filters",
        "filtered",
        &q_filter,
        &[
            "--filter",
            r#"{"body":{"kind":["order"],"total":[{"numeric":[">",10]}]}}"#,
            "--filter",
            r#"{"messageAttributes":{"prio":{"stringValue":[{"prefix":"hi"}]}}}"#,
        ],
    );
    send(
        &s3,
        &q_filter,
        json!([
            {"body": r#"{"kind":"order","total":50}"#},
            {"body": r#"{"kind":"order","total":5}"#},
            {"body": r#"{"kind":"refund","total":50}"#},
            {"body": "not json at all", "attributes": {"prio": "high"}},
            {"body": "not json either", "attributes": {"prio": "low"}},
        ]),
    );

    wait_for("every queue drained", Duration::from_secs(90), || {
        [&q_batch, &q_raise, &q_partial, &q_unknown, &q_filter]
            .iter()
            .all(|q| depth(&s3, q) == 0)
    });

    let batch_counts = deliveries(&sink, "batcher");
    for body in &sent {
        assert_eq!(batch_counts.get(body), Some(&1), "{body}: {batch_counts:?}");
    }
    let sizes: Vec<usize> = ends(&sink, "batcher")
        .iter()
        .map(|r| r["ids"].as_array().map_or(0, Vec::len))
        .collect();
    assert!(sizes.iter().all(|&n| n <= 20), "{sizes:?}");
    assert!(
        sizes.iter().any(|&n| n > 10),
        "the window should gather more than one receive's 10: {sizes:?}"
    );
    let plain = ends(&sink, "batcher")
        .iter()
        .flat_map(|r| r["records"].as_array().cloned().unwrap_or_default())
        .find(|r| r["body"] == "plain text, not JSON")
        .expect("the plain-text message's record");
    assert_eq!(plain["eventSource"], "aws:sqs");
    assert_eq!(plain["eventSourceARN"], q_batch.arn.as_str());
    assert_eq!(plain["awsRegion"], "us-east-1");
    assert!(plain["attributes"]["SentTimestamp"].is_string(), "{plain}");
    assert!(
        plain["md5OfBody"].as_str().is_some_and(|m| m.len() == 32),
        "{plain}"
    );

    // The raising batch (its first attempt) ran again whole; messages
    // that happened to arrive in another batch ran once.
    let raise_counts = deliveries(&sink, "raiser");
    let failed_batch: Vec<String> = ends(&sink, "raiser")
        .iter()
        .find(|r| {
            r["records"].as_array().is_some_and(|records| {
                records.iter().any(|m| {
                    m["body"] == r#"{"raise":true}"#
                        && m["attributes"]["ApproximateReceiveCount"] == "1"
                })
            })
        })
        .and_then(|r| r["bodies"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|b| b.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(!failed_batch.is_empty(), "{raise_counts:?}");
    for body in raise_bodies {
        let expected = if failed_batch.iter().any(|b| b == body) {
            2
        } else {
            1
        };
        assert_eq!(
            raise_counts.get(body),
            Some(&expected),
            "{body}: {raise_counts:?}"
        );
    }
    let partial_counts = deliveries(&sink, "partial");
    for body in partial_bodies {
        let expected = if body.contains("fail") { 2 } else { 1 };
        assert_eq!(
            partial_counts.get(body),
            Some(&expected),
            "{body}: {partial_counts:?}"
        );
    }
    let unknown_counts = deliveries(&sink, "unknown");
    for body in unknown_bodies {
        assert_eq!(
            unknown_counts.get(body),
            Some(&2),
            "{body}: {unknown_counts:?}"
        );
    }
    let filter_counts = deliveries(&sink, "filtered");
    let mut matched: Vec<&String> = filter_counts.keys().collect();
    matched.sort();
    assert_eq!(
        matched,
        ["not json at all", r#"{"kind":"order","total":50}"#],
        "{filter_counts:?}"
    );

    let info = kumo
        .cli(&["trigger", "get", "filters", "--output", "json"])
        .json();
    assert_eq!(info["state"], "polling", "{info}");
    assert_eq!(info["filtered"], 3, "{info}");
    assert_eq!(info["processed"], 2, "{info}");
    let info = kumo
        .cli(&["trigger", "get", "raises", "--output", "json"])
        .json();
    assert_eq!(info["failed"], failed_batch.len(), "{info}");
    assert!(
        info["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("ValueError")),
        "{info}"
    );
    let metrics = kumo_tests::http::request(&kumo.http_address, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    for line in [
        r#"kumo_queue_source_messages{trigger="filters",result="filtered"} 3"#,
        r#"kumo_queue_source_messages{trigger="filters",result="processed"} 2"#,
        r#"kumo_queue_source_batches{trigger="filters",state="in_flight"} 0"#,
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} missing:\n{}",
            metrics.body
        );
    }
    let listed = kumo.cli(&["trigger", "list"]);
    assert!(
        listed.stdout.contains(&format!("sqs {}", q_filter.arn)),
        "{listed:?}"
    );
}

#[test]
fn fifo_order_per_group_and_max_concurrency() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = kumo_with_profile(&s3, work.path());
    let sink = Sink::start();

    let fifo = create_queue(
        &s3,
        &format!("{}.fifo", unique("ordered")),
        json!({"FifoQueue": "true", "VisibilityTimeout": "10", "ContentBasedDeduplication": "false"}),
    );
    create_handler(&kumo, "ordered", &sink, &[]);
    let too_big = kumo.cli(&[
        "trigger",
        "create",
        "big-fifo",
        "--function",
        "ordered",
        "--sqs-queue",
        &fifo.url,
        "--aws-profile",
        "moto",
        "--batch-size",
        "20",
        "--batch-window",
        "1",
    ]);
    assert_ne!(too_big.code, 0, "{too_big:?}");
    assert!(too_big.stderr.contains("FIFO"), "{too_big:?}");
    trigger(
        &kumo,
        "ordered",
        "ordered",
        &fifo,
        &["--batch-size", "2", "--max-concurrency", "3"],
    );
    let mut messages = Vec::new();
    for i in 0..8 {
        for group in ["g1", "g2", "g3", "g4"] {
            messages.push(json!({"group": group, "body": format!(r#"{{"g":"{group}","i":{i},"sleep":0.2}}"#)}));
        }
    }
    send(&s3, &fifo, Value::Array(messages));

    let plain = create_queue(&s3, &unique("capped"), json!({"VisibilityTimeout": "10"}));
    create_handler(&kumo, "capped", &sink, &[]);
    trigger(
        &kumo,
        "capped",
        "capped",
        &plain,
        &["--batch-size", "1", "--max-concurrency", "2"],
    );
    let capped: Vec<Value> = (0..12)
        .map(|i| json!({"body": format!(r#"{{"i":{i},"sleep":0.5}}"#)}))
        .collect();
    send(&s3, &plain, Value::Array(capped));

    wait_for("both queues drained", Duration::from_secs(120), || {
        depth(&s3, &fifo) == 0 && depth(&s3, &plain) == 0
    });

    let fifo_reports = ends(&sink, "ordered");
    assert!(most_overlapping(&fifo_reports) <= 3, "{fifo_reports:?}");
    let mut by_start = fifo_reports.clone();
    by_start.sort_by(|a, b| {
        a["start"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["start"].as_f64().unwrap_or(0.0))
    });
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    for report in &by_start {
        for body in report["bodies"].as_array().into_iter().flatten() {
            let body: Value =
                serde_json::from_str(body.as_str().unwrap_or("{}")).unwrap_or_default();
            seen.entry(body["g"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(body["i"].as_i64().unwrap_or(-1));
        }
    }
    // Delivery is at-least-once: a message whose delete came after its
    // visibility timeout (a loaded machine) may run again. Each group's
    // first deliveries keep the order the messages were sent in.
    for group in ["g1", "g2", "g3", "g4"] {
        let mut first = Vec::new();
        for i in seen.get(group).into_iter().flatten() {
            if !first.contains(i) {
                first.push(*i);
            }
        }
        assert_eq!(first, (0..8).collect::<Vec<i64>>(), "{group}: {seen:?}");
    }

    let capped_reports = ends(&sink, "capped");
    assert_eq!(capped_reports.len(), 12, "{capped_reports:?}");
    let most = most_overlapping(&capped_reports);
    assert!(most <= 2, "{most} batches overlapped: {capped_reports:?}");
}

#[test]
fn kumod_killed_mid_batch_loses_no_message() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let mut kumo = kumo_with_profile(&s3, work.path());
    let sink = Sink::start();
    let queue = create_queue(&s3, &unique("crash"), json!({"VisibilityTimeout": "6"}));
    create_handler(&kumo, "slow", &sink, &["SLEEP_PHASES=1"]);
    trigger(&kumo, "slow", "slow", &queue, &["--batch-size", "5"]);
    let sent: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"i":{i},"sleep":3}}"#))
        .collect();
    send(
        &s3,
        &queue,
        Value::Array(sent.iter().map(|b| json!({"body": b})).collect()),
    );
    wait_for("a batch started", Duration::from_secs(30), || {
        sink.records().iter().any(|r| r["phase"] == "start")
    });
    kumo.kill9();
    let ended_before: usize = ends(&sink, "slow").len();
    kumo.restart();
    wait_for(
        "the queue drained after the restart",
        Duration::from_secs(60),
        || depth(&s3, &queue) == 0,
    );
    let counts = deliveries(&sink, "slow");
    for body in &sent {
        assert!(
            counts.get(body).is_some_and(|&n| n >= 1),
            "{body} lost: {counts:?} ({ended_before} batches ended before the restart)"
        );
    }
    let redelivered = ends(&sink, "slow")
        .iter()
        .flat_map(|r| r["records"].as_array().cloned().unwrap_or_default())
        .any(|r| r["attributes"]["ApproximateReceiveCount"] != "1");
    assert!(
        redelivered,
        "the interrupted batch should have come back: {:?}",
        sink.records()
    );
}

#[test]
fn throttles_back_off_and_big_batches_stay_within_6_mb() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = kumo_with_profile(&s3, work.path());
    let sink = Sink::start();

    // Reserved concurrency 1 caps the pollers at 1 whatever
    // --max-concurrency says; a direct call holding that slot throttles
    // the source, which backs off and loses nothing.
    let queue = create_queue(
        &s3,
        &unique("throttled"),
        json!({"VisibilityTimeout": "10"}),
    );
    create_handler(&kumo, "single", &sink, &["SLEEP_PHASES=1"]);
    let run = kumo.cli(&[
        "function",
        "update",
        "single",
        "--concurrency",
        "1",
        "--timeout",
        "9",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    trigger(
        &kumo,
        "single",
        "single",
        &queue,
        &["--batch-size", "1", "--max-concurrency", "5", "--disabled"],
    );
    let sent: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"i":{i},"sleep":0.3}}"#))
        .collect();
    send(
        &s3,
        &queue,
        Value::Array(sent.iter().map(|b| json!({"body": b})).collect()),
    );
    // Disabled: nothing is taken.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(depth(&s3, &queue), 6);
    assert!(ends(&sink, "single").is_empty());
    let mut holder = kumo.spawn_cli(&["invoke", "single", "--payload", r#"{"Records":[{"messageId":"direct","body":"{\"sleep\":6}","attributes":{"ApproximateReceiveCount":"1"}}]}"#]);
    wait_for("the direct call started", Duration::from_secs(20), || {
        sink.records()
            .iter()
            .any(|r| r["phase"] == "start" && r["ids"][0] == "direct")
    });
    let run = kumo.cli(&["trigger", "enable", "single"]);
    assert_eq!(run.code, 0, "{run:?}");
    wait_for("the source was throttled", Duration::from_secs(20), || {
        kumo.cli(&["trigger", "get", "single", "--output", "json"])
            .json()["throttled"]
            .as_u64()
            .is_some_and(|n| n > 0)
    });
    let _ = holder.wait();
    wait_for("the queue drained", Duration::from_secs(90), || {
        depth(&s3, &queue) == 0
    });
    let counts = deliveries(&sink, "single");
    for body in &sent {
        assert!(
            counts.get(body).is_some_and(|&n| n >= 1),
            "{body} lost: {counts:?}"
        );
    }
    let reports = ends(&sink, "single");
    assert_eq!(most_overlapping(&reports), 1, "{reports:?}");

    // 30 messages of 250 KB (7.5 MB) in batches of up to 50: each event
    // stays within 6 MB, so they come in more than one batch, all once.
    let big = create_queue(&s3, &unique("big"), json!({"VisibilityTimeout": "30"}));
    create_handler(&kumo, "big", &sink, &["BRIEF=1"]);
    trigger(
        &kumo,
        "big",
        "big",
        &big,
        &["--batch-size", "50", "--batch-window", "3"],
    );
    s3.boto3(
        "for i in range(30):\n    sqs.send_message(QueueUrl=sys.argv[1], MessageBody='%04d' % i + 'x' * 250000)\n",
        &[&big.url],
    );
    wait_for("the big queue drained", Duration::from_secs(120), || {
        depth(&s3, &big) == 0
    });
    let reports = ends(&sink, "big");
    let mut heads: Vec<String> = reports
        .iter()
        .flat_map(|r| r["bodies"].as_array().cloned().unwrap_or_default())
        .map(|b| b.as_str().unwrap_or_default()[..4].to_string())
        .collect();
    heads.sort();
    let expected: Vec<String> = (0..30).map(|i| format!("{i:04}")).collect();
    assert_eq!(heads, expected, "each message once");
    assert!(reports.len() >= 2, "{} batches", reports.len());
    for r in &reports {
        let bytes = r["bytes"].as_u64().unwrap_or(u64::MAX);
        assert!(bytes <= 6_291_556, "an event of {bytes} bytes");
    }
}

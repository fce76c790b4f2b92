//! Bucket notifications end to end: MinIO-format webhook POSTs to kumod's
//! `/webhooks/minio` start the functions of matching bucket triggers with
//! `{"Records":[record]}`. Covers the token, HEAD, filters (event types,
//! prefix, suffix on the decoded key), key encodings, delete events,
//! redelivered duplicates, garbage and oversized bodies, unknown buckets.

use std::time::Duration;

use kumo_tests::http::{minio_event, post_minio, request};
use kumo_tests::sink::Sink;
use kumo_tests::{root_or_skip, Kumo};
use serde_json::Value;

const TOKEN: &str = "s3cret-token";
const AUTH: &str = "Bearer s3cret-token";

/// The records the functions received, as (function, eventName, key).
fn received(sink: &Sink) -> Vec<(String, String, String)> {
    sink.records()
        .iter()
        .filter_map(|r| {
            let record = &r["event"]["Records"][0];
            Some((
                r["function"].as_str()?.to_string(),
                record["eventName"].as_str()?.to_string(),
                record["s3"]["object"]["key"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// kumod with the webhook token and a reporting function `photos`.
fn kumo_with_photos() -> (Kumo, Sink) {
    let kumo = Kumo::start_configured(&format!("[triggers]\nminio_auth_token = \"{TOKEN}\"\n"), "");
    let sink = Sink::start();
    kumo.create_reporter("photos", &sink, &["--env", "FUNCTION=photos"]);
    (kumo, sink)
}

fn wait_for_count(sink: &Sink, count: usize) {
    assert!(
        sink.wait_for(Duration::from_secs(30), |r| r.len() >= count),
        "expected {count} runs, got {:?}",
        sink.records()
    );
}

#[test]
fn webhook_events_reach_matching_triggers_once() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(
        &format!("region = \"eu-west-1\"\n[triggers]\nminio_auth_token = \"{TOKEN}\"\n"),
        "",
    );
    let sink = Sink::start();
    kumo.create_reporter("photos", &sink, &["--env", "FUNCTION=photos"]);
    kumo.create_reporter("cleanup", &sink, &["--env", "FUNCTION=cleanup"]);
    kumo.create_reporter("verbatim", &sink, &["--env", "FUNCTION=verbatim"]);
    kumo.create_trigger(&[
        "jpg-uploads",
        "--function",
        "photos",
        "--bucket",
        "images",
        "--prefix",
        "photos/",
        "--suffix",
        ".jpg",
    ]);
    kumo.create_trigger(&[
        "removals",
        "--function",
        "cleanup",
        "--bucket",
        "images",
        "--events",
        "s3:ObjectRemoved:*",
    ]);
    kumo.create_trigger(&[
        "unicode",
        "--function",
        "photos",
        "--bucket",
        "docs",
        "--prefix",
        "café/",
        "--events",
        "put",
    ]);
    let minio_format = kumo.create_trigger(&[
        "raw",
        "--function",
        "verbatim",
        "--bucket",
        "raw",
        "--event-format",
        "minio",
    ]);
    assert_eq!(minio_format["event_format"], "minio");
    let http = &kumo.http_address;

    // MinIO's start-up check.
    assert_eq!(
        request(http, "HEAD", "/webhooks/minio", &[], b"").status,
        200
    );

    // The key arrives query-escaped: photos%2Fmy+photo.jpg is "photos/my photo.jpg".
    let put = minio_event(
        "s3:ObjectCreated:Put",
        "images",
        "photos%2Fmy+photo.jpg",
        "A1",
    );
    let reply = post_minio(http, Some(AUTH), &put);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["queued"], 1);
    wait_for_count(&sink, 1);
    // Redelivered (same bucket, key, versionId, sequencer, eventName): runs once.
    let again = post_minio(http, Some(AUTH), &put);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicates"], 1);

    // Not matching: wrong suffix, wrong prefix, an access event.
    for body in [
        minio_event("s3:ObjectCreated:Put", "images", "photos%2Fa.png", "A2"),
        minio_event("s3:ObjectCreated:Put", "images", "videos%2Fa.jpg", "A3"),
        minio_event("s3:ObjectAccessed:Get", "images", "photos%2Fa.jpg", "A4"),
    ] {
        let reply = post_minio(http, Some(AUTH), &body);
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.json()["unmatched"], 1, "{reply:?}");
    }
    // A delete (no size or eTag) goes to the removals trigger only.
    let delete = minio_event(
        "s3:ObjectRemoved:Delete",
        "images",
        "photos%2Fmy+photo.jpg",
        "A5",
    );
    assert_eq!(post_minio(http, Some(AUTH), &delete).json()["queued"], 1);
    // UTF-8 keys, escaped: caf%C3%A9%2Fnote.txt is "café/note.txt".
    let unicode = minio_event(
        "s3:ObjectCreated:CompleteMultipartUpload",
        "docs",
        "caf%C3%A9%2Fnote.txt",
        "A6",
    );
    assert_eq!(post_minio(http, Some(AUTH), &unicode).json()["queued"], 1);
    // --event-format minio: MinIO's record verbatim.
    let raw = minio_event("s3:ObjectCreated:Put", "raw", "in%2Fraw+form", "A7");
    assert_eq!(post_minio(http, Some(AUTH), &raw).json()["queued"], 1);
    wait_for_count(&sink, 4);
    std::thread::sleep(Duration::from_secs(2));

    // S3's shape: no s3: prefix, / literal, a space as +, UTF-8 %-escaped.
    let mut runs = received(&sink);
    runs.sort();
    assert_eq!(
        runs,
        vec![
            (
                "cleanup".into(),
                "ObjectRemoved:Delete".into(),
                "photos/my+photo.jpg".into()
            ),
            (
                "photos".into(),
                "ObjectCreated:CompleteMultipartUpload".into(),
                "caf%C3%A9/note.txt".into()
            ),
            (
                "photos".into(),
                "ObjectCreated:Put".into(),
                "photos/my+photo.jpg".into()
            ),
            (
                "verbatim".into(),
                "s3:ObjectCreated:Put".into(),
                "in%2Fraw+form".into()
            ),
        ]
    );
    let run_of = |function: &str, name: &str| {
        sink.records()
            .into_iter()
            .find(|r| r["function"] == function && r["event"]["Records"][0]["eventName"] == name)
            .unwrap_or_else(|| panic!("no {function} run of {name}"))
    };
    let put_run = run_of("photos", "ObjectCreated:Put");
    let record = &put_run["event"]["Records"][0];
    let sent: Value = serde_json::from_str(&put).unwrap();
    let minio = &sent["Records"][0];
    assert_eq!(record["eventSource"], "aws:s3");
    assert_eq!(record["eventVersion"], "2.1");
    assert_eq!(record["awsRegion"], "eu-west-1", "kumod's region");
    assert_eq!(record["eventTime"], minio["eventTime"]);
    assert_eq!(record["s3"]["bucket"], minio["s3"]["bucket"]);
    assert_eq!(record["s3"]["object"]["size"], 6474);
    assert_eq!(record["s3"]["object"]["sequencer"], "A1");
    // MinIO-only fields stay as extra keys.
    assert_eq!(record["source"], minio["source"]);
    assert_eq!(
        record["responseElements"]["x-minio-deployment-id"],
        minio["responseElements"]["x-minio-deployment-id"]
    );
    assert_eq!(
        put_run["event"].as_object().unwrap().len(),
        1,
        "only Records"
    );
    let raw_run = run_of("verbatim", "s3:ObjectCreated:Put");
    let sent: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw_run["event"]["Records"][0], sent["Records"][0]);

    let info = kumo
        .cli(&["trigger", "get", "jpg-uploads", "--output", "json"])
        .json();
    assert_eq!(info["fired"], 1, "{info}");
    assert_eq!(info["events"], serde_json::json!(["s3:ObjectCreated:*"]));
}

#[test]
fn hostile_webhook_requests_are_refused_without_blocking_later_events() {
    if !root_or_skip() {
        return;
    }
    let (kumo, sink) = kumo_with_photos();
    kumo.create_trigger(&["uploads", "--function", "photos", "--bucket", "images"]);
    let http = &kumo.http_address;
    let good = minio_event("s3:ObjectCreated:Put", "images", "a.jpg", "B1");

    assert_eq!(post_minio(http, None, &good).status, 401, "missing token");
    assert_eq!(
        post_minio(http, Some("Bearer wrong"), &good).status,
        401,
        "wrong token"
    );
    assert_eq!(
        post_minio(http, Some(TOKEN), &good).status,
        401,
        "token without Bearer"
    );
    let garbage = post_minio(http, Some(AUTH), "this is not json");
    assert_eq!(garbage.status, 400);
    assert!(
        garbage.json()["message"]
            .as_str()
            .unwrap()
            .contains("not JSON"),
        "{garbage:?}"
    );
    let no_records = post_minio(http, Some(AUTH), r#"{"EventName":"s3:ObjectCreated:Put"}"#);
    assert_eq!(no_records.status, 400);
    assert!(no_records.body.contains("Records"), "{no_records:?}");
    let no_bucket = post_minio(
        http,
        Some(AUTH),
        r#"{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"object":{"key":"k"}}}]}"#,
    );
    assert_eq!(no_bucket.status, 400);
    let huge = format!(
        r#"{{"Records":[{{"pad":"{}"}}]}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let too_big = post_minio(http, Some(AUTH), &huge);
    assert_eq!(too_big.status, 413, "{too_big:?}");
    // An unknown bucket is accepted, ignored and counted.
    let unknown = post_minio(
        http,
        Some(AUTH),
        &minio_event("s3:ObjectCreated:Put", "nobody", "k", "B2"),
    );
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.json()["unmatched"], 1);

    // None of that blocked the next good event.
    let reply = post_minio(http, Some(AUTH), &good);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(sink.wait_for(Duration::from_secs(30), |r| r.len() == 1));
    let stats = request(
        http,
        "GET",
        "/webhooks/minio",
        &[("Authorization", AUTH)],
        b"",
    )
    .json();
    assert_eq!(stats["unauthorized"], 3, "{stats}");
    assert_eq!(stats["bad_requests"], 4, "{stats}");
    assert_eq!(stats["unmatched"], 1, "{stats}");
    assert_eq!(stats["queued"], 1, "{stats}");
    assert_eq!(
        request(http, "GET", "/webhooks/minio", &[], b"").status,
        401
    );

    // Trigger settings that must be refused clearly.
    for (args, needle) in [
        (
            vec!["t1", "--function", "photos", "--bucket", "x"],
            "bucket",
        ),
        (
            vec![
                "t2",
                "--function",
                "photos",
                "--bucket",
                "images",
                "--events",
                "s3:Nope:*",
            ],
            "event type",
        ),
        (
            vec!["t3", "--function", "ghost", "--bucket", "images"],
            "Function not found",
        ),
        (
            vec!["café", "--function", "photos", "--bucket", "images"],
            "name",
        ),
        (
            vec!["uploads", "--function", "photos", "--bucket", "images"],
            "already exists",
        ),
        (
            vec![
                "t4",
                "--function",
                "photos",
                "--bucket",
                "images",
                "--configure-bucket",
                "--s3-profile",
                "nope",
            ],
            "no AWS profile",
        ),
    ] {
        let mut all = vec!["trigger", "create"];
        all.extend_from_slice(&args);
        let run = kumo.cli(&all);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(needle), "{needle}: {run:?}");
    }
    assert!(kumo
        .cli(&["trigger", "get", "nope"])
        .stderr
        .contains("not found"));
}

#[test]
fn disabled_bucket_triggers_do_not_fire() {
    if !root_or_skip() {
        return;
    }
    let (kumo, sink) = kumo_with_photos();
    kumo.create_trigger(&[
        "uploads",
        "--function",
        "photos",
        "--bucket",
        "images",
        "--disabled",
    ]);
    let http = &kumo.http_address;
    let reply = post_minio(
        http,
        Some(AUTH),
        &minio_event("s3:ObjectCreated:Put", "images", "a", "C1"),
    );
    assert_eq!(reply.json()["unmatched"], 1, "{reply:?}");
    assert_eq!(kumo.cli(&["trigger", "enable", "uploads"]).code, 0);
    let reply = post_minio(
        http,
        Some(AUTH),
        &minio_event("s3:ObjectCreated:Put", "images", "a", "C2"),
    );
    assert_eq!(reply.json()["queued"], 1, "{reply:?}");
    assert!(sink.wait_for(Duration::from_secs(30), |r| r.len() == 1));
    assert_eq!(kumo.cli(&["trigger", "delete", "uploads"]).code, 0);
    let reply = post_minio(
        http,
        Some(AUTH),
        &minio_event("s3:ObjectCreated:Put", "images", "a", "C3"),
    );
    assert_eq!(reply.json()["unmatched"], 1, "{reply:?}");
}

/// A 200 means the event is on disk: kill kumod right after it (while no
/// agent could run the event yet), restart, and the function still runs.
#[test]
fn an_acknowledged_event_survives_a_kumod_crash() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start_separate(
        &format!("agent_wait_seconds = 1\n[async_invoke]\nbackoff_initial_ms = 200\nbackoff_max_ms = 1000\n[triggers]\nminio_auth_token = \"{TOKEN}\"\n"),
    );
    let sink = Sink::start();
    kumo.create_reporter("photos", &sink, &["--env", "FUNCTION=photos"]);
    kumo.create_trigger(&["uploads", "--function", "photos", "--bucket", "images"]);
    kumo.kill9_agent();
    let body = minio_event("s3:ObjectCreated:Put", "images", "late.jpg", "E1");
    let reply = post_minio(&kumo.http_address, Some(AUTH), &body);
    assert_eq!(reply.json()["queued"], 1, "{reply:?}");
    kumo.kill9();
    kumo.restart();
    kumo.start_agent();
    assert!(
        sink.wait_for(Duration::from_secs(60), |r| r.len() == 1),
        "the acknowledged event was lost:\n{}",
        kumo.log()
    );
    // MinIO redelivering it after the crash does not run it again.
    let again = post_minio(&kumo.http_address, Some(AUTH), &body);
    assert_eq!(again.json()["duplicates"], 1, "{again:?}");
}

/// Keys MinIO never sends (NUL, bytes that are not UTF-8) still reach the
/// function, every byte kept %-escaped as S3 escapes it; filters compare
/// the decoded bytes. A malformed escape is refused with the reason.
#[test]
fn keys_with_nul_or_invalid_utf8_are_delivered_byte_exact() {
    if !root_or_skip() {
        return;
    }
    let (kumo, sink) = kumo_with_photos();
    kumo.create_trigger(&[
        "odd",
        "--function",
        "photos",
        "--bucket",
        "odd",
        "--prefix",
        "x",
    ]);
    let http = &kumo.http_address;
    for (i, raw) in ["x%00y", "x%FF%FEname", "x\\u0000z"].iter().enumerate() {
        let reply = post_minio(
            http,
            Some(AUTH),
            &minio_event("s3:ObjectCreated:Put", "odd", raw, &format!("N{i}")),
        );
        assert_eq!(reply.status, 200, "{raw}: {reply:?}");
        assert_eq!(reply.json()["queued"], 1, "{raw}: {reply:?}");
    }
    let bad = post_minio(
        http,
        Some(AUTH),
        &minio_event("s3:ObjectCreated:Put", "odd", "x%zz", "N9"),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.body.contains("bad %-escape"), "{bad:?}");
    wait_for_count(&sink, 3);
    let mut keys: Vec<String> = received(&sink).into_iter().map(|(_, _, k)| k).collect();
    keys.sort();
    assert_eq!(keys, ["x%00y", "x%00z", "x%FF%FEname"]);
}

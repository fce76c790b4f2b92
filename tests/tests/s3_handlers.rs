//! Handlers written for S3 run unmodified on bucket triggers: real objects
//! in an S3-compatible server (moto), MinIO-format webhook posts (§5b), and
//! the functions fetch what the S3-shaped events (§5a) name — a handler in
//! the style of the book's listing 4-4 (the key used as it is) and AWS's
//! s3-get-object-python blueprint (`unquote_plus(key)`).

use std::time::{Duration, Instant};

use kumo_tests::http::{minio_event, post_minio};
use kumo_tests::s3::{unique_bucket, S3Server};
use kumo_tests::{fixture, root_or_skip, Kumo};

/// Objects put in the bucket: the key, its body and content type, and the
/// key as MinIO's webhook carries it (Go `QueryEscape`).
const OBJECTS: &[(&str, &str, &str, &str)] = &[
    (
        "photos/2024/cat.txt",
        "a cat",
        "text/x-cat",
        "photos%2F2024%2Fcat.txt",
    ),
    (
        "reports/q3 summary.txt",
        "numbers",
        "text/x-report",
        "reports%2Fq3+summary.txt",
    ),
    // Decoding twice must not corrupt it: S3 sends a%2Bb%252Bc.txt.
    ("a+b%2Bc.txt", "plus", "text/x-plus", "a%2Bb%252Bc.txt"),
];

fn wait_for_logs(kumo: &Kumo, function: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let logs = kumo.logs(function);
        if done(&logs) {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "{function} did not finish; logs:\n{logs}\n{}",
            kumo.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn s3_handlers_fetch_the_objects_s3_shaped_events_name() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().unwrap();
    let input = unique_bucket("kumo-events");
    s3.boto3("s3.create_bucket(Bucket=sys.argv[1])", &[&input]);
    for (key, body, content_type, _) in OBJECTS {
        s3.boto3(
            "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=sys.argv[3].encode(), ContentType=sys.argv[4])",
            &[&input, key, body, content_type],
        );
    }
    let zip = work.path().join("handlers.zip");
    let handlers = fixture("s3_handlers");
    s3.package_with_vendor(
        &[&handlers.join("book.py"), &handlers.join("blueprint.py")],
        &zip,
    );
    // awsRegion comes from kumod's region (the one in its ARNs).
    let kumo = Kumo::start_configured(
        &format!(
            "region = \"eu-west-1\"\n[triggers]\nminio_auth_token = \"hook\"\n\n{}",
            s3.profile_toml("store", work.path())
        ),
        "",
    );
    for (name, handler) in [
        ("book", "book.lambda_handler"),
        ("blueprint", "blueprint.lambda_handler"),
    ] {
        kumo.create(
            name,
            "python3",
            handler,
            &zip,
            &[
                "--credentials",
                "store",
                "--network",
                "host",
                "--memory",
                "256",
                "--timeout",
                "30",
                "--max-retry-attempts",
                "0",
            ],
        );
        kumo.create_trigger(&[
            &format!("{name}-uploads"),
            "--function",
            name,
            "--bucket",
            &input,
        ]);
    }
    for (i, (_, _, _, minio_key)) in OBJECTS.iter().enumerate() {
        let body = minio_event("s3:ObjectCreated:Put", &input, minio_key, &format!("S{i}"));
        let reply = post_minio(&kumo.http_address, Some("Bearer hook"), &body);
        assert_eq!(reply.json()["queued"], 2, "{reply:?}");
    }

    // The blueprint decodes each key once and gets every object.
    let logs = wait_for_logs(&kumo, "blueprint", |l| {
        l.matches("END RequestId").count() >= OBJECTS.len()
    });
    for (_, _, content_type, _) in OBJECTS {
        assert!(
            logs.contains(&format!("CONTENT TYPE: {content_type}")),
            "{content_type}:\n{logs}"
        );
    }
    assert!(!logs.contains("Error getting object"), "{logs}");

    // The key used as it is: a key in a folder works (S3 leaves / alone);
    // a space arrives as +, so, as on AWS, that object is not found that way.
    let logs = wait_for_logs(&kumo, "book", |l| {
        l.matches("END RequestId").count() >= OBJECTS.len()
    });
    assert!(
        logs.contains("book read photos/2024/cat.txt: a cat"),
        "{logs}"
    );
    assert!(logs.contains("NoSuchKey"), "{logs}");
    assert!(!logs.contains("book read reports"), "{logs}");
}

//! SQS event sources refused at create time, with a clear error rather
//! than a silent dead trigger (docs/wire-formats.md §9): unknown queues by
//! URL and ARN, references that are neither, unknown profiles, wrong
//! credentials (a moto server of its own with IAM signature checks),
//! settings out of range, and a function timeout longer than the queue's
//! visibility timeout.

use kumo_tests::s3::S3Server;
use kumo_tests::sink::Sink;
use kumo_tests::sqs::create_handler;
use kumo_tests::{root_or_skip, Kumo};
use serde_json::json;

#[test]
fn create_refuses_unknown_queues_wrong_credentials_and_long_timeouts() {
    if !root_or_skip() {
        return;
    }
    // A server of its own that checks signatures, and a key allowed
    // everything.
    let (s3, id, secret) = S3Server::start_with_iam();
    let (id, secret) = (id.as_str(), secret.as_str());
    let work = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "{}{}",
        s3.aws_profile_toml("moto", work.path(), id, secret),
        s3.aws_profile_toml("wrong", work.path(), id, "not-the-secret")
    );
    let kumo = Kumo::start_configured(&config, "");
    let queue_url: String = s3
        .boto3(
            &format!(
                "good = boto3.client('sqs', endpoint_url=s3.meta.endpoint_url, aws_access_key_id={id:?}, aws_secret_access_key={secret:?}, region_name='us-east-1')\nprint(good.create_queue(QueueName='short', Attributes={{'VisibilityTimeout': '10'}})['QueueUrl'])\n"
            ),
            &[],
        )
        .trim()
        .to_string();
    let sink = Sink::start();
    create_handler(&kumo, "handler", &sink, &[]);
    let base = format!("{}/123456789012", s3.endpoint);
    for (queue, profile, expect) in [
        (
            format!("{base}/no-such-queue"),
            "moto",
            "GetQueueAttributes",
        ),
        (
            "arn:aws:sqs:us-east-1:123456789012:no-such-queue".to_string(),
            "moto",
            "GetQueueUrl",
        ),
        ("not-a-queue".to_string(), "moto", "neither a queue URL"),
        (queue_url.clone(), "wrong", "SignatureDoesNotMatch"),
        (queue_url.clone(), "absent", "no AWS profile \"absent\""),
    ] {
        let run = kumo.cli(&[
            "trigger",
            "create",
            "t",
            "--function",
            "handler",
            "--sqs-queue",
            &queue,
            "--aws-profile",
            profile,
        ]);
        assert_ne!(run.code, 0, "{queue} via {profile}: {run:?}");
        assert!(
            run.stderr.contains(expect),
            "{queue} via {profile}: expected {expect:?}: {run:?}"
        );
    }
    let listed = kumo.cli(&["trigger", "list", "--output", "json"]).json();
    assert_eq!(listed, json!([]), "nothing was created");

    kumo.cli(&["function", "update", "handler", "--timeout", "30"]);
    let run = kumo.cli(&[
        "trigger",
        "create",
        "t",
        "--function",
        "handler",
        "--sqs-queue",
        &queue_url,
        "--aws-profile",
        "moto",
    ]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("visibility timeout"), "{run:?}");
    kumo.cli(&["function", "update", "handler", "--timeout", "5"]);
    let created = kumo.create_trigger(&[
        "t",
        "--function",
        "handler",
        "--sqs-queue",
        &queue_url,
        "--aws-profile",
        "moto",
        "--disabled",
    ]);
    assert_eq!(created["enabled"], false, "{created}");
    assert_eq!(created["state"], "disabled", "{created}");
    for bad in [
        vec!["--batch-size", "11"],
        vec!["--max-concurrency", "1"],
        vec!["--batch-window", "301"],
        vec!["--filter", r#"{"body":[{"regex":"x"}]}"#],
    ] {
        let mut args = vec![
            "trigger",
            "create",
            "u",
            "--function",
            "handler",
            "--sqs-queue",
            &queue_url,
            "--aws-profile",
            "moto",
        ];
        args.extend(bad.iter());
        let run = kumo.cli(&args);
        assert_ne!(run.code, 0, "{bad:?}: {run:?}");
    }
    let run = kumo.cli(&["trigger", "delete", "t"]);
    assert_eq!(run.code, 0, "{run:?}");
}

//! SQS queues and SNS topics as on-failure destinations (docs/wire-formats.md
//! §7, §11), against moto: an asynchronous event that fails for good sends
//! Lambda's destination record to the queue, or publishes it to the topic
//! (read back through an SQS subscription), through the function's
//! `--credentials` profile; a queue or topic without credentials is refused.

use std::time::Duration;

use kumo_tests::s3::{unique_bucket, S3Server};
use kumo_tests::{root_or_skip, Kumo};
use serde_json::Value;

/// Creates a queue, and a topic delivering raw to a second queue; prints
/// {queue_url, queue_arn, topic_arn, topic_queue_url}.
const SETUP: &str = r#"
import json
name = sys.argv[1]
q = sqs.create_queue(QueueName=name)["QueueUrl"]
dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
dlqarn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns = boto3.client("sns", endpoint_url=s3.meta.endpoint_url, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
topic = sns.create_topic(Name=name + "-topic")["TopicArn"]
tq = sqs.create_queue(QueueName=name + "-from-topic")["QueueUrl"]
tqarn = sqs.get_queue_attributes(QueueUrl=tq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=tqarn, Attributes={"RawMessageDelivery": "true"})
print(json.dumps({"queue_url": q, "queue_arn": qarn, "topic_arn": topic, "topic_queue_url": tq, "dlq_url": dlq, "dlq_arn": dlqarn}))
"#;

/// Sets DeadLetterConfig through Lambda's management API and reads it
/// back: prints [update answer, GetFunctionConfiguration].
const LAMBDA_DLQ: &str = r#"
import json, sys, boto3
lam = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="AKIDKUMOTEST", aws_secret_access_key="kumo-test-secret")
updated = lam.update_function_configuration(FunctionName="orders", DeadLetterConfig={"TargetArn": sys.argv[2]})
got = lam.get_function_configuration(FunctionName="orders")
print(json.dumps([updated, got], default=str))
"#;

/// Prints the messages in a queue as a JSON list of {body, attributes}
/// (waiting up to 2 s), deleting them.
const DRAIN: &str = r#"
import json
got = sqs.receive_message(QueueUrl=sys.argv[1], MaxNumberOfMessages=10, WaitTimeSeconds=2, MessageAttributeNames=["All"]).get("Messages", [])
for m in got:
    sqs.delete_message(QueueUrl=sys.argv[1], ReceiptHandle=m["ReceiptHandle"])
print(json.dumps([{"body": m["Body"], "attributes": m.get("MessageAttributes", {})} for m in got]))
"#;

/// The messages of a queue: (body parsed as JSON, message attributes).
fn messages_in(s3: &S3Server, url: &str) -> Vec<(Value, Value)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let got: Vec<Value> =
            serde_json::from_str(s3.boto3(DRAIN, &[url]).trim()).unwrap_or_default();
        if !got.is_empty() {
            return got
                .iter()
                .map(|m| {
                    let body = m["body"].as_str().unwrap_or_default();
                    (
                        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
                        m["attributes"].clone(),
                    )
                })
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing arrived in {url}"
        );
    }
}

#[test]
fn failed_events_reach_queue_and_topic_destinations() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = Kumo::start_configured(
        &s3.aws_profile_toml("moto", work.path(), "test", "test"),
        "",
    );
    let setup: Value =
        serde_json::from_str(s3.boto3(SETUP, &[&unique_bucket("failures")]).trim()).expect("setup");
    let text = |k: &str| setup[k].as_str().unwrap_or_default().to_string();
    let failing = "def handler(event, context):\n    raise ValueError('no ' + event['what'])\n";

    // A queue or topic destination needs credentials to send with.
    let code = kumo_tests::package_dir(&[("lambda_function.py", failing)]);
    let refused = kumo.try_create(
        "nocreds",
        "python3",
        "lambda_function.handler",
        code.path(),
        &["--on-failure", &text("queue_arn")],
    );
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("--credentials"), "{refused:?}");

    for (name, destination, read_from) in [
        ("to-queue", text("queue_arn"), text("queue_url")),
        ("to-topic", text("topic_arn"), text("topic_queue_url")),
    ] {
        kumo.create_python(
            name,
            failing,
            &[
                "--credentials",
                "moto",
                "--max-retry-attempts",
                "0",
                "--on-failure",
                &destination,
            ],
        );
        let run = kumo.cli(&["invoke", name, "--async", "--payload", r#"{"what":"luck"}"#]);
        assert_eq!(run.code, 0, "{run:?}");
        let records: Vec<Value> = messages_in(&s3, &read_from)
            .into_iter()
            .map(|(body, _)| body)
            .collect();
        assert_eq!(records.len(), 1, "{records:?}");
        let record = &records[0];
        assert_eq!(record["version"], "1.0", "{record}");
        assert_eq!(
            record["requestContext"]["condition"], "RetriesExhausted",
            "{record}"
        );
        assert!(
            record["requestContext"]["functionArn"]
                .as_str()
                .is_some_and(|a| a.ends_with(&format!(":function:{name}"))),
            "{record}"
        );
        assert_eq!(
            record["requestContext"]["approximateInvokeCount"], 1,
            "{record}"
        );
        assert_eq!(record["requestPayload"]["what"], "luck", "{record}");
        assert_eq!(
            record["responseContext"]["functionError"], "Unhandled",
            "{record}"
        );
        assert_eq!(
            record["responsePayload"]["errorType"], "ValueError",
            "{record}"
        );
    }
}

#[test]
fn dead_letter_targets_get_the_original_event_and_error_attributes() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = Kumo::start_configured(
        &format!(
            "{}{}",
            kumo_tests::INVOKE_API_KEYS,
            s3.aws_profile_toml("moto", work.path(), "test", "test")
        ),
        "",
    );
    let setup: Value =
        serde_json::from_str(s3.boto3(SETUP, &[&unique_bucket("dlq")]).trim()).expect("setup");
    let dlq_arn = setup["dlq_arn"].as_str().unwrap_or_default();
    let failing =
        "def handler(event, context):\n    raise ValueError('bad order ' + str(event['order']))\n";
    kumo.create_python("orders", failing, &[]);
    for (args, expect) in [
        (vec!["--dead-letter-target", dlq_arn], "--credentials"),
        (
            vec![
                "--dead-letter-target",
                "orders-fallback",
                "--credentials",
                "moto",
            ],
            "not an SQS queue or SNS topic ARN",
        ),
    ] {
        let mut all = vec!["function", "update", "orders"];
        all.extend(args.iter());
        let run = kumo.cli(&all);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(run.stderr.contains(expect), "{expect}: {run:?}");
    }
    let run = kumo.cli(&[
        "function",
        "update",
        "orders",
        "--credentials",
        "moto",
        "--max-retry-attempts",
        "0",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // Lambda's management API sets and shows it as DeadLetterConfig.
    let shown = kumo_tests::s3::run_python(
        LAMBDA_DLQ,
        &[&format!("http://{}", kumo.http_address), dlq_arn],
    );
    let shown: Value = serde_json::from_str(shown.trim()).expect("management API answers");
    assert_eq!(
        shown[0]["DeadLetterConfig"]["TargetArn"], dlq_arn,
        "{shown}"
    );
    assert_eq!(
        shown[1]["DeadLetterConfig"]["TargetArn"], dlq_arn,
        "{shown}"
    );
    assert_eq!(kumo.function("orders")["dead_letter_target"], dlq_arn);
    let run = kumo.cli(&[
        "invoke",
        "orders",
        "--async",
        "--payload",
        r#"{"order":42}"#,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let request_id = run.stdout.trim().to_string();
    let got = messages_in(&s3, setup["dlq_url"].as_str().unwrap_or_default());
    assert_eq!(got.len(), 1, "{got:?}");
    let (body, attributes) = &got[0];
    assert_eq!(
        body,
        &serde_json::json!({"order": 42}),
        "the original event"
    );
    assert_eq!(
        attributes["ErrorCode"]["DataType"], "Number",
        "{attributes}"
    );
    assert_eq!(
        attributes["ErrorCode"]["StringValue"], "200",
        "{attributes}"
    );
    assert!(
        attributes["ErrorMessage"]["StringValue"]
            .as_str()
            .is_some_and(|m| m.contains("bad order 42")),
        "{attributes}"
    );
    assert!(
        attributes["RequestID"]["StringValue"]
            .as_str()
            .is_some_and(|id| !id.is_empty() && request_id.contains(id)),
        "{attributes} vs {request_id}"
    );
}

#[test]
fn succeeded_events_reach_the_on_success_destination() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = Kumo::start_configured(
        &s3.aws_profile_toml("moto", work.path(), "test", "test"),
        "",
    );
    let setup: Value = serde_json::from_str(s3.boto3(SETUP, &[&unique_bucket("successes")]).trim())
        .expect("setup");
    let doubling = "def handler(event, context):\n    return {'double': event['n'] * 2}\n";
    kumo.create_python(
        "doubler",
        doubling,
        &[
            "--credentials",
            "moto",
            "--on-success",
            setup["queue_arn"].as_str().unwrap_or_default(),
        ],
    );
    assert_eq!(
        kumo.function("doubler")["on_success_destination"],
        setup["queue_arn"]
    );
    let run = kumo.cli(&["invoke", "doubler", "--async", "--payload", r#"{"n":21}"#]);
    assert_eq!(run.code, 0, "{run:?}");
    let got = messages_in(&s3, setup["queue_url"].as_str().unwrap_or_default());
    assert_eq!(got.len(), 1, "{got:?}");
    let record = &got[0].0;
    assert_eq!(record["requestContext"]["condition"], "Success", "{record}");
    assert_eq!(
        record["requestContext"]["approximateInvokeCount"], 1,
        "{record}"
    );
    assert_eq!(record["requestPayload"]["n"], 21, "{record}");
    assert_eq!(record["responsePayload"]["double"], 42, "{record}");
    assert_eq!(record["responseContext"]["statusCode"], 200, "{record}");
    assert!(
        record["responseContext"].get("functionError").is_none(),
        "{record}"
    );
}

//! SNS topics as event sources end to end against moto's SNS
//! (docs/wire-formats.md §10): `kumo trigger create --sns-topic`
//! subscribes kumod's `[sns] public_url` to a real topic; moto POSTs
//! published messages to kumod, which queues Lambda's SNS event as an
//! asynchronous invocation of a real function. Also: a confirmation
//! handled with ConfirmSubscription, the filter policy, a redelivered
//! MessageId running once, unsubscribing on delete, the refusals at
//! create time and hostile POSTs (garbage, another topic, a forged
//! SubscribeURL, unknown triggers). Signature checking is off for moto's
//! profile (`sns_verify_signatures = false`).

use std::time::Duration;

use kumo_tests::http::request;
use kumo_tests::root_or_skip;
use kumo_tests::s3::S3Server;
use kumo_tests::sink::Sink;
use kumo_tests::{wait_until, Kumo};
use serde_json::{json, Value};

/// boto3's SNS client on the test server, then the script.
const SNS: &str = r#"
import json
sns = boto3.client('sns', endpoint_url=s3.meta.endpoint_url, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')
"#;

fn sns(s3: &S3Server, script: &str, args: &[&str]) -> String {
    s3.boto3(&format!("{SNS}{script}"), args)
}

fn create_topic(s3: &S3Server, name: &str) -> String {
    sns(
        s3,
        "print(sns.create_topic(Name=sys.argv[1])['TopicArn'])",
        &[name],
    )
    .trim()
    .to_string()
}

/// Publishes `message` with `subject` and String attributes (JSON).
fn publish(s3: &S3Server, topic: &str, message: &str, subject: &str, attributes: Value) {
    sns(
        s3,
        "attrs = {k: {'DataType': 'String', 'StringValue': v} for k, v in json.loads(sys.argv[4]).items()}\nsns.publish(TopicArn=sys.argv[1], Message=sys.argv[2], Subject=sys.argv[3], MessageAttributes=attrs)",
        &[topic, message, subject, &attributes.to_string()],
    );
}

/// The endpoints subscribed to `topic`.
fn subscribed(s3: &S3Server, topic: &str) -> Vec<String> {
    let out = sns(
        s3,
        "print(json.dumps([s['Endpoint'] for s in sns.list_subscriptions_by_topic(TopicArn=sys.argv[1])['Subscriptions']]))",
        &[topic],
    );
    serde_json::from_str(out.trim()).expect("subscriptions JSON")
}

fn kumo_with_sns(s3: &S3Server, dir: &std::path::Path) -> Kumo {
    let profile = s3.aws_profile_toml("moto", dir, "test", "test");
    Kumo::start_configured(
        &format!("[sns]\npublic_url = \"http://127.0.0.1:{{http_port}}\"\n\n{profile}sns_verify_signatures = false\n"),
        "",
    )
}

fn post(kumo: &Kumo, trigger: &str, body: &Value) -> (u16, String) {
    let reply = request(
        &kumo.http_address,
        "POST",
        &format!("/sns/{trigger}"),
        &[("Content-Type", "text/plain; charset=UTF-8")],
        body.to_string().as_bytes(),
    );
    (reply.status, reply.body)
}

/// A notification body as SNS POSTs it.
fn notification(topic: &str, id: &str, message: &str, attributes: Value) -> Value {
    json!({
        "Type": "Notification", "MessageId": id, "TopicArn": topic,
        "Subject": "posted", "Message": message,
        "Timestamp": "2026-12-07T12:00:00.000Z", "SignatureVersion": "1",
        "Signature": "c2ln", "SigningCertURL": "https://sns.us-east-1.amazonaws.com/c.pem",
        "UnsubscribeURL": "http://127.0.0.1/?Action=Unsubscribe",
        "MessageAttributes": attributes,
    })
}

/// `body` with `key` set to `value`.
fn with(body: &Value, key: &str, value: Value) -> Value {
    let mut body = body.clone();
    body[key] = value;
    body
}

/// The SNS events `function` received.
fn events(sink: &Sink, function: &str) -> Vec<Value> {
    sink.records()
        .into_iter()
        .filter(|r| r["function"] == function)
        .map(|r| r["event"].clone())
        .collect()
}

fn messages(sink: &Sink, function: &str) -> Vec<String> {
    let mut all: Vec<String> = events(sink, function)
        .iter()
        .map(|e| {
            e["Records"][0]["Sns"]["Message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    all.sort();
    all
}

#[test]
fn topics_deliver_filter_dedupe_and_unsubscribe() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = kumo_with_sns(&s3, work.path());
    let sink = Sink::start();
    kumo.create_reporter("snsfn", &sink, &[]);
    kumo.create_reporter("filtered", &sink, &[]);
    let topic = create_topic(&s3, &kumo_tests::s3::unique_bucket("orders"));

    let created = kumo.create_trigger(&[
        "orders",
        "--function",
        "snsfn",
        "--sns-topic",
        &topic,
        "--aws-profile",
        "moto",
    ]);
    let endpoint = format!("http://{}/sns/orders", kumo.http_address);
    assert_eq!(created["sns_topic"], topic.as_str(), "{created}");
    assert_eq!(created["endpoint"], endpoint.as_str(), "{created}");
    let subscription = created["subscription_arn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(subscription.starts_with(&topic), "{created}");
    assert!(subscribed(&s3, &topic).contains(&endpoint));

    // Published through moto: the function sees §10's event.
    publish(
        &s3,
        &topic,
        "hello from sns",
        "greeting",
        json!({"colour": "red"}),
    );
    wait_until("the SNS event", Duration::from_secs(60), || {
        !events(&sink, "snsfn").is_empty()
    });
    let event = &events(&sink, "snsfn")[0];
    let record = &event["Records"][0];
    assert_eq!(record["EventSource"], "aws:sns", "{event}");
    assert_eq!(record["EventVersion"], "1.0", "{event}");
    assert_eq!(
        record["EventSubscriptionArn"],
        subscription.as_str(),
        "{event}"
    );
    let sns_part = &record["Sns"];
    assert_eq!(sns_part["Message"], "hello from sns", "{event}");
    assert_eq!(sns_part["Subject"], "greeting", "{event}");
    assert_eq!(sns_part["TopicArn"], topic.as_str(), "{event}");
    assert_eq!(sns_part["Type"], "Notification", "{event}");
    assert!(sns_part["SigningCertUrl"].is_string(), "{event}");
    assert!(sns_part.get("SigningCertURL").is_none(), "{event}");

    // A notification with attributes, POSTed twice with one MessageId, runs once.
    let posted = notification(
        &topic,
        "redelivered-1",
        "twice posted",
        json!({"colour": {"Type": "String", "Value": "blue"}}),
    );
    assert_eq!(post(&kumo, "orders", &posted).0, 200);
    let (status, body) = post(&kumo, "orders", &posted);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicates\":1"), "{body}");
    wait_until("the posted event", Duration::from_secs(60), || {
        messages(&sink, "snsfn").contains(&"twice posted".to_string())
    });
    let posted_events: Vec<Value> = events(&sink, "snsfn")
        .into_iter()
        .filter(|e| e["Records"][0]["Sns"]["MessageId"] == "redelivered-1")
        .collect();
    assert_eq!(
        posted_events[0]["Records"][0]["Sns"]["MessageAttributes"]["colour"]["Value"],
        "blue"
    );

    // The filter policy: only matching attributes are queued.
    kumo.create_trigger(&[
        "picky",
        "--function",
        "filtered",
        "--sns-topic",
        &topic,
        "--aws-profile",
        "moto",
        "--filter-policy",
        r#"{"colour":["green"],"size":[{"numeric":[">",3]}]}"#,
    ]);
    let attrs = |colour: &str, size: &str| json!({"colour": {"Type": "String", "Value": colour}, "size": {"Type": "Number", "Value": size}});
    for (id, message, a, queued) in [
        ("f1", "green big", attrs("green", "5"), true),
        ("f2", "green small", attrs("green", "2"), false),
        ("f3", "red big", attrs("red", "9"), false),
        ("f4", "no attributes", json!({}), false),
    ] {
        let (status, body) = post(&kumo, "picky", &notification(&topic, id, message, a));
        assert_eq!(status, 200, "{body}");
        let reply: Value = serde_json::from_str(&body).expect("JSON reply");
        assert_eq!(reply["queued"], u64::from(queued), "{message}: {body}");
        assert_eq!(
            reply["filtered"].as_u64().unwrap_or(0),
            u64::from(!queued),
            "{message}: {body}"
        );
    }
    wait_until("the filtered event", Duration::from_secs(60), || {
        !messages(&sink, "filtered").is_empty()
    });
    assert_eq!(messages(&sink, "filtered"), vec!["green big".to_string()]);
    assert_eq!(
        messages(&sink, "snsfn"),
        vec!["hello from sns".to_string(), "twice posted".to_string()]
    );

    // Deleting unsubscribes.
    let run = kumo.cli(&["trigger", "delete", "orders"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!subscribed(&s3, &topic).contains(&endpoint));
    assert_eq!(post(&kumo, "orders", &posted).0, 404);
}

#[test]
fn refusals_and_hostile_posts() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = kumo_with_sns(&s3, work.path());
    let sink = Sink::start();
    kumo.create_reporter("target", &sink, &[]);
    let topic = create_topic(&s3, &kumo_tests::s3::unique_bucket("hostile"));
    let other_topic = topic.replace("hostile", "elsewhere");

    // Create-time refusals: unknown topic, bad policy, unknown profile.
    for (args, expect) in [
        (
            vec!["--sns-topic", other_topic.as_str(), "--aws-profile", "moto"],
            "GetTopicAttributes",
        ),
        (
            vec!["--sns-topic", "not-an-arn", "--aws-profile", "moto"],
            "not an SNS topic ARN",
        ),
        (
            vec![
                "--sns-topic",
                topic.as_str(),
                "--aws-profile",
                "moto",
                "--filter-policy",
                r#"{"a":"x"}"#,
            ],
            "filter",
        ),
        (
            vec!["--sns-topic", topic.as_str(), "--aws-profile", "nobody"],
            "no AWS profile",
        ),
    ] {
        let mut all = vec!["trigger", "create", "bad", "--function", "target"];
        all.extend(args);
        let run = kumo.cli(&all);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(run.stderr.contains(expect), "{expect}: {run:?}");
    }
    kumo.create_trigger(&[
        "hostile",
        "--function",
        "target",
        "--sns-topic",
        &topic,
        "--aws-profile",
        "moto",
    ]);

    let good = notification(&topic, "ok-1", "fine", json!({}));
    for (body, status) in [
        (Value::String("garbage".into()), 400),
        (json!({"Type": "Notification"}), 400),
        (
            notification(&other_topic, "x-1", "elsewhere", json!({})),
            400,
        ),
        (with(&good, "SignatureVersion", json!("9")), 400),
        (
            with(&good, "MessageAttributes", json!({"a": "not an attribute"})),
            400,
        ),
        (
            json!({
                "Type": "SubscriptionConfirmation", "MessageId": "c-1", "Token": "t",
                "TopicArn": topic, "Message": "confirm",
                "SubscribeURL": "http://evil.example/?Action=ConfirmSubscription",
                "Timestamp": "ts", "SignatureVersion": "1", "Signature": "c2ln",
                "SigningCertURL": "https://sns.us-east-1.amazonaws.com/c.pem"
            }),
            400,
        ),
    ] {
        let (got, text) = post(&kumo, "hostile", &body);
        assert_eq!(got, status, "{body}: {text}");
    }
    assert_eq!(post(&kumo, "nosuchtrigger", &good).0, 404);
    let raw = request(
        &kumo.http_address,
        "POST",
        "/sns/hostile",
        &[],
        b"\xff\xfe\x00",
    );
    assert_eq!(raw.status, 400, "{}", raw.body);
    let get = request(&kumo.http_address, "GET", "/sns/hostile", &[], b"");
    assert_eq!(get.status, 405, "{}", get.body);

    // A confirmation whose SubscribeURL is on the SNS host is confirmed
    // with ConfirmSubscription.
    let confirmation = json!({
        "Type": "SubscriptionConfirmation", "MessageId": "c-2", "Token": "tok",
        "TopicArn": topic, "Message": "confirm",
        "SubscribeURL": format!("{}/?Action=ConfirmSubscription&Token=tok", s3.endpoint),
        "Timestamp": "ts", "SignatureVersion": "1", "Signature": "c2ln",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/c.pem"
    });
    let (status, text) = post(&kumo, "hostile", &confirmation);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("confirmed"), "{text}");

    // Nothing hostile was queued; the good one runs.
    assert_eq!(post(&kumo, "hostile", &good).0, 200);
    wait_until("the good event", Duration::from_secs(60), || {
        !events(&sink, "target").is_empty()
    });
    assert_eq!(messages(&sink, "target"), vec!["fine".to_string()]);
}

#[test]
fn wrong_credentials_are_refused_at_create() {
    if !root_or_skip() {
        return;
    }
    // A server of its own that checks signatures, and a key allowed
    // everything.
    let (s3, id, secret) = S3Server::start_with_iam();
    let (id, secret) = (id.as_str(), secret.as_str());
    let work = tempfile::tempdir().expect("temp dir");
    let kumo = Kumo::start_configured(
        &format!(
            "[sns]\npublic_url = \"http://127.0.0.1:{{http_port}}\"\n\n{}sns_verify_signatures = false\n{}sns_verify_signatures = false\n",
            s3.aws_profile_toml("moto", work.path(), id, secret),
            s3.aws_profile_toml("wrong", work.path(), id, "not-the-secret")
        ),
        "",
    );
    let topic = sns(
        &s3,
        &format!("sns = boto3.client('sns', endpoint_url=s3.meta.endpoint_url, aws_access_key_id={id:?}, aws_secret_access_key={secret:?}, region_name='us-east-1')\nprint(sns.create_topic(Name='creds')['TopicArn'])"),
        &[],
    )
    .trim()
    .to_string();
    let sink = Sink::start();
    kumo.create_reporter("target", &sink, &[]);
    let run = kumo.cli(&[
        "trigger",
        "create",
        "t",
        "--function",
        "target",
        "--sns-topic",
        &topic,
        "--aws-profile",
        "wrong",
    ]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("GetTopicAttributes"), "{run:?}");
    assert!(
        run.stderr.contains("SignatureDoesNotMatch") || run.stderr.contains("InvalidClientTokenId"),
        "{run:?}"
    );
    let listed = kumo.cli(&["trigger", "list", "--output", "json"]).json();
    assert_eq!(listed, json!([]), "nothing was created");
    let created = kumo.create_trigger(&[
        "t",
        "--function",
        "target",
        "--sns-topic",
        &topic,
        "--aws-profile",
        "moto",
    ]);
    assert_eq!(created["sns_topic"], topic.as_str(), "{created}");
}

//! The book's chapter 6 application end to end on the test server (moto:
//! S3, SQS, SNS, SES and DynamoDB in one process). An upload is queued to
//! SQS by the bucket's own notification configuration (moto delivers it
//! in-process); the "mailer" function (boto3 bundled, credentials from a
//! kumod AWS profile) drains the queue in batches through
//! `kumo trigger create --sqs-queue`, reads recipients from a DynamoDB
//! table and sends mail through SES; a bounce notification published to
//! an SNS topic reaches the "bounces" function through
//! `kumo trigger create --sns-topic`, which marks the address in the
//! table. The test checks SES's sent-mail records and the table.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use kumo_tests::s3::{unique_bucket as unique, S3Server};
use kumo_tests::sqs::{create_queue, depth};
use kumo_tests::{fixture, root_or_skip, wait_until, Kumo};
use serde_json::{json, Value};

/// boto3 clients for the services the test sets up, then the script.
const CLIENTS: &str = r#"
import json, urllib.request
kw = dict(endpoint_url=s3.meta.endpoint_url, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')
sns, ses, ddb = boto3.client('sns', **kw), boto3.client('ses', **kw), boto3.resource('dynamodb', **kw)
"#;

/// Creates the recipients table `argv[1]` and puts the items `argv[2]`.
const CREATE_TABLE: &str = r#"
t = ddb.create_table(TableName=sys.argv[1], KeySchema=[{'AttributeName': 'email', 'KeyType': 'HASH'}],
    AttributeDefinitions=[{'AttributeName': 'email', 'AttributeType': 'S'}], BillingMode='PAY_PER_REQUEST')
t.wait_until_exists()
for item in json.loads(sys.argv[2]):
    t.put_item(Item=item)
"#;

/// Prints the mail SES sent from `argv[1]` as [[to, subject, body]], from
/// moto's state dump.
const SENT: &str = r#"
data = json.load(urllib.request.urlopen(s3.meta.endpoint_url + '/moto-api/data.json'))
print(json.dumps(sorted([to, m['subject'], m['body']] for m in data['ses']['Message']
    if m['source'] == sys.argv[1] for to in m['destinations']['ToAddresses'])))
"#;

fn aws(s3: &S3Server, script: &str, args: &[&str]) -> Value {
    let out = s3.boto3(&format!("{CLIENTS}{script}"), args);
    serde_json::from_str(out.trim()).unwrap_or(Value::Null)
}

/// The table's items as {email: bounce_type or "ok"}.
fn table(s3: &S3Server, name: &str) -> Value {
    aws(
        s3,
        "print(json.dumps({i['email']: i.get('bounce_type', 'ok') for i in ddb.Table(sys.argv[1]).scan()['Items']}))",
        &[name],
    )
}

/// (to, subject) of each mail SES sent from `sender`.
fn sent(s3: &S3Server, sender: &str) -> BTreeSet<(String, String)> {
    aws(s3, SENT, &[sender])
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m[0].as_str().unwrap_or("").into(),
                m[1].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

/// Creates `name` from `fixtures/NAME` with boto3 bundled, credentials
/// from the `moto` profile and moto as every service's endpoint.
fn create_function(kumo: &Kumo, s3: &S3Server, work: &Path, name: &str, env: &[String]) {
    let zip = work.join(format!("{name}.zip"));
    s3.package_with_vendor(&[&fixture(name).join("lambda_function.py")], &zip);
    // The profile's endpoint reaches DynamoDB and SES too (kumod passes it
    // as AWS_ENDPOINT_URL).
    let mut args = vec!["--credentials", "moto", "--network", "host"];
    args.extend_from_slice(&["--memory", "256", "--timeout", "20"]);
    for e in env {
        args.extend_from_slice(&["--env", e]);
    }
    kumo.create(
        name,
        "python3",
        "lambda_function.lambda_handler",
        &zip,
        &args,
    );
}

#[test]
fn uploads_are_mailed_and_bounces_are_marked() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let id = unique("ch6");
    let (bucket, recipients) = (format!("{id}-mail"), format!("{id}-recipients"));
    let sender = format!("news-{id}@example.com");
    let at = |who: &str| format!("{who}-{id}@example.com");
    let (alice, bob, carol, dave) = (at("alice"), at("bob"), at("carol"), at("dave"));

    // The AWS side: queue, bucket notifying it, table, verified sender, topic.
    let queue = create_queue(&s3, &format!("{id}-uploads"), json!({}));
    s3.boto3(
        "s3.create_bucket(Bucket=sys.argv[1])\ns3.put_bucket_notification_configuration(Bucket=sys.argv[1], NotificationConfiguration={'QueueConfigurations': [{'QueueArn': sys.argv[2], 'Events': ['s3:ObjectCreated:*']}]})",
        &[&bucket, &queue.arn],
    );
    let items = json!([
        {"email": alice, "list": "news"},
        {"email": bob, "list": "news"},
        {"email": carol, "list": "news"},
        {"email": dave, "list": "other"},
    ]);
    aws(&s3, CREATE_TABLE, &[&recipients, &items.to_string()]);
    aws(
        &s3,
        "ses.verify_email_identity(EmailAddress=sys.argv[1])",
        &[&sender],
    );
    let topic = aws(
        &s3,
        "print(json.dumps(sns.create_topic(Name=sys.argv[1])['TopicArn']))",
        &[&format!("{id}-bounces")],
    );
    let topic = topic.as_str().expect("topic ARN").to_string();

    // kumod with the moto profile, SNS delivering to its HTTP port.
    let profile = s3.aws_profile_toml("moto", work.path(), "test", "test");
    let kumo = Kumo::start_configured(
        &format!("[sns]\npublic_url = \"http://127.0.0.1:{{http_port}}\"\n\n{profile}sns_verify_signatures = false\n"),
        "",
    );
    let table_env = format!("TABLE={recipients}");
    create_function(
        &kumo,
        &s3,
        work.path(),
        "mailer",
        &[table_env.clone(), format!("SENDER={sender}")],
    );
    create_function(&kumo, &s3, work.path(), "bounces", &[table_env]);
    assert_eq!(kumo.function("mailer")["credentials_profile"], "moto");
    let created = kumo.create_trigger(&[
        "uploads",
        "--function",
        "mailer",
        "--sqs-queue",
        &queue.url,
        "--aws-profile",
        "moto",
        "--batch-size",
        "5",
        "--batch-window",
        "2",
    ]);
    assert_eq!(created["batch_size"], 5, "{created}");
    assert_eq!(created["queue_arn"], queue.arn.as_str(), "{created}");
    let created = kumo.create_trigger(&[
        "ses-bounces",
        "--function",
        "bounces",
        "--sns-topic",
        &topic,
        "--aws-profile",
        "moto",
    ]);
    assert_eq!(created["sns_topic"], topic.as_str(), "{created}");

    // SES reports bob's mail bounced: the bounces function marks him.
    let bounce = json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"emailAddress": bob}],
                   "timestamp": "2026-12-07T12:00:00.000Z", "feedbackId": "f-1"},
        "mail": {"source": sender, "messageId": "m-1", "destination": [bob]},
    });
    aws(
        &s3,
        "sns.publish(TopicArn=sys.argv[1], Message=sys.argv[2])",
        &[&topic, &bounce.to_string()],
    );
    wait_until("bob marked as bounced", Duration::from_secs(90), || {
        table(&s3, &recipients)[&bob] == "Permanent"
    });

    // Three uploads: two issues to the "news" list, one to named addresses.
    let mails = json!([
        ["issues/1 spring.json", {"list": "news", "subject": "Issue 1", "body": "spring news"}],
        ["issues/2.json", {"list": "news", "subject": "Issue 2", "body": "summer news"}],
        ["direct.json", {"recipients": [dave, bob], "subject": "Hello", "body": "hi"}],
    ]);
    aws(
        &s3,
        "for key, mail in json.loads(sys.argv[2]):\n    s3.put_object(Bucket=sys.argv[1], Key=key, Body=json.dumps(mail).encode())",
        &[&bucket, &mails.to_string()],
    );
    let expected: BTreeSet<(String, String)> = [
        (&alice, "Issue 1"),
        (&carol, "Issue 1"),
        (&alice, "Issue 2"),
        (&carol, "Issue 2"),
        (&dave, "Hello"),
    ]
    .into_iter()
    .map(|(to, subject)| (to.clone(), subject.to_string()))
    .collect();
    wait_until("the mail of the uploads", Duration::from_secs(120), || {
        sent(&s3, &sender).len() >= expected.len() && depth(&s3, &queue) == 0
    });
    let logs = kumo.logs("mailer");
    assert_eq!(
        sent(&s3, &sender),
        expected,
        "mailer logs:\n{logs}\nkumod:\n{}",
        kumo.log()
    );
    // Every mail went once, with the uploaded body.
    let all = aws(&s3, SENT, &[&sender]);
    assert_eq!(all.as_array().map(Vec::len), Some(5), "{all}");
    assert!(all
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m == &json!([alice, "Issue 1", "spring news"])));
    assert!(logs.contains("issues/1 spring.json"), "{logs}");

    // moto's s3:TestEvent (sent when the configuration was put) and the
    // three uploads' messages were all processed, none failed.
    let info = || {
        kumo.cli(&["trigger", "get", "uploads", "--output", "json"])
            .json()
    };
    wait_until("four messages processed", Duration::from_secs(60), || {
        info()["processed"].as_u64().unwrap_or(0) >= 4
    });
    let info = info();
    assert_eq!(info["failed"], 0, "{info}");
    assert_eq!(info["processed"], 4, "{info}");
    assert_eq!(
        table(&s3, &recipients),
        json!({alice.as_str(): "ok", bob.as_str(): "Permanent", carol.as_str(): "ok", dave.as_str(): "ok"})
    );
}

//! SQS event-source test helpers: a reporting handler whose failures the
//! message bodies choose, queue set-up and inspection through boto3 on the
//! moto server, and reading the handlers' reports.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::s3::S3Server;
use crate::sink::Sink;
use crate::Kumo;

/// Reports each batch to the sink (BRIEF: ids, 20-byte body heads and
/// the event's size only) (at its start with `phase` "start" when
/// SLEEP_PHASES is set, and at its end), then fails as the bodies ask, on
/// a message's first receive only: `raise` raises, `fail` is listed in
/// `batchItemFailures` (MODE=partial); MODE=unknown lists an id that is
/// in no batch.
pub const HANDLER: &str = r#"
import json, os, socket, time

def report(record):
    host, port = os.environ["SINK"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall((json.dumps(record) + "\n").encode())
        conn.makefile().readline()

def parse(body):
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

def handler(event, context):
    start = time.time()
    records = event["Records"]
    bodies = [parse(r["body"]) for r in records]
    first = [r["attributes"].get("ApproximateReceiveCount") == "1" for r in records]
    base = {"function": context.function_name, "ids": [r["messageId"] for r in records],
            "bodies": [r["body"] for r in records], "records": records, "start": start}
    if os.environ.get("BRIEF"):
        base = {"function": context.function_name, "ids": base["ids"], "start": start,
                "bytes": len(json.dumps(event, separators=(",", ":"))), "bodies": [r["body"][:20] for r in records]}
    if os.environ.get("SLEEP_PHASES"):
        report(dict(base, phase="start"))
    time.sleep(max([b.get("sleep", 0) for b in bodies] + [0]))
    report(dict(base, phase="end", end=time.time()))
    if any(b.get("raise") and f for b, f in zip(bodies, first)):
        raise ValueError("asked to fail")
    mode = os.environ.get("MODE", "")
    if mode == "partial":
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                for r, b, f in zip(records, bodies, first) if b.get("fail") and f]}
    if mode == "unknown" and any(first):
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    return {"handled": len(records)}
"#;

/// Creates a queue (attributes as JSON) and prints its URL and ARN.
pub const CREATE_QUEUE: &str = r#"
import json
url = sqs.create_queue(QueueName=sys.argv[1], Attributes=json.loads(sys.argv[2]))["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
print(json.dumps({"url": url, "arn": arn}))
"#;

/// Sends messages given as a JSON list of {body, group?, attributes?}.
pub const SEND: &str = r#"
import json
url = sys.argv[1]
for i, m in enumerate(json.loads(sys.argv[2])):
    extra = {}
    if "group" in m:
        extra["MessageGroupId"] = m["group"]
        extra["MessageDeduplicationId"] = str(i) + m["body"][:40]
    if "attributes" in m:
        extra["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in m["attributes"].items()}
    sqs.send_message(QueueUrl=url, MessageBody=m["body"], **extra)
"#;

/// Prints the queue's visible + in-flight message counts.
pub const DEPTH: &str = r#"
a = sqs.get_queue_attributes(QueueUrl=sys.argv[1], AttributeNames=["All"])["Attributes"]
print(int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]))
"#;

/// A queue of the test server.
pub struct Queue {
    /// Its URL.
    pub url: String,
    /// Its ARN.
    pub arn: String,
}

/// Creates a queue with these attributes.
pub fn create_queue(s3: &S3Server, name: &str, attributes: Value) -> Queue {
    let out: Value = serde_json::from_str(
        s3.boto3(CREATE_QUEUE, &[name, &attributes.to_string()])
            .trim(),
    )
    .expect("queue JSON");
    Queue {
        url: out["url"].as_str().unwrap_or_default().to_string(),
        arn: out["arn"].as_str().unwrap_or_default().to_string(),
    }
}

/// Sends messages (a JSON list of {body, group?, attributes?}).
pub fn send(s3: &S3Server, queue: &Queue, messages: Value) {
    s3.boto3(SEND, &[&queue.url, &messages.to_string()]);
}

/// Visible + in-flight messages of the queue.
pub fn depth(s3: &S3Server, queue: &Queue) -> u64 {
    s3.boto3(DEPTH, &[&queue.url])
        .trim()
        .parse()
        .unwrap_or(u64::MAX)
}

/// A queue name unique to this run.
pub fn unique(base: &str) -> String {
    crate::s3::unique_bucket(base)
}

/// kumod with an `[aws.profiles.moto]` on the test server.
pub fn kumo_with_profile(s3: &S3Server, dir: &std::path::Path) -> Kumo {
    Kumo::start_configured(&s3.aws_profile_toml("moto", dir, "test", "test"), "")
}

/// A handler function `name` reporting to `sink` (`env` as KEY=VALUE).
pub fn create_handler(kumo: &Kumo, name: &str, sink: &Sink, env: &[&str]) {
    let sink_env = format!("SINK={}", sink.address);
    let mut args = vec!["--network", "host", "--env", &sink_env, "--timeout", "5"];
    for e in env {
        args.extend_from_slice(&["--env", e]);
    }
    kumo.create_python(name, HANDLER, &args);
}

/// The "end" reports of `function`.
pub fn ends(sink: &Sink, function: &str) -> Vec<Value> {
    sink.records()
        .into_iter()
        .filter(|r| r["function"] == function && r["phase"] == "end")
        .collect()
}

/// How many times each body reached `function`.
pub fn deliveries(sink: &Sink, function: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for report in ends(sink, function) {
        for body in report["bodies"].as_array().into_iter().flatten() {
            *counts
                .entry(body.as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    counts
}

/// Waits until `check` holds (panics after `timeout`).
pub fn wait_for(what: &str, timeout: Duration, check: impl Fn() -> bool) {
    crate::wait_until(what, timeout, check);
}

/// `n` JSON bodies `{"n":i,"p":prefix}`.
pub fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{{\"n\":{i},\"p\":\"{prefix}\"}}"))
        .collect()
}

/// `kumo trigger create NAME --function F --sqs-queue URL --aws-profile moto EXTRA…`.
pub fn trigger(kumo: &Kumo, name: &str, function: &str, queue: &Queue, extra: &[&str]) -> Value {
    let mut args = vec![
        name,
        "--function",
        function,
        "--sqs-queue",
        &queue.url,
        "--aws-profile",
        "moto",
    ];
    args.extend_from_slice(extra);
    kumo.create_trigger(&args)
}

/// Most batches running at once, from the handlers' own timestamps.
pub fn most_overlapping(reports: &[Value]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for r in reports {
        if let (Some(start), Some(end)) = (r["start"].as_f64(), r["end"].as_f64()) {
            edges.push((start, 1));
            edges.push((end, -1));
        }
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

//! Lambda's Invoke API with the real boto3 (PyPI) against kumod: results,
//! function errors, log tails, Event and DryRun, qualifiers and ARNs (an
//! ARN of another region or account is not found, over HTTP and gRPC), the
//! AWS exceptions (not found, throttled, too large), and SigV4 refusals.

use kumo_tests::http::request;
use kumo_tests::s3::run_python;
use kumo_tests::{root_or_skip, wait_until, Kumo};

use kumo_tests::INVOKE_API_KEYS as KEYS;

const BOTO3: &str = r#"
import base64, json, sys
import boto3, botocore
from botocore.config import Config

endpoint, secret = sys.argv[1], sys.argv[2]
lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="AKIDKUMOTEST", aws_secret_access_key=secret,
                   config=Config(retries={"max_attempts": 0}))
out = {}
if secret != "kumo-test-secret":
    try:
        lam.invoke(FunctionName="div", Payload=b"{}")
    except botocore.exceptions.ClientError as e:
        out["denied"] = [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]]
    print(json.dumps(out)); sys.exit(0)

r = lam.invoke(FunctionName="div", Payload=json.dumps({"x": 6, "y": 3}))
out["ok"] = [r["StatusCode"], r["ExecutedVersion"], json.load(r["Payload"])]
r = lam.invoke(FunctionName="div", Payload=b'{"x": 1, "y": 0}', LogType="Tail")
out["error"] = [r["FunctionError"], json.load(r["Payload"])["errorType"], base64.b64decode(r["LogResult"]).decode()]
out["event"] = lam.invoke(FunctionName="div", InvocationType="Event", Payload=b'{"x": 1, "y": 1}')["StatusCode"]
out["dry"] = lam.invoke(FunctionName="div", InvocationType="DryRun")["StatusCode"]
r = lam.invoke(FunctionName="div", Qualifier="prod", Payload=b'{"x": 8, "y": 2}')
out["alias"] = [r["ExecutedVersion"], json.load(r["Payload"])]
r = lam.invoke(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:div:1", Payload=b'{"x": 9, "y": 3}')
out["arn"] = [r["ExecutedVersion"], json.load(r["Payload"])]
for name, kwargs in [("missing", {"FunctionName": "nope"}),
                     ("throttled", {"FunctionName": "off"}),
                     ("too_large", {"FunctionName": "div", "Payload": b'"' + b"x" * (7 * 1024 * 1024) + b'"'}),
                     ("bad_json", {"FunctionName": "div", "Payload": b"{nope"}),
                     ("bad_qualifier", {"FunctionName": "div", "Qualifier": "staging"})]:
    try:
        lam.invoke(**kwargs)
        out[name] = "no error"
    except botocore.exceptions.ClientError as e:
        out[name] = [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]]
out["elsewhere"] = {}
for arn in ["arn:aws:lambda:eu-west-1:000000000000:function:div",
            "arn:aws:lambda:us-east-1:123456789012:function:div:1",
            "123456789012:function:div"]:
    for invocation_type in ["RequestResponse", "Event"]:
        try:
            lam.invoke(FunctionName=arn, InvocationType=invocation_type, Payload=b'{"x": 1, "y": 1}')
            out["elsewhere"][arn + " " + invocation_type] = "ran"
        except botocore.exceptions.ClientError as e:
            out["elsewhere"][arn + " " + invocation_type] = [
                e.response["ResponseMetadata"]["HTTPStatusCode"],
                e.response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-errortype"),
                e.response["Error"]["Message"]]
print(json.dumps(out))
"#;

#[test]
fn boto3_invokes_kumo_functions() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(KEYS, "");
    kumo.create_division("div", &[]);
    kumo.create_division("off", &["--concurrency", "0"]);
    assert_eq!(kumo.cli(&["version", "publish", "div"]).code, 0);
    assert_eq!(
        kumo.cli(&["alias", "create", "div", "prod", "--version", "1"])
            .code,
        0
    );
    let endpoint = format!("http://{}", kumo.http_address);
    let out: serde_json::Value =
        serde_json::from_str(run_python(BOTO3, &[&endpoint, "kumo-test-secret"]).trim()).unwrap();
    assert_eq!(
        out["ok"],
        serde_json::json!([200, "$LATEST", {"result": 2.0}]),
        "{out}"
    );
    assert_eq!(out["error"][0], "Unhandled");
    assert_eq!(out["error"][1], "ZeroDivisionError");
    let tail = out["error"][2].as_str().unwrap();
    assert!(
        tail.contains("dividing 1 by 0")
            && tail.contains("START RequestId")
            && tail.contains("REPORT RequestId"),
        "{tail}"
    );
    assert_eq!(out["event"], 202);
    assert_eq!(out["dry"], 204);
    assert_eq!(out["alias"], serde_json::json!(["1", {"result": 4.0}]));
    assert_eq!(out["arn"], serde_json::json!(["1", {"result": 3.0}]));
    assert_eq!(
        out["missing"],
        serde_json::json!([404, "ResourceNotFoundException"])
    );
    assert_eq!(
        out["throttled"],
        serde_json::json!([429, "TooManyRequestsException"])
    );
    assert_eq!(
        out["too_large"],
        serde_json::json!([413, "RequestTooLargeException"])
    );
    assert_eq!(
        out["bad_json"],
        serde_json::json!([400, "InvalidRequestContentException"])
    );
    assert_eq!(
        out["bad_qualifier"],
        serde_json::json!([404, "ResourceNotFoundException"])
    );
    // ARNs naming another region or account are not this kumod's functions.
    let elsewhere = out["elsewhere"].as_object().unwrap();
    assert_eq!(elsewhere.len(), 6, "{out}");
    for (call, refusal) in elsewhere {
        let arn = call.split(' ').next().unwrap();
        let shown = if arn.starts_with("arn:") {
            arn.to_string()
        } else {
            format!("arn:aws:lambda:us-east-1:{arn}")
        };
        assert_eq!(
            refusal,
            &serde_json::json!([
                404,
                "ResourceNotFoundException",
                format!("Function not found: {shown}")
            ]),
            "{call}"
        );
    }
    // The Event ran.
    wait_until(
        "the Event invocation to run",
        std::time::Duration::from_secs(20),
        || kumo.logs("div").contains("dividing 1 by 1"),
    );

    let denied: serde_json::Value =
        serde_json::from_str(run_python(BOTO3, &[&endpoint, "wrong-secret"]).trim()).unwrap();
    assert_eq!(
        denied["denied"],
        serde_json::json!([403, "InvalidSignatureException"])
    );
}

#[test]
fn grpc_refuses_arns_of_another_region_or_account() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create_division("div", &[]);
    kumo.create_division("other", &[]);
    let here = "arn:aws:lambda:us-east-1:000000000000:function:div";
    assert_eq!(kumo.invoke_ok(here, r#"{"x": 4, "y": 2}"#)["result"], 2.0);
    for arn in [
        "arn:aws:lambda:eu-west-1:000000000000:function:div",
        "arn:aws:lambda:us-east-1:123456789012:function:div",
    ] {
        for extra in [&[][..], &["--async"][..]] {
            let mut args = vec!["invoke", arn, "--payload", r#"{"x": 1, "y": 1}"#];
            args.extend_from_slice(extra);
            let run = kumo.cli(&args);
            assert_eq!(run.code, 2, "{arn} {extra:?}: {run:?}");
            assert!(
                run.stderr.contains(&format!("Function not found: {arn}")),
                "{run:?}"
            );
        }
        let run = kumo.cli(&[
            "trigger",
            "create",
            "t",
            "--function",
            arn,
            "--schedule",
            "rate(1 hour)",
        ]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("Function not found"), "{run:?}");
        let run = kumo.cli(&["function", "update", "other", "--on-failure", arn]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(
            run.stderr.contains(&format!("Function not found: {arn}")),
            "{run:?}"
        );
    }
    assert_eq!(kumo.function("other")["on_failure_destination"], "");
    let run = kumo.cli(&["function", "update", "other", "--on-failure", here]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!kumo.logs("div").contains("dividing 1 by 1"), "nothing ran");
}

#[test]
fn unsigned_and_malformed_requests_are_refused() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(KEYS, "");
    kumo.create_division("div", &[]);
    let path = "/2015-03-31/functions/div/invocations";
    let http = &kumo.http_address;
    let unsigned = request(http, "POST", path, &[], b"{}");
    assert_eq!(unsigned.status, 403, "{unsigned:?}");
    assert!(
        unsigned
            .body
            .contains("MissingAuthenticationTokenException"),
        "{unsigned:?}"
    );
    for auth in [
        "AWS4-HMAC-SHA256 garbage",
        "AWS4-HMAC-SHA256 Credential=AKIDKUMOTEST/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        "Basic dXNlcjpwYXNz",
    ] {
        let reply = request(http, "POST", path, &[("Authorization", auth), ("X-Amz-Date", "20260101T000000Z")], b"{}");
        assert_eq!(reply.status, 403, "{auth}: {reply:?}");
        assert!(reply.json()["__type"].as_str().unwrap().ends_with("Exception"), "{reply:?}");
    }
    // A 100 MB body is refused from its Content-Length, before it is read.
    let started = std::time::Instant::now();
    let huge = vec![b'x'; 100 * 1024 * 1024];
    let reply = request(http, "POST", path, &[], &huge);
    assert_eq!(reply.status, 413, "{}", reply.body);
    eprintln!("100 MB body refused in {:?}", started.elapsed());
    let reply = request(http, "GET", path, &[], b"");
    assert_eq!(reply.status, 405);
    // Malformed HTTP gets a 400 (or a closed connection) and kumod keeps serving.
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(http).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "{answer:?}"
        );
    }
    assert_eq!(request(http, "GET", "/healthz", &[], b"").status, 200);
    let reply = request(
        http,
        "POST",
        "/2015-03-31/functions/a%2Fb/invocations",
        &[],
        b"",
    );
    assert!(reply.status == 403 || reply.status == 400, "{reply:?}");
}

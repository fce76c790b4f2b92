//! Lambda's management API against inputs boto3 would never send (bad
//! base64, not a zip, slip and bomb zips, bad JSON, a 70 MB body), Lambda's
//! runtime identifiers with the interpreter-version warning, and packages
//! fetched from S3 (moto) through `[invoke_api] code_s3_profile`.

use std::process::Command;

use kumo_tests::s3::run_python;
use kumo_tests::{assert_refused, root_or_skip, Kumo, INVOKE_API_KEYS};
use serde_json::{json, Value};

/// Raw signed requests boto3 would never send: bad base64, bad zips, bad
/// JSON, an oversized body.
const RAW: &str = r#"
import base64, io, json, socket, sys, zipfile, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint = sys.argv[1]
creds = Credentials("AKIDKUMOTEST", "kumo-test-secret")
def send(method, path, body):
    request = AWSRequest(method=method, url=endpoint + path, data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(creds, "lambda", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(http) as r:
            return [r.status, None, ""]
    except urllib.error.HTTPError as e:
        return [e.code, e.headers.get("x-amzn-ErrorType"), json.loads(e.read() or b"{}").get("message", "")]
def create_body(zip_b64):
    return json.dumps({"FunctionName": "h", "Runtime": "python3.12", "Role": "r",
                       "Handler": "lambda_function.handler", "Code": {"ZipFile": zip_b64}}).encode()
def zipped(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return base64.b64encode(buf.getvalue()).decode()
out = {}
out["not_base64"] = send("POST", "/2015-03-31/functions", create_body("!!!not base64!!!"))
out["not_zip"] = send("POST", "/2015-03-31/functions", create_body(base64.b64encode(b"hello").decode()))
out["slip"] = send("POST", "/2015-03-31/functions", create_body(zipped([("lambda_function.py", "x=1"), ("../../evil.py", "x=1")])))
out["bomb"] = send("POST", "/2015-03-31/functions", create_body(zipped([("lambda_function.py", "x=1"), ("zeros.bin", b"\0" * (300 * 1024 * 1024))])))
out["bad_json"] = send("POST", "/2015-03-31/functions", b"{nope")
out["wrong_types"] = send("POST", "/2015-03-31/functions", b'{"FunctionName": 5}')
out["no_code"] = send("POST", "/2015-03-31/functions", json.dumps({"FunctionName": "h", "Runtime": "python3.12", "Role": "r", "Handler": "a.b"}).encode())
out["bad_max_items"] = send("GET", "/2015-03-31/functions/?MaxItems=0", b"")
out["unknown_path"] = send("GET", "/2099-01-01/whatever", b"")
host, port = endpoint[len("http://"):].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 73400320\r\n\r\n")
reply = s.recv(4096).decode(errors="replace")
s.close()
out["huge"] = [reply.split(" ")[1], "RequestTooLargeException" in reply]
print(json.dumps(out))
"#;

#[test]
fn hostile_management_requests_are_refused_and_lose_nothing() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(INVOKE_API_KEYS, "");
    kumo.create_division("div", &[]);
    let endpoint = format!("http://{}", kumo.http_address);
    let out: Value = serde_json::from_str(run_python(RAW, &[&endpoint]).trim()).unwrap();
    let refused = |key: &str, status: u64, code: &str, words: &str| {
        assert_refused(&out[key], key, (status, code), words)
    };
    refused(
        "not_base64",
        400,
        "InvalidParameterValueException",
        "not valid base64",
    );
    refused(
        "not_zip",
        400,
        "InvalidParameterValueException",
        "invalid package",
    );
    refused("slip", 400, "InvalidParameterValueException", "'..'");
    refused(
        "bomb",
        400,
        "InvalidParameterValueException",
        "unpacks to more than",
    );
    refused(
        "bad_json",
        400,
        "InvalidRequestContentException",
        "Could not parse",
    );
    refused(
        "wrong_types",
        400,
        "InvalidRequestContentException",
        "Could not parse",
    );
    refused("no_code", 400, "InvalidParameterValueException", "ZipFile");
    refused(
        "bad_max_items",
        400,
        "InvalidParameterValueException",
        "MaxItems",
    );
    refused(
        "unknown_path",
        400,
        "UnsupportedOperationException",
        "GET /2099-01-01/whatever",
    );
    assert_eq!(out["huge"], json!(["413", true]), "{out}");
    assert_ne!(
        kumo.cli(&["function", "get", "h"]).code,
        0,
        "nothing created"
    );
    assert_eq!(kumo.invoke_ok("div", r#"{"x": 6, "y": 2}"#)["result"], 3.0);
}

/// boto3's CreateFunction while kumod cannot store packages: `[status,
/// code, message, boto3 raised its ServiceException class]`.
const SERVICE_FAILURE: &str = r#"
import base64, io, json, sys, zipfile
import boto3, botocore
lam = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="AKIDKUMOTEST", aws_secret_access_key="kumo-test-secret",
                   config=botocore.config.Config(retries={"max_attempts": 0}))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("lambda_function.py", "def handler(e, c):\n    return 'stored'\n")
try:
    lam.create_function(FunctionName=sys.argv[2], Runtime="python3.12", Role="r",
                        Handler="lambda_function.handler", Code={"ZipFile": buf.getvalue()})
    print(json.dumps("no error"))
except lam.exceptions.ServiceException as e:
    r = e.response
    print(json.dumps([r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"], True]))
"#;

#[test]
fn a_failing_store_answers_service_exception_and_kumod_carries_on() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(INVOKE_API_KEYS, "");
    let endpoint = format!("http://{}", kumo.http_address);
    // The blob directory replaced by a file: storing any package fails.
    let packages = kumo.data_dir().join("packages");
    let moved = kumo.data_dir().join("packages.moved");
    std::fs::rename(&packages, &moved).unwrap();
    std::fs::write(&packages, "not a directory").unwrap();
    let out: Value =
        serde_json::from_str(run_python(SERVICE_FAILURE, &[&endpoint, "first"]).trim()).unwrap();
    assert_refused(&out, "store failure", (500, "ServiceException"), "packages");
    assert_eq!(
        out[3], true,
        "boto3 raised lam.exceptions.ServiceException: {out}"
    );
    assert_ne!(
        kumo.cli(&["function", "get", "first"]).code,
        0,
        "nothing half-created"
    );
    std::fs::remove_file(&packages).unwrap();
    std::fs::rename(&moved, &packages).unwrap();
    let again: Value =
        serde_json::from_str(run_python(SERVICE_FAILURE, &[&endpoint, "first"]).trim()).unwrap();
    assert_eq!(again, "no error");
    assert_eq!(kumo.invoke_ok("first", "{}"), "stored");
}

/// `MAJOR.MINOR` of the interpreter the test agent runs (its default).
fn agent_python_version() -> String {
    let out = Command::new("/usr/bin/python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .expect("running /usr/bin/python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const GET_CONFIGURATIONS: &str = r#"
import json, sys
import boto3
lam = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="AKIDKUMOTEST", aws_secret_access_key="kumo-test-secret")
print(json.dumps({name: lam.get_function(FunctionName=name)["Configuration"] for name in sys.argv[2:]}))
"#;

#[test]
fn lambda_runtime_names_are_kept_and_version_mismatches_are_said() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(INVOKE_API_KEYS, "");
    // The warning needs the agent's report of its interpreter.
    kumo_tests::wait_until(
        "the agent to attach",
        std::time::Duration::from_secs(20),
        || kumo.log().contains("agent attached"),
    );
    let host = agent_python_version();
    let other = if host == "3.12" { "3.13" } else { "3.12" };
    let (asked, matching) = (format!("python{other}"), format!("python{host}"));
    let create = |name: &str, runtime: &str| {
        let code = kumo_tests::fixture("division");
        kumo.try_create(name, runtime, kumo_tests::DIVISION_HANDLER, &code, &[])
    };
    let run = create("asked", &asked);
    assert_eq!(run.code, 0, "{run:?}");
    let warning = format!("asks for Python {other}, but the agents run Python {host}");
    assert!(
        run.stderr.contains("warning: runtime") && run.stderr.contains(&warning),
        "{run:?}"
    );
    let run = create("matching", &matching);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("warning"), "{run:?}");
    let got = kumo.function("asked");
    assert_eq!(got["runtime"], json!(asked), "stored as asked");
    assert!(got["runtime_warning"].as_str().unwrap().contains(&warning));
    assert_eq!(kumo.function("matching")["runtime_warning"], Value::Null);
    // It runs anyway, on the agents' interpreter.
    assert_eq!(
        kumo.invoke_ok("asked", r#"{"x": 8, "y": 4}"#)["result"],
        2.0
    );
    let run = create("old", "python3");
    assert_eq!(run.code, 0, "today's spelling keeps working: {run:?}");
    let run = create("bad", "python2.7");
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("'python2.7' is not a runtime")
            && run.stderr.contains("provided.al2023"),
        "{run:?}"
    );

    let endpoint = format!("http://{}", kumo.http_address);
    let out: Value = serde_json::from_str(
        run_python(GET_CONFIGURATIONS, &[&endpoint, "asked", "matching", "old"]).trim(),
    )
    .unwrap();
    assert_eq!(out["asked"]["Runtime"], json!(asked));
    assert!(
        out["asked"]["StateReason"]
            .as_str()
            .unwrap()
            .contains(&warning),
        "{out}"
    );
    assert_eq!(out["matching"]["Runtime"], json!(matching));
    assert_eq!(out["matching"].get("StateReason"), None);
    assert_eq!(out["old"]["Runtime"], "python3");
    assert!(
        kumo.log().contains(&warning),
        "a warning line in kumod's log"
    );

    // Node.js likewise: nodejsNN.x runs the agents' node, whatever NN.
    let out = Command::new("/usr/bin/node")
        .arg("--version")
        .output()
        .unwrap();
    let node = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let other_node = if node == "18" { "22" } else { "18" };
    let handler = kumo_tests::package_dir(&[(
        "index.js",
        "exports.handler = async () => process.versions.node;\n",
    )]);
    let create_node = |name: &str, major: &str| {
        let runtime = format!("nodejs{major}.x");
        kumo.try_create(name, &runtime, "index.handler", handler.path(), &[])
    };
    let run = create_node("node-asked", other_node);
    assert_eq!(run.code, 0, "{run:?}");
    let node_warning = format!("asks for Node.js {other_node}, but the agents run Node.js {node}");
    assert!(run.stderr.contains(&node_warning), "{run:?}");
    let run = create_node("node-matching", &node);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("warning"), "{run:?}");
    let ran = kumo.invoke_ok("node-asked", "{}");
    assert!(
        ran.as_str().unwrap().starts_with(&format!("{node}.")),
        "{ran}"
    );
}

const FROM_S3: &str = r#"
import base64, hashlib, io, json, sys, zipfile
import boto3, botocore
endpoint, s3_endpoint, bucket = sys.argv[1:4]
lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="AKIDKUMOTEST", aws_secret_access_key="kumo-test-secret")
s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
def package(code):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("lambda_function.py", (2026, 1, 1, 0, 0, 0)), "def handler(event, context):\n    return %d\n" % code)
    return buf.getvalue()
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="v1.zip", Body=package(1))
s3.put_object(Bucket=bucket, Key="v2.zip", Body=package(2))
sha = lambda data: base64.b64encode(hashlib.sha256(data).digest()).decode()
out = {}
c = lam.create_function(FunctionName="s3fn", Runtime="python3.11", Role="r", Handler="lambda_function.handler",
                        Code={"S3Bucket": bucket, "S3Key": "v1.zip"})
out["created"] = c["CodeSha256"] == sha(package(1))
out["invoked"] = json.load(lam.invoke(FunctionName="s3fn")["Payload"])
u = lam.update_function_code(FunctionName="s3fn", S3Bucket=bucket, S3Key="v2.zip")
out["updated"] = u["CodeSha256"] == sha(package(2))
out["invoked_2"] = json.load(lam.invoke(FunctionName="s3fn")["Payload"])
try:
    lam.update_function_code(FunctionName="s3fn", S3Bucket=bucket, S3Key="missing.zip")
    out["missing"] = "no error"
except botocore.exceptions.ClientError as e:
    out["missing"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
s3.put_object(Bucket=bucket, Key="huge.zip", Body=b"\0" * (51 * 1024 * 1024))
try:
    lam.update_function_code(FunctionName="s3fn", S3Bucket=bucket, S3Key="huge.zip")
    out["huge"] = "no error"
except lam.exceptions.CodeStorageExceededException as e:
    out["huge"] = e.response["Error"]["Message"]
out["kept"] = lam.get_function(FunctionName="s3fn")["Configuration"]["CodeSha256"] == sha(package(2))
print(json.dumps(out))
"#;

#[test]
fn packages_come_from_s3_through_the_configured_profile() {
    if !root_or_skip() {
        return;
    }
    let s3 = kumo_tests::s3::S3Server::get();
    let work = tempfile::tempdir().unwrap();
    let config = format!(
        "{INVOKE_API_KEYS}code_s3_profile = \"store\"\n\n{}",
        s3.profile_toml("store", work.path())
    );
    let kumo = Kumo::start_configured(&config, "");
    let endpoint = format!("http://{}", kumo.http_address);
    let bucket = kumo_tests::s3::unique_bucket("kumo-code");
    let out: Value =
        serde_json::from_str(run_python(FROM_S3, &[&endpoint, &s3.endpoint, &bucket]).trim())
            .unwrap();
    assert_eq!(out["created"], true, "{out}");
    assert_eq!(out["invoked"], 1);
    assert_eq!(out["updated"], true);
    assert_eq!(out["invoked_2"], 2);
    assert_eq!(out["missing"][0], "InvalidParameterValueException", "{out}");
    assert!(
        out["missing"][1].as_str().unwrap().contains("missing.zip"),
        "{out}"
    );
    assert!(
        out["huge"]
            .as_str()
            .unwrap()
            .contains("over the 52428800-byte limit"),
        "{out}"
    );
    assert_eq!(out["kept"], true, "failed updates keep the code: {out}");
}

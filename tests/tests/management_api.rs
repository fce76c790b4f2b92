//! Lambda's management API with the real AWS CLI and boto3 (PyPI) against
//! kumod: a full deploy lifecycle field by field, RevisionId conflicts,
//! pagination, Lambda's error codes as boto3 exception classes, calls Kumo
//! does not implement, unknown runtimes, bad signatures, ARNs of another
//! region or account. Raw hostile requests, runtime names and S3 packages:
//! `management_api_inputs.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use kumo_tests::s3::{aws_cli, run_python};
use kumo_tests::{assert_refused, package_dir, root_or_skip, zip_dir, Kumo, INVOKE_API_KEYS};
use serde_json::{json, Value};
use sha2::Digest;

/// A zip whose handler answers `{"code": code, "version": …, "event": …}`.
fn handler_zip(dir: &Path, code: u32) -> PathBuf {
    let source = format!(
        "def handler(event, context):\n    return {{\"code\": {code}, \"version\": context.function_version, \"event\": event}}\n"
    );
    let package = package_dir(&[("lambda_function.py", &source)]);
    let out = dir.join(format!("v{code}.zip"));
    zip_dir(package.path(), &out);
    out
}

/// Lambda's CodeSha256 of a file: base64 of its SHA-256.
fn code_sha256(path: &Path) -> String {
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Runs `aws lambda …` against kumod; (exit code, stdout JSON or Null, stderr).
fn aws(endpoint: &str, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(aws_cli())
        .args(["--endpoint-url", endpoint, "--region", "us-east-1"])
        .args(["--output", "json", "lambda"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDKUMOTEST")
        .env("AWS_SECRET_ACCESS_KEY", "kumo-test-secret")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("running aws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        value,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn aws_ok(endpoint: &str, args: &[&str]) -> Value {
    let (code, value, stderr) = aws(endpoint, args);
    assert_eq!(code, 0, "aws {args:?}: {stderr}");
    value
}

/// `2026-11-30T10:00:00.000+0000`.
fn is_lambda_time(text: &str) -> bool {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z").is_ok()
        && text.ends_with("+0000")
        && text.len() == 28
}

#[test]
fn aws_cli_deploys_updates_publishes_and_deletes() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(INVOKE_API_KEYS, "");
    let endpoint = format!("http://{}", kumo.http_address);
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2, v3) = (
        handler_zip(dir.path(), 1),
        handler_zip(dir.path(), 2),
        handler_zip(dir.path(), 3),
    );
    let role = "arn:aws:iam::000000000000:role/kumo";
    let created = aws_ok(
        &endpoint,
        &[
            "create-function",
            "--function-name",
            "cli",
            "--runtime",
            "python3.12",
            "--role",
            role,
            "--handler",
            "lambda_function.handler",
            "--zip-file",
            &format!("fileb://{}", v1.display()),
            "--environment",
            "Variables={GREETING=hi}",
            "--tags",
            "team=a",
            "--architectures",
            "x86_64",
            "--timeout",
            "10",
        ],
    );
    let grpc = kumo.function("cli");
    assert_eq!(created["FunctionName"], "cli");
    assert_eq!(created["FunctionArn"], grpc["function_arn"], "{grpc}");
    assert_eq!(created["Runtime"], "python3.12", "stored as asked");
    assert_eq!(created["Role"], role);
    assert_eq!(created["Handler"], "lambda_function.handler");
    assert_eq!(created["CodeSha256"], code_sha256(&v1));
    assert_eq!(created["CodeSize"], std::fs::metadata(&v1).unwrap().len());
    assert_eq!(created["Version"], "$LATEST");
    assert_eq!(created["Timeout"], 10);
    assert_eq!(created["MemorySize"], 128);
    assert_eq!(
        created["Environment"]["Variables"],
        json!({"GREETING": "hi"})
    );
    assert_eq!(created["State"], "Active");
    assert_eq!(created["LastUpdateStatus"], "Successful");
    assert_eq!(created["PackageType"], "Zip");
    assert_eq!(created["Architectures"], json!(["x86_64"]));
    assert_eq!(created["EphemeralStorage"], json!({"Size": 512}));
    assert!(
        is_lambda_time(created["LastModified"].as_str().unwrap()),
        "{created}"
    );
    let first_revision = created["RevisionId"].as_str().unwrap().to_string();
    assert_eq!(first_revision.len(), 36, "{first_revision}");

    let out = dir.path().join("out.json");
    let invoke = |qualifier: Option<&str>| {
        let mut args = vec![
            "invoke",
            "--function-name",
            "cli",
            "--payload",
            r#"{"n": 7}"#,
        ];
        if let Some(q) = qualifier {
            args.extend(["--qualifier", q]);
        }
        let out_path = out.to_str().unwrap();
        args.push(out_path);
        let meta = aws_ok(&endpoint, &args);
        let body: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        (meta, body)
    };
    let (meta, body) = invoke(None);
    assert_eq!(meta["StatusCode"], 200);
    assert_eq!(meta["ExecutedVersion"], "$LATEST");
    assert_eq!(
        body,
        json!({"code": 1, "version": "$LATEST", "event": {"n": 7}})
    );

    let updated = aws_ok(
        &endpoint,
        &[
            "update-function-code",
            "--function-name",
            "cli",
            "--zip-file",
            &format!("fileb://{}", v2.display()),
        ],
    );
    assert_eq!(updated["CodeSha256"], code_sha256(&v2));
    assert_ne!(updated["RevisionId"], json!(first_revision));
    assert_eq!(invoke(None).1["code"], 2);
    let published = aws_ok(&endpoint, &["publish-version", "--function-name", "cli"]);
    assert_eq!(published["Version"], "1");
    assert_eq!(published["CodeSha256"], code_sha256(&v2));
    assert!(published["FunctionArn"]
        .as_str()
        .unwrap()
        .ends_with(":function:cli:1"));
    aws_ok(
        &endpoint,
        &[
            "update-function-code",
            "--function-name",
            "cli",
            "--zip-file",
            &format!("fileb://{}", v3.display()),
            "--publish",
        ],
    );
    let versions = aws_ok(
        &endpoint,
        &["list-versions-by-function", "--function-name", "cli"],
    );
    let numbers: Vec<&str> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Version"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["$LATEST", "1", "2"]);

    let alias = aws_ok(
        &endpoint,
        &[
            "create-alias",
            "--function-name",
            "cli",
            "--name",
            "live",
            "--function-version",
            "1",
            "--routing-config",
            r#"{"AdditionalVersionWeights": {"2": 0.5}}"#,
        ],
    );
    assert_eq!(alias["Name"], "live");
    assert_eq!(alias["FunctionVersion"], "1");
    assert_eq!(
        alias["RoutingConfig"],
        json!({"AdditionalVersionWeights": {"2": 0.5}})
    );
    assert!(alias["AliasArn"]
        .as_str()
        .unwrap()
        .ends_with(":function:cli:live"));
    let (meta, body) = invoke(Some("1"));
    assert_eq!(
        (meta["ExecutedVersion"].as_str(), body["code"].as_i64()),
        (Some("1"), Some(2))
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let (meta, body) = invoke(Some("live"));
        let version = meta["ExecutedVersion"].as_str().unwrap().to_string();
        assert_eq!(body["version"], json!(version));
        seen.insert(version);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["1", "2"],
        "both versions get calls"
    );

    let concurrency = aws_ok(
        &endpoint,
        &[
            "put-function-concurrency",
            "--function-name",
            "cli",
            "--reserved-concurrent-executions",
            "3",
        ],
    );
    assert_eq!(concurrency, json!({"ReservedConcurrentExecutions": 3}));
    assert_eq!(kumo.function("cli")["reserved_concurrency"], 3);
    let listed = aws_ok(&endpoint, &["list-functions"]);
    let names: Vec<&str> = listed["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cli"]);
    let got = aws_ok(&endpoint, &["get-function", "--function-name", "cli"]);
    assert_eq!(got["Configuration"]["Runtime"], "python3.12");
    assert_eq!(got["Configuration"]["CodeSha256"], code_sha256(&v3));
    assert_eq!(
        got["Concurrency"],
        json!({"ReservedConcurrentExecutions": 3})
    );
    assert_eq!(got["Tags"], json!({"team": "a"}));
    let through_alias = aws_ok(
        &endpoint,
        &[
            "get-function-configuration",
            "--function-name",
            "cli",
            "--qualifier",
            "live",
        ],
    );
    assert_eq!(through_alias["Version"], "1");
    assert_eq!(through_alias["CodeSha256"], code_sha256(&v2));

    let (code, _, _) = aws(&endpoint, &["delete-function", "--function-name", "cli"]);
    assert_eq!(code, 0);
    let (code, _, stderr) = aws(&endpoint, &["get-function", "--function-name", "cli"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");
    assert!(
        kumo.cli(&["function", "get", "cli"]).code != 0,
        "gone for gRPC too"
    );
}

/// The boto3 half: lifecycle, RevisionId conflicts, pagination, every
/// error code as its exception class, calls Kumo does not implement.
const BOTO3: &str = r#"
import base64, hashlib, io, json, sys, zipfile
import boto3, botocore
from botocore.config import Config

endpoint = sys.argv[1]
def client(secret="kumo-test-secret"):
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIDKUMOTEST", aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 0}))
lam = client()
def package(code):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("lambda_function.py", (2026, 1, 1, 0, 0, 0)), "def handler(event, context):\n    return %d\n" % code)
    return buf.getvalue()
ROLE = "arn:aws:iam::000000000000:role/kumo"
def create(name, code=1, **kw):
    args = dict(FunctionName=name, Runtime="python3.11", Role=ROLE,
                Handler="lambda_function.handler", Code={"ZipFile": package(code)})
    args.update(kw)
    return lam.create_function(**args)
def error(call, *args, **kw):
    try:
        call(*args, **kw)
        return "no error"
    except botocore.exceptions.ClientError as e:
        return [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"], e.response["Error"]["Message"]]
def raises(cls, call, *args, **kw):
    try:
        call(*args, **kw)
        return "no error"
    except cls:
        return "raised"
    except Exception as e:
        return "other: %r" % e

out = {}
c = create("b", Publish=True, Tags={"k": "v"}, MemorySize=256)
out["created"] = [c["Version"], c["MemorySize"], c["CodeSha256"] == base64.b64encode(hashlib.sha256(package(1)).digest()).decode()]
r = lam.invoke(FunctionName="b", Payload=b"{}")
out["invoked"] = [r["StatusCode"], json.load(r["Payload"])]
rev = lam.get_function_configuration(FunctionName="b")["RevisionId"]
u = lam.update_function_configuration(FunctionName="b", Timeout=20, RevisionId=rev)
out["conflict_config"] = raises(lam.exceptions.PreconditionFailedException,
                                lam.update_function_configuration, FunctionName="b", Timeout=30, RevisionId=rev)
out["conflict_code"] = raises(lam.exceptions.PreconditionFailedException,
                              lam.update_function_code, FunctionName="b", ZipFile=package(2), RevisionId=rev)
out["conflict_publish"] = raises(lam.exceptions.PreconditionFailedException,
                                 lam.publish_version, FunctionName="b", RevisionId=rev)
out["sha_mismatch"] = raises(lam.exceptions.PreconditionFailedException,
                             lam.publish_version, FunctionName="b", CodeSha256="AAAA")
u2 = lam.update_function_code(FunctionName="b", ZipFile=package(2), RevisionId=u["RevisionId"])
out["revisions"] = [rev != u["RevisionId"], u["RevisionId"] != u2["RevisionId"], u["Timeout"]]
out["published"] = lam.publish_version(FunctionName="b", Description="two", RevisionId=u2["RevisionId"])["Version"]
# Eight updates race with one RevisionId: the check and the change are one
# step, so exactly one wins.
import concurrent.futures
race_rev = lam.get_function_configuration(FunctionName="b")["RevisionId"]
def attempt(timeout):
    try:
        lam.update_function_configuration(FunctionName="b", Timeout=timeout, RevisionId=race_rev)
        return "won"
    except lam.exceptions.PreconditionFailedException:
        return "stale"
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    out["race"] = sorted(pool.map(attempt, range(21, 29)))
lam.update_function_configuration(FunctionName="b", Timeout=20)
lam.create_alias(FunctionName="b", Name="prod", FunctionVersion="2")
out["alias_exists"] = raises(lam.exceptions.ResourceConflictException,
                             lam.create_alias, FunctionName="b", Name="prod", FunctionVersion="1")
a = lam.get_alias(FunctionName="b", Name="prod")
a2 = lam.update_alias(FunctionName="b", Name="prod", FunctionVersion="1",
                      RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}}, RevisionId=a["RevisionId"])
out["alias_conflict"] = raises(lam.exceptions.PreconditionFailedException,
                               lam.update_alias, FunctionName="b", Name="prod", RevisionId=a["RevisionId"])
out["aliases"] = [[x["Name"], x["FunctionVersion"], x.get("RoutingConfig")] for x in lam.list_aliases(FunctionName="b")["Aliases"]]
out["in_use"] = raises(lam.exceptions.ResourceConflictException, lam.delete_function, FunctionName="b", Qualifier="1")
r = lam.invoke(FunctionName="b", Qualifier="2", Payload=b"{}")
out["invoked_2"] = [r["ExecutedVersion"], json.load(r["Payload"])]
lam.put_function_concurrency(FunctionName="b", ReservedConcurrentExecutions=0)
out["throttled"] = raises(lam.exceptions.TooManyRequestsException, lam.invoke, FunctionName="b", Payload=b"{}")
out["concurrency"] = lam.get_function_concurrency(FunctionName="b").get("ReservedConcurrentExecutions")
lam.delete_function_concurrency(FunctionName="b")
out["concurrency_after"] = lam.get_function_concurrency(FunctionName="b").get("ReservedConcurrentExecutions")
e = lam.put_function_event_invoke_config(FunctionName="b", MaximumRetryAttempts=0, MaximumEventAgeInSeconds=120)
out["event_config"] = [e["MaximumRetryAttempts"], e["MaximumEventAgeInSeconds"]]
create("sink")
e = lam.update_function_event_invoke_config(FunctionName="b", DestinationConfig={"OnFailure": {"Destination": "sink"}})
out["event_config_updated"] = [e["MaximumRetryAttempts"], e["DestinationConfig"]["OnFailure"]["Destination"]]
lam.delete_function_event_invoke_config(FunctionName="b")
e = lam.get_function_event_invoke_config(FunctionName="b")
out["event_config_deleted"] = [e["MaximumRetryAttempts"], e["DestinationConfig"]]
e = lam.put_function_event_invoke_config(FunctionName="b", DestinationConfig={"OnSuccess": {"Destination": "sink"}})
out["on_success"] = e["DestinationConfig"]
lam.delete_function_event_invoke_config(FunctionName="b")

out["missing"] = raises(lam.exceptions.ResourceNotFoundException, lam.get_function, FunctionName="nope")
out["exists"] = raises(lam.exceptions.ResourceConflictException, create, "b")
out["bad_runtime"] = error(create, "x1", Runtime="cobol85")
out["bad_runtime_class"] = raises(lam.exceptions.InvalidParameterValueException, create, "x1", Runtime="python2.7")
out["bad_timeout"] = error(create, "x2", Timeout=901)
out["layers"] = error(create, "x3", Layers=["arn:aws:lambda:us-east-1:000000000000:layer:l:1"])
out["arm64"] = error(create, "x4", Architectures=["arm64"])
out["not_zip"] = error(lam.create_function, FunctionName="x5", Runtime="python3.12", Role=ROLE,
                       Handler="lambda_function.handler", Code={"ZipFile": b"this is not a zip"})
out["bad_payload"] = raises(lam.exceptions.InvalidRequestContentException, lam.invoke,
                           FunctionName="b", Payload=b"{nope")
out["too_large"] = raises(lam.exceptions.RequestTooLargeException, lam.invoke,
                          FunctionName="b", Payload=b'"' + b"x" * (7 * 1024 * 1024) + b'"')
out["elsewhere"] = [error(lam.get_function, FunctionName=arn) for arn in
                    ["arn:aws:lambda:eu-west-1:000000000000:function:b",
                     "arn:aws:lambda:us-east-1:123456789012:function:b"]]
out["create_elsewhere"] = error(create, "arn:aws:lambda:eu-west-1:000000000000:function:x6")
out["here_arn"] = lam.get_function(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:b")["Configuration"]["FunctionName"]
out["signature"] = error(client("wrong-secret").list_functions)
out["unimplemented"] = [
    error(lam.add_permission, FunctionName="b", StatementId="s", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"),
    error(lam.tag_resource, Resource="arn:aws:lambda:us-east-1:000000000000:function:b", Tags={"a": "b"}),
    error(lam.create_function_url_config, FunctionName="b", AuthType="NONE"),
]

for i in range(120):
    create("p%03d" % i)
pages = list(lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 50}))
names = [f["FunctionName"] for p in pages for f in p["Functions"]]
out["pages"] = [len(pages), len(names), len(set(names)), sorted(names) == names]
out["versions_page"] = len(list(lam.get_paginator("list_versions_by_function").paginate(
    FunctionName="b", PaginationConfig={"PageSize": 1})))
s = lam.get_account_settings()
out["account"] = [s["AccountUsage"]["FunctionCount"], s["AccountLimit"]["CodeSizeZipped"]]
lam.delete_function(FunctionName="b")
out["deleted"] = raises(lam.exceptions.ResourceNotFoundException, lam.get_function, FunctionName="b")
print(json.dumps(out))
"#;

#[test]
fn boto3_lifecycle_conflicts_pagination_and_errors() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(INVOKE_API_KEYS, "");
    let endpoint = format!("http://{}", kumo.http_address);
    let out: Value = serde_json::from_str(run_python(BOTO3, &[&endpoint]).trim()).unwrap();
    assert_eq!(out["created"], json!(["1", 256, true]), "{out}");
    assert_eq!(out["invoked"], json!([200, 1]));
    for check in [
        "conflict_config",
        "conflict_code",
        "conflict_publish",
        "sha_mismatch",
        "alias_exists",
        "alias_conflict",
        "in_use",
        "throttled",
        "missing",
        "exists",
        "bad_runtime_class",
        "too_large",
        "bad_payload",
        "deleted",
    ] {
        assert_eq!(out[check], "raised", "{check}: {out}");
    }
    assert_eq!(out["revisions"], json!([true, true, 20]));
    assert_eq!(out["published"], "2");
    assert_eq!(
        out["race"],
        json!(["stale", "stale", "stale", "stale", "stale", "stale", "stale", "won"])
    );
    assert_eq!(
        out["aliases"],
        json!([["prod", "1", {"AdditionalVersionWeights": {"2": 0.25}}]])
    );
    assert_eq!(out["invoked_2"], json!(["2", 2]));
    assert_eq!(out["concurrency"], 0);
    assert_eq!(out["concurrency_after"], Value::Null);
    assert_eq!(out["event_config"], json!([0, 120]));
    assert_eq!(
        out["event_config_updated"],
        json!([0, "arn:aws:lambda:us-east-1:000000000000:function:sink"])
    );
    assert_eq!(out["event_config_deleted"], json!([2, {}]));
    let refused = |key: &str, status: u64, code: &str, words: &str| {
        assert_refused(&out[key], key, (status, code), words)
    };
    assert_eq!(
        out["on_success"],
        json!({"OnSuccess": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:sink"}})
    );
    refused(
        "bad_runtime",
        400,
        "InvalidParameterValueException",
        "'cobol85' is not a runtime",
    );
    refused(
        "bad_timeout",
        400,
        "InvalidParameterValueException",
        "timeout",
    );
    refused(
        "layers",
        400,
        "InvalidParameterValueException",
        "layer:l:1 does not exist",
    );
    refused("arm64", 400, "InvalidParameterValueException", "arm64");
    refused(
        "not_zip",
        400,
        "InvalidParameterValueException",
        "invalid package",
    );
    refused(
        "create_elsewhere",
        404,
        "ResourceNotFoundException",
        "eu-west-1",
    );
    refused("signature", 403, "InvalidSignatureException", "signature");
    for (i, arn) in [
        "arn:aws:lambda:eu-west-1:000000000000:function:b",
        "arn:aws:lambda:us-east-1:123456789012:function:b",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            out["elsewhere"][i],
            json!([
                404,
                "ResourceNotFoundException",
                format!("Function not found: {arn}")
            ])
        );
    }
    assert_eq!(out["here_arn"], "b");
    for (i, operation) in ["AddPermission", "TagResource", "FunctionUrlConfig"]
        .iter()
        .enumerate()
    {
        let value = &out["unimplemented"][i];
        assert_eq!(value[0], 400, "{value}");
        assert_eq!(value[1], "UnsupportedOperationException", "{value}");
        let message = value[2].as_str().unwrap();
        assert!(
            message.contains(operation) && message.contains("Kumo does not implement"),
            "{value}"
        );
    }
    // 120 p… functions + sink (b is still there while listing): 121 + 1.
    assert_eq!(out["pages"], json!([3, 122, 122, true]));
    assert_eq!(out["versions_page"], 3, "$LATEST, 1, 2 one per page");
    assert_eq!(out["account"], json!([122, 52_428_800]));
    // Nothing the refused calls touched was created.
    for name in ["x1", "x2", "x3", "x4", "x5", "x6"] {
        assert_ne!(kumo.cli(&["function", "get", name]).code, 0, "{name}");
    }
}

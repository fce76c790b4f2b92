//! The Runtime API server driven by real runtimes: Kumo's `bootstrap.py`
//! run by `/usr/bin/python3` as a plain child process. Protocol errors over
//! raw HTTP are in `runtime_api_protocol.rs`; sandboxed instance tests in
//! `runtime_instance.rs`.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use kumo_agent::invocation_log::OutputCapture;
use kumo_agent::runtime_api::{PendingInvocation, RuntimeApi, RuntimeReply};
use serde_json::Value;

mod common;
use common::{expect_error, expect_init_error, invocation, json, wait_reply, ARN, WAIT};

const PYTHON: &str = "/usr/bin/python3";

const DIVIDE: &str = r#"
import sys
calls = 0
def handler(event, context):
    global calls
    calls += 1
    print("dividing", event["x"], "by", event["y"], "call", calls)
    sys.stderr.write("to stderr\n")
    return {"result": event["x"] / event["y"]}
"#;

const CONTEXT: &str = r#"
def handler(event, context):
    cc = context.client_context
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "identity_id": context.identity.cognito_identity_id,
        "identity_pool": context.identity.cognito_identity_pool_id,
        "client_installation": cc.client.installation_id,
        "client_title": cc.client.app_title,
        "custom": cc.custom,
        "env": cc.env,
    }
def no_context(event, context):
    return {"client_context": context.client_context, "identity_id": context.identity.cognito_identity_id}
def unserialisable(event, context):
    return {1, 2}
def raw_event(event, context):
    return event
"#;

/// A Runtime API server and a real bootstrap talking to it.
struct Harness {
    api: RuntimeApi,
    child: tokio::process::Child,
    output: OutputCapture,
    _task_root: tempfile::TempDir,
    _runtime_dir: tempfile::TempDir,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().expect("pipe")
}

impl Harness {
    fn start(handler: &str, files: &[(&str, &str)]) -> Harness {
        let task_root = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = task_root.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let runtime_dir = tempfile::tempdir().unwrap();
        let bootstrap = kumo_agent::bootstrap::install(runtime_dir.path()).unwrap();
        kumo_agent::bootstrap::precompile_once(runtime_dir.path(), Path::new(PYTHON));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let api = RuntimeApi::serve(listener).unwrap();
        let (read, write) = pipe();
        let output = OutputCapture::start(read, 1 << 20).unwrap();
        let child = tokio::process::Command::new(PYTHON)
            .args(kumo_agent::bootstrap::PYTHON_FLAGS)
            .arg(&bootstrap)
            .env_clear()
            .envs(lambda_env(addr, task_root.path(), handler))
            .current_dir(task_root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(write.try_clone().unwrap()))
            .stderr(Stdio::from(write))
            .kill_on_drop(true)
            .spawn()
            .expect("spawning python");
        Harness {
            api,
            child,
            output,
            _task_root: task_root,
            _runtime_dir: runtime_dir,
        }
    }

    async fn invoke(&self, invocation: PendingInvocation) -> RuntimeReply {
        wait_reply(self.api.deliver(invocation)).await
    }
}

fn lambda_env(addr: SocketAddr, task_root: &Path, handler: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", addr.to_string()),
        ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ("_HANDLER", handler.into()),
        ("AWS_LAMBDA_FUNCTION_NAME", "calc".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/calc".into()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef".into(),
        ),
        ("AWS_REGION", "us-east-1".into()),
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test]
async fn division_handler_succeeds_fails_and_stays_warm() {
    let h = Harness::start("calc.handler", &[("calc.py", DIVIDE)]);
    let reply = h
        .invoke(invocation(
            "11111111-1111-4111-8111-111111111111",
            r#"{"x":10,"y":2}"#,
        ))
        .await;
    assert_eq!(
        reply,
        RuntimeReply::Response(Bytes::from_static(br#"{"result": 5.0}"#))
    );
    assert!(h.api.has_requested_next());
    // Output printed before the response is in the pipe when the reply arrives.
    let out = h.output.take();
    let all = format!("{}{}", out.before_start, out.during);
    assert!(all.contains("dividing 10 by 2 call 1\n"), "{all:?}");
    assert!(all.contains("to stderr\n"), "{all:?}");

    let reply = h
        .invoke(invocation(
            "22222222-2222-4222-8222-222222222222",
            r#"{"x":1,"y":0}"#,
        ))
        .await;
    let (body, header) = expect_error(reply);
    assert_eq!(body["errorType"], "ZeroDivisionError");
    assert_eq!(body["errorMessage"], "division by zero");
    assert_eq!(body["requestId"], "22222222-2222-4222-8222-222222222222");
    let trace = body["stackTrace"].as_array().expect("stackTrace array");
    assert!(!trace.is_empty());
    assert!(trace[0].as_str().unwrap().contains("calc.py"), "{trace:?}");
    assert!(
        !trace
            .iter()
            .any(|f| f.as_str().unwrap().contains("bootstrap.py")),
        "{trace:?}"
    );
    assert_eq!(header.as_deref(), Some("ZeroDivisionError"));
    let out = h.output.take();
    assert!(
        out.during.contains("dividing 1 by 0 call 2"),
        "warm: module state kept: {out:?}"
    );
    assert!(
        out.during
            .contains("[ERROR] ZeroDivisionError: division by zero"),
        "{out:?}"
    );
    assert!(
        out.during.contains("Traceback (most recent call last):"),
        "{out:?}"
    );

    // Non-JSON event with the JSON content type: an unmarshal error, still warm.
    let (body, _) = expect_error(
        h.invoke(invocation("33333333-3333-4333-8333-333333333333", "{nope"))
            .await,
    );
    assert_eq!(body["errorType"], "Runtime.UnmarshalError");
    let reply = h
        .invoke(invocation(
            "44444444-4444-4444-8444-444444444444",
            r#"{"x":9,"y":3}"#,
        ))
        .await;
    assert_eq!(
        reply,
        RuntimeReply::Response(Bytes::from_static(br#"{"result": 3.0}"#))
    );
}

#[tokio::test]
async fn context_carries_every_field() {
    let h = Harness::start("context.handler", &[("context.py", CONTEXT)]);
    let mut inv = invocation("55555555-5555-4555-8555-555555555555", "{}");
    inv.timeout = Duration::from_secs(5);
    inv.client_context = Some(
        r#"{"client":{"installation_id":"inst-1","app_title":"Calc"},"custom":{"k":"v"},"env":{"platform":"linux"}}"#.into(),
    );
    inv.cognito_identity =
        Some(r#"{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}"#.into());
    let RuntimeReply::Response(body) = h.invoke(inv).await else {
        panic!("expected a response")
    };
    let v = json(&body);
    assert_eq!(v["function_name"], "calc");
    assert_eq!(v["function_version"], "$LATEST");
    assert_eq!(v["invoked_function_arn"], ARN);
    assert_eq!(v["memory_limit_in_mb"], "128");
    assert_eq!(v["aws_request_id"], "55555555-5555-4555-8555-555555555555");
    assert_eq!(v["log_group_name"], "/aws/lambda/calc");
    assert_eq!(
        v["log_stream_name"],
        "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"
    );
    let remaining = v["remaining"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 5000, "remaining {remaining}");
    assert_eq!(v["identity_id"], "id-1");
    assert_eq!(v["identity_pool"], "pool-1");
    assert_eq!(v["client_installation"], "inst-1");
    assert_eq!(v["client_title"], "Calc");
    assert_eq!(v["custom"], serde_json::json!({"k": "v"}));
    assert_eq!(v["env"], serde_json::json!({"platform": "linux"}));
}

#[tokio::test]
async fn absent_context_headers_and_unserialisable_results() {
    let h = Harness::start("context.no_context", &[("context.py", CONTEXT)]);
    let RuntimeReply::Response(body) = h
        .invoke(invocation("66666666-6666-4666-8666-666666666666", "{}"))
        .await
    else {
        panic!("expected a response")
    };
    assert_eq!(
        json(&body),
        serde_json::json!({"client_context": null, "identity_id": null})
    );

    let h = Harness::start("context.unserialisable", &[("context.py", CONTEXT)]);
    let (body, header) = expect_error(
        h.invoke(invocation("77777777-7777-4777-8777-777777777777", "{}"))
            .await,
    );
    assert_eq!(body["errorType"], "Runtime.MarshalError");
    assert_eq!(
        body["errorMessage"],
        "Unable to marshal response: Object of type set is not JSON serializable"
    );
    assert_eq!(header.as_deref(), Some("Runtime.MarshalError"));
}

#[tokio::test]
async fn module_paths_may_use_slashes_and_dots() {
    let files = [
        ("pkg/__init__.py", ""),
        ("pkg/sub/__init__.py", ""),
        ("pkg/sub/mod.py", CONTEXT),
    ];
    for handler in ["pkg/sub/mod.raw_event", "pkg.sub.mod.raw_event"] {
        let h = Harness::start(handler, &files);
        let reply = h
            .invoke(invocation(
                "88888888-8888-4888-8888-888888888888",
                r#"{"a": [1, "é"]}"#,
            ))
            .await;
        assert_eq!(
            reply,
            RuntimeReply::Response(Bytes::from_static(br#"{"a": [1, "\u00e9"]}"#)),
            "{handler}"
        );
    }
}

/// Starts a runtime that must fail to load; returns its init error.
async fn init_failure(handler: &str, files: &[(&str, &str)]) -> (Value, Option<String>, String) {
    let mut h = Harness::start(handler, files);
    let reply = h
        .invoke(invocation("99999999-9999-4999-8999-999999999999", "{}"))
        .await;
    let status = tokio::time::timeout(WAIT, h.child.wait())
        .await
        .expect("runtime exits")
        .unwrap();
    assert_eq!(status.code(), Some(1), "{handler}");
    assert!(
        !h.api.has_requested_next(),
        "{handler}: never reached /next"
    );
    let out = h.output.take();
    let (body, header) = expect_init_error(reply);
    assert_eq!(body["requestId"], "", "{body}");
    assert!(body["stackTrace"].is_array(), "{body}");
    (body, header, format!("{}{}", out.before_start, out.during))
}

#[tokio::test]
async fn loader_errors_go_to_init_error() {
    let (body, header, log) = init_failure("missing.handler", &[]).await;
    assert_eq!(body["errorType"], "Runtime.ImportModuleError");
    assert_eq!(
        body["errorMessage"],
        "Unable to import module 'missing': No module named 'missing'"
    );
    assert_eq!(header.as_deref(), Some("Runtime.ImportModuleError"));
    assert!(
        log.contains("[ERROR] Runtime.ImportModuleError: Unable to import module 'missing'"),
        "{log}"
    );

    let (body, _, _) = init_failure("calc.nope", &[("calc.py", DIVIDE)]).await;
    assert_eq!(body["errorType"], "Runtime.HandlerNotFound");
    assert_eq!(
        body["errorMessage"],
        "Handler 'nope' missing on module 'calc'"
    );

    let (body, _, _) = init_failure("handler", &[("calc.py", DIVIDE)]).await;
    assert_eq!(body["errorType"], "Runtime.MalformedHandlerName");
    assert_eq!(
        body["errorMessage"],
        "Bad handler 'handler': not enough values to unpack (expected 2, got 1)"
    );

    let (body, _, _) = init_failure(
        "broken.handler",
        &[("broken.py", "def handler(event, context)\n    return 1\n")],
    )
    .await;
    assert_eq!(body["errorType"], "Runtime.UserCodeSyntaxError");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Syntax error in module 'broken': "),
        "{body}"
    );

    let (body, _, log) = init_failure(
        "boom.handler",
        &[(
            "boom.py",
            "print('loading')\nraise ValueError('bad config')\n",
        )],
    )
    .await;
    assert_eq!(body["errorType"], "ValueError");
    assert_eq!(body["errorMessage"], "bad config");
    assert!(log.contains("loading\n"), "{log}");
}

// --- Raw protocol ---------------------------------------------------------------

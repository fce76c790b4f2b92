//! Sandboxed function instances end to end: `Instance::start` + `invoke`
//! with the real sandbox (re-exec of the kumo-agent binary), the real
//! bootstrap and `/usr/bin/python3`. Needs root: skipped (with a message)
//! when not root, unless KUMO_REQUIRE_ROOT_TESTS=1, which makes it fail.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kumo_agent::config::AgentConfig;
use kumo_agent::instance::{Instance, InstanceSettings};
use kumo_agent::package_cache::CodeDirs;
use kumo_proto::agent::{FunctionSpec, Invocation, InvocationResult, Outcome};
use serde_json::Value;

mod common;
use common::root_or_skip;

const APP: &str = r#"
import os, sys, time
count = 0
print("init output")
def counter(event, context):
    global count
    count += 1
    print("call", count)
    return {"count": count, "version": context.function_version}
def divide(event, context):
    return event["x"] / event["y"]
def sleepy(event, context):
    print("about to sleep")
    time.sleep(30)
def crash(event, context):
    print("crashing")
    sys.stdout.flush()
    os.kill(os.getpid(), 9)
def hog(event, context):
    blocks = []
    while True:
        blocks.append(bytearray(16 * 1024 * 1024))
"#;

fn open_up(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Agent directories and a package with `app.py`, readable by the sandbox uid.
struct Fixture {
    _root: tempfile::TempDir,
    settings: InstanceSettings,
    task_dir: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    open_up(root.path(), 0o755);
    let config = AgentConfig {
        data_dir: root.path().join("data"),
        cgroup_parent: "kumo-test-runtime".into(),
        init_timeout_seconds: 10,
        ..AgentConfig::default()
    };
    for dir in [config.sandbox_dir(), config.runtime_dir()] {
        std::fs::create_dir_all(&dir).unwrap();
    }
    open_up(&config.data_dir, 0o755);
    kumo_agent::bootstrap::install(&config.runtime_dir()).unwrap();
    open_up(&config.runtime_dir(), 0o755);
    let task_dir = root.path().join("task");
    std::fs::create_dir(&task_dir).unwrap();
    std::fs::write(task_dir.join("app.py"), APP).unwrap();
    open_up(&task_dir, 0o755);
    open_up(&task_dir.join("app.py"), 0o644);
    let settings = InstanceSettings::from_config(
        &config,
        env!("CARGO_BIN_EXE_kumo-agent").into(),
        vec![kumo_agent::sandbox::INIT_SUBCOMMAND.into()],
    );
    Fixture {
        _root: root,
        settings,
        task_dir,
    }
}

fn function(handler: &str, timeout_seconds: u32) -> FunctionSpec {
    FunctionSpec {
        name: "rt-test".into(),
        version: "$LATEST".into(),
        runtime: "python3".into(),
        handler: handler.into(),
        memory_mb: 128,
        timeout_seconds,
        network: "none".into(),
        ephemeral_storage_mb: 512,
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:rt-test".into(),
        ..Default::default()
    }
}

fn invocation(n: u64, function: &FunctionSpec, payload: &str) -> Invocation {
    Invocation {
        invocation_id: n,
        request_id: format!("00000000-0000-4000-8000-{n:012}"),
        function: Some(function.clone()),
        payload: payload.as_bytes().to_vec(),
        ..Default::default()
    }
}

async fn start(fx: &Fixture, function: &FunctionSpec) -> Instance {
    let code = CodeDirs {
        task: fx.task_dir.clone(),
        opt: None,
    };
    Instance::start(&fx.settings, function, code, 100_777)
        .await
        .expect("instance starts")
}

fn payload(result: &InvocationResult) -> Value {
    serde_json::from_slice(&result.payload).unwrap()
}

fn outcome(result: &InvocationResult) -> Outcome {
    Outcome::try_from(result.outcome).unwrap()
}

#[tokio::test]
async fn warm_instance_keeps_module_state() {
    if !root_or_skip("warm_instance_keeps_module_state") {
        return;
    }
    let fx = fixture();
    let f = function("app.counter", 3);
    let mut instance = start(&fx, &f).await;
    let first = instance.invoke(&invocation(1, &f, "{}")).await;
    assert_eq!(outcome(&first), Outcome::Success, "{first:?}");
    assert_eq!(
        payload(&first),
        serde_json::json!({"count": 1, "version": "$LATEST"})
    );
    assert!(first.init_duration_ms.is_some_and(|ms| ms > 0.0));
    assert!(first.max_memory_used_mb > 0, "{first:?}");
    assert_eq!(first.executed_version, "$LATEST");
    let log = &first.log;
    let start_at = log
        .find("START RequestId: 00000000-0000-4000-8000-000000000001 Version: $LATEST\n")
        .unwrap();
    assert!(log.find("init output\n").unwrap() < start_at, "{log}");
    let call = log.find("call 1\n").unwrap();
    let end = log
        .find("END RequestId: 00000000-0000-4000-8000-000000000001\n")
        .unwrap();
    assert!(start_at < call && call < end, "{log}");
    assert!(log.contains("\tInit Duration: "), "{log}");
    assert!(log.ends_with("\t\n"), "{log:?}");

    let second = instance.invoke(&invocation(2, &f, "{}")).await;
    assert_eq!(payload(&second)["count"], 2, "{second:?}");
    assert_eq!(second.init_duration_ms, None);
    assert!(!second.log.contains("Init Duration"), "{}", second.log);
    assert!(second.log.contains("call 2\n"));
    assert!(instance.is_reusable());
    instance.shutdown().await;
}

#[tokio::test]
async fn function_errors_keep_the_instance() {
    if !root_or_skip("function_errors_keep_the_instance") {
        return;
    }
    let fx = fixture();
    let f = function("app.divide", 3);
    let mut instance = start(&fx, &f).await;
    let failed = instance
        .invoke(&invocation(3, &f, r#"{"x":1,"y":0}"#))
        .await;
    assert_eq!(outcome(&failed), Outcome::FunctionError);
    assert_eq!(failed.error_type, "ZeroDivisionError");
    assert_eq!(payload(&failed)["errorMessage"], "division by zero");
    assert!(
        failed
            .log
            .contains("[ERROR] ZeroDivisionError: division by zero"),
        "{}",
        failed.log
    );
    assert!(instance.is_reusable());
    let ok = instance
        .invoke(&invocation(4, &f, r#"{"x":10,"y":4}"#))
        .await;
    assert_eq!(ok.payload, b"2.5");
    instance.shutdown().await;
}

#[tokio::test]
async fn timeouts_kill_and_discard_the_instance() {
    if !root_or_skip("timeouts_kill_and_discard_the_instance") {
        return;
    }
    let fx = fixture();
    let f = function("app.sleepy", 1);
    let mut instance = start(&fx, &f).await;
    let result = instance.invoke(&invocation(5, &f, "{}")).await;
    assert_eq!(outcome(&result), Outcome::Timeout, "{result:?}");
    assert_eq!(
        String::from_utf8_lossy(&result.payload),
        r#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: 00000000-0000-4000-8000-000000000005 Error: Task timed out after 1.00 seconds"}"#
    );
    assert!(
        (1000.0..2000.0).contains(&result.duration_ms),
        "{}",
        result.duration_ms
    );
    assert!(result.log.contains("about to sleep\n"), "{}", result.log);
    assert!(result
        .log
        .contains(" 00000000-0000-4000-8000-000000000005 Task timed out after 1.00 seconds\n"));
    assert!(result.log.contains("\tStatus: timeout\n"), "{}", result.log);
    assert!(!instance.is_reusable());
    instance.shutdown().await;
}

#[tokio::test]
async fn runtime_exits_are_reported() {
    if !root_or_skip("runtime_exits_are_reported") {
        return;
    }
    let fx = fixture();
    let f = function("app.crash", 3);
    let mut instance = start(&fx, &f).await;
    let result = instance.invoke(&invocation(6, &f, "{}")).await;
    assert_eq!(outcome(&result), Outcome::RuntimeExit, "{result:?}");
    assert_eq!(
        String::from_utf8_lossy(&result.payload),
        r#"{"errorType":"Runtime.ExitError","errorMessage":"RequestId: 00000000-0000-4000-8000-000000000006 Error: Runtime exited with error: signal: killed"}"#
    );
    assert!(result.log.contains("crashing\n"), "{}", result.log);
    assert!(
        result
            .log
            .contains("\tStatus: error\tError Type: Runtime.ExitError\n"),
        "{}",
        result.log
    );
    assert!(!instance.is_reusable());
    instance.shutdown().await;

    let f = function("app.hog", 10);
    let mut instance = start(&fx, &f).await;
    let result = instance.invoke(&invocation(7, &f, "{}")).await;
    assert_eq!(outcome(&result), Outcome::RuntimeExit, "{result:?}");
    assert!(
        result
            .log
            .contains("\tStatus: error\tError Type: Runtime.OutOfMemory\n"),
        "{}",
        result.log
    );
    instance.shutdown().await;
}

#[tokio::test]
async fn init_errors_discard_the_instance() {
    if !root_or_skip("init_errors_discard_the_instance") {
        return;
    }
    let fx = fixture();
    let f = function("missing.handler", 3);
    let mut instance = start(&fx, &f).await;
    let result = instance.invoke(&invocation(8, &f, "{}")).await;
    assert_eq!(outcome(&result), Outcome::InitError, "{result:?}");
    assert_eq!(result.error_type, "Runtime.ImportModuleError");
    assert_eq!(
        payload(&result)["errorMessage"],
        "Unable to import module 'missing': No module named 'missing'"
    );
    assert!(
        result.init_duration_ms.is_some(),
        "a cold start reports its init time"
    );
    assert!(!instance.is_reusable());
    instance.shutdown().await;
}

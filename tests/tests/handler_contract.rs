//! The Lambda handler contract through the real kumod + agent + sandbox.

use kumo_tests::{fixture, package_dir, root_or_skip, Kumo};

#[test]
fn division_result_error_and_logs() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create_division("div", &[]);
    assert_eq!(
        kumo.invoke_ok("div", r#"{"x":10,"y":2}"#),
        serde_json::json!({"result": 5.0})
    );

    let error = kumo.invoke_failed("div", r#"{"x":10,"y":0}"#);
    assert_eq!(error["errorType"], "ZeroDivisionError");
    assert_eq!(error["errorMessage"], "division by zero");
    assert!(
        !error["stackTrace"].as_array().unwrap().is_empty(),
        "{error}"
    );

    let logs = kumo.logs("div");
    let starts = logs.matches("START RequestId: ").count();
    let reports = logs.matches("REPORT RequestId: ").count();
    assert_eq!((starts, reports), (2, 2), "{logs}");
    let ok_part = &logs[..logs.find("END RequestId").unwrap()];
    assert!(ok_part.contains("dividing 10 by 2"), "{logs}");
    let second = &logs[logs.rfind("START RequestId").unwrap()..];
    assert!(second.contains("ZeroDivisionError"), "{logs}");
    assert!(second.find("ZeroDivisionError") < second.find("REPORT RequestId"));
    assert!(logs.contains("\tBilled Duration: ") && logs.contains("\tMemory Size: 128 MB\t"));
}

#[test]
fn warm_reuse_keeps_module_state_and_reports_init_once() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create(
        "probe",
        "python3",
        "lambda_function.handler",
        &fixture("probe"),
        &[],
    );
    assert_eq!(kumo.invoke_ok("probe", "{}")["count"], 1);
    assert_eq!(kumo.invoke_ok("probe", "{}")["count"], 2);
    let logs = kumo.logs("probe");
    let reports: Vec<&str> = logs.lines().filter(|l| l.starts_with("REPORT")).collect();
    assert_eq!(reports.len(), 2, "{logs}");
    assert!(reports[0].contains("\tInit Duration: "), "{logs}");
    assert!(!reports[1].contains("Init Duration"), "{logs}");
}

#[test]
fn context_environment_and_user_variables() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create(
        "probe",
        "python3",
        "lambda_function.handler",
        &fixture("probe"),
        &["--env", "GREETING=hi", "--memory", "256", "--timeout", "7"],
    );
    let facts = kumo.invoke_ok("probe", r#"{"action":"facts"}"#);
    let ctx = &facts["context"];
    assert_eq!(ctx["function_name"], "probe");
    assert_eq!(ctx["function_version"], "$LATEST");
    assert_eq!(
        ctx["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:probe"
    );
    assert_eq!(ctx["memory_limit_in_mb"], 256);
    assert_eq!(ctx["aws_request_id"].as_str().unwrap().len(), 36);
    assert_eq!(ctx["log_group_name"], "/aws/lambda/probe");
    assert!(ctx["log_stream_name"]
        .as_str()
        .unwrap()
        .contains("[$LATEST]"));
    let remaining = ctx["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 7000, "{remaining}");
    assert_eq!(ctx["has_identity"], true);
    assert_eq!(ctx["has_client_context"], true);
    let env = &facts["env"];
    assert_eq!(env["GREETING"], "hi");
    assert_eq!(env["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "probe");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["_HANDLER"], "lambda_function.handler");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
    assert!(env["LD_LIBRARY_PATH"]
        .as_str()
        .unwrap()
        .split(':')
        .any(|p| p == "/var/task/lib"));
}

#[test]
fn loader_errors_are_named() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create(
        "nomod",
        "python3",
        "missing_module.handler",
        &fixture("division"),
        &[],
    );
    let run = kumo.invoke("nomod", "{}");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["errorType"], "Runtime.ImportModuleError");
    // The document names the invocation it failed, as Lambda's does.
    let request_id = run.json()["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(request_id.len(), 36, "{run:?}");
    assert!(kumo.logs("nomod").contains(&request_id), "{run:?}");
    assert!(
        run.stdout
            .contains("Unable to import module 'missing_module'"),
        "{run:?}"
    );

    kumo.create(
        "nofn",
        "python3",
        "lambda_function.nope",
        &fixture("division"),
        &[],
    );
    let run = kumo.invoke("nofn", "{}");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["errorType"], "Runtime.HandlerNotFound");
    // The platform keeps serving.
    kumo.create_division("div", &[]);
    assert_eq!(kumo.invoke_ok("div", r#"{"x":1,"y":4}"#)["result"], 0.25);
}

#[test]
fn provided_runtime_runs_the_package_bootstrap() {
    if !root_or_skip() {
        return;
    }
    let bootstrap = r#"#!/usr/bin/python3
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps({"echo": event, "runtime": "provided"}).encode()
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=body, method="POST")).read()
"#;
    let dir = package_dir(&[("bootstrap", bootstrap)]);
    let path = dir.path().join("bootstrap");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kumo = Kumo::start();
    kumo.create("custom", "provided", "", dir.path(), &[]);
    let out = kumo.invoke_ok("custom", r#"{"a":[1,2]}"#);
    assert_eq!(
        out,
        serde_json::json!({"echo": {"a": [1, 2]}, "runtime": "provided"})
    );
}

#[test]
fn native_extension_shared_library_and_data_file() {
    if !root_or_skip() {
        return;
    }
    let dir = package_dir(&[
        ("lib/kumotest.c", "int kumo_answer(void) { return 42; }\n"),
        (
            "nativemod.c",
            r#"#include <Python.h>
int kumo_answer(void);
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(kumo_answer()); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "answer"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "nativemod", NULL, -1, methods};
PyMODINIT_FUNC PyInit_nativemod(void) { return PyModule_Create(&module); }
"#,
        ),
        ("data/greeting.txt", "hello from the package\n"),
        (
            "lambda_function.py",
            r#"import os
import nativemod

def handler(event, context):
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "data/greeting.txt")) as f:
        greeting = f.read().strip()
    return {"answer": nativemod.answer(), "greeting": greeting, "ld": os.environ["LD_LIBRARY_PATH"], "file": nativemod.__file__}
"#,
        ),
    ]);
    let root = dir.path();
    let gcc = |args: &[&str]| {
        let status = std::process::Command::new("gcc")
            .current_dir(root)
            .args(args)
            .status()
            .expect("gcc");
        assert!(status.success(), "gcc {args:?}");
    };
    gcc(&[
        "-shared",
        "-fPIC",
        "-o",
        "lib/libkumotest.so",
        "lib/kumotest.c",
    ]);
    let suffix = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))",
        ])
        .output()
        .unwrap();
    let module = format!(
        "nativemod{}",
        String::from_utf8_lossy(&suffix.stdout).trim()
    );
    gcc(&[
        "-shared",
        "-fPIC",
        "-I/usr/include/python3.11",
        "-o",
        &module,
        "nativemod.c",
        "-Llib",
        "-lkumotest",
    ]);
    let kumo = Kumo::start();
    kumo.create("native", "python3", "lambda_function.handler", root, &[]);
    let out = kumo.invoke_ok("native", "{}");
    assert_eq!(out["answer"], 42);
    assert_eq!(out["greeting"], "hello from the package");
    assert!(
        out["ld"]
            .as_str()
            .unwrap()
            .split(':')
            .any(|p| p == "/var/task/lib"),
        "{out}"
    );
    assert!(
        out["file"].as_str().unwrap().starts_with("/var/task/"),
        "{out}"
    );
}

#[test]
fn idle_instances_are_reclaimed() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_with("idle_timeout_seconds = 1");
    kumo.create(
        "probe",
        "python3",
        "lambda_function.handler",
        &fixture("probe"),
        &[],
    );
    assert_eq!(kumo.invoke_ok("probe", "{}")["count"], 1);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        kumo.invoke_ok("probe", "{}")["count"],
        1,
        "a new instance after the idle timeout"
    );
    let logs = kumo.logs("probe");
    assert_eq!(logs.matches("\tInit Duration: ").count(), 2, "{logs}");
}

#[test]
fn logs_follow_streams_new_invocations() {
    if !root_or_skip() {
        return;
    }
    use std::io::{BufRead, BufReader};
    let kumo = Kumo::start();
    kumo.create_division("div", &[]);
    let mut follower = kumo.spawn_cli(&["logs", "div", "--follow"]);
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    kumo.invoke_ok("div", r#"{"x":8,"y":2}"#);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("REPORT RequestId:"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("follower printed no REPORT line; saw {seen:?}"),
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("dividing 8 by 2")),
        "{seen:?}"
    );
    let _ = follower.kill();
    let _ = follower.wait();
}

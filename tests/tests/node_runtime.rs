//! The `nodejsNN.x` runtimes: Kumo's own Node.js bootstrap runs
//! `file.export` handlers from `fixtures/node` (CommonJS and ES modules,
//! async and callback style) as AWS's Node runtime does
//! (docs/wire-formats.md §14), in the real sandbox with the host's `node`.

use kumo_tests::{copy_dir, fixture, root_or_skip, Kumo};

/// Creates `name` from `fixtures/node` with `handler` on `runtime`.
fn create(kumo: &Kumo, name: &str, runtime: &str, handler: &str, extra: &[&str]) {
    kumo.create(name, runtime, handler, &fixture("node"), extra);
}

/// The log lines of the invocation whose request id is `id`.
fn invocation_log(kumo: &Kumo, name: &str, id: &str) -> String {
    let logs = kumo.logs(name);
    let start = logs
        .find(&format!("START RequestId: {id}"))
        .unwrap_or_else(|| panic!("no START for {id} in\n{logs}"));
    let end = logs[start..]
        .find(&format!("END RequestId: {id}"))
        .map(|e| start + e)
        .unwrap_or(logs.len());
    logs[start..end].to_string()
}

#[test]
fn commonjs_and_es_module_handlers_run_with_their_context_and_keep_module_state() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    create(
        &kumo,
        "node-cjs",
        "nodejs20.x",
        "index.handler",
        &["--timeout", "3"],
    );
    let first = kumo.invoke_ok_with_client_context(
        "node-cjs",
        r#"{"hello": "node"}"#,
        r#"{"custom": {"tenant": "t1"}}"#,
    );
    assert_eq!(first["calls"], 1);
    assert_eq!(first["event"]["hello"], "node");
    assert_eq!(first["functionName"], "node-cjs");
    assert_eq!(first["functionVersion"], "$LATEST");
    assert_eq!(first["memoryLimitInMB"], "128", "a string, as on Lambda");
    assert_eq!(first["logGroupName"], "/aws/lambda/node-cjs");
    assert!(first["invokedFunctionArn"]
        .as_str()
        .unwrap()
        .ends_with(":function:node-cjs"));
    assert_eq!(first["clientContext"]["custom"]["tenant"], "t1");
    assert_eq!(first["waits"], true);
    assert_eq!(first["executionEnv"], "AWS_Lambda_nodejs20.x");
    assert_eq!(
        first["nodePath"],
        "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task"
    );
    assert_eq!(first["cwd"], "/var/task");
    assert_ne!(first["uid"], 0);
    let (before, after) = (
        first["remaining"][0].as_i64().unwrap(),
        first["remaining"][1].as_i64().unwrap(),
    );
    assert!(
        before <= 3000 && before > 0 && before - after >= 40,
        "getRemainingTimeInMillis must count down from the timeout: {before} {after}"
    );

    // Warm: the module is not loaded again, its counter goes on.
    let second = kumo.invoke_ok("node-cjs", "{}");
    assert_eq!(second["calls"], 2);
    assert_eq!(second["loadedAt"], first["loadedAt"]);
    assert_ne!(second["awsRequestId"], first["awsRequestId"]);

    // An ES module (.mjs, with top-level await) on nodejs22.x.
    create(&kumo, "node-esm", "nodejs22.x", "esm.handler", &[]);
    let esm = kumo.invoke_ok("node-esm", "{}");
    assert_eq!(esm["module"], "esm.mjs");
    assert_eq!(esm["executionEnv"], "AWS_Lambda_nodejs22.x");
    assert_eq!(kumo.invoke_ok("node-esm", "{}")["calls"], 2);
    // A .js ES module under a package.json saying "type": "module".
    create(
        &kumo,
        "node-esm-pkg",
        "nodejs18.x",
        "esm-pkg/app.handler",
        &[],
    );
    assert_eq!(kumo.invoke_ok("node-esm-pkg", "{}")["esm"], true);
    // A nested export in a subdirectory.
    create(
        &kumo,
        "node-nested",
        "nodejs20.x",
        "lib/nested.handlers.deep.run",
        &[],
    );
    let nested = kumo.invoke_ok("node-nested", r#"{"n": 1}"#);
    assert_eq!(nested["nested"], true);
    assert_eq!(nested["event"]["n"], 1);
}

#[test]
fn console_lines_carry_time_request_id_and_level() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    create(&kumo, "node-console", "nodejs20.x", "index.handler", &[]);
    let out = kumo.invoke_ok("node-console", "{}");
    let id = out["awsRequestId"].as_str().unwrap();
    let log = invocation_log(&kumo, "node-console", id);
    // `2026-01-02T03:04:05.678Z`: ISO-8601 with milliseconds, in UTC.
    let is_time = |t: &str| {
        t.len() == 24 && t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok()
    };
    let fields = |level: &str, message: &str| {
        log.lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .any(|f| {
                f.len() == 4 && is_time(f[0]) && f[1] == id && f[2] == level && f[3] == message
            })
    };
    for (level, message) in [
        ("INFO", "call 1 of node-console { nested: { value: 1 } }"),
        ("INFO", "info line"),
        ("WARN", "warn line"),
        ("ERROR", "error line"),
        ("DEBUG", "debug line"),
        ("TRACE", "trace line"),
        ("INFO", "two\rlines"),
    ] {
        assert!(
            fields(level, message),
            "no {level} line {message:?} in\n{log}"
        );
    }
    // Module-level output comes before the first START, with no request id.
    let logs = kumo.logs("node-console");
    let loading = logs
        .find("\tundefined\tINFO\tloading index.js")
        .expect(&logs);
    assert!(loading < logs.find("START RequestId").unwrap(), "{logs}");
}

#[test]
fn callback_handlers_answer_as_on_lambda() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let cases: &[(&str, &str)] = &[
        ("cb-plain", "callback.plain"),
        ("cb-waits", "callback.waits"),
        ("cb-nowait", "callback.noWait"),
        ("cb-error", "callback.error"),
        ("cb-string", "callback.stringError"),
        ("cb-succeed", "callback.succeed"),
        ("cb-fail", "callback.fail"),
        ("cb-promise", "callback.promiseWins"),
        ("cb-forgets", "callback.forgets"),
    ];
    for (name, handler) in cases {
        create(&kumo, name, "nodejs20.x", handler, &["--timeout", "5"]);
    }
    let plain = kumo.invoke_ok("cb-plain", r#"{"k": "v"}"#);
    assert_eq!(plain["via"], "callback");
    assert_eq!(plain["event"]["k"], "v");

    // callbackWaitsForEmptyEventLoop = true: the timer runs first.
    assert_eq!(kumo.invoke_ok("cb-waits", "{}"), "after the timer");
    let logs = kumo.logs("cb-waits");
    let timer = logs.find("timer ran before the answer").expect(&logs);
    assert!(timer < logs.find("END RequestId").unwrap(), "{logs}");
    // = false: answered at once although a 60 s timer is pending (the
    // timeout is 5 s), and the instance serves again.
    assert_eq!(kumo.invoke_ok("cb-nowait", "{}"), "right away");
    assert_eq!(kumo.invoke_ok("cb-nowait", "{}"), "right away");

    let error = kumo.invoke_failed("cb-error", "{}");
    assert_eq!(error["errorType"], "TypeError");
    assert_eq!(error["errorMessage"], "bad input");
    assert_eq!(error["trace"][0], "TypeError: bad input", "{error}");
    let string = kumo.invoke_failed("cb-string", "{}");
    assert_eq!(string["errorType"], "string");
    assert_eq!(string["errorMessage"], "plain failure");

    assert_eq!(kumo.invoke_ok("cb-succeed", "{}")["via"], "succeed");
    assert_eq!(
        kumo.invoke_failed("cb-fail", "{}")["errorMessage"],
        "via fail"
    );
    assert_eq!(kumo.invoke_ok("cb-promise", "{}"), "from the promise");
    assert_eq!(
        kumo.invoke_ok("cb-forgets", "{}"),
        serde_json::Value::Null,
        "a handler that never answers gets null once the loop is empty"
    );
}

#[test]
fn thrown_errors_and_rejections_become_error_documents_with_a_trace() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    for (name, handler) in [
        ("err-thrown", "errors.thrown"),
        ("err-rejected", "errors.rejected"),
        ("err-sync", "errors.syncThrow"),
        ("err-unsettled", "errors.unsettled"),
        ("err-uncaught", "errors.uncaught"),
    ] {
        create(&kumo, name, "nodejs20.x", handler, &["--timeout", "5"]);
    }
    let thrown = kumo.invoke_failed("err-thrown", "{}");
    assert_eq!(thrown["errorType"], "Error");
    assert_eq!(thrown["errorMessage"], "kaboom");
    let trace: Vec<&str> = thrown["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(trace[0], "Error: kaboom");
    assert!(
        trace.iter().any(|l| l.contains("/var/task/errors.js")),
        "{trace:?}"
    );
    let logs = kumo.logs("err-thrown");
    assert!(
        logs.contains(
            "\tERROR\tInvoke Error \t{\"errorType\":\"Error\",\"errorMessage\":\"kaboom\""
        ),
        "{logs}"
    );
    // A function error keeps the instance: the next call is warm.
    kumo.invoke_failed("err-thrown", "{}");
    assert_eq!(kumo.logs("err-thrown").matches("Init Duration").count(), 1);

    let rejected = kumo.invoke_failed("err-rejected", "{}");
    assert_eq!(rejected["errorType"], "RangeError");
    assert_eq!(rejected["errorMessage"], "nope");
    assert!(rejected["trace"].as_array().unwrap().len() > 1);
    let sync = kumo.invoke_failed("err-sync", "{}");
    assert_eq!(sync["errorType"], "TypeError", "{sync}");

    // An async handler whose promise never settles, with nothing pending.
    let unsettled = kumo.invoke_failed("err-unsettled", "{}");
    assert_eq!(unsettled["errorType"], "Runtime.NodeJsExit", "{unsettled}");

    // An exception outside the handler: reported, then the runtime exits.
    let uncaught = kumo.invoke_failed("err-uncaught", "{}");
    assert_eq!(
        uncaught["errorMessage"],
        "escaped",
        "{uncaught}\n{}",
        kumo.logs("err-uncaught")
    );
    // The next call starts a new instance and still works the same way.
    assert_eq!(
        kumo.invoke_failed("err-uncaught", "{}")["errorMessage"],
        "escaped"
    );
}

#[test]
fn loader_errors_are_reported_through_init_error() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let cases = [
        (
            "load-missing-file",
            "nothere.handler",
            "Runtime.ImportModuleError",
            "nothere",
        ),
        (
            "load-missing-export",
            "index.nope",
            "Runtime.HandlerNotFound",
            "index.nope is undefined or not exported",
        ),
        (
            "load-not-function",
            "index.notAFunction",
            "Runtime.HandlerNotFound",
            "is not a function",
        ),
        (
            "load-syntax",
            "syntax.handler",
            "Runtime.UserCodeSyntaxError",
            "SyntaxError",
        ),
        // ES module syntax in a .cjs file: explained.
        (
            "load-esm-in-cjs",
            "bad_esm.handler",
            "Runtime.UserCodeSyntaxError",
            "ES module syntax needs a .mjs file",
        ),
        (
            "load-init-throw",
            "init_throw.handler",
            "Error",
            "configuration missing",
        ),
    ];
    for (name, handler, error_type, message) in cases {
        create(&kumo, name, "nodejs20.x", handler, &[]);
        let error = kumo.invoke_failed(name, "{}");
        assert_eq!(error["errorType"], error_type, "{name}: {error}");
        let text = error["errorMessage"].as_str().unwrap();
        assert!(text.contains(message), "{name}: {error}");
    }
    // CommonJS in a .mjs file: Node's own explanation.
    create(
        &kumo,
        "load-cjs-in-esm",
        "nodejs20.x",
        "bad_cjs.handler",
        &[],
    );
    let error = kumo.invoke_failed("load-cjs-in-esm", "{}");
    assert_eq!(error["errorType"], "ReferenceError", "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("module is not defined in ES module scope"),
        "{error}"
    );

    // Handlers that cannot name a Node export are refused at create time.
    for bad in ["index", "../escape.handler", "/abs/index.handler"] {
        let run = kumo.cli(&[
            "function",
            "create",
            "load-bad-name",
            "--runtime",
            "nodejs20.x",
            "--handler",
            bad,
            "--code",
            &fixture("node").to_string_lossy(),
        ]);
        assert_ne!(run.code, 0, "{bad}: {run:?}");
        assert!(run.stderr.contains("handler"), "{bad}: {run:?}");
    }
}

#[test]
fn hostile_node_handlers_time_out_and_their_output_is_capped() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    create(
        &kumo,
        "node-forever",
        "nodejs20.x",
        "errors.forever",
        &["--timeout", "1"],
    );
    let timed_out = kumo.invoke_failed("node-forever", "{}");
    assert_eq!(timed_out["errorType"], "Sandbox.Timedout", "{timed_out}");
    assert!(kumo
        .logs("node-forever")
        .contains("Task timed out after 1.00 seconds"));

    create(
        &kumo,
        "node-flood",
        "nodejs20.x",
        "errors.flood",
        &["--timeout", "60"],
    );
    let out = kumo.invoke("node-flood", "{}");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json(), "survived the flood");
    let logs = kumo.logs("node-flood");
    assert!(
        logs.len() < 2 * 1024 * 1024,
        "stored log is {} bytes",
        logs.len()
    );
    assert!(
        logs.contains("log truncated"),
        "a truncation marker says so: {} bytes: {:?}",
        logs.len(),
        &logs[..logs.len().min(800)]
    );
    assert_eq!(kumo.invoke_ok("node-flood", "{}"), "survived the flood");

    // A 128 MB function: 40 MB of live arrays fit (V8's heap is sized to
    // the memory), 300 MB end the instance, and the next call starts afresh.
    create(
        &kumo,
        "node-memory",
        "nodejs20.x",
        "errors.allocate",
        &["--memory", "128"],
    );
    assert_eq!(kumo.invoke_ok("node-memory", r#"{"mb": 40}"#), 40);
    let hog = kumo.invoke_failed("node-memory", r#"{"mb": 300}"#);
    let error_type = hog["errorType"].as_str().unwrap();
    assert!(
        error_type == "Runtime.ExitError" || error_type == "Runtime.OutOfMemory",
        "{hog}"
    );
    assert_eq!(kumo.invoke_ok("node-memory", r#"{"mb": 40}"#), 40);
}

#[test]
fn pre_started_node_sandboxes_serve_node_cold_starts() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(kumo_tests::LOG_CLAIMS, "prewarm_node_instances = 2\n");
    kumo.wait_for_blanks(2);
    create(&kumo, "node-warm18", "nodejs18.x", "index.handler", &[]);
    let out = kumo.invoke_ok("node-warm18", r#"{"p": 1}"#);
    assert_eq!(
        kumo.log()
            .matches("cold start from a pre-started sandbox")
            .count(),
        1,
        "{}",
        kumo.log()
    );
    assert_eq!(out["event"]["p"], 1);
    assert_eq!(out["calls"], 1);
    assert_eq!(out["prewarmed"], serde_json::Value::Null, "{out}");
    assert_eq!(out["memoryLimitInMB"], "128");
    assert_eq!(out["executionEnv"], "AWS_Lambda_nodejs18.x");
    assert_eq!(out["cwd"], "/var/task");
    // NODE_PATH of the function's own runtime, also for require().
    assert!(out["nodePath"]
        .as_str()
        .unwrap()
        .starts_with("/opt/nodejs/node18/node_modules:"));
    assert_eq!(kumo.invoke_ok("node-warm18", "{}")["calls"], 2);

    // An ES module from the second blank; a function setting NODE_OPTIONS,
    // or of another memory size (a blank's heap is sized for 128 MB),
    // starts the classic way.
    create(&kumo, "node-warm-esm", "nodejs20.x", "esm.handler", &[]);
    assert_eq!(kumo.invoke_ok("node-warm-esm", "{}")["module"], "esm.mjs");
    assert_eq!(
        kumo.log()
            .matches("cold start from a pre-started sandbox")
            .count(),
        2
    );
    create(
        &kumo,
        "node-options",
        "nodejs20.x",
        "index.handler",
        &["--env", "NODE_OPTIONS=--no-warnings"],
    );
    create(
        &kumo,
        "node-big",
        "nodejs20.x",
        "index.handler",
        &["--memory", "256"],
    );
    let claims = kumo
        .log()
        .matches("cold start from a pre-started sandbox")
        .count();
    assert_eq!(kumo.invoke_ok("node-options", "{}")["calls"], 1);
    assert_eq!(kumo.invoke_ok("node-big", "{}")["memoryLimitInMB"], "256");
    assert_eq!(
        kumo.log()
            .matches("cold start from a pre-started sandbox")
            .count(),
        claims
    );
}

/// `fixtures/node_ric` with AWS's `aws-lambda-ric` (built once and cached
/// by tests/node-ric.sh) in `node_modules/`.
fn node_ric_package() -> tempfile::TempDir {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node-ric.sh");
    let out = std::process::Command::new(&script)
        .arg("prepare")
        .output()
        .expect("running tests/node-ric.sh prepare");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tests/node-ric.sh prepare failed");
    let ric = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("node_ric"), dir.path());
    // What runs: the entry point and the built client with its native
    // module (not the 150 MB of sources it was compiled from).
    let installed = dir.path().join("node_modules/aws-lambda-ric");
    copy_dir(&ric.join("bin"), &installed.join("bin"));
    copy_dir(&ric.join("dist"), &installed.join("dist"));
    std::fs::copy(ric.join("package.json"), installed.join("package.json")).unwrap();
    dir
}

#[test]
fn aws_lambda_ric_runs_unmodified_under_provided() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let package = node_ric_package();
    kumo.create(
        "node-ric",
        "provided",
        "app.handler",
        package.path(),
        &["--timeout", "2", "--memory", "256"],
    );
    let out = kumo.invoke_ok_with_client_context(
        "node-ric",
        r#"{"hello": "ric"}"#,
        r#"{"custom": {"tenant": "t1"}}"#,
    );
    assert_eq!(out["event"]["hello"], "ric");
    assert_eq!(out["calls"], 1);
    assert_eq!(out["version"], "$LATEST");
    assert_eq!(out["clientContext"]["custom"]["tenant"], "t1");
    assert!(out["arn"].as_str().unwrap().ends_with(":function:node-ric"));
    let remaining = out["remaining"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 2000, "{remaining}");
    // Warm, and its console lines in Lambda's format.
    assert_eq!(kumo.invoke_ok("node-ric", "{}")["calls"], 2);
    let logs = kumo.logs("node-ric");
    assert!(logs.contains("\tINFO\tric handler call 2"), "{logs}");

    let error = kumo.invoke_failed("node-ric", r#"{"fail": true}"#);
    assert_eq!(error["errorType"], "Error", "{error}");
    assert_eq!(error["errorMessage"], "ric kaboom");
    assert!(error["trace"].is_array(), "{error}");
    kumo.assert_times_out_then_serves("node-ric");
}

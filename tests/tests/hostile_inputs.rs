//! Hostile inputs through the CLI and kumod: each is a clear one-line
//! error, and kumod keeps serving afterwards.

use kumo_tests::{fixture, python, root_or_skip, Kumo};

/// Builds a zip with Python's zipfile: entries (name, data, unix mode).
const MAKE_ZIP: &str = r#"
import sys, zipfile
out, spec = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for item in spec:
        kind, name, data = item.split(":", 2)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        if kind == "link":
            info.external_attr = 0o120777 << 16
        elif kind == "zeros":
            info.external_attr = 0o644 << 16
            with z.open(info, "w") as f:
                chunk = b"\0" * (1 << 20)
                for _ in range(int(data)):
                    f.write(chunk)
            continue
        else:
            info.external_attr = 0o644 << 16
        z.writestr(info, data)
"#;

fn make_zip(dir: &std::path::Path, name: &str, entries: &[&str]) -> String {
    let path = dir.join(name);
    let path_str = path.to_string_lossy().into_owned();
    let mut args = vec![path_str.as_str()];
    args.extend_from_slice(entries);
    python(MAKE_ZIP, &args);
    path_str
}

fn assert_refused(run: &kumo_tests::Run, needle: &str) {
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("error: "), "{run:?}");
    assert_eq!(
        run.stderr.trim_end().lines().count(),
        1,
        "one line: {run:?}"
    );
    assert!(
        run.stderr.contains(needle),
        "expected {needle:?} in {run:?}"
    );
}

#[test]
fn bad_packages_are_refused() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.zip");
    std::fs::write(&garbage, b"definitely not a zip").unwrap();
    let handler = "file:lambda_function.py:def handler(e, c): return 1";
    let cases = [
        (garbage.to_string_lossy().into_owned(), "not a valid zip"),
        (
            make_zip(dir.path(), "dotdot.zip", &[handler, "file:../evil.py:x"]),
            "'..'",
        ),
        (
            make_zip(dir.path(), "abs.zip", &[handler, "file:/etc/evil:x"]),
            "absolute",
        ),
        (
            make_zip(
                dir.path(),
                "link.zip",
                &[handler, "link:passwd:/etc/passwd"],
            ),
            "symlink",
        ),
        (
            make_zip(dir.path(), "link2.zip", &[handler, "link:up:../../outside"]),
            "outside the package",
        ),
        (
            make_zip(dir.path(), "bomb.zip", &[handler, "zeros:zeros.bin:300"]),
            "250 MB",
        ),
    ];
    for (i, (zip, needle)) in cases.iter().enumerate() {
        let name = format!("bad{i}");
        let run = kumo.cli(&[
            "function",
            "create",
            &name,
            "--runtime",
            "python3",
            "--handler",
            "lambda_function.handler",
            "--code",
            zip,
        ]);
        assert_refused(&run, needle);
    }
    assert!(kumo.alive());
    kumo.create_division("div", &[]);
    assert_eq!(kumo.invoke_ok("div", r#"{"x":9,"y":3}"#)["result"], 3.0);
}

#[test]
fn bad_configuration_is_refused() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start();
    let code = fixture("division");
    let code = code.to_string_lossy();
    let base = |name: &'static str| {
        vec![
            "function",
            "create",
            name,
            "--runtime",
            "python3",
            "--code",
            &code,
        ]
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [base("h"), vec!["--handler", "myfunc01_handler"]].concat(),
            "file.function",
        ),
        (
            [base("bad/name"), vec!["--handler", "a.b"]].concat(),
            "invalid name",
        ),
        (
            [base("m1"), vec!["--handler", "a.b", "--memory", "64"]].concat(),
            "invalid memory_mb",
        ),
        (
            [base("m2"), vec!["--handler", "a.b", "--memory", "20000"]].concat(),
            "invalid memory_mb",
        ),
        (
            [base("t1"), vec!["--handler", "a.b", "--timeout", "0"]].concat(),
            "invalid timeout_seconds",
        ),
        (
            [base("t2"), vec!["--handler", "a.b", "--timeout", "901"]].concat(),
            "invalid timeout_seconds",
        ),
        (
            [
                base("e1"),
                vec!["--handler", "a.b", "--env", "AWS_REGION=x"],
            ]
            .concat(),
            "reserved",
        ),
        (
            [base("e2"), vec!["--handler", "a.b", "--env", "NOEQUALS"]].concat(),
            "KEY=VALUE",
        ),
    ];
    for (args, needle) in cases {
        assert_refused(&kumo.cli(&args), needle);
    }
    assert!(kumo.alive());
}

#[test]
fn bad_invocations_are_refused() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start();
    kumo.create_division("div", &[]);
    assert_refused(
        &kumo.cli(&["invoke", "nope", "--payload", "{}"]),
        "Function not found: arn:aws:lambda:",
    );
    assert_refused(
        &kumo.cli(&["invoke", "div", "--payload", "{not json"]),
        "Could not parse request body into json",
    );
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), format!("\"{}\"", "x".repeat(7 * 1024 * 1024))).unwrap();
    let path = big.path().to_string_lossy().into_owned();
    assert_refused(
        &kumo.cli(&["invoke", "div", "--payload-file", &path]),
        "RequestTooLargeException",
    );
    assert_refused(
        &kumo.cli(&["function", "get", "nope"]),
        "Function not found",
    );
    assert!(kumo.alive());
    assert_eq!(kumo.invoke_ok("div", r#"{"x":1,"y":1}"#)["result"], 1.0);
}

#[test]
fn unreachable_kumod_is_one_clear_line() {
    let Some(bins) = std::env::var("KUMO_BIN_DIR")
        .ok()
        .map(std::path::PathBuf::from)
        .or_else(|| Some(kumo_tests::bin_dir()))
    else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(bins.join("kumo"))
        .args([
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "function",
            "list",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.starts_with("error: cannot reach kumod at http://127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn async_and_concurrency_settings_are_refused_clearly() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start();
    let code = fixture("division").to_string_lossy().into_owned();
    let create = |extra: &[&str]| {
        let mut args = vec![
            "function",
            "create",
            "bad",
            "--runtime",
            "python3",
            "--handler",
            "lambda_function.myfunc01_handler",
            "--code",
            &code,
        ];
        args.extend_from_slice(extra);
        kumo.cli(&args)
    };
    assert_refused(
        &create(&["--max-retry-attempts", "3"]),
        "max_retry_attempts",
    );
    assert_refused(&create(&["--max-event-age", "59"]), "max_event_age_seconds");
    assert_refused(
        &create(&["--max-event-age", "21601"]),
        "max_event_age_seconds",
    );
    assert_refused(&create(&["--concurrency", "-1"]), "below 0");
    assert_refused(&create(&["--concurrency", "1000"]), "unreserved");
    assert_refused(
        &create(&["--on-failure", "bad"]),
        "own on-failure destination",
    );

    kumo.create_division("div", &[]);
    // The same rules on the server when updating (the CLI does not pre-check).
    let update = |extra: &[&str]| {
        let mut args = vec!["function", "update", "div"];
        args.extend_from_slice(extra);
        kumo.cli(&args)
    };
    assert_refused(
        &update(&["--max-retry-attempts", "7"]),
        "max_retry_attempts",
    );
    assert_refused(&update(&["--max-event-age", "0"]), "max_event_age_seconds");
    assert_refused(&update(&["--concurrency", "-5"]), "below 0");
    assert_refused(
        &update(&["--on-failure", "ghost"]),
        "on_failure_destination",
    );

    // Asynchronous calls that must be refused at once, never accepted.
    let missing = kumo.cli(&["invoke", "nope", "--async"]);
    assert_refused(&missing, "Function not found");
    let big = format!("\"{}\"", "x".repeat(257 * 1024));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    std::fs::write(&file, &big).unwrap();
    let file = file.to_string_lossy().into_owned();
    let too_big = kumo.cli(&["invoke", "div", "--async", "--payload-file", &file]);
    assert_refused(&too_big, "RequestTooLargeException");
    assert!(too_big.stderr.contains("asynchronous"), "{too_big:?}");
    // The same payload is fine synchronously (6 MB limit): the function runs.
    let sync = kumo.cli(&["invoke", "div", "--payload-file", &file]);
    assert_ne!(sync.code, 2, "{sync:?}");
    assert_refused(
        &kumo.cli(&["invoke", "div", "--async", "--payload", "{oops"]),
        "json",
    );
    assert_refused(
        &kumo.cli(&["dlq", "show", "div", "no-such-id"]),
        "not found",
    );
    assert_refused(&kumo.cli(&["dlq", "list", "nope"]), "Function not found");
    let info = kumo.function("div");
    assert_eq!(info["queue"]["queued"], 0, "nothing was accepted: {info}");
    assert!(kumo.alive());
}

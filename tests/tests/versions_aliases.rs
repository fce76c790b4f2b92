//! Versions and aliases end to end: publish (idempotent, guarded by the
//! expected sha), qualified invokes running old code, aliases moving at
//! once, weighted routing, what the sandbox and the log lines report, and
//! the refusals.

use kumo_tests::{package_dir, root_or_skip, Kumo};
use serde_json::Value;

fn code(marker: &str) -> tempfile::TempDir {
    package_dir(&[(
        "lambda_function.py",
        &format!(
            "def handler(event, context):\n    print('running {marker}')\n    return {{'code': '{marker}', 'version': context.function_version, 'arn': context.invoked_function_arn}}\n"
        ),
    )])
}

/// `kumo alias ARGS… --output json`, which must succeed.
fn alias(kumo: &Kumo, args: &[&str]) -> Value {
    let mut all = vec!["alias"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    ok(kumo, &all)
}

fn ok(kumo: &Kumo, args: &[&str]) -> Value {
    let run = kumo.cli(args);
    assert_eq!(run.code, 0, "{args:?}: {run:?}");
    run.json()
}

fn refused(kumo: &Kumo, args: &[&str], needle: &str) {
    let run = kumo.cli(args);
    assert_eq!(run.code, 2, "{args:?}: {run:?}");
    assert!(
        run.stderr.contains(needle),
        "{args:?}: expected {needle:?} in {}",
        run.stderr
    );
}

#[test]
fn versions_and_aliases_route_calls() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let v1_code = code("one");
    kumo.create(
        "fn",
        "python3",
        "lambda_function.handler",
        v1_code.path(),
        &[],
    );
    let v1 = ok(
        &kumo,
        &[
            "version",
            "publish",
            "fn",
            "--description",
            "first",
            "--output",
            "json",
        ],
    );
    assert_eq!(v1["version"], "1");
    assert!(v1["function_arn"]
        .as_str()
        .unwrap()
        .ends_with(":function:fn:1"));
    // Nothing changed: the same version comes back.
    let again = ok(&kumo, &["version", "publish", "fn", "--output", "json"]);
    assert_eq!(again["version"], "1");
    // A wrong expected sha is refused.
    refused(
        &kumo,
        &["version", "publish", "fn", "--expect-sha256", "AAAA"],
        "does not match",
    );

    let v2_code = code("two");
    let v2_path = v2_code.path().to_string_lossy().into_owned();
    ok(
        &kumo,
        &[
            "function", "update", "fn", "--code", &v2_path, "--output", "json",
        ],
    );
    let sha = ok(&kumo, &["function", "get", "fn", "--output", "json"])["code_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let v2 = ok(
        &kumo,
        &[
            "version",
            "publish",
            "fn",
            "--expect-sha256",
            &sha,
            "--output",
            "json",
        ],
    );
    assert_eq!(v2["version"], "2");
    let listed = ok(&kumo, &["version", "list", "fn", "--output", "json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["$LATEST", "1", "2"]);

    // Qualified invokes run the old code; $LATEST the new.
    let r = kumo.invoke_ok("fn:1", "{}");
    assert_eq!(
        (r["code"].as_str(), r["version"].as_str()),
        (Some("one"), Some("1"))
    );
    assert!(
        r["arn"].as_str().unwrap().ends_with(":function:fn:1"),
        "{r}"
    );
    let r = ok(&kumo, &["invoke", "fn", "--qualifier", "2"]);
    assert_eq!(r["code"], "two");
    let r = kumo.invoke_ok("fn", "{}");
    assert_eq!(
        (r["code"].as_str(), r["version"].as_str()),
        (Some("two"), Some("$LATEST"))
    );
    assert!(r["arn"].as_str().unwrap().ends_with(":function:fn"), "{r}");

    // An alias: the sandbox sees the alias ARN and the executed version.
    let created = alias(&kumo, &["create", "fn", "prod", "--version", "1"]);
    assert!(created["alias_arn"]
        .as_str()
        .unwrap()
        .ends_with(":function:fn:prod"));
    let r = kumo.invoke_ok("fn:prod", "{}");
    assert_eq!(
        (r["code"].as_str(), r["version"].as_str()),
        (Some("one"), Some("1"))
    );
    assert!(
        r["arn"].as_str().unwrap().ends_with(":function:fn:prod"),
        "{r}"
    );
    let logs = kumo.logs("fn");
    assert!(
        logs.contains("Version: 1\n"),
        "START shows the executed version:\n{logs}"
    );
    let v1_logs = kumo.cli(&["logs", "fn", "--version", "1"]).stdout;
    assert!(
        v1_logs.contains("running one") && !v1_logs.contains("running two"),
        "{v1_logs}"
    );
    // Moving the alias switches the very next call.
    alias(&kumo, &["update", "fn", "prod", "--version", "2"]);
    assert_eq!(kumo.invoke_ok("fn:prod", "{}")["code"], "two");

    // Weighted: 30% to version 1 over 1,000 calls.
    alias(
        &kumo,
        &[
            "update",
            "fn",
            "prod",
            "--version",
            "2",
            "--extra-version",
            "1",
            "--weight",
            "0.3",
        ],
    );
    let shown = alias(&kumo, &["get", "fn", "prod"]);
    assert_eq!(shown["routing"]["AdditionalVersionWeights"]["1"], 0.3);
    let mut to_one = 0;
    for batch in 0..100 {
        let children: Vec<_> = (0..10)
            .map(|_| kumo.spawn_cli(&["invoke", "fn:prod"]))
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "batch {batch}: {out:?}");
            let value: Value = serde_json::from_slice(&out.stdout).unwrap();
            if value["version"] == "1" {
                to_one += 1;
            }
        }
    }
    eprintln!("weight 0.3: {to_one} of 1000 calls ran version 1");
    assert!(
        (220..=380).contains(&to_one),
        "{to_one} of 1000 calls went to version 1"
    );
}

#[test]
fn bad_versions_and_aliases_are_refused() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let c = code("one");
    kumo.create("fn", "python3", "lambda_function.handler", c.path(), &[]);
    ok(&kumo, &["version", "publish", "fn", "--output", "json"]);
    let c2 = code("two");
    let p2 = c2.path().to_string_lossy().into_owned();
    ok(
        &kumo,
        &[
            "function", "update", "fn", "--code", &p2, "--output", "json",
        ],
    );
    ok(&kumo, &["version", "publish", "fn", "--output", "json"]);

    refused(
        &kumo,
        &["alias", "create", "fn", "123", "--version", "1"],
        "not all digits",
    );
    refused(
        &kumo,
        &["alias", "create", "fn", "prod", "--version", "9"],
        "not published",
    );
    refused(
        &kumo,
        &[
            "alias",
            "create",
            "fn",
            "prod",
            "--version",
            "1",
            "--extra-version",
            "2",
            "--weight",
            "1.5",
        ],
        "outside 0-1",
    );
    refused(
        &kumo,
        &[
            "alias",
            "create",
            "fn",
            "prod",
            "--version",
            "1",
            "--extra-version",
            "1,2",
            "--weight",
            "0.1",
        ],
        "one extra version",
    );
    refused(
        &kumo,
        &[
            "alias",
            "create",
            "fn",
            "prod",
            "--version",
            "$LATEST",
            "--extra-version",
            "1",
            "--weight",
            "0.1",
        ],
        "$LATEST",
    );
    refused(
        &kumo,
        &["alias", "create", "nope", "prod", "--version", "1"],
        "Function not found",
    );
    alias(
        &kumo,
        &[
            "create",
            "fn",
            "prod",
            "--version",
            "1",
            "--extra-version",
            "2",
            "--weight",
            "0.5",
        ],
    );
    refused(
        &kumo,
        &["alias", "create", "fn", "prod", "--version", "1"],
        "already exists",
    );
    refused(&kumo, &["version", "delete", "fn", "1"], "alias prod");
    refused(&kumo, &["version", "delete", "fn", "2"], "alias prod");
    refused(
        &kumo,
        &["version", "delete", "fn", "7"],
        "Function not found",
    );
    refused(&kumo, &["invoke", "fn:7"], "Function not found");
    refused(&kumo, &["invoke", "fn:staging"], "Function not found");
    refused(&kumo, &["invoke", "fn:7", "--async"], "Function not found");
    let trigger = kumo.cli(&[
        "trigger",
        "create",
        "t",
        "--function",
        "fn:prod",
        "--schedule",
        "rate(1 day)",
    ]);
    assert_eq!(trigger.code, 0, "{trigger:?}");
    refused(&kumo, &["alias", "delete", "fn", "prod"], "trigger t");
    refused(
        &kumo,
        &[
            "trigger",
            "create",
            "t2",
            "--function",
            "fn:nope",
            "--schedule",
            "rate(1 day)",
        ],
        "Function not found",
    );
    refused(
        &kumo,
        &[
            "logs",
            "fn",
            "--request-id",
            "00000000-0000-0000-0000-000000000000",
        ],
        "no log of request",
    );
    // Deleting what is unused works.
    alias(&kumo, &["update", "fn", "prod", "--version", "2"]);
    assert_eq!(kumo.cli(&["version", "delete", "fn", "1"]).code, 0);
    let names: Vec<String> = ok(&kumo, &["version", "list", "fn", "--output", "json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["$LATEST", "2"]);
}

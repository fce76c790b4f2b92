//! Kumo's python3 runtime as Lambda's: the `logging` idiom prints Lambda's
//! lines (`[LEVEL]\t<time>Z\t<request id>\t<message>`), `AWS_LAMBDA_LOG_LEVEL`
//! sets the root level, `AWS_LAMBDA_LOG_FORMAT=JSON` writes JSON records,
//! `context.tenant_id` exists, and `sys.path` holds
//! the package, the layer paths, `/var/runtime` once and the standard
//! library only: host site-packages (Debian's `yaml`, `six`, `jwt`) are
//! reachable only when the function or the agent opts in — in classic and
//! pre-started sandboxes alike.

use kumo_tests::{package_dir, root_or_skip, Kumo};

/// The idiom as Lambda's Python documentation and books print it.
const LOGGING_IDIOM: &str = r#"
import json
import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)
logger.info("module loaded")


def lambda_handler(event, context):
    logger.info("got event %s", json.dumps(event))
    logger.debug("debug detail")
    logger.warning("first line\nsecond line")
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("division failed")
    print("a plain print")
    return {"request_id": context.aws_request_id, "tenant_id": context.tenant_id}
"#;

/// Logs at every level without setting one itself.
const LEVELS: &str = r#"
import logging

def handler(event, context):
    log = logging.getLogger("app")
    log.debug("at debug")
    log.info("at info")
    log.warning("at warning")
    log.error("at error")
    return logging.getLevelName(logging.getLogger().level)
"#;

/// Logs with an extra field and an exception, then fails.
const JSON_LOGS: &str = r#"
import logging

logger = logging.getLogger()
logger.info("module loaded")

def handler(event, context):
    logger.info("order %s", "placed", extra={"order_id": 7})
    logger.debug("debug detail")
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    print("a plain print")
    raise ValueError("bad input")
"#;

/// What the interpreter sees of its environment.
const FACTS: &str = r#"
import sys

def handler(event, context):
    found = {}
    for name in ("yaml", "six", "jwt"):
        try:
            __import__(name)
            found[name] = True
        except ImportError:
            found[name] = False
    return {
        "path": sys.path,
        "found": found,
        "version": "%d.%d" % sys.version_info[:2],
        "exit_callable": callable(exit),
    }
"#;

fn create(kumo: &Kumo, name: &str, source: &str, handler: &str, extra: &[&str]) {
    let dir = package_dir(&[("lambda_function.py", source)]);
    kumo.create(name, "python3", handler, dir.path(), extra);
}

/// Splits a Lambda log line into (level, time, request id, message),
/// checking the time's shape.
fn lambda_line(line: &str) -> Option<(&str, &str, &str)> {
    let mut fields = line.splitn(4, '\t');
    let level = fields.next()?.strip_prefix('[')?.strip_suffix(']')?;
    let time = fields.next()?;
    let request_id = fields.next()?;
    let message = fields.next()?;
    chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.3fZ").ok()?;
    assert_eq!(time.len(), "2026-01-01T00:00:00.000Z".len(), "{line}");
    Some((level, request_id, message))
}

#[test]
fn the_logging_idiom_prints_lambda_lines() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    create(
        &kumo,
        "logs",
        LOGGING_IDIOM,
        "lambda_function.lambda_handler",
        &[],
    );
    let out = kumo.invoke_ok("logs", r#"{"k": 1}"#);
    assert_eq!(out["tenant_id"], serde_json::Value::Null, "{out}");
    let request_id = out["request_id"].as_str().unwrap();
    let logs = kumo.logs("logs");
    let lines: Vec<&str> = logs.lines().collect();
    let find = |level: &str, message: &str| {
        lines
            .iter()
            .position(|l| lambda_line(l).is_some_and(|(lv, _, m)| lv == level && m == message))
            .unwrap_or_else(|| panic!("no [{level}] {message:?} line in\n{logs}"))
    };
    let init = find("INFO", "module loaded");
    assert_eq!(
        lambda_line(lines[init]).unwrap().1,
        "",
        "init has no request id"
    );
    let info = find("INFO", r#"got event {"k": 1}"#);
    assert_eq!(lambda_line(lines[info]).unwrap().1, request_id);
    assert!(!logs.contains("debug detail"), "{logs}");
    let warning = find("WARNING", "first line");
    assert_eq!(lines[warning + 1], "second line", "{logs}");
    let error = find("ERROR", "division failed");
    assert_eq!(lambda_line(lines[error]).unwrap().1, request_id);
    assert_eq!(lines[error + 1], "Traceback (most recent call last):");
    let raised = error
        + lines[error..]
            .iter()
            .position(|l| *l == "ZeroDivisionError: division by zero")
            .unwrap_or_else(|| panic!("no exception line in\n{logs}"));
    assert_eq!(
        lines[raised + 1],
        "a plain print",
        "print starts its own line"
    );
    assert!(init < info && info < warning && warning < error);
}

#[test]
fn the_log_level_variable_sets_the_root_level() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    for (name, env) in [
        ("default", None),
        ("debug", Some("DEBUG")),
        ("trace", Some("TRACE")),
        ("error", Some("error")),
        ("bogus", Some("LOUD")),
    ] {
        let variable = env.map(|v| format!("AWS_LAMBDA_LOG_LEVEL={v}"));
        let extra: Vec<&str> = match &variable {
            Some(v) => vec!["--env", v],
            None => vec![],
        };
        create(&kumo, name, LEVELS, "lambda_function.handler", &extra);
        let level = kumo.invoke_ok(name, "{}");
        let logs = kumo.logs(name);
        let printed: Vec<&str> = ["debug", "info", "warning", "error"]
            .into_iter()
            .filter(|l| logs.contains(&format!("\tat {l}\n")))
            .collect();
        let (want_level, want_printed) = match name {
            "debug" | "trace" => ("DEBUG", vec!["debug", "info", "warning", "error"]),
            "error" => ("ERROR", vec!["error"]),
            // Unset or unknown: Python's default, as on Lambda.
            _ => ("WARNING", vec!["warning", "error"]),
        };
        assert_eq!(level, want_level, "{name}");
        assert_eq!(printed, want_printed, "{name}: {logs}");
    }
}

#[test]
fn the_json_log_format_writes_one_object_per_record() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let env = "AWS_LAMBDA_LOG_FORMAT=JSON";
    create(
        &kumo,
        "json",
        JSON_LOGS,
        "lambda_function.handler",
        &["--env", env],
    );
    let error = kumo.invoke_failed("json", "{}");
    assert_eq!(error["errorType"], "ValueError");
    let request_id = error["requestId"].as_str().unwrap().to_string();
    let logs = kumo.logs("json");
    let records: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 4, "{logs}");
    let time = |r: &serde_json::Value| {
        let t = r["timestamp"].as_str().unwrap().to_string();
        chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%SZ")
            .unwrap_or_else(|e| panic!("{e}: {t}"));
    };
    records.iter().for_each(time);
    assert_eq!(
        records[0]["message"], "module loaded",
        "INFO by default: {logs}"
    );
    assert_eq!(records[0]["requestId"], "");
    let order = &records[1];
    assert_eq!(
        (
            &order["level"],
            &order["message"],
            &order["logger"],
            &order["order_id"]
        ),
        (
            &"INFO".into(),
            &"order placed".into(),
            &"root".into(),
            &7.into()
        ),
        "{order}"
    );
    assert_eq!(order["requestId"], request_id.as_str());
    let failed = &records[2];
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["errorType"], "KeyError");
    assert_eq!(failed["errorMessage"], "'missing'");
    assert!(
        failed["stackTrace"][0]
            .as_str()
            .unwrap()
            .contains("lambda_function.py"),
        "{failed}"
    );
    assert!(
        failed["location"]
            .as_str()
            .unwrap()
            .ends_with(":handler:13"),
        "{failed}"
    );
    let unhandled = &records[3];
    assert_eq!(unhandled["log_level"], "ERROR");
    assert_eq!(unhandled["errorType"], "ValueError");
    assert_eq!(unhandled["requestId"], request_id.as_str());
    assert!(!logs.contains("debug detail"), "{logs}");
    assert!(
        logs.lines().any(|l| l == "a plain print"),
        "print stays text: {logs}"
    );
}

/// sys.path of the runtime without host site-packages.
fn assert_isolated_path(facts: &serde_json::Value) {
    let version = facts["version"].as_str().unwrap();
    let path: Vec<&str> = facts["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let layer_site = format!("/opt/python/lib/python{version}/site-packages");
    assert_eq!(
        path[..4],
        ["/var/task", &layer_site, "/opt/python", "/var/runtime"],
        "{facts}"
    );
    let stdlib = &path[4..];
    assert!(!stdlib.is_empty(), "{facts}");
    assert!(
        stdlib
            .iter()
            .all(|p| !p.contains("-packages") && p.contains("python")),
        "only the standard library after the runtime: {facts}"
    );
    assert_eq!(
        facts["found"],
        serde_json::json!({"yaml": false, "six": false, "jwt": false}),
        "{facts}"
    );
    assert_eq!(facts["exit_callable"], true);
}

fn assert_host_packages(facts: &serde_json::Value) {
    assert_eq!(facts["found"]["yaml"], true, "{facts}");
    let path = facts["path"].as_array().unwrap();
    assert_eq!(path[0], "/var/task");
    assert!(
        path.iter()
            .any(|p| p.as_str().unwrap().ends_with("-packages")
                && !p.as_str().unwrap().starts_with("/opt")),
        "{facts}"
    );
}

/// Debian's python3-yaml must be installed for the opt-in to show.
fn host_has_yaml() {
    let status = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import yaml"])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "these tests need python3-yaml on the host"
    );
}

#[test]
fn host_site_packages_are_opt_in_per_function() {
    if !root_or_skip() {
        return;
    }
    host_has_yaml();
    for prewarm in ["", "prewarm_python_instances = 2\n"] {
        let kumo = Kumo::start_configured(kumo_tests::LOG_CLAIMS, prewarm);
        if !prewarm.is_empty() {
            kumo.wait_for_blanks(2);
        }
        create(&kumo, "plain", FACTS, "lambda_function.handler", &[]);
        let env = "KUMO_PYTHON_HOST_SITE_PACKAGES=1";
        create(
            &kumo,
            "hosted",
            FACTS,
            "lambda_function.handler",
            &["--env", env],
        );
        assert_isolated_path(&kumo.invoke_ok("plain", "{}"));
        assert_host_packages(&kumo.invoke_ok("hosted", "{}"));
        let claimed = kumo
            .log()
            .matches("cold start from a pre-started sandbox")
            .count();
        let expected = if prewarm.is_empty() { 0 } else { 2 };
        assert_eq!(claimed, expected, "{prewarm:?}\n{}", kumo.log());
    }
}

#[test]
fn host_site_packages_are_opt_in_per_agent() {
    if !root_or_skip() {
        return;
    }
    host_has_yaml();
    let kumo = Kumo::start_with("python_host_site_packages = true\n");
    create(&kumo, "hosted", FACTS, "lambda_function.handler", &[]);
    let env = "KUMO_PYTHON_HOST_SITE_PACKAGES=0";
    create(
        &kumo,
        "opted-out",
        FACTS,
        "lambda_function.handler",
        &["--env", env],
    );
    assert_host_packages(&kumo.invoke_ok("hosted", "{}"));
    assert_isolated_path(&kumo.invoke_ok("opted-out", "{}"));
}

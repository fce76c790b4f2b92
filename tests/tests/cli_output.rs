//! What the CLI prints: the table and JSON forms of the listing commands,
//! and the error messages a new user meets (a drained cluster, an
//! unreadable token file, a busy port said once).

use std::process::Command;

use kumo_tests::{bin_dir, free_ports, root_or_skip, Kumo};

/// The table's columns start where the header's do, on every row.
fn assert_aligned(table: &str, headers: &[&str]) {
    let mut lines = table.lines();
    let header = lines.next().expect("a header line");
    let starts: Vec<usize> = headers
        .iter()
        .map(|h| {
            header
                .find(h)
                .unwrap_or_else(|| panic!("no {h} in {header:?}"))
        })
        .collect();
    for line in lines {
        for &start in &starts[1..] {
            assert!(
                line.len() > start
                    && line.as_bytes()[start - 1] == b' '
                    && line.as_bytes()[start] != b' ',
                "column at {start} misaligned in {line:?}\n{table}"
            );
        }
    }
}

#[test]
fn listings_print_tables_and_json() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create_division("divide", &[]);
    assert_eq!(kumo.cli(&["version", "publish", "divide"]).code, 0);
    let alias = kumo.cli(&["alias", "create", "divide", "prod", "--version", "1"]);
    assert_eq!(alias.code, 0, "{alias:?}");
    assert!(alias.stdout.contains("alias_arn"), "text record: {alias:?}");
    kumo.create_trigger(&[
        "nightly",
        "--function",
        "divide",
        "--schedule",
        "cron(0 3 * * ? *)",
    ]);
    kumo.create_trigger(&[
        "web",
        "--function",
        "divide",
        "--http-path",
        "/divide",
        "--methods",
        "GET,POST",
    ]);
    assert_eq!(kumo.cli(&["trigger", "disable", "nightly"]).code, 0);

    let triggers = kumo.cli(&["trigger", "list"]);
    assert_eq!(triggers.code, 0, "{triggers:?}");
    assert_aligned(&triggers.stdout, &["NAME", "ENABLED", "FUNCTION", "SOURCE"]);
    let web = triggers
        .stdout
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap();
    assert!(
        web.contains(" yes ") && web.contains("http GET,POST /http/divide"),
        "{web:?}"
    );
    let nightly = triggers
        .stdout
        .lines()
        .find(|l| l.starts_with("nightly"))
        .unwrap();
    assert!(
        nightly.contains(" no ") && nightly.contains("schedule cron(0 3 * * ? *)"),
        "{nightly:?}"
    );
    let json = kumo.cli(&["trigger", "list", "--output", "json"]).json();
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{json}");

    let table = kumo.cli(&["alias", "list", "divide", "--output", "table"]);
    assert_eq!(table.code, 0, "{table:?}");
    assert_aligned(
        &table.stdout,
        &["NAME", "VERSION", "ROUTING", "DESCRIPTION"],
    );
    assert!(
        table.stdout.lines().nth(1).unwrap().starts_with("prod "),
        "{table:?}"
    );
    let json = kumo
        .cli(&["alias", "list", "divide", "--output", "json"])
        .json();
    assert_eq!(json[0]["version"], "1");

    // Logs as JSON lines: every line an object naming its invocation.
    kumo.invoke_ok("divide", r#"{"x": 1, "y": 2}"#);
    let logs = kumo.cli(&["logs", "divide", "--output", "json"]);
    assert_eq!(logs.code, 0, "{logs:?}");
    let lines: Vec<serde_json::Value> = logs
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["message"]
        .as_str()
        .unwrap()
        .starts_with("REPORT RequestId:")));
    assert!(lines
        .iter()
        .all(|l| l["request_id"].as_str().is_some_and(|id| id.len() == 36)));

    let functions = kumo.cli(&["function", "list"]);
    assert_aligned(&functions.stdout, &["NAME", "RUNTIME", "MEMORY", "TIMEOUT"]);
    let json = kumo.cli(&["function", "list", "--output", "json"]).json();
    assert_eq!(json[0]["name"], "divide");
    for listing in [
        &["agents"][..],
        &["dlq", "list", "divide"],
        &["version", "list", "divide"],
    ] {
        let mut args = listing.to_vec();
        args.extend(["--output", "json"]);
        let run = kumo.cli(&args);
        assert!(run.json().is_array(), "{listing:?}: {run:?}");
    }
}

#[test]
fn a_drained_cluster_is_named_as_such() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured("agent_wait_seconds = 1", "");
    kumo.create_division("divide", &[]);
    let agent_id = || kumo.cli(&["agents", "--output", "json"]).json()[0]["agent_id"].clone();
    kumo_tests::wait_until(
        "the agent listed",
        std::time::Duration::from_secs(10),
        || agent_id().is_string(),
    );
    let id = agent_id().as_str().unwrap().to_string();
    assert_eq!(kumo.cli(&["agent", "drain", &id]).code, 0);
    let run = kumo.cli(&["invoke", "divide", "--payload", r#"{"x": 1, "y": 1}"#]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("all 1 agent is drained"), "{run:?}");
    assert!(!run.stderr.contains("no agent connected"), "{run:?}");
}

#[test]
fn an_unreadable_token_file_is_named() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("control.token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin_dir().join("kumo"))
        .arg("--token-file")
        .arg(&token)
        .args(["--endpoint", "http://127.0.0.1:9", "function", "list"])
        .env_remove("KUMO_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&token.display().to_string()) && stderr.contains("Permission denied"),
        "{stderr}"
    );
}

#[test]
fn a_busy_port_is_reported_once() {
    let (grpc, http) = free_ports();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", grpc)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin_dir().join("kumod"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("KUMO_LISTEN", format!("127.0.0.1:{grpc}"))
        .env("KUMO_HTTP_LISTEN", format!("127.0.0.1:{http}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(error.contains(&grpc.to_string()), "{error}");
    assert_eq!(
        error
            .to_lowercase()
            .matches("address already in use")
            .count(),
        1,
        "{error}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {stderr}"
    );
}

#[test]
fn a_large_upload_shows_progress_on_a_terminal() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let package = tempfile::tempdir().unwrap();
    std::fs::copy(
        kumo_tests::fixture("division").join("lambda_function.py"),
        package.path().join("lambda_function.py"),
    )
    .unwrap();
    // 6 MB that do not compress: the zip stays over the bar's 4 MB threshold.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..6_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(package.path().join("noise.bin"), noise).unwrap();
    let command = format!(
        "{} --endpoint {} function create big --runtime python3 --handler {} --code {}",
        kumo.bins().join("kumo").display(),
        kumo.endpoint,
        kumo_tests::DIVISION_HANDLER,
        package.path().display()
    );
    // `script` gives the CLI a terminal, as a user's shell does.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env("KUMO_TOKEN_FILE", kumo.token_file())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("uploading big ["), "{shown}");
    assert!(shown.contains("MiB"), "{shown}");
    assert_eq!(kumo.invoke_ok("big", r#"{"x": 1, "y": 2}"#)["result"], 0.5);
    // Without a terminal nothing but the result is printed.
    let quiet = kumo.cli(&[
        "function",
        "update",
        "big",
        "--code",
        &package.path().to_string_lossy(),
    ]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(!quiet.stderr.contains("uploading"), "{quiet:?}");
}

//! Sandbox isolation and resource limits through the real platform: each
//! misbehaviour gives its error and the next call of the same function works.

use kumo_tests::{fixture, root_or_skip, Kumo};

fn probe(kumo: &Kumo, name: &str, extra: &[&str]) {
    kumo.create(
        name,
        "python3",
        "lambda_function.handler",
        &fixture("probe"),
        extra,
    );
}

#[test]
fn sandbox_is_isolated_from_the_host() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    probe(&kumo, "iso", &[]);
    let facts = kumo.invoke_ok("iso", r#"{"action":"facts"}"#);
    assert!(
        facts["pid1"]
            .as_str()
            .unwrap()
            .contains("__kumo-sandbox-init"),
        "{facts}"
    );
    assert!(
        facts["pids"].as_array().unwrap().len() <= 4,
        "host processes visible: {facts}"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(facts["hostname"].as_str().unwrap(), host.trim());
    assert_ne!(facts["uid"], 0);
    assert_ne!(facts["gid"], 0);
    assert_eq!(facts["root_writable"], false);
    assert_eq!(facts["task_writable"], false);
    assert_eq!(facts["tmp_writable"], true);
    assert_eq!(facts["interfaces"], serde_json::json!(["lo"]));
}

#[test]
fn network_none_reaches_nothing_on_the_host_and_host_mode_does() {
    if !root_or_skip() {
        return;
    }
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut targets = vec![serde_json::json!(["127.0.0.1", port])];
    let ips = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok();
    if let Some(ip) = ips.as_ref().and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .map(str::to_string)
    }) {
        targets.push(serde_json::json!([ip, port]));
    }
    let event = serde_json::json!({"action": "facts", "targets": targets}).to_string();
    let kumo = Kumo::start();
    probe(&kumo, "none", &[]);
    probe(&kumo, "host", &["--network", "host"]);
    let isolated = kumo.invoke_ok("none", &event);
    assert!(
        isolated["connects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c == false),
        "{isolated}"
    );
    let shared = kumo.invoke_ok("host", &event);
    assert!(
        shared["connects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c == true),
        "{shared}"
    );
}

#[test]
fn timeout_kills_and_the_next_call_works() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    probe(&kumo, "slow", &["--timeout", "1"]);
    let error = kumo.invoke_failed("slow", r#"{"action":"sleep","seconds":5}"#);
    assert_eq!(error["errorType"], "Sandbox.Timedout");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("RequestId: ")
            && message.ends_with("Error: Task timed out after 1.00 seconds"),
        "{message}"
    );
    assert_eq!(
        kumo.invoke_ok("slow", "{}")["count"],
        1,
        "a fresh instance serves the next call"
    );
    let logs = kumo.logs("slow");
    assert!(logs.contains("Task timed out after 1.00 seconds"), "{logs}");
    assert!(logs.contains("\tStatus: timeout"), "{logs}");
}

#[test]
fn memory_hog_is_killed_and_reported_as_out_of_memory() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    probe(&kumo, "hog", &["--memory", "128", "--timeout", "20"]);
    let error = kumo.invoke_failed("hog", r#"{"action":"hog","mb":512}"#);
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Runtime exited with error: signal: killed"),
        "{error}"
    );
    let logs = kumo.logs("hog");
    assert!(
        logs.contains("\tStatus: error\tError Type: Runtime.OutOfMemory"),
        "{logs}"
    );
    assert_eq!(kumo.invoke_ok("hog", "{}")["count"], 1);
}

#[test]
fn fork_bomb_stops_at_the_process_limit() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    probe(&kumo, "bomb", &["--memory", "2048", "--timeout", "60"]);
    let run = kumo.invoke("bomb", r#"{"action":"forkbomb"}"#);
    if run.code == 0 {
        let out = run.json();
        let children = out["children"].as_u64().unwrap();
        assert!(children < 1024, "{out}");
        assert!(!out["error"].as_str().unwrap().is_empty(), "{out}");
    } else {
        assert_eq!(run.code, 1, "{run:?}");
    }
    let next = kumo.invoke("bomb", "{}");
    assert_eq!(next.code, 0, "{next:?}");
}

#[test]
fn filling_tmp_stops_at_its_size() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    probe(&kumo, "fill", &["--memory", "1024", "--timeout", "60"]);
    let out = kumo.invoke_ok("fill", r#"{"action":"fill_tmp"}"#);
    let written = out["written_mb"].as_u64().unwrap();
    // /tmp is a disk of at least the advertised 512 MB free (ext4's own
    // metadata comes on top), and no more than a few percent over.
    assert!((512..=540).contains(&written), "{out}");
    assert_eq!(out["error"], "No space left on device");
    assert_eq!(
        kumo.invoke_ok("fill", "{}")["count"],
        2,
        "the same warm instance keeps working"
    );
}

#[test]
fn process_exiting_mid_invocation_is_a_runtime_exit() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    probe(&kumo, "quit", &[]);
    let error = kumo.invoke_failed("quit", r#"{"action":"exit"}"#);
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Runtime exited with error: exit status 3"),
        "{error}"
    );
    assert_eq!(kumo.invoke_ok("quit", "{}")["count"], 1);
}

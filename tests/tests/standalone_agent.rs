//! A plain kumod and a separate kumo-agent process, as on a multi-node
//! install: the agent attaches over gRPC, runs functions, and when it goes
//! away kumod says so clearly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kumo_tests::{bin_dir, fixture, root_or_skip, KillOnDrop};

#[test]
fn standalone_agent_runs_functions_for_kumod() {
    if !root_or_skip() {
        return;
    }
    let bins = bin_dir();
    let dir = tempfile::tempdir().unwrap();
    let (grpc, http) = kumo_tests::free_ports();
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let _kumod = KillOnDrop(
        Command::new(bins.join("kumod"))
            .args(["--data-dir", &dir.path().join("kumod").to_string_lossy()])
            .args([
                "--listen",
                &format!("127.0.0.1:{grpc}"),
                "--http-listen",
                &format!("127.0.0.1:{http}"),
            ])
            .env("KUMO_AGENT_WAIT_SECONDS", "1")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let kumo = |args: &[&str]| {
        Command::new(bins.join("kumo"))
            .arg("--endpoint")
            .arg(&endpoint)
            .env("KUMO_TOKEN_FILE", dir.path().join("kumod/control.token"))
            .args(args)
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kumo(&["function", "list"]).status.success() {
        assert!(Instant::now() < deadline, "kumod did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // kumod created the join token file when it started.
    let mut agent = KillOnDrop(
        Command::new(bins.join("kumo-agent"))
            .args(["--server", &endpoint, "--agent-id", "node-a"])
            .args(["--data-dir", &dir.path().join("agent").to_string_lossy()])
            .arg("--token-file")
            .arg(dir.path().join("kumod/agent.token"))
            .env(
                "KUMO_AGENT_CGROUP_PARENT",
                format!("kumo-e2e-standalone-{grpc}"),
            )
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let code = fixture("division");
    let created = kumo(&[
        "function",
        "create",
        "div",
        "--runtime",
        "python3",
        "--handler",
        "lambda_function.myfunc01_handler",
        "--code",
        &code.to_string_lossy(),
    ]);
    assert!(created.status.success(), "{created:?}");
    let mut result = kumo(&["invoke", "div", "--payload", r#"{"x":3,"y":2}"#]);
    while String::from_utf8_lossy(&result.stderr).contains("no agent connected")
        && Instant::now() < deadline
    {
        result = kumo(&["invoke", "div", "--payload", r#"{"x":3,"y":2}"#]);
    }
    assert_eq!(
        String::from_utf8_lossy(&result.stdout).trim(),
        r#"{"result": 1.5}"#,
        "{result:?}"
    );

    // The agent stops (SIGTERM); kumod keeps serving and explains.
    let _ = Command::new("kill").arg(agent.0.id().to_string()).status();
    let _ = agent.0.wait();
    let gone = kumo(&["invoke", "div", "--payload", r#"{"x":3,"y":2}"#]);
    assert_eq!(gone.status.code(), Some(2), "{gone:?}");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no agent connected"),
        "{gone:?}"
    );
    assert!(kumo(&["function", "get", "div"]).status.success());
}

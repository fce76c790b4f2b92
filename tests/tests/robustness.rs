//! kumod under abuse and damage: a flood of half-open HTTP connections
//! against a low fd limit, a damaged store, two agents with one id, data
//! file modes under a lax umask, webhook authentication and fan-out, NUL
//! bytes in paths and keys, and the `/metrics` token.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kumo_tests::http::{minio_event, post_minio, request};
use kumo_tests::{bin_dir, free_ports, root_or_skip, Kumo};
use serde_json::Value;

fn hello() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/hello")
}

fn create_hello(kumo: &Kumo, name: &str) {
    kumo.create(
        name,
        "python3",
        "lambda_function.lambda_handler",
        &hello(),
        &[],
    );
}

/// Whether the server closed `stream` (EOF, reset, or an answer followed by
/// a close) within `timeout`.
fn closed_by_server(mut stream: &TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_half_open_http_flood_starves_neither_grpc_nor_healthz() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_fd_limited(
        "[http]\nheader_read_timeout_seconds = 3\nidle_timeout_seconds = 3\n",
        1024,
    );
    create_hello(&kumo, "hello");
    kumo.invoke_ok("hello", r#"{"name": "before"}"#);
    // 2,000 clients that connect, send half a header and hold on.
    let mut flood: Vec<TcpStream> = Vec::new();
    for _ in 0..2000 {
        let address = kumo.http_address.parse().expect("address");
        if let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n");
            flood.push(stream);
        }
    }
    assert!(flood.len() > 1024, "only {} connections", flood.len());
    // The gRPC API and invokes keep working meanwhile.
    let list = kumo.cli(&["function", "list"]);
    assert_eq!(list.code, 0, "{list:?}\n{}", kumo.log());
    let result = kumo.invoke_ok("hello", r#"{"name": "during"}"#);
    assert!(result.to_string().contains("during"), "{result}");
    // /healthz answers again as soon as the held connections time out.
    let deadline = Instant::now() + Duration::from_secs(15);
    let address = kumo.http_address.clone();
    loop {
        let answered =
            std::panic::catch_unwind(|| request(&address, "GET", "/healthz", &[], b"").status);
        if answered.as_ref().is_ok_and(|s| *s == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz never answered\n{}",
            kumo.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every held connection was closed by kumod (timeout or cap).
    let still_open = flood
        .iter()
        .filter(|s| !closed_by_server(s, Duration::from_secs(10)))
        .count();
    assert_eq!(still_open, 0, "connections kumod never closed");
    let mut kumo = kumo;
    assert!(kumo.alive(), "{}", kumo.log());
    assert!(
        kumo.log().contains("HTTP listener limits"),
        "{}",
        kumo.log()
    );
}

#[test]
fn a_damaged_store_stops_kumod_with_the_recovery_steps() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start_daemon_only("", "127.0.0.1");
    create_hello(&kumo, "kept");
    kumo.kill9();
    let db = kumo.data_dir().join("state/db");
    let mut bytes = std::fs::read(&db).expect("reading the db");
    assert!(!bytes.is_empty());
    // Random-looking blocks over the whole file (a deterministic generator).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for block in bytes.chunks_mut(512) {
        for b in block.iter_mut().take(64) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    std::fs::write(&db, &bytes).expect("writing the db");
    let mut child = Command::new(bin_dir().join("kumod"))
        .arg("--config")
        .arg(kumo.dir.path().join("kumod.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kumod");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kumod kept running on a damaged store");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("reading stderr");
    assert!(!status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("restore it from your latest backup"),
        "{stderr}"
    );
}

fn spawn_agent(kumo: &Kumo, id: &str, name: &str) -> std::process::Child {
    let log = std::fs::File::create(kumo.dir.path().join(format!("{name}.log"))).expect("log");
    Command::new(bin_dir().join("kumo-agent"))
        .args(["--server", &kumo.endpoint, "--agent-id", id])
        .arg("--data-dir")
        .arg(kumo.dir.path().join(name))
        .env(
            "KUMO_AGENT_CGROUP_PARENT",
            format!(
                "kumo-e2e-{}-{}-{name}",
                std::process::id(),
                kumo.grpc_port()
            ),
        )
        .env("KUMO_AGENT_ALLOCATABLE_MEMORY_MB", "2048")
        .env("KUMO_AGENT_TOKEN_FILE", kumo.data_dir().join("agent.token"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting kumo-agent")
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn agents(kumo: &Kumo) -> Vec<Value> {
    let run = kumo.cli(&["agents", "--output", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.json().as_array().expect("a list").clone()
}

#[test]
fn a_second_agent_with_the_same_id_is_refused_and_a_restarted_one_accepted() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start_separate("");
    wait_until("the first agent", Duration::from_secs(20), || {
        agents(&kumo).iter().any(|a| a["state"] == "ready")
    });
    create_hello(&kumo, "hello");
    kumo.invoke_ok("hello", "{}");
    let mut second = spawn_agent(&kumo, "separate-agent", "agent-2");
    let second_log = kumo.dir.path().join("agent-2.log");
    wait_until("the refusal", Duration::from_secs(20), || {
        std::fs::read_to_string(&second_log)
            .unwrap_or_default()
            .contains("already attached by another running agent process")
    });
    assert!(
        kumo.log()
            .contains("already attached by another running agent process"),
        "{}",
        kumo.log()
    );
    // The first agent was not knocked off: calls keep succeeding.
    for _ in 0..5 {
        kumo.invoke_ok("hello", "{}");
    }
    let listed = agents(&kumo);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "ready", "{listed:?}");
    // The first agent dies: the second one (same id) takes over.
    kumo.kill9_agent();
    wait_until(
        "the second agent to attach",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&second_log)
                .unwrap_or_default()
                .contains("attached to kumod")
        },
    );
    kumo.invoke_ok("hello", "{}");
    // And a restarted process is accepted as soon as the old one is gone.
    let _ = second.kill();
    let _ = second.wait();
    kumo.start_agent();
    wait_until("the restarted agent", Duration::from_secs(20), || {
        agents(&kumo).iter().any(|a| a["state"] == "ready")
    });
    kumo.invoke_ok("hello", "{}");
}

#[test]
fn the_data_dir_is_private_under_a_lax_umask() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // A data dir left world-readable by an earlier run.
    std::fs::create_dir_all(data.join("state")).expect("mkdir");
    std::fs::write(data.join("drained-agents.json"), "[]").expect("write");
    for (path, mode) in [
        (data.clone(), 0o755),
        (data.join("state"), 0o755),
        (data.join("drained-agents.json"), 0o644),
    ] {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .expect("chmod");
    }
    let (grpc, http) = free_ports();
    let config = dir.path().join("kumod.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:{grpc}\"\nhttp_listen = \"127.0.0.1:{http}\"\n",
            data.display()
        ),
    )
    .expect("config");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec {} --config {}",
            bin_dir().join("kumod").display(),
            config.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting kumod");
    let address = format!("127.0.0.1:{http}");
    wait_until("kumod", Duration::from_secs(20), || {
        std::panic::catch_unwind(|| request(&address, "GET", "/healthz", &[], b"").status)
            .is_ok_and(|s| s == 200)
    });
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let mut checked = 0;
    let mut stack = vec![data.clone()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        let mode = meta.mode() & 0o7777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            for entry in std::fs::read_dir(&path).expect("list") {
                stack.push(entry.expect("entry").path());
            }
        } else if meta.is_file() {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        checked += 1;
    }
    assert!(data.join("state/db").exists());
    assert!(data.join("control.token").exists());
    assert!(checked >= 6, "only {checked} paths");
}

/// A MinIO body with `records` copies of one event record.
fn records_body(records: usize, key: &str) -> String {
    let one: Value =
        serde_json::from_str(&minio_event("s3:ObjectCreated:Put", "images", key, "F1"))
            .expect("event JSON");
    let mut body = one.clone();
    body["Records"] = Value::Array(vec![one["Records"][0].clone(); records]);
    body.to_string()
}

#[test]
fn the_webhook_needs_a_token_unless_open_and_caps_its_fan_out() {
    if !root_or_skip() {
        return;
    }
    // No token configured: everything is refused, with the reason.
    let closed = Kumo::start_daemon_only("", "127.0.0.1");
    let reply = post_minio(&closed.http_address, None, &records_body(1, "a"));
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(reply.body.contains("no token configured"), "{reply:?}");
    drop(closed);
    // Explicitly open.
    let open = Kumo::start_daemon_only("[webhooks]\nallow_unauthenticated = true\n", "127.0.0.1");
    let reply = post_minio(&open.http_address, None, &records_body(1, "a"));
    assert_eq!(reply.status, 200, "{reply:?}");
    drop(open);
    // A token and a fan-out cap of 5: 2 records × 3 triggers = 6 is refused
    // whole; 1 record × 3 triggers is queued.
    let kumo = Kumo::start_daemon_only(
        "[triggers]\nminio_auth_token = \"t0k\"\n[webhooks]\nmax_events_per_request = 5\n",
        "127.0.0.1",
    );
    create_hello(&kumo, "hello");
    for name in ["t1", "t2", "t3"] {
        kumo.create_trigger(&[name, "--function", "hello", "--bucket", "images"]);
    }
    let auth = Some("Bearer t0k");
    let reply = post_minio(&kumo.http_address, None, &records_body(1, "a"));
    assert_eq!(reply.status, 401, "{reply:?}");
    let reply = post_minio(&kumo.http_address, auth, &records_body(2, "a"));
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(reply.body.contains("max_events_per_request"), "{reply:?}");
    let stats = request(
        &kumo.http_address,
        "GET",
        "/webhooks/minio",
        &[("Authorization", "Bearer t0k")],
        b"",
    );
    assert_eq!(stats.json()["queued"], 0, "{stats:?}");
    let reply = post_minio(&kumo.http_address, auth, &records_body(1, "b"));
    assert_eq!(reply.json()["queued"], 3, "{reply:?}");
    // A NUL byte in an object key (%00 in MinIO's URL-encoded key) is
    // delivered as S3 encodes it (%00), not refused: nothing is lost.
    let reply = post_minio(&kumo.http_address, auth, &records_body(1, "x%00y"));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["queued"], 3, "{reply:?}");
}

#[test]
fn nul_bytes_in_paths_are_refused_and_metrics_can_need_a_token() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_daemon_only("[metrics]\nrequire_token = true\n", "127.0.0.1");
    let http = &kumo.http_address;
    for path in [
        "/2015-03-31/functions/hel%00lo/invocations",
        "/http/a%00b",
        "/webhooks/minio%00",
    ] {
        let reply = request(http, "POST", path, &[], b"{}");
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        assert!(reply.body.contains("NUL"), "{path}: {reply:?}");
    }
    let reply = request(http, "GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 401, "{reply:?}");
    let token = std::fs::read_to_string(kumo.data_dir().join("metrics.token")).expect("token");
    let bearer = format!("Bearer {}", token.trim());
    let reply = request(http, "GET", "/metrics", &[("Authorization", &bearer)], b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("kumo_"), "{reply:?}");
    // /healthz stays open.
    assert_eq!(request(http, "GET", "/healthz", &[], b"").status, 200);
}

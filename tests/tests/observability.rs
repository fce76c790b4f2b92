//! Operating Kumo: Prometheus metrics that parse and move, log retention,
//! `--follow`, `--log-tail` matching the stored log, a 1 GB log flood that
//! neither fills the disk nor stalls the agent, and `kumo status`.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use kumo_tests::http::request;
use kumo_tests::{package_dir, root_or_skip, wait_until, Kumo};

/// The samples of `/metrics`, parsed by a Prometheus text parser.
fn scrape(kumo: &Kumo) -> prometheus_parse::Scrape {
    let reply = request(&kumo.http_address, "GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    let lines = reply.body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("/metrics is valid Prometheus text")
}

/// The value of `name` with these labels (0 when absent).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn metrics_parse_and_move() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create_division("div", &[]);
    // The embedded agent attaches after kumod is ready; on a busy machine
    // that can be after the function is created.
    wait_until(
        "the embedded agent to attach",
        Duration::from_secs(20),
        || value(&scrape(&kumo), "kumo_agents", &[]) >= 1.0,
    );
    let before = scrape(&kumo);
    assert_eq!(value(&before, "kumo_agents", &[]), 1.0);
    kumo.invoke_ok("div", r#"{"x": 4, "y": 2}"#);
    kumo.invoke_ok("div", r#"{"x": 4, "y": 2}"#);
    let failed = kumo.invoke("div", r#"{"x": 4, "y": 0}"#);
    assert_eq!(failed.code, 1);
    assert_eq!(
        kumo.cli(&["function", "update", "div", "--concurrency", "0"])
            .code,
        0
    );
    assert_eq!(kumo.invoke("div", "{}").code, 2);
    let after = scrape(&kumo);
    let ok = [
        ("function", "div"),
        ("outcome", "success"),
        ("type", "RequestResponse"),
    ];
    assert_eq!(value(&after, "kumo_invocations_total", &ok), 2.0);
    assert_eq!(
        value(
            &after,
            "kumo_invocations_total",
            &[("function", "div"), ("outcome", "error")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "kumo_invocation_errors_total",
            &[("error_type", "ZeroDivisionError")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "kumo_throttles_total",
            &[
                ("function", "div"),
                (
                    "reason",
                    "ReservedFunctionConcurrentInvocationLimitExceeded"
                )
            ]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "kumo_cold_starts_total", &[("function", "div")]),
        1.0
    );
    let durations = after
        .samples
        .iter()
        .find(|s| {
            s.metric == "kumo_invocation_duration_seconds"
                && s.labels.get("function") == Some("div")
        })
        .expect("a duration histogram");
    match &durations.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().map(|b| b.count), Some(3.0), "{buckets:?}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(
        value(&after, "kumo_concurrent_executions", &[("function", "div")]),
        0.0
    );
    assert_eq!(
        value(&after, "kumo_dead_letters", &[("function", "div")]),
        0.0
    );
    assert!(value(&after, "kumo_agent_memory_allocatable_bytes", &[]) > 0.0);

    let status = kumo.cli(&["status", "--output", "json"]).json();
    assert_eq!(status["functions"], 1);
    assert_eq!(status["agents"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status["agents"][0]["allocatable_memory_mb"], 8192);
    let text = kumo.cli(&["status"]);
    assert!(text.stdout.contains("AGENT"), "{text:?}");
}

#[test]
fn logs_are_retained_followed_and_capped() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured("[function_logs]\nmax_records_per_function = 10\n", "");
    let chatty = package_dir(&[(
        "lambda_function.py",
        "import sys\ndef handler(event, context):\n    print('call', event.get('n'))\n    if event.get('flood'):\n        chunk = 'x' * (1 << 20) + '\\n'\n        for _ in range(1024):\n            sys.stdout.write(chunk)\n    return event.get('n')\n",
    )]);
    kumo.create(
        "chatty",
        "python3",
        "lambda_function.handler",
        chatty.path(),
        &["--timeout", "120"],
    );

    // --follow sees a new invocation's lines.
    let mut follower = kumo.spawn_cli(&["logs", "chatty", "--follow"]);
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let tail = kumo.cli(&["invoke", "chatty", "--payload", r#"{"n": 0}"#, "--log-tail"]);
    assert_eq!(tail.code, 0, "{tail:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = lines.next().expect("follower ended").unwrap();
        if line.contains("call 0") {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    let _ = follower.kill();
    let _ = follower.wait();
    // --log-tail is the end of the stored log, REPORT line included.
    let stored = kumo.logs("chatty");
    assert!(
        tail.stderr.contains("call 0")
            && tail.stderr.contains("REPORT RequestId")
            && stored.contains(tail.stderr.trim_end()),
        "tail {:?}\nstored {stored:?}",
        tail.stderr
    );

    // Past the retention (10 records), old entries go and new ones stay.
    for n in 1..=70 {
        assert_eq!(
            kumo.cli(&["invoke", "chatty", "--payload", &format!(r#"{{"n": {n}}}"#)])
                .code,
            0
        );
    }
    let logs = kumo.logs("chatty");
    assert!(!logs.contains("call 1\n"), "the oldest records are gone");
    assert!(logs.contains("call 70\n"), "the newest are kept");
    let starts = logs.matches("START RequestId").count();
    assert!(starts <= 10 + 64, "{starts} records kept");

    // 1 GB of output from one invocation: capped, the agent keeps serving.
    let started = Instant::now();
    let flood = kumo.cli(&[
        "invoke",
        "chatty",
        "--payload",
        r#"{"n": 99, "flood": true}"#,
    ]);
    eprintln!("1 GB of output took {:?}", started.elapsed());
    assert_eq!(flood.code, 0, "{flood:?}");
    let id_logs = kumo.logs("chatty");
    let flood_log = id_logs
        .split("START RequestId")
        .find(|r| r.contains("call 99"))
        .unwrap();
    assert!(
        flood_log.len() < 2 * 1024 * 1024,
        "stored log of the flood is {} bytes",
        flood_log.len()
    );
    assert!(
        flood_log.contains("truncated"),
        "a truncation marker says so"
    );
    assert_eq!(kumo.invoke_ok("chatty", r#"{"n": 100}"#), 100);
}
